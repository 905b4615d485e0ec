"""The hub plugin in a real node: enabled in the config with the simulated hub, it streams a
pack's events into the passport; the management API shows the status and proves an event;
``bpc hub prove`` checks the proof offline; bad settings stop the node naming the plugin."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from connector.app import STORE, create_app
from connector.cli import app as bpc
from connector.config import NodeConfig
from connector.passports import start_sample_passport
from connector.plugins.manager import PluginError
from connector.serve import RunningNode, running_node
from credentials.data_integrity import JCS
from credentials.did_key import key_from_seed, mint_battery_did
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
        await start_sample_passport(node.app, pack, seed=5)
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
    for bad in ({"source": "simulated", "simulated": {"battery_did": "did:key:z6Mk",
                                                      "faults": ["melt:1@2"]}},
                {"source": "mqtt"}, {"source": "mqtt", "mqtt": {"port": 0}}, {"bogus": 1}):
        config = config_for(tmp_path / "bad", bad)
        with pytest.raises(PluginError, match="plugin 'hub'"):
            async with running_node(config, create_app(config)):
                pass


def technician_credential(issuer_seed: int, technician: str) -> dict[str, Any]:
    from credentials.did_key import key_from_seed
    from credentials.issuer import issue_credential
    from vocab import CREDENTIALS_V2, ROLES_CONTEXT_V1

    key = key_from_seed(bytes([issuer_seed] * 32))
    return issue_credential({
        "@context": [CREDENTIALS_V2, ROLES_CONTEXT_V1], "issuer": key.controller,
        "type": ["VerifiableCredential", "ServiceTechnicianCredential"],
        "credentialSubject": {"id": technician, "qualification": "HV battery technician"}},
        key, suite=JCS)


async def call(node: RunningNode, method: str, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, node.url + path, json=body,
            headers={"Authorization": f"Bearer {KEY}"}) as response:
        return response.status, await response.json(content_type=None)


async def test_a_swapped_cell_locks_cell_data_until_an_authorised_replacement(
        streaming: tuple[RunningNode, str]) -> None:
    from connector.plugins.hub.routes import BRIDGE
    from connector.plugins.manager import access_restriction

    node, pack = streaming
    recycler = "did:web:recycler.example"
    status, asset = await call(node, "POST", "/management/assets", {
        "batteryDid": pack, "accessLevel": "performance-health", "title": "Cell health",
        "allowedParticipants": [recycler], "dataSource": {"kind": "inline", "data": {}}})
    assert status == 201, asset

    async def locked() -> Any:
        return access_restriction(node.app, pack, "performance-health")

    reason = await until(locked)
    assert reason and "unverified" in reason and "position 7" in reason
    assert access_restriction(node.app, pack, "dismantling-safety") is None
    status, explained = await manage(
        node, f"/management/catalog/explain?dataset={asset['id']}&participant={recycler}")
    assert status == 200 and explained["visible"] is False
    assert explained["offers"][0]["failedConstraint"] == "restricted"

    view = await node.app[BRIDGE].status()
    (cell,) = view["unverifiedCells"]
    hub_id = view["hubs"][0]["hub"]
    new_cell = "did:key:z6MkgAnvkP45uNxwCKeNdt6wrYkEjpYX4f7Nrd8MQqFL8Fbn"
    request = {"hubId": hub_id, "position": 7, "newCellUid": cell["observedCellUid"],
               "newCellDid": new_cell,
               "technicianCredential": technician_credential(61, "did:web:tech.example")}
    # nobody trusts the technician's issuer yet
    status, refused = await call(node, "POST", "/management/hub/cells/replace", request)
    assert (status, refused["type"].rsplit("#", 1)[-1]) == (422, "untrusted-issuer")
    # a wrong cell, a forged credential, an unknown position
    bad_uid = {**request, "newCellUid": "SOMEONE-ELSE"}
    assert (await call(node, "POST", "/management/hub/cells/replace", bad_uid))[0] == 400
    forged = {**request, "technicianCredential": {
        **request["technicianCredential"], "credentialSubject": {"id": "did:web:evil.example",
                                                                  "qualification": "x"}}}
    assert (await call(node, "POST", "/management/hub/cells/replace", forged))[0] == 422
    assert (await call(node, "POST", "/management/hub/cells/replace",
                       {**request, "position": 99}))[0] == 404
    assert await locked()  # nothing changed

    issuer = request["technicianCredential"]["issuer"]
    status, _ = await call(node, "POST", "/management/trust/issuers", {
        "credentialType": "ServiceTechnicianCredential", "issuer": issuer})
    assert status == 201
    status, replaced = await call(node, "POST", "/management/hub/cells/replace", request)
    assert status == 201, replaced
    subject = replaced["credential"]["credentialSubject"]
    assert subject["newCellDid"] == new_cell and subject["technician"] == "did:web:tech.example"
    assert access_restriction(node.app, pack, "performance-health") is None
    status, again = await call(node, "POST", "/management/hub/cells/replace", request)
    assert (status, again["type"].rsplit("#", 1)[-1]) == (409, "not-unverified")
    async with node.app[STORE].read() as reader:
        passport = await reader.passport(pack)
    assert any("CellReplacementCredential" in r.types for r in passport)
    # The bridge signs these without running SHACL (``shapes_tested``, see
    # credentials/passport/issuing.py): this run keeps that honest (its batch credentials:
    # test_hub_bridge.py).
    from credentials.passport.shapes import validate_shapes

    for kind in ("CellConfigurationCredential", "CellReplacementCredential"):
        made = [r.credential for r in passport if kind in r.types]
        assert made, f"the flow made no {kind}"
        for credential in made:
            assert isinstance(credential, dict) and validate_shapes(credential) == [], kind


async def test_registering_a_pack_checks_its_cells_and_changes_nothing_when_refused(
        streaming: tuple[RunningNode, str]) -> None:
    node, pack = streaming
    hub = key_from_seed(bytes([77] * 32)).controller
    monitor = key_from_seed(bytes([78] * 32)).controller
    cell = {"position": 0, "cellUid": "CELL-0", "monitorDid": monitor}
    before = len((await manage(node, "/management/hub/status"))[1]["hubs"])
    for body, status in (
            ({"hubId": hub, "batteryDid": pack, "cells": [cell, cell]}, 400),  # a position twice
            ({"hubId": "did:web:hub.example", "batteryDid": pack, "cells": [cell]}, 400),
            ({"hubId": hub, "batteryDid": pack, "cells": []}, 400),
            ({"hubId": hub, "batteryDid": pack, "cells": [{**cell, "monitorDid": "x"}]}, 400),
            ({"hubId": hub, "batteryDid": pack, "cells": [cell], "extra": 1}, 400)):
        answer, problem = await call(node, "POST", "/management/hub/packs", body)
        assert answer == status, problem
        assert problem["type"]
    assert len((await manage(node, "/management/hub/status"))[1]["hubs"]) == before
    async with aiohttp.ClientSession() as session, session.post(
            node.url + "/management/hub/packs", json={}) as response:
        assert response.status == 401
    answer, registered = await call(node, "POST", "/management/hub/packs",
                                    {"hubId": hub, "batteryDid": pack, "cells": [cell]})
    assert answer == 201 and registered["cells"] == 1
    hubs = (await manage(node, "/management/hub/status"))[1]["hubs"]
    assert {"hub": hub, "battery": pack} in hubs
