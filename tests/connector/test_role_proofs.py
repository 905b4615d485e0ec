"""Role proofs end to end: four real nodes on loopback (certifier, OEM, recycler, stranger).

The certifier issues the recycler a DismantlerCredential and a DataExchangeGovernance
credential (with status entries); the recycler keeps them in its wallet; the OEM trusts the
certifier for both types and publishes dismantling data under the default Catena-X policy. The
recycler's requests carry an access token to its credential service, so the OEM fetches,
verifies and caches its presentation; the stranger holds nothing (or a self-issued
certificate) and is refused with the reason. Revoking the certificate ends the running
agreement (policy monitor) and fails new negotiations.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from connector.app import IDENTITY, STORE, create_app
from connector.config import NodeConfig
from connector.dcp.context import ROLE_PROOFS
from connector.demo_dataspace import Operator, ShiftedClock
from connector.serve import RunningNode, running_node
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, fast_settings, free_port
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2, ROLES_CONTEXT_V1

KEY = "test-operator-key-0123456789abcdef"
BATTERY = "did:web:oem.example:battery:wbx-2031-0001"
DISMANTLING = {"dismantlingSteps": ["remove lid", "disconnect HV"], "tools": ["gloves"]}


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@contextlib.asynccontextmanager
async def node(data_dir: Path, clock: ShiftedClock) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key=KEY, watch_interval_s=0.2, status_max_age_s=0)
    async with running_node(config, create_app(config,
                                               dsp_settings=fast_settings(clock=clock))) as up:
        yield up


@dataclass
class Dataspace:
    certifier: Operator
    oem: Operator
    recycler: Operator
    stranger: Operator
    clock: ShiftedClock
    offer_id: str
    asset_id: str

    def did(self, who: Operator) -> str:
        return who.node.app[IDENTITY].did


def role_credential(kind: str, subject: dict[str, Any]) -> dict[str, Any]:
    """DismantlerCredential is PASSPORT.md's (battery context); the data-exchange governance
    credential comes from the Catena-X role terms (roles context)."""
    context = BATTERY_CONTEXT_V1 if kind == "DismantlerCredential" else ROLES_CONTEXT_V1
    return {"@context": [CREDENTIALS_V2, context],
            "type": ["VerifiableCredential", kind], "credentialSubject": subject}


async def issue(by: Operator, credential: dict[str, Any]) -> dict[str, Any]:
    status, body = await by.call("POST", "/credentials/issue", {
        "credential": {**credential, "issuer": by.node.app[IDENTITY].did}})
    assert status == 201, json.dumps(body)
    return dict(body["verifiableCredential"])


async def certify(ds: Dataspace, holder: Operator, *, by: Operator,
                  valid_for: timedelta | None = None) -> dict[str, Any]:
    """Issue the holder both role credentials and put them into its wallet; the dismantler
    certificate is returned (to revoke it later). ``valid_for``: the certificate expires."""
    did = ds.did(holder)
    limit = ({"validUntil": (ds.clock() + valid_for).isoformat().replace("+00:00", "Z")}
             if valid_for else {})
    dismantler = await issue(by, {**limit, **role_credential("DismantlerCredential", {
        "id": did, "type": "Participant", "holderIdentifier": "BPNL000000000REC",
        "activityType": ["vehicleDismantle"],
        "allowedVehicleBrands": ["Volta"]})})
    governance = await issue(by, role_credential("DataExchangeGovernanceCredential", {
        "id": did, "holderIdentifier": "BPNL000000000REC", "group": "UseCaseFramework",
        "useCase": "DataExchangeGovernance", "contractVersion": "1.0",
        "contractTemplate": "https://catena-x.net/en/catena-x-introduce-implement/governance"}))
    for credential in (dismantler, governance):
        status, body = await holder.call("POST", "/management/wallet/credentials", credential)
        assert status == 201, body
    return dismantler


@pytest.fixture
async def ds(tmp_path: Path) -> AsyncIterator[Dataspace]:
    clock = ShiftedClock()
    async with (
        node(tmp_path / "certifier", clock) as certifier,
        node(tmp_path / "oem", clock) as oem,
        node(tmp_path / "recycler", clock) as recycler,
        node(tmp_path / "stranger", clock) as stranger,
        aiohttp.ClientSession() as session,
    ):
        ops = [Operator(session, n, KEY) for n in (certifier, oem, recycler, stranger)]
        certifier_did = certifier.app[IDENTITY].did
        for kind in ("DismantlerCredential", "DataExchangeGovernanceCredential"):
            status, body = await ops[1].call("POST", "/management/trust/issuers", {
                "credentialType": kind, "issuer": certifier_did})
            assert status == 201, body
        status, asset = await ops[1].call("POST", "/management/assets", {
            "batteryDid": BATTERY, "accessLevel": "dismantling-safety", "title": "Dismantling",
            "dataSource": {"kind": "inline", "data": DISMANTLING}})
        assert status == 201, asset
        yield Dataspace(*ops, clock, asset["defaultOffer"]["id"], asset["id"])


async def catalog_of(ds: Dataspace, who: Operator) -> list[dict[str, Any]]:
    status, catalog = await who.call("POST", "/management/catalog/request",
                                     {"counterPartyAddress": ds.oem.node.url})
    assert status == 200, catalog
    return list(catalog.get("dataset", []))


async def negotiate(ds: Dataspace, who: Operator) -> dict[str, Any]:
    """Request the published offer as it is (inline: a refused participant does not see it in
    the catalog, but may know it from elsewhere)."""
    async with ds.oem.node.app[STORE].read() as reader:
        record = await reader.get_offer(ds.offer_id)
    assert record is not None
    offer = {k: v for k, v in record.offer.items() if k != "@context"}
    status, started = await who.call("POST", "/management/negotiations", {
        "counterPartyAddress": ds.oem.node.url, "offer": {**offer, "target": ds.asset_id}})
    assert status == 201, started
    return await who.until(f"/management/negotiations/{started['id']}",
                           {"FINALIZED", "TERMINATED"})


async def test_a_certified_recycler_sees_negotiates_and_fetches_with_one_presentation(
        ds: Dataspace) -> None:
    await certify(ds, ds.recycler, by=ds.certifier)
    assert [d["@id"] for d in await catalog_of(ds, ds.recycler)] == [ds.asset_id]
    negotiation = await negotiate(ds, ds.recycler)
    assert negotiation["state"] == "FINALIZED", negotiation
    # The catalog and the negotiation asked for the same credential types: one query in all.
    assert ds.oem.node.app[ROLE_PROOFS].queries == 1

    agreement_id = negotiation["agreementId"]
    async with ds.oem.node.app[STORE].read() as reader:
        evidence = await reader.get_agreement_evidence(agreement_id)
        audit = await reader.list_audit(limit=1000)
    assert evidence is not None and evidence.consumer_did == ds.did(ds.recycler)
    kept = evidence.evidence["credentials"]
    assert sorted(t for entry in kept for t in entry["types"]) == [
        "DataExchangeGovernanceCredential", "DismantlerCredential"]
    assert all(entry["digest"].startswith("sha256:") and entry["credentialStatus"]
               for entry in kept)
    decisions = [e for e in audit if e.action == "negotiation.decided"]
    assert len(decisions) == 1 and decisions[0].details["allowed"] is True
    assert [c["digest"] for c in decisions[0].details["evidence"]] == [c["digest"] for c in kept]

    status, transfer = await ds.recycler.call("POST", "/management/transfers", {
        "agreementId": agreement_id, "counterPartyAddress": ds.oem.node.url})
    assert status == 201, transfer
    transfer = await ds.recycler.until(f"/management/transfers/{transfer['id']}",
                                       {"STARTED", "TERMINATED"})
    status, data = await ds.recycler.call("GET", f"/management/transfers/{transfer['id']}/data")
    assert status == 200 and data["data"] == DISMANTLING


async def test_a_participant_without_the_credential_is_refused_with_the_reason(
        ds: Dataspace) -> None:
    assert await catalog_of(ds, ds.stranger) == []
    negotiation = await negotiate(ds, ds.stranger)
    assert negotiation["state"] == "TERMINATED"
    reason = str(negotiation.get("reason"))
    assert "DismantlerCredential" in reason
    query = urlencode({"dataset": ds.asset_id, "participant": ds.did(ds.stranger)})
    status, explained = await ds.oem.call("GET", f"/management/catalog/explain?{query}")
    assert status == 200 and explained["visible"] is False
    assert "DismantlerCredential" in str(explained["offers"])
    assert explained["participant"] == ds.did(ds.stranger)
    assert explained["roleProof"]["source"] == "cached presentation"
    async with ds.oem.node.app[STORE].read() as reader:
        audit = await reader.list_audit(limit=1000)
    denied = [e for e in audit if e.action == "negotiation.decided"]
    assert len(denied) == 1 and denied[0].details["allowed"] is False
    assert "DismantlerCredential" in denied[0].details["reason"]


async def test_credentials_from_an_untrusted_issuer_do_not_count(ds: Dataspace) -> None:
    # The stranger certifies itself: signatures and status are fine, the issuer is not trusted.
    await certify(ds, ds.stranger, by=ds.stranger)
    assert await catalog_of(ds, ds.stranger) == []
    negotiation = await negotiate(ds, ds.stranger)
    assert negotiation["state"] == "TERMINATED"
    assert "not trusted" in str(negotiation.get("reason"))


async def test_revoking_the_certificate_ends_the_agreement_and_new_negotiations_fail(
        ds: Dataspace) -> None:
    certificate = await certify(ds, ds.recycler, by=ds.certifier)
    negotiation = await negotiate(ds, ds.recycler)
    assert negotiation["state"] == "FINALIZED", negotiation
    status, transfer = await ds.recycler.call("POST", "/management/transfers", {
        "agreementId": negotiation["agreementId"], "counterPartyAddress": ds.oem.node.url})
    assert status == 201, transfer
    path = f"/management/transfers/{transfer['id']}"
    assert (await ds.recycler.until(path, {"STARTED", "TERMINATED"}))["state"] == "STARTED"

    status, body = await ds.certifier.call("POST", "/management/status/revoke",
                                           {"credential": certificate})
    assert status == 200, body
    ended = await ds.recycler.until(path, {"TERMINATED"})
    assert ended["state"] == "TERMINATED", ended
    assert "revoked" in str(ended.get("reason"))
    async with ds.oem.node.app[STORE].read() as reader:
        termination = await reader.get_agreement_termination(negotiation["agreementId"])
    assert termination is not None and "DismantlerCredential" in termination.reason

    again = await negotiate(ds, ds.recycler)
    assert again["state"] == "TERMINATED"
    assert "revoked" in str(again.get("reason"))


async def test_an_expired_certificate_stops_counting(ds: Dataspace) -> None:
    await certify(ds, ds.recycler, by=ds.certifier, valid_for=timedelta(days=1))
    assert await catalog_of(ds, ds.recycler) != []
    ds.clock.advance(timedelta(days=2))  # the cached proof ends with the certificate
    assert await catalog_of(ds, ds.recycler) == []
    negotiation = await negotiate(ds, ds.recycler)
    assert negotiation["state"] == "TERMINATED"
    assert "DismantlerCredential" in str(negotiation.get("reason"))
