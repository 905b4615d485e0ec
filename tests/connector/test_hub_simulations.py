"""Simulated packs started over the management API (``connector/plugins/hub/simulations.py``):
a node whose hub plugin has no fixed pack puts a pack it keeps on the simulated bench; its
events reach the passport and can be listed; every refusal is problem JSON and starts nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connector.app import STORE, create_app
from connector.passports import start_sample_passport
from connector.serve import RunningNode, running_node
from connector.store import BatteryRecord
from credentials.did_key import mint_battery_did
from tests.connector.test_hub_plugin import call, config_for, manage, passphrase, until  # noqa: F401


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[RunningNode]:
    config = config_for(tmp_path / "oem", {"source": "simulated", "batch_max_age_s": 0.2,
                                           "tick_s": 0.05})
    async with running_node(config, create_app(config)) as node:
        yield node


async def test_a_pack_put_on_the_bench_streams_into_its_passport(bench: RunningNode) -> None:
    pack, _ = mint_battery_did()
    await start_sample_passport(bench.app, pack, seed=3)
    status, started = await call(bench, "POST", "/management/hub/simulations", {
        "batteryDid": pack, "cells": 16, "paceS": 0.05, "faults": ["overheat:2@1"]})
    assert status == 201, started
    assert started["batteryDid"] == pack and started["cells"] == 16 and started["running"]

    async def thermal_batched() -> Any:
        _, events = await manage(bench, f"/management/hub/events?batteryDid={pack}"
                                        "&kind=thermal-excursion")
        return [e for e in events["items"] if e["batchId"]]

    thermal = await until(thermal_batched)
    assert thermal and thermal[0]["event"]["position"] == 2
    status, proof = await manage(bench, "/management/hub/events/"
                                        f"{thermal[0]['event']['event_id']}/proof")
    assert status == 200 and proof["credential"] is not None
    _, listed = await manage(bench, "/management/hub/simulations")
    assert [s["batteryDid"] for s in listed["items"]] == [pack]

    status, stopped = await call(bench, "DELETE", f"/management/hub/simulations/{pack}", None)
    assert status == 200 and not stopped["running"]
    _, hub = await manage(bench, "/management/hub/status")
    assert hub["openBatches"] == {} and hub["batchesWithoutCredential"] == 0
    _, events = await manage(bench, f"/management/hub/events?batteryDid={pack}")
    assert events["items"] and all(e["batchId"] for e in events["items"])
    assert not [e for e in events["items"] if e["event"]["kind"] == "monitor-lost"]
    status, _ = await call(bench, "DELETE", f"/management/hub/simulations/{pack}", None)
    assert status == 404


async def test_the_bench_refuses_what_it_cannot_stream(bench: RunningNode) -> None:
    kept, _ = mint_battery_did()
    await start_sample_passport(bench.app, kept, seed=4)
    elsewhere, _ = mint_battery_did()
    async with bench.app[STORE].transaction() as tx:  # known, but its passport is not ours
        await tx.put_battery(BatteryRecord(did=elsewhere))
    unknown, _ = mint_battery_did()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"batteryDid": unknown}, 404, "not-found"),
        ({"batteryDid": elsewhere}, 409, "not-custodian"),
        ({"batteryDid": kept, "faults": ["melt:1@2"]}, 400, "invalid-request"),
        ({"batteryDid": kept, "cells": 0}, 400, "invalid-request"),
        ({"batteryDid": "not a did"}, 400, "invalid-request"),
        ({"batteryDid": kept, "speed": 2}, 400, "invalid-request"),
    ]
    for body, expected, slug in cases:
        status, problem = await call(bench, "POST", "/management/hub/simulations", body)
        assert (status, problem["type"].rsplit("#", 1)[-1]) == (expected, slug), body
    _, listed = await manage(bench, "/management/hub/simulations")
    assert listed["items"] == []
    status, _ = await call(bench, "POST", "/management/hub/simulations",
                           {"batteryDid": kept, "paceS": 0.5})
    assert status == 201
    status, problem = await call(bench, "POST", "/management/hub/simulations",
                                 {"batteryDid": kept})
    assert status == 409 and problem["type"].endswith("#already-simulated")
    for query in ("", "?batteryDid=x", f"?batteryDid={kept}&kind=melt"):
        status, problem = await manage(bench, "/management/hub/events" + query)
        assert status == 400, query


async def test_a_pack_with_an_unverified_cell_cannot_leave_the_bench(bench: RunningNode) -> None:
    """Taking the pack off must not lift the tamper lock: 409, the stream goes on; once off,
    its cell registry is gone, so a restart does not register the hub again."""
    pack, _ = mint_battery_did()
    await start_sample_passport(bench.app, pack, seed=6)
    status, started = await call(bench, "POST", "/management/hub/simulations", {
        "batteryDid": pack, "cells": 8, "paceS": 0.05, "faults": ["swap:2@1"]})
    assert status == 201, started

    async def locked() -> Any:
        _, hub = await manage(bench, "/management/hub/status")
        return hub["unverifiedCells"]

    assert await until(locked)
    status, problem = await call(bench, "DELETE", f"/management/hub/simulations/{pack}", None)
    assert status == 409 and problem["type"].endswith("#unverified-cells"), problem
    _, listed = await manage(bench, "/management/hub/simulations")
    assert [s["running"] for s in listed["items"]] == [True]
    status, problem = await call(bench, "DELETE",
                                 f"/management/hub/packs/{started['hubId']}", None)
    assert status == 409

    other, _ = mint_battery_did()
    await start_sample_passport(bench.app, other, seed=7)
    status, started = await call(bench, "POST", "/management/hub/simulations", {
        "batteryDid": other, "cells": 8, "paceS": 0.05})
    assert status == 201
    status, _ = await call(bench, "DELETE", f"/management/hub/simulations/{other}", None)
    assert status == 200
    async with bench.app[STORE].read() as reader:
        assert await reader.list_hub_cells(hub_id=started["hubId"]) == []
        assert await reader.list_hub_cells(battery_did=pack)  # the locked pack keeps its own
