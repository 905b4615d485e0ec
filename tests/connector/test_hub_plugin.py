"""The hub plugin in a real node: enabled in the config with the simulated hub, it streams a
pack's events into the passport; the management API shows the status and proves an event;
``bpc hub prove`` checks the proof offline; bad settings stop the node naming the plugin."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from connector.app import IDENTITY, STORE, create_app
from connector.cli import app as bpc
from connector.config import NodeConfig
from connector.passports import PASSPORT_BOOK
from connector.plugins.manager import PluginError
from connector.samples import manufacturing_credential
from connector.serve import RunningNode, running_node
from connector.store import BatteryRecord
from credentials.data_integrity import JCS
from credentials.did_key import mint_battery_did
from credentials.passport.issuing import issue_passport_credential
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, free_port

KEY = "k" * 32


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


def config_for(data_dir: Path, hub: dict[str, Any]) -> NodeConfig:
    port = free_port()
    return NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                      keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                      operator_api_key=KEY, plugins={"hub": {"enabled": True, **hub}})


@pytest.fixture
async def streaming(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, str]]:
    pack, _ = mint_battery_did()
    config = config_for(tmp_path / "oem", {
        "source": "simulated", "summary_period_s": 1.0, "batch_max_age_s": 0.2,
        "tick_s": 0.05,
        "simulated": {"battery_did": pack, "cells": 24, "pace_s": 0.05,
                      "faults": ["overheat:3@0", "swap:7@4"]}})
    async with running_node(config, create_app(config)) as node:
        # the node becomes the pack's custodian after the stream started: batches that
        # closed before wait and are credentialed on a retry
        key = node.app[IDENTITY].signing_key
        async with node.app[STORE].transaction() as tx:
            await tx.put_battery(BatteryRecord(did=pack, key_id="key-1"))
        await node.app[PASSPORT_BOOK].append(pack, lambda previous: issue_passport_credential(
            manufacturing_credential(pack, key.controller, rng=random.Random(5),
                                     previous=previous), key, suite=JCS))
        yield node, pack


async def manage(node: RunningNode, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(
            node.url + path, headers={"Authorization": f"Bearer {KEY}"}) as response:
        return response.status, await response.json(content_type=None)


async def until(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_the_simulated_pack_streams_into_the_passport(
        streaming: tuple[RunningNode, str]) -> None:
    node, pack = streaming

    async def thermal_batched() -> Any:
        async with node.app[STORE].read() as reader:
            events = await reader.list_hub_events(battery_did=pack, limit=10_000)
            passport = await reader.passport(pack)
        thermal = [e for e in events if e.kind == "thermal-excursion" and e.batch_id]
        batches = [r for r in passport if "CellEventBatchCredential" in r.types]
        markers = [r for r in passport if "CellConfigurationCredential" in r.types]
        return (thermal, batches, markers) if thermal and batches and markers else None

    found = await until(thermal_batched)
    assert found, "no thermal event reached a batch credential"
    thermal, _, markers = found
    assert markers[0].credential["credentialSubject"]["position"] == 7

    status, view = await manage(node, "/management/hub/status")
    assert status == 200
    assert view["stats"]["rejected"] == {} and view["stats"]["credentials"] >= 1
    assert [c["position"] for c in view["unverifiedCells"]] == [7]

    async def proven() -> Any:
        status, bundle = await manage(node, f"/management/hub/events/{thermal[0].event_id}"
                                            "/proof")
        return bundle if status == 200 and bundle.get("credential") else None

    bundle = await until(proven)
    assert bundle and bundle["event"]["kind"] == "thermal-excursion"
    status, missing = await manage(node, "/management/hub/events/urn:uuid:nope/proof")
    assert status == 404 and missing["type"].endswith("not-found")

    runner = CliRunner()
    args = ["--node", node.url, "--api-key", KEY]
    result = await asyncio.to_thread(runner.invoke, bpc, ["hub", "prove", thermal[0].event_id,
                                                          *args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verified"] is True


def test_a_saved_bundle_that_was_tampered_with_is_not_proven(tmp_path: Path) -> None:
    bundle = {"event": {"kind": "thermal-excursion"}, "proof": {"leafIndex": 0, "treeSize": 1,
              "inclusionPath": []},
              "credential": {"credentialSubject": {"merkleRoot": "A" * 43, "treeSize": 1}}}
    saved = tmp_path / "bundle.json"
    saved.write_text(json.dumps(bundle))
    result = CliRunner().invoke(bpc, ["hub", "verify", str(saved)])
    assert result.exit_code == 1 and "not proven" in result.output
    saved.write_text("[1]")
    assert CliRunner().invoke(bpc, ["hub", "verify", str(saved)]).exit_code == 2


async def test_bad_settings_stop_the_node_naming_the_plugin(tmp_path: Path) -> None:
    for bad in ({"source": "simulated"},
                {"source": "simulated", "simulated": {"battery_did": "did:key:z6Mk",
                                                      "faults": ["melt:1@2"]}},
                {"source": "mqtt"}, {"bogus": 1}):
        config = config_for(tmp_path / "bad", bad)
        with pytest.raises(PluginError, match="plugin 'hub'"):
            async with running_node(config, create_app(config)):
                pass
