"""``bpc bench hub``, small: the report's shape, and that the figure is honest — every event
the bench counts is stored, in a batch whose Merkle root covers it, under a batch credential
in the pack's passport (checked here through the store, not the bench's own bookkeeping).
MQTT runs against the machine's broker (skipped without it, failed under
``BPC_REQUIRE_SERVICES=1``); an unreachable broker is reported, never an error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from connector.app import STORE
from connector.bench_hub import (
    HUB_RATIOS,
    METRIC_CEILINGS,
    METRIC_FLOORS,
    METRICS,
    bench_node,
    check_credentialed,
    events_phase,
    hub_benchmark,
    mqtt_phase,
    readings_phase,
    render_hub_table,
)
from connector.bench_nodes import PASSPHRASE_ENV, free_port
from connector.cli import app as bpc
from connector.plugins.hub.batching import verify_event_inclusion
from connector.plugins.hub.bridge import CELL_EVENT_BATCH
from connector.plugins.hub.events import event_digest
from connector.serve import RunningNode
from credentials.merkle import MerkleTree, encode_hash

BROKER_HOST, BROKER_PORT = "127.0.0.1", 1883


def check_report(report: dict, *, mqtt: bool) -> None:
    assert report["area"] == "hub"
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"]
    measured = set(METRICS) - ({"mqtt_events_per_s"} if not mqtt else set())
    assert set(report["metrics"]) == measured
    for name, metric in report["metrics"].items():
        assert isinstance(metric["value"], int | float) and metric["value"] > 0, (name, metric)
        assert metric["unit"] == METRICS[name][0] and metric["note"]
        assert "{" not in metric["note"], metric["note"]  # formatted with the workload
    if not mqtt:
        assert set(report["unavailable"]) == {"mqtt_events_per_s"}
    expected_ratios = {name for name, ours, ref in HUB_RATIOS
                       if ours in report["metrics"] and ref in report["metrics"]}
    assert set(report["ratios"]) == expected_ratios
    assert all(value > 0 for value in report["ratios"].values())
    assert set(report["targets"]) == set(METRIC_FLOORS) | set(METRIC_CEILINGS)
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
    metrics = {name: metric["value"] for name, metric in report["metrics"].items()}
    assert metrics["event_to_credential_p50_s"] <= metrics["event_to_credential_p99_s"]
    events = report["phases"]["events"]
    assert events["events"] == report["workload"]["events"]
    assert events["batches"] == events["credentials"] >= 1
    readings = report["phases"]["readings"]
    assert readings["readings"] >= report["workload"]["events"] and readings["events"] >= 1


def test_bench_hub_report_in_process() -> None:
    report = hub_benchmark(events=400, packs=2, events_per_message=50, mqtt=False,
                           reference_seconds=0.02)
    check_report(report, mqtt=False)
    assert report["workload"]["events_per_message"] == 50
    assert report["phases"]["events"]["messages"] == 8
    console = Console(record=True, width=200)
    render_hub_table(report, console)
    text = console.export_text()
    assert "bpc bench hub" in text and "events_per_s_vs_ed25519_verify" in text
    assert "mqtt_events_per_s: not measured: --no-mqtt" in text


def test_bench_hub_cli_json() -> None:
    result = CliRunner().invoke(bpc, ["bench", "hub", "--json", "--events", "200",
                                      "--packs", "1", "--no-mqtt"])
    assert result.exit_code == 0, (result.stdout, result.exception)
    report = json.loads(result.stdout)
    check_report(report, mqtt=False)
    assert report["workload"]["packs"] == 1


def test_bench_hub_cli_refuses_oversized_messages() -> None:
    result = CliRunner().invoke(bpc, ["bench", "hub", "--events-per-message", "251"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "--events-per-message" in result.output and "250" in result.output


@pytest.fixture
async def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningNode]:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    async with bench_node(tmp_path) as running:
        yield running


async def batched_packs(node: RunningNode) -> set[str]:
    async with node.app[STORE].read() as reader:
        return {batch.battery_did for batch in await reader.list_hub_batches(limit=10_000)}


async def assert_all_credentialed(node: RunningNode, batteries: set[str], counted: int) -> None:
    """Every stored event of these packs is in a batch whose root covers it and whose
    credential is in the passport; and there are exactly ``counted`` of them."""
    stored = 0
    async with node.app[STORE].read() as reader:
        for battery in batteries:
            events = await reader.list_hub_events(battery_did=battery, limit=10_000)
            stored += len(events)
            passport = {r.digest: r.credential for r in await reader.passport(battery)
                        if CELL_EVENT_BATCH in r.types}
            by_batch: dict[str, list] = {}
            for event in events:
                assert event.batch_id is not None, event.event_id
                by_batch.setdefault(event.batch_id, []).append(event)
            for batch_id, members in by_batch.items():
                batch = await reader.get_hub_batch(batch_id)
                assert batch is not None and batch.credential_digest in passport
                subject = passport[batch.credential_digest]["credentialSubject"]
                assert subject["merkleRoot"] == batch.merkle_root
                assert subject["treeSize"] == batch.tree_size == len(members)
                leaves = {e.event_id: e.event for e in members}
                tree = MerkleTree([event_digest(leaves[i]) for i in batch.event_ids])
                assert encode_hash(tree.root) == batch.merkle_root
                first = batch.event_ids[0]
                assert verify_event_inclusion(leaves[first], tree.inclusion(0).to_json(),
                                              batch.merkle_root, size=batch.tree_size)
    assert stored == counted


async def test_every_counted_event_is_stored_and_credentialed(node: RunningNode) -> None:
    phase = await events_phase(node, 450, 3, per_message=40)
    batteries = await batched_packs(node)
    assert len(batteries) == 3
    assert phase.events == 450 and phase.messages == 12  # 150 per pack: 40+40+40+30
    assert len(phase.delays_s) == 450 and all(d > 0 for d in phase.delays_s)
    assert phase.batches == phase.credentials >= 3
    await assert_all_credentialed(node, batteries, 450)
    # the bench's own check refuses a count the store does not bear out
    with pytest.raises(RuntimeError, match="450 events are under credentials, 451"):
        await check_credentialed(node.app[STORE], batteries, 451)


async def test_the_readings_run_credentials_what_it_raises(node: RunningNode) -> None:
    phase = await readings_phase(node, 500, 1)
    assert phase.readings == 3 * 192  # whole ticks of every cell
    assert phase.events >= 192  # a summary per cell at least, and the overheating cell
    await assert_all_credentialed(node, await batched_packs(node), phase.events)


async def test_mqtt_run(node: RunningNode, require_service: Callable[..., None]) -> None:
    require_service("mosquitto", BROKER_HOST, BROKER_PORT)
    phase = await mqtt_phase(node, 300, 2, host=BROKER_HOST, port=BROKER_PORT,
                             per_message=50)
    assert not isinstance(phase, str), phase
    assert phase.events == 300 and phase.messages == 6 and phase.elapsed_s > 0
    await assert_all_credentialed(node, await batched_packs(node), 300)


async def test_an_unreachable_broker_is_a_reason_not_an_error(node: RunningNode) -> None:
    port = free_port()  # nothing listens there
    reason = await mqtt_phase(node, 100, 1, host="127.0.0.1", port=port)
    assert isinstance(reason, str) and f"127.0.0.1:{port}" in reason
    async with node.app[STORE].read() as reader:
        assert await reader.list_hub_batches(limit=10) == []
