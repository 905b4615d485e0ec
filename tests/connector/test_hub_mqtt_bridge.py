"""The hub bridge through the real Mosquitto broker: a node's hub plugin consumes MQTT, and two
bridge workers sharing one subscription (``$share/<group>/…``) and one store land every event
exactly once, each in exactly one credentialed batch."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.app import IDENTITY, STORE, create_app
from connector.config import NodeConfig
from connector.passports import start_sample_passport
from connector.plugins.hub.bridge import HubBridge
from connector.plugins.hub.events import CellEvent, EventKind, HubMessage, sign_hub_message
from connector.plugins.hub.simulator import SimulatedHub
from connector.plugins.hub.sources.mqtt import (
    MqttPublisher,
    MqttSettings,
    MqttSource,
    forget_session,
)
from connector.serve import RunningNode, running_node
from credentials.did_key import mint_battery_did
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, free_port

BROKER = ("127.0.0.1", 1883)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
def broker(require_service: Callable[..., None]) -> None:
    require_service("mosquitto", *BROKER)


async def a_pack(node: RunningNode, pack: str) -> None:
    await start_sample_passport(node.app, pack, seed=9)


def event_messages(hub: SimulatedHub, count: int, per_message: int) -> list[tuple[str, bytes]]:
    """``count`` hub-raised events (one per seq) in signed messages on cell topics."""
    now = datetime.now(UTC)
    cells = hub.registered_cells()
    out = []
    for start in range(0, count, per_message):
        events = [CellEvent.create(kind=EventKind.STATE_OF_HEALTH, hub_id=hub.hub_id,
                                   battery_did=hub.battery_did, position=n % len(cells),
                                   cell_uid=cells[n % len(cells)].cell_uid, seq=n,
                                   observed_at=now - timedelta(seconds=1),
                                   details={"sohPermille": 950})
                  for n in range(start, min(count, start + per_message))]
        payload = HubMessage(hub_id=hub.hub_id, sent_at=now, events=events)
        out.append((f"bpc/hubs/{hub.hub_id}/cells/{start % len(cells)}",
                    sign_hub_message(hub.hub_key, payload)))
    return out


async def until(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    return await check()


@pytest.fixture
async def oem(tmp_path: Path, broker: None) -> AsyncIterator[tuple[RunningNode, str, str]]:
    pack, _ = mint_battery_did()
    client = f"bpc-test-{uuid.uuid4().hex[:10]}"
    port = free_port()
    config = NodeConfig(
        public_base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "oem",
        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1, operator_api_key="k" * 32,
        plugins={"hub": {"enabled": True, "source": "mqtt", "batch_max_age_s": 0.2,
                         "tick_s": 0.05,
                         "mqtt": {"host": BROKER[0], "port": BROKER[1], "client_id": client}}})
    try:
        async with running_node(config, create_app(config)) as node:
            await a_pack(node, pack)
            yield node, pack, client
    finally:
        await forget_session(MqttSettings(host=BROKER[0], port=BROKER[1], client_id=client))


async def test_the_node_s_hub_plugin_consumes_the_broker(
        oem: tuple[RunningNode, str, str]) -> None:
    node, pack, _ = oem
    hub = SimulatedHub(pack, 12, seed=31)
    from connector.plugins.hub.routes import BRIDGE

    await node.app[BRIDGE].register_pack(hub.hub_id, pack, hub.registered_cells())
    published = event_messages(hub, 60, per_message=20)
    async with MqttPublisher(MqttSettings(host=BROKER[0], port=BROKER[1])) as publisher:
        await publisher.publish_many(published)

    async def all_credentialed() -> bool:
        async with node.app[STORE].read() as reader:
            events = await reader.list_hub_events(battery_did=pack, limit=1000)
            batches = await reader.list_hub_batches(battery_did=pack, limit=1000)
        return (len(events) == 60 and all(e.batch_id for e in events)
                and all(b.credential_digest for b in batches))

    assert await until(all_credentialed), (await node.app[BRIDGE].status())


async def test_two_workers_in_one_share_group_land_every_event_once(
        tmp_path: Path, broker: None) -> None:
    pack, _ = mint_battery_did()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{free_port()}",
                        data_dir=tmp_path / "oem", keystore_passphrase_env=PASSPHRASE_ENV,
                        shutdown_timeout_s=1, operator_api_key="k" * 32)
    group = f"g{uuid.uuid4().hex[:8]}"
    hub = SimulatedHub(pack, 16, seed=32)
    settings = [MqttSettings(host=BROKER[0], port=BROKER[1], group=group,
                             client_id=f"w{n}-{uuid.uuid4().hex[:8]}",
                             topics=(f"bpc/hubs/{hub.hub_id}/cells/+",)) for n in range(2)]
    async with running_node(config, create_app(config)) as node:
        await a_pack(node, pack)
        workers = [HubBridge(node.app, store=node.app[STORE],
                             key=node.app[IDENTITY].signing_key,
                             clock=lambda: datetime.now(UTC), batch_max_events=25)
                   for _ in settings]
        sources = [MqttSource(s) for s in settings]
        for worker in workers:
            await worker.register_pack(hub.hub_id, pack, hub.registered_cells())
        for source in sources:
            await source.start()

        async def consume(worker: HubBridge, source: MqttSource) -> None:
            async for message in source.messages():
                await worker.handle(message)

        tasks = [asyncio.create_task(consume(w, s)) for w, s in zip(workers, sources,
                                                                    strict=True)]
        try:
            published = event_messages(hub, 400, per_message=10)
            async with MqttPublisher(MqttSettings(host=BROKER[0], port=BROKER[1])) as pub:
                await pub.publish_many(published)

            async def stored_all() -> bool:
                return sum(w.stats.events_stored for w in workers) >= 400

            assert await until(stored_all)
        finally:
            for task in tasks:  # stop consuming first: then nothing is added after a flush
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for source in sources:
                await source.close()
            for s in settings:
                await forget_session(s)
        for worker in workers:
            await worker.flush()
        for worker in workers:  # a worker that lost a race for a passport position
            await worker.retry_credentials()
        async with node.app[STORE].read() as reader:
            events = await reader.list_hub_events(battery_did=pack, limit=1000)
            batches = await reader.list_hub_batches(battery_did=pack, limit=1000)
    stats = [w.stats.to_json() for w in workers]
    assert all(w.stats.messages > 0 for w in workers), f"the broker did not split: {stats}"
    assert len(events) == 400 and sum(w.stats.events_stored for w in workers) == 400, stats
    covered = [event_id for batch in batches for event_id in batch.event_ids]
    assert len(covered) == 400 and len(set(covered)) == 400, stats
    assert all(batch.credential_digest for batch in batches), stats


async def test_bpc_hub_simulate_registers_the_pack_and_streams_it(
        oem: tuple[RunningNode, str, str]) -> None:
    from typer.testing import CliRunner

    from connector.cli import app as bpc

    node, pack, _ = oem
    args = ["hub", "simulate", "--cells", "24", "--faults", "overheat:3@0", "--ticks", "12",
            "--interval", "0.05", "--battery", pack, "--register", "--node", node.url,
            "--api-key", "k" * 32]
    result = await asyncio.to_thread(CliRunner().invoke, bpc, args)
    assert result.exit_code == 0, result.output
    assert "published 12 signed messages" in result.output

    async def thermal() -> bool:
        async with node.app[STORE].read() as reader:
            events = await reader.list_hub_events(battery_did=pack, limit=1000)
        return any(e.kind == "thermal-excursion" and e.position == 3 for e in events)

    assert await until(thermal)
    bad = await asyncio.to_thread(CliRunner().invoke, bpc, ["hub", "simulate", "--faults",
                                                            "melt", "--ticks", "1"])
    assert bad.exit_code == 2 and "melt" in bad.output
