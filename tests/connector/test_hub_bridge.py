"""The hub bridge pipeline on a real node (SQLite): a simulated 24-cell pack streams signed
messages; events are stored once, batched under Merkle roots whose credentials land in the
pack's passport, each event is provable offline; redelivery adds nothing; a swapped cell
marks the pack unverified at once; refused messages are counted and never stop the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.app import IDENTITY, STORE, create_app
from connector.config import NodeConfig
from connector.demo_dataspace import ShiftedClock
from connector.passports import start_sample_passport
from connector.plugins.hub.batching import verify_event_inclusion
from connector.plugins.hub.bridge import HubBridge
from connector.plugins.hub.simulator import SimulatedHub
from connector.plugins.hub.sources.base import SourceMessage
from connector.serve import RunningNode, running_node
from credentials.did_key import key_from_seed, mint_battery_did
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, free_port

CELLS = 24
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def oem(tmp_path: Path) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "oem",
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key="k" * 32)
    async with running_node(config, create_app(config)) as node:
        yield node


async def a_pack(node: RunningNode) -> str:
    """A pack in the node's store whose passport the node started (so it is the custodian)."""
    battery, _ = mint_battery_did()
    await start_sample_passport(node.app, battery, seed=3)
    return battery


def bridge_of(node: RunningNode, clock: ShiftedClock, **options: Any) -> HubBridge:
    return HubBridge(node.app, store=node.app[STORE], key=node.app[IDENTITY].signing_key,
                     clock=clock, summary_period=timedelta(seconds=10), **options)


def messages_of(hub: SimulatedHub, ticks: int) -> list[SourceMessage]:
    out = []
    for tick in range(ticks):
        at = START + timedelta(seconds=tick)
        out.extend(SourceMessage(topic=f"bpc/hubs/{hub.hub_id}/batch", payload=raw,
                                 received_at=at) for raw in hub.messages(at, per_message=12))
    return out


class Clock(ShiftedClock):
    def __init__(self) -> None:
        super().__init__()
        self.offset = START - datetime.now(UTC)


async def test_events_reach_the_passport_in_provable_batches(oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=7).overheat(3, from_tick=2)
    bridge = bridge_of(oem, clock, batch_max_events=50)
    await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    for message in messages_of(hub, 25):
        clock.offset = message.received_at - datetime.now(UTC)
        await bridge.handle(message)
        assert message.acked
    clock.advance(timedelta(seconds=30))
    await bridge.tick()
    await bridge.flush()
    assert bridge.stats.rejected == {} and bridge.stats.credential_failures == 0
    assert bridge.stats.credentials == bridge.stats.batches >= 1

    async with oem.app[STORE].read() as reader:
        passport = await reader.passport(pack)
        events = await reader.list_hub_events(battery_did=pack, limit=10_000)
    kinds = {e.kind for e in events}
    assert "thermal-excursion" in kinds and "cell-summary" in kinds
    assert all(e.batch_id is not None for e in events)
    batch_entries = [r for r in passport if "CellEventBatchCredential" in r.types]
    assert len(batch_entries) == bridge.stats.batches
    assert sum(r.credential["credentialSubject"]["treeSize"] for r in batch_entries) == len(
        events)

    thermal = next(e for e in events if e.kind == "thermal-excursion")
    proven = await bridge.prove(thermal.event_id)
    assert proven is not None and proven["credential"] is not None
    subject = proven["credential"]["credentialSubject"]
    assert verify_event_inclusion(proven["event"], proven["proof"], subject["merkleRoot"],
                                  size=subject["treeSize"])
    forged = {**proven["event"], "details": {**proven["event"]["details"], "forged": 1}}
    assert not verify_event_inclusion(forged, proven["proof"], subject["merkleRoot"],
                                      size=subject["treeSize"])
    assert await bridge.prove("urn:uuid:00000000-0000-5000-8000-000000000000") is None


