"""Shipment declarations between real nodes on loopback (no mocks).

Three nodes, each ``create_app`` with its own did:web, keystore and SQLite store: a fleet
operator (the shipper, which also tests the battery), a recycler (the receiving facility) and a
customs authority (issues the facility's permit and verifies as the officer). The shipper and
the facility negotiate a DSP agreement, both attest it, the shipper declares, the officer
verifies online (JSON and the HTML page) and, after every node has stopped (their ports are
closed, so any network access would fail), offline from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector import samples
from connector.app import IDENTITY, create_app
from connector.config import NodeConfig
from connector.participant_auth import sign_request
from connector.serve import RunningNode, running_node
from connector.shipments.rules import classify
from connector.shipments.verify import OfflineCache, check_signatures
from credentials.did_key import key_from_seed
from tests.connector.test_cli import bpc
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, fast_settings, free_port

pytestmark = pytest.mark.slow
KEY = "s" * 32
BEARER = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@contextlib.asynccontextmanager
async def node(root: Path, name: str) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=root / name,
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key=KEY)
    async with running_node(config, create_app(config, dsp_settings=fast_settings())) as up:
        yield up


class Api:
    def __init__(self, session: aiohttp.ClientSession, running: RunningNode) -> None:
        self.session = session
        self.url = f"http://127.0.0.1:{running.port}"
        self.running = running
        self.did = ""

    async def call(self, method: str, path: str, body: Any = None, *,
                   status: int | tuple[int, ...] = (200, 201)) -> Any:
        async with self.session.request(method, self.url + path, json=body,
                                        headers=BEARER) as response:
            answer = await response.json(content_type=None)
            wanted = (status,) if isinstance(status, int) else status
            assert response.status in wanted, f"{method} {path}: {response.status} {answer}"
            return answer

    async def issue(self, unsigned: dict[str, Any]) -> dict[str, Any]:
        answer = await self.call("POST", "/credentials/issue", {
            "credential": {**unsigned, "issuer": self.did},
            "options": {"cryptosuite": "eddsa-jcs-2022"}}, status=201)
        return dict(answer["verifiableCredential"])


async def negotiate(shipper: Api, facility: Api, battery: str) -> str:
    asset = await shipper.call("POST", "/management/assets", {
        "batteryDid": battery, "accessLevel": "performance-health",
        "title": "Battery handed over for treatment", "allowedParticipants": [facility.did],
        "dataSource": {"kind": "inline", "data": {"batteryDid": battery}}}, status=201)
    started = await facility.call("POST", "/management/negotiations", {
        "counterPartyAddress": shipper.url, "offerId": asset["defaultOffer"]["id"]},
        status=201)
    for _ in range(300):
        view = await facility.call("GET", f"/management/negotiations/{started['id']}")
        if view["state"] in ("FINALIZED", "TERMINATED"):
            assert view["state"] == "FINALIZED", view
            return str(view["agreementId"])
        await asyncio.sleep(0.05)
    raise AssertionError("the negotiation did not finish")


async def test_declare_and_verify_online_and_offline(tmp_path: Path) -> None:
    rng = random.Random(3)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        nodes = {name: Api(session, await stack.enter_async_context(node(tmp_path, name)))
                 for name in ("fleet", "recycler", "authority")}
        for api in nodes.values():
            api.did = (await api.call("GET", "/.well-known/did.json"))["id"]
        fleet, recycler, authority = nodes["fleet"], nodes["recycler"], nodes["authority"]

        batteries = []
        for label in ("pack A", "pack B", "pack C"):
            battery = (await fleet.call("POST", "/management/batteries", {"label": label},
                                        status=201))["did"]
            await fleet.call("POST", f"/management/batteries/{battery}/credentials", {
                "credential": samples.manufacturing_credential(battery, fleet.did, rng=rng)},
                status=201)
            batteries.append(battery)
        agreement = await negotiate(fleet, recycler, batteries[0])

        permit = await authority.issue(samples.treatment_facility_authorisation(
            recycler.did, authority.did, operations=["Repair", "Repurposing", "Recycling"],
            rng=rng))
        await recycler.call("POST", "/management/wallet/credentials", permit, status=201)
        tests = [await fleet.issue(samples.functionality_test(b, fleet.did, rng=rng,
                                                              state_of_health_pct=soh))
                 for b, soh in zip(batteries, ("88.5", "79.0", "61.0"), strict=True)]
        for kind, issuer in (("TreatmentFacilityAuthorisationCredential", authority.did),
                             ("FunctionalityTestCredential", fleet.did)):
            await authority.call("POST", "/management/trust/issuers",
                                 {"credentialType": kind, "issuer": issuer})

        declaration = await fleet.call("POST", "/management/shipments", {
            "batteries": batteries, "purpose": "recycling",
            "purposes": {batteries[0]: "repair", batteries[1]: "repurposing"},
            "agreementId": agreement, "consignee": recycler.did, "destinationCountry": "DE",
            "functionalityTests": tests}, status=201)
        assert declaration["holder"] == fleet.did
        issuers = sorted(c["issuer"] for c in declaration["verifiableCredential"]
                         if "ContractAgreementCredential" in c["type"])
        assert issuers == sorted([fleet.did, recycler.did])

        async with session.post(authority.url + "/shipments/verify",
                                json=declaration) as response:
            assert response.status == 200
            verdict = await response.json()
        by_battery = {i["battery"]: i for i in verdict["items"]}
        assert verdict["signatureValid"] is True and verdict["findings"] == []
        assert by_battery[batteries[0]]["classification"] == "product-repair"
        assert by_battery[batteries[1]]["classification"] == "product-repurposing"
        assert by_battery[batteries[2]]["classification"] == "waste"
        assert by_battery[batteries[2]]["rule"] == "declared-recycling"
        assert by_battery[batteries[2]]["missing"] == []
        assert all(c["verified"] for c in verdict["credentials"]), verdict["credentials"]

        form = aiohttp.FormData()
        form.add_field("declaration_file", json.dumps(declaration),
                       filename="declaration.json", content_type="application/json")
        async with session.post(authority.url + "/shipments/verify", data=form) as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        assert "product (repurposing)" in page and "waste (recycling)" in page

        # the officer fills an offline cache while online ...
        async with session.post(authority.url + "/shipments/cache",
                                json={"declarations": [declaration]}) as response:
            assert response.status == 200
            bundle = await response.json()
        cache = OfflineCache(tmp_path / "cache")
        cache.store(bundle, node=authority.url)
        assert set(bundle["didDocuments"]) >= {fleet.did, recycler.did, authority.did}
        assert len(bundle["statusLists"]) >= 2

        # ... and with the CLI, into another directory
        declaration_file = tmp_path / "declaration.json"
        declaration_file.write_text(json.dumps(declaration), "utf-8")
        filled = await asyncio.to_thread(bpc, "shipment", "cache", str(tmp_path / "cli-cache"),
                                         "--node", authority.url, "--declaration",
                                         str(declaration_file))
        assert filled.returncode == 0, filled.stdout + filled.stderr

        # bad input at the open endpoint: problem JSON, never a 500
        async with session.post(authority.url + "/shipments/verify", data=b"{not json",
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert response.content_type == "application/problem+json"
        async with session.post(authority.url + "/shipments/verify",
                                data=b" " * (3 * 1024 * 1024),
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 413
        async with session.get(authority.url + "/shipments/verify") as response:
            assert response.status == 200 and "<form" in await response.text()

        # the attestation endpoint answers the counterparty only
        async with session.get(fleet.url + f"/dsp-ext/agreements/{agreement}/attestation"
                               ) as response:
            assert response.status == 401
        url = fleet.url + f"/dsp-ext/agreements/{agreement}/attestation"
        outsider = key_from_seed(bytes(range(32)))
        token = sign_request(outsider, audience=fleet.did, method="GET", url=url, body=b"")
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 404  # not a party: as if the agreement did not exist
        # the counterparty asking again gets the same credential, not a new one (and no new
        # status-list entry) each time
        key = recycler.running.app[IDENTITY].signing_key
        ids = []
        for _ in range(2):
            token = sign_request(key, audience=fleet.did, method="GET", url=url, body=b"")
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}
                                   ) as response:
                assert response.status == 200
                ids.append((await response.json())["attestation"]["id"])
        assert ids[0] == ids[1]

        # the cache is not revoked yet; the facility's permit is revoked only after the cache
        # was filled, so the offline verdict is as of the cache
        status = permit["credentialStatus"]
        revocation = next(s for s in status if s["statusPurpose"] == "revocation")
        await authority.call("POST", "/management/status/revoke", {
            "statusListCredential": revocation["statusListCredential"],
            "statusListIndex": revocation["statusListIndex"]})
        async with session.post(authority.url + "/shipments/verify",
                                json=declaration) as response:
            revoked = await response.json()
        assert {f["code"] for i in revoked["items"] for f in i["missing"]} >= {
            "facility-revoked"}
        assert all(i["classification"] == "waste" for i in revoked["items"])

    # every node has stopped: their ports are closed, the DIDs cannot be fetched any more
    now = datetime.now(UTC)
    checks = await check_signatures(declaration, cache.verifier(now), now)
    offline = classify(declaration, checks, cache.trust(), now)
    assert offline.signature_valid
    assert [i.classification for i in offline.items] == [
        "product-repair", "product-repurposing", "waste"]
    run = await asyncio.to_thread(bpc, "shipment", "verify", str(declaration_file),
                                  "--offline-cache", str(tmp_path / "cli-cache"), "--json",
                                  "--node", authority.url)
    assert run.returncode == 1, run.stdout + run.stderr  # one battery is waste
    verdict = json.loads(run.stdout)
    assert verdict["sources"]["mode"] == "offline"
    assert [i["classification"] for i in verdict["items"]] == [
        "product-repair", "product-repurposing", "waste"]
    # the same without a cache needs the node, whose port is closed now
    run = await asyncio.to_thread(bpc, "shipment", "verify", str(declaration_file),
                                  "--node", authority.url)
    assert run.returncode == 2 and "cannot reach the node" in run.stderr