async def test_redelivered_messages_add_nothing(oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=8).overheat(1, from_tick=0)
    bridge = bridge_of(oem, clock)
    await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    batch = messages_of(hub, 20)
    for message in batch:
        await bridge.handle(message)
    stored = bridge.stats.events_stored
    # a restarted bridge (fresh aggregator) receives the same messages again: QoS 1
    again = bridge_of(oem, clock)
    await again.register_pack(hub.hub_id, pack, hub.registered_cells())
    for message in batch:
        await again.handle(SourceMessage(topic=message.topic, payload=message.payload,
                                         received_at=message.received_at))
    assert stored >= 1 and again.stats.events_stored == 0
    assert again.stats.duplicates == stored


async def test_a_swapped_cell_marks_the_pack_unverified_at_once(oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=9).swap(5, at_tick=1)
    bridge = bridge_of(oem, clock)
    await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    for message in messages_of(hub, 3):
        await bridge.handle(message)
    status = await bridge.status()
    assert [c["position"] for c in status["unverifiedCells"]] == [5]
    async with oem.app[STORE].read() as reader:
        passport = await reader.passport(pack)
    markers = [r.credential["credentialSubject"] for r in passport
               if "CellConfigurationCredential" in r.types]
    assert len(markers) == 1 and markers[0]["cellConfiguration"] == "unverified"
    assert markers[0]["position"] == 5
    assert markers[0]["expectedCellUid"] != markers[0]["observedCellUid"]
    await bridge.flush()
    async with oem.app[STORE].read() as reader:
        batch = [r for r in await reader.passport(pack) if "CellEventBatchCredential" in r.types]
    assert batch and batch[-1].credential["credentialSubject"]["cellConfiguration"] == (
        "unverified")
    # signed without the SHACL run (``shapes_tested``): the shapes still hold
    from credentials.passport.shapes import validate_shapes

    made = [r.credential for r in await _passport(oem, pack)
            if {"CellEventBatchCredential", "CellConfigurationCredential"} & set(r.types)]
    assert len(made) >= 2
    assert all(isinstance(c, dict) and validate_shapes(c) == [] for c in made)


async def _passport(node: RunningNode, pack: str) -> list[Any]:
    async with node.app[STORE].read() as reader:
        return await reader.passport(pack)


async def test_refused_messages_are_counted_acked_and_never_stop_the_stream(
        oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=10)
    stranger = SimulatedHub(pack, CELLS, seed=11)  # a hub nobody registered
    bridge = bridge_of(oem, clock)
    await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    good = messages_of(hub, 1)
    tampered = bytearray(good[0].payload)
    middle = len(tampered) // 2  # inside the signed payload: still base64url, wrong signature
    tampered[middle] = ord("B") if tampered[middle] != ord("B") else ord("C")
    bad = [SourceMessage(topic="t", payload=b"not a jws", received_at=START),
           SourceMessage(topic="t", payload=bytes(tampered), received_at=START),
           *[SourceMessage(topic="t", payload=m.payload, received_at=START)
             for m in messages_of(stranger, 1)],
           SourceMessage(topic="t", payload=b"x" * (300 * 1024), received_at=START)]
    for message in [*bad, *good]:
        await bridge.handle(message)
        assert message.acked
    assert bridge.stats.rejected == {"malformed": 1, "bad-signature": 1, "unknown-hub": 2,
                                     "oversized": 1}
    assert bridge.stats.messages == len(bad) + len(good)


async def test_events_stored_before_a_crash_are_batched_and_credentialed_on_recovery(
        oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=12).overheat(2, from_tick=0)
    first = bridge_of(oem, clock, batch_max_events=10_000)
    await first.register_pack(hub.hub_id, pack, hub.registered_cells())
    for message in messages_of(hub, 20):
        await first.handle(message)
    assert first.stats.events_stored >= 1 and first.stats.batches == 0  # "crash" here
    restarted = bridge_of(oem, clock)
    await restarted.register_pack(hub.hub_id, pack, hub.registered_cells())
    await restarted.recover()
    async with oem.app[STORE].read() as reader:
        loose = await reader.list_hub_events(unbatched=True)
        batches = await reader.list_hub_batches(battery_did=pack)
    assert loose == [] and len(batches) == 1 and batches[0].credential_digest is not None
    assert batches[0].tree_size == first.stats.events_stored


async def test_a_replica_recovering_meanwhile_never_makes_two_batches_cover_an_event(
        oem: RunningNode) -> None:
    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=13).overheat(2, from_tick=0)
    running = bridge_of(oem, clock, batch_max_events=10_000)
    await running.register_pack(hub.hub_id, pack, hub.registered_cells())
    messages = messages_of(hub, 40)
    for message in messages[:len(messages) // 2]:
        await running.handle(message)
    assert running.stats.events_stored >= 1
    # another replica starts now and recovers the events the running one has not batched
    restarted = bridge_of(oem, clock)
    await restarted.register_pack(hub.hub_id, pack, hub.registered_cells())
    await restarted.recover()
    for message in messages[len(messages) // 2:]:
        await running.handle(message)
    await running.flush()  # its open batch holds events the other replica took, and new ones
    async with oem.app[STORE].read() as reader:
        events = await reader.list_hub_events(battery_did=pack, limit=10_000)
        batches = await reader.list_hub_batches(battery_did=pack)
    covered = [event_id for batch in batches for event_id in batch.event_ids]
    assert sorted(covered) == sorted(e.event_id for e in events)  # each once, none left out
    # the recovering replica took the first half, the running one committed only the rest
    assert restarted.stats.batches == 1 and running.stats.batches == 1
    assert len(batches) == 2 and all(b.tree_size >= 1 for b in batches)
    for batch in batches:  # each stored root is the root of exactly the events it lists
        proven = await running.prove(batch.event_ids[0])
        assert proven is not None and proven["batch"]["merkleRoot"] == batch.merkle_root
        assert batch.credential_digest is not None


async def test_replicas_follow_the_tamper_lock_through_the_store(oem: RunningNode) -> None:
    """One replica sees the swapped cell, another serves the data: the other follows the lock
    on its next refresh, and follows its lifting after a replacement made on the first."""
    from connector.app import VERIFIER
    from tests.connector.test_hub_plugin import technician_credential

    clock = Clock()
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=13).swap(4, at_tick=1)
    seeing, serving = bridge_of(oem, clock), bridge_of(oem, clock)
    for bridge in (seeing, serving):
        await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    for message in messages_of(hub, 3):
        await seeing.handle(message)
    assert seeing.restriction(pack, "performance-health") is not None
    assert serving.restriction(pack, "performance-health") is None  # not seen yet
    await serving.refresh_locks()
    assert serving.restriction(pack, "performance-health") is not None
    assert serving.restriction(pack, "public") is None  # only the cell data is locked

    credential = technician_credential(21, "did:web:service.example:technicians:3")
    status = await seeing.status()
    observed = status["unverifiedCells"][0]["observedCellUid"]
    await seeing.replace_cell(hub.hub_id, 4, new_cell_uid=observed,
                              new_cell_did=key_from_seed(bytes(32 * [4])).controller,
                              technician_credential=credential, verifier=oem.app[VERIFIER],
                              trust=_Trusting())
    assert seeing.restriction(pack, "performance-health") is None
    assert serving.restriction(pack, "performance-health") is not None  # until it reads again
    await serving.refresh_locks()
    assert serving.restriction(pack, "performance-health") is None


class _Trusting:
    """A trust decision for the replacement test: the technician's certifier is trusted."""

    def trusts(self, issuer: str, credential_type: str) -> bool:
        return credential_type == "ServiceTechnicianCredential"
