"""The consumer side through the management API, between two REAL nodes on loopback.

A provider node (restricted assets whose default offer names the consumer, an EDR hook that
puts an access and a refresh token in the data address) and a consumer node; the test drives
only the consumer's (and for checks the provider's) management API: catalog, negotiation,
agreements, transfer and its transitions. Every refusal is checked against a snapshot of the
store taken before it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from connector.app import IDENTITY, STORE, create_app
from connector.dsp import messages as m
from connector.dsp.negotiation_service import Decision
from connector.dsp.transfer_service import TransferSettings
from connector.management.assets import AssetCreate, create_asset
from connector.policy_gate import PolicyGate
from connector.serve import RunningNode, running_node
from connector.store import AgreementRecord
from tests.connector.test_dsp_negotiation_http import (  # noqa: F401
    config_for,
    fast_settings,
    free_port,
    passphrase,
    wait_for,
)
from tests.connector.test_node import assert_problem, bearer

KEY = "bpc_op_consumer-tests-operator-key"
BATTERY = "did:key:z6MkBatteryOne"
ASSET = "urn:bpc:asset:dismantling-x1"
HIDDEN_ASSET = "urn:bpc:asset:hidden-x1"
REFUSED_ASSET = "urn:bpc:asset:refused-x1"
ACCESS_TOKEN = "secret-access-token-never-echoed"
REFRESH_TOKEN = "secret-refresh-token-never-echoed"
EDC = "https://w3id.org/edc/v0.0.1/ns/"


def edr_hook(agreement: AgreementRecord, consumer_did: str) -> dict[str, Any]:
    """A pull data address as the data plane issues it: endpoint plus tokens."""
    return {
        "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
        "endpoint": f"http://127.0.0.1:1/data/{agreement.asset_id}",
        "endpointProperties": [
            {"@type": "EndpointProperty", "name": EDC + "authorization", "value": ACCESS_TOKEN},
            {"@type": "EndpointProperty", "name": "https://w3id.org/tractusx/auth/refreshToken",
             "value": REFRESH_TOKEN},
        ],
    }


class RefuseOneAsset:
    """The provider's decision: allow every offer except those for ``REFUSED_ASSET``."""

    async def decide(self, offer: m.MessageOffer, consumer_did: str,
                     **_: object) -> Decision:
        if offer.target == REFUSED_ASSET:
            return Decision(False, failed_constraint="bpc-policy:participantDid",
                            detail="not a certified recycler")
        return Decision(True)


def provider_app(data_dir: Path, port: int) -> web.Application:
    config = config_for(data_dir, port).model_copy(update={"operator_api_key": SecretStr(KEY)})
    settings = fast_settings(allow_loopback_did_key_callbacks=True, policy=RefuseOneAsset())
    return create_app(config, dsp_settings=settings,
                      transfer_settings=TransferSettings(data_address=edr_hook))


def consumer_app(data_dir: Path, port: int) -> web.Application:
    config = config_for(data_dir, port).model_copy(update={"operator_api_key": SecretStr(KEY)})
    return create_app(config, dsp_settings=fast_settings())


async def seed_assets(provider: web.Application, consumer_did: str) -> dict[str, str]:
    """Three restricted assets; their default offers' ids by asset. ``HIDDEN_ASSET`` is only
    for someone else, so the consumer's catalog does not show it."""
    offers: dict[str, str] = {}
    gate = PolicyGate()
    for asset, allowed in ((ASSET, consumer_did), (HIDDEN_ASSET, "did:web:someone.example"),
                           (REFUSED_ASSET, consumer_did)):
        body = AssetCreate.model_validate({
            "id": asset, "batteryDid": BATTERY, "accessLevel": "dismantling-safety",
            "title": f"Dismantling data {asset}", "dataSource": {"kind": "inline", "data": {}},
            "allowedParticipants": [allowed]})
        async with provider[STORE].transaction() as tx:
            _, offer = await create_asset(tx, body, gate)
        assert offer is not None
        offers[asset] = offer.id
    return offers


@contextlib.asynccontextmanager
async def started(app: web.Application, data_dir: Path, port: int) -> AsyncIterator[RunningNode]:
    async with running_node(config_for(data_dir, port), app) as running:
        yield running


class Api:
    """One node's management API with the operator key, and its store to snapshot."""

    def __init__(self, node: RunningNode, session: aiohttp.ClientSession) -> None:
        self.node, self.session = node, session

    @property
    def did(self) -> str:
        return self.node.app[IDENTITY].did

    def request(self, method: str, path: str, *, key: str | None = KEY, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers.update(bearer(key))
        return self.session.request(method, self.node.url + path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        async with self.request(method, path, **kwargs) as response:
            text = await response.text()
            assert response.status == status, text
            return json.loads(text) if text else None

    async def problem(self, method: str, path: str, status: int, slug: str,
                      **kwargs: Any) -> dict[str, Any]:
        async with self.request(method, path, **kwargs) as response:
            return await assert_problem(response, status, slug)

    async def snapshot(self) -> list[Any]:
        async with self.node.app[STORE].read() as r:
            return [[(n.id, n.state, n.version) for n in await r.list_negotiations(limit=500)],
                    [a.id for a in await r.list_agreements(limit=500)],
                    [(t.id, t.state, t.version) for t in await r.list_transfers(limit=500)],
                    [o.id for o in await r.list_outbox(limit=500)],
                    [e.seq for e in await r.list_audit(limit=10_000)]]

    async def wait_state(self, kind: str, pid: str, state: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def reached() -> bool:
            seen.update(await self.ok("GET", f"/management/{kind}/{pid}"))
            return seen["state"] == state

        try:
            await wait_for(reached)
        except AssertionError:
            raise AssertionError(f"{kind} {pid} is {seen.get('state')}, not {state}") from None
        return seen


@dataclass
class Nodes:
    provider: Api
    consumer: Api
    offers: dict[str, str]

    @property
    def address(self) -> str:
        return self.provider.node.url


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    provider_port, consumer_port = free_port(), free_port()
    async with (
        started(provider_app(tmp_path / "p", provider_port), tmp_path / "p",
                provider_port) as provider,
        started(consumer_app(tmp_path / "c", consumer_port), tmp_path / "c",
                consumer_port) as consumer,
        aiohttp.ClientSession() as session,
    ):
        offers = await seed_assets(provider.app, consumer.app[IDENTITY].did)
        yield Nodes(Api(provider, session), Api(consumer, session), offers)


async def negotiate(nodes: Nodes, asset: str = ASSET) -> dict[str, Any]:
    """Negotiate through the consumer's API by offer id; the FINALIZED view."""
    body = {"counterPartyAddress": nodes.address, "offerId": nodes.offers[asset]}
    async with nodes.consumer.request("POST", "/management/negotiations", json=body) as answer:
        text = await answer.text()
        assert answer.status == 201, text
        created = json.loads(text)
        assert answer.headers["Location"] == f"/management/negotiations/{created['id']}"
    assert created["role"] == "consumer" and created["offerId"] == nodes.offers[asset]
    assert created["assetId"] == asset and created["counterPartyId"] == nodes.provider.did
    assert created["counterPartyAddress"] == nodes.address
    return await nodes.consumer.wait_state("negotiations", created["id"], "FINALIZED")


async def start_transfer(nodes: Nodes, agreement: str) -> dict[str, Any]:
    async with nodes.consumer.request("POST", "/management/transfers",
                                      json={"agreementId": agreement}) as answer:
        text = await answer.text()
        assert answer.status == 201, text
        created = json.loads(text)
        assert answer.headers["Location"] == f"/management/transfers/{created['id']}"
    assert created["role"] == "consumer" and created["agreementId"] == agreement
    assert created["counterPartyAddress"] == nodes.address and created["format"] == "HttpData-PULL"
    return await nodes.consumer.wait_state("transfers", created["id"], "STARTED")


# --- the happy path ----------------------------------------------------------------------------


async def test_catalog_negotiation_agreements_and_transfer_lifecycle(nodes: Nodes) -> None:
    consumer, provider = nodes.consumer, nodes.provider
    catalog = await consumer.ok("POST", "/management/catalog/request",
                                json={"counterPartyAddress": nodes.address})
    assert catalog["@type"] == "Catalog" and catalog["participantId"] == provider.did
    shown = {d["@id"]: [o["@id"] for o in d["hasPolicy"]] for d in catalog["dataset"]}
    assert shown == {ASSET: [nodes.offers[ASSET]], REFUSED_ASSET: [nodes.offers[REFUSED_ASSET]]}

    negotiation = await negotiate(nodes)
    assert negotiation["agreementId"] and negotiation["reason"] is None
    assert negotiation["counterPartyPid"]
    agreement_id = negotiation["agreementId"]
    mine = await consumer.ok("GET", "/management/negotiations?role=consumer&state=finalized")
    assert [n["id"] for n in mine["items"]] == [negotiation["id"]] and mine["next"] is None
    assert (await consumer.ok("GET", "/management/negotiations?role=provider"))["items"] == []
    theirs = await provider.ok("GET", "/management/negotiations?role=provider")
    assert [(n["id"], n["state"], n["counterPartyId"]) for n in theirs["items"]] == [
        (negotiation["counterPartyPid"], "FINALIZED", consumer.did)]

    for api, role in ((consumer, "consumer"), (provider, "provider")):
        listed = await api.ok("GET", f"/management/agreements?role={role}")
        assert [a["id"] for a in listed["items"]] == [agreement_id]
        other = "provider" if role == "consumer" else "consumer"
        assert (await api.ok("GET", f"/management/agreements?role={other}"))["items"] == []
        agreement = await api.ok("GET", f"/management/agreements/{agreement_id}")
        assert agreement["role"] == role and agreement["assetId"] == ASSET
        assert agreement["providerId"] == provider.did
        assert agreement["consumerId"] == consumer.did
        assert agreement["policy"]["@type"] == "Agreement"
        assert agreement["policy"]["assignee"] == consumer.did
        assert agreement["signedAt"].endswith("Z")
    provider_side = await provider.ok("GET", f"/management/agreements/{agreement_id}")
    assert provider_side["negotiationId"] == negotiation["counterPartyPid"]

    # Transfer: STARTED with the provider's data address, tokens never shown.
    transfer = await start_transfer(nodes, agreement_id)
    pid, ppid = transfer["id"], transfer["counterPartyPid"]
    assert transfer["dataAddress"] == {
        "endpoint": f"http://127.0.0.1:1/data/{ASSET}",
        "endpointType": "https://w3id.org/idsa/v4.1/HTTP", "hasToken": True}
    async with consumer.request("GET", f"/management/transfers?agreementId={agreement_id}") as r:
        text = await r.text()
    assert ACCESS_TOKEN not in text and REFRESH_TOKEN not in text and pid in text
    assert (await provider.ok("GET", f"/management/transfers/{ppid}"))["role"] == "provider"

    suspended = await consumer.ok("POST", f"/management/transfers/{pid}/suspend",
                                  json={"reason": "maintenance window"})
    assert suspended["state"] == "SUSPENDED"
    assert suspended["reason"] == {"kind": "internal", "failedConstraint": None,
                                   "detail": "maintenance window"}
    await provider.wait_state("transfers", ppid, "SUSPENDED")
    resumed = await consumer.ok("POST", f"/management/transfers/{pid}/resume")
    assert resumed["state"] == "STARTED" and resumed["reason"] is None
    assert resumed["dataAddress"]["hasToken"] is True
    await provider.wait_state("transfers", ppid, "STARTED")
    completed = await consumer.ok("POST", f"/management/transfers/{pid}/complete", json={})
    assert completed["state"] == "COMPLETED"
    await provider.wait_state("transfers", ppid, "COMPLETED")

    # Nothing follows COMPLETED: 409, and nothing is written.
    before = await consumer.snapshot()
    for action in ("complete", "resume", "suspend", "terminate"):
        problem = await consumer.problem("POST", f"/management/transfers/{pid}/{action}", 409,
                                         "illegal-transition")
        assert problem["state"] == "COMPLETED" and action in problem["detail"]
    assert await consumer.snapshot() == before

    # A second transfer under the same agreement, terminated by the consumer.
    second = await start_transfer(nodes, agreement_id)
    ended = await consumer.ok("POST", f"/management/transfers/{second['id']}/terminate",
                              json={"reason": "done early"})
    assert ended["state"] == "TERMINATED" and ended["reason"]["detail"] == "done early"
    theirs_ended = await provider.wait_state("transfers", second["counterPartyPid"],
                                             "TERMINATED")
    assert theirs_ended["reason"]["kind"] == "internal"
    assert theirs_ended["reason"]["detail"] == "done early"
    states = await consumer.ok("GET", "/management/transfers?role=consumer")
    assert sorted(t["state"] for t in states["items"]) == ["COMPLETED", "TERMINATED"]
    only = await consumer.ok("GET", "/management/transfers?state=terminated")
    assert [t["id"] for t in only["items"]] == [second["id"]]


async def test_refused_negotiation_is_terminated_with_a_typed_reason(nodes: Nodes) -> None:
    body = {"counterPartyAddress": nodes.address, "offerId": nodes.offers[REFUSED_ASSET]}
    created = await nodes.consumer.ok("POST", "/management/negotiations", 201, json=body)
    ended = await nodes.consumer.wait_state("negotiations", created["id"], "TERMINATED")
    assert ended["reason"] == {"kind": "policy", "failedConstraint": "bpc-policy:participantDid",
                               "detail": "not a certified recycler"}
    assert ended["agreementId"] is None


async def test_inline_offer_terminate_and_paging(nodes: Nodes) -> None:
    """An inline offer needs no catalog; a provider that never answers leaves the negotiation
    REQUESTED, which the operator can terminate (once)."""
    dead = f"http://127.0.0.1:{free_port()}"
    offer = {"@id": "urn:offer:inline", "@type": "Offer", "target": ASSET,
             "permission": [{"action": "use"}]}
    pids = []
    for _ in range(2):
        created = await nodes.consumer.ok("POST", "/management/negotiations", 201, json={
            "counterPartyAddress": dead, "counterPartyId": nodes.provider.did, "offer": offer})
        assert created["state"] == "REQUESTED" and created["offerId"] == "urn:offer:inline"
        assert created["counterPartyPid"] is None
        pids.append(created["id"])

    first = await nodes.consumer.ok("GET", "/management/negotiations?limit=1")
    assert [n["id"] for n in first["items"]] == [min(pids)] and first["next"] == min(pids)
    rest = await nodes.consumer.ok("GET", f"/management/negotiations?limit=1&after={min(pids)}")
    assert [n["id"] for n in rest["items"]] == [max(pids)]

    ended = await nodes.consumer.ok("POST", f"/management/negotiations/{pids[0]}/terminate",
                                    json={"reason": "changed my mind"})
    assert ended["state"] == "TERMINATED"
    assert ended["reason"] == {"kind": "internal", "failedConstraint": None,
                               "detail": "changed my mind"}
    other = await nodes.consumer.ok("POST", f"/management/negotiations/{pids[1]}/terminate")
    assert other["reason"]["detail"] == "terminated by the operator"

    before = await nodes.consumer.snapshot()
    problem = await nodes.consumer.problem("POST", f"/management/negotiations/{pids[0]}/terminate",
                                           409, "already-terminal")
    assert problem["state"] == "TERMINATED"
    assert await nodes.consumer.snapshot() == before


# --- refusals ----------------------------------------------------------------------------------


ROUTES = [
    ("POST", "/management/catalog/request"), ("POST", "/management/negotiations"),
    ("GET", "/management/negotiations"), ("GET", "/management/negotiations/x"),
    ("POST", "/management/negotiations/x/terminate"), ("GET", "/management/agreements"),
    ("GET", "/management/agreements/x"), ("POST", "/management/transfers"),
    ("GET", "/management/transfers"), ("GET", "/management/transfers/x"),
    ("POST", "/management/transfers/x/complete"), ("POST", "/management/transfers/x/suspend"),
    ("POST", "/management/transfers/x/resume"), ("POST", "/management/transfers/x/terminate"),
]


async def test_refusals_leave_both_stores_unchanged(nodes: Nodes) -> None:
    negotiation = await negotiate(nodes)
    agreement = negotiation["agreementId"]
    api, address = nodes.consumer, nodes.address
    before, provider_before = await api.snapshot(), await nodes.provider.snapshot()

    for method, path in ROUTES:
        await api.problem(method, path, 401, "unauthorized", key=None, json={})
        await api.problem(method, path, 401, "unauthorized", key="bpc_op_wrong-key-xxxxxxxx",
                          json={})

    async def invalid(path: str, body: Any, field: str, message: str | None = None) -> None:
        problem = await api.problem("POST", path, 400, "invalid-request", json=body)
        fields = {error["field"]: error["message"] for error in problem["errors"]}
        assert field in fields, problem
        if message is not None:
            assert message in fields[field], problem

    await invalid("/management/catalog/request",
                  {"counterPartyAddress": address, "counterPartyAdress": address},
                  "counterPartyAdress", "unknown field")
    await invalid("/management/catalog/request", {"counterPartyAddress": "ftp://x.example/dsp"},
                  "counterPartyAddress", "http or https")
    await invalid("/management/catalog/request", {"counterPartyAddress": address,
                                                  "counterPartyId": "not-a-did"},
                  "counterPartyId")
    await invalid("/management/negotiations", {"counterPartyAddress": "localhost:8181",
                                               "offerId": "x"}, "counterPartyAddress")
    await invalid("/management/negotiations", {"counterPartyAddress": address}, "")
    await invalid("/management/negotiations", {"counterPartyAddress": address, "offerId": "x",
                                               "offer": {"@id": "x", "target": "y"}}, "")
    await invalid("/management/negotiations", {"counterPartyAddress": address, "offer": {
        "@id": "urn:offer:x", "permission": [{"action": "use"}]}}, "offer.target")
    await invalid("/management/transfers", {"agreementId": agreement, "format": "HttpData-PUSH"},
                  "format")
    await invalid("/management/transfers", {"agreementId": agreement, "extra": 1}, "extra",
                  "unknown field")
    await invalid(f"/management/transfers/{negotiation['id']}/complete", {"reason": "x"},
                  "reason", "unknown field")
    await invalid(f"/management/negotiations/{negotiation['id']}/terminate", {"why": "x"},
                  "why", "unknown field")
    await api.problem("POST", "/management/negotiations", 400, "malformed-json",
                      data=b"{not json", headers={"Content-Type": "application/json"})
    for query in ("role=owner", "state=DONE", "limit=0"):
        await api.problem("GET", f"/management/negotiations?{query}", 400, "invalid-query")
    await api.problem("GET", "/management/transfers?state=FINALIZED", 400, "invalid-query")
    await api.problem("GET", "/management/agreements?role=x", 400, "invalid-query")

    # Offers the provider does not list for us: unknown, and hidden by its allow-list.
    for offer_id in ("urn:offer:nope", nodes.offers[HIDDEN_ASSET]):
        problem = await api.problem("POST", "/management/negotiations", 404, "offer-not-found",
                                    json={"counterPartyAddress": address, "offerId": offer_id})
        assert offer_id in problem["detail"] and address in problem["detail"]

    # The provider does not answer; the provider answers with an error.
    dead = f"http://127.0.0.1:{free_port()}"
    for path, extra in (("/management/catalog/request", {}),
                        ("/management/negotiations", {"offerId": "x"})):
        problem = await api.problem("POST", path, 502, "counterparty-unreachable",
                                    json={"counterPartyAddress": dead, **extra})
        assert problem["counterPartyAddress"] == dead
    problem = await api.problem("POST", "/management/catalog/request", 502, "counterparty-error",
                                json={"counterPartyAddress": address,
                                      "counterPartyId": "did:web:someone-else.example"})
    answer = problem["counterPartyAnswer"]  # RFC 9457's own "status" stays ours (502)
    assert answer["status"] == 401 and answer["body"]["code"] == "unauthorized"
    async with api.request("POST", "/management/catalog/request", json={
            "counterPartyAddress": address + "/no-such-base"}) as response:
        body = await response.json()
    assert response.status == 502 and body["type"].endswith("#counterparty-error")
    assert body["counterPartyAnswer"]["status"] == 404

    # Unknown ids, and an agreement in which this node is not the consumer.
    for path in ("/management/negotiations/urn:uuid:nope", "/management/agreements/urn:uuid:x",
                 "/management/transfers/urn:uuid:nope"):
        await api.problem("GET", path, 404, "not-found")
    await api.problem("POST", "/management/negotiations/urn:uuid:nope/terminate", 404,
                      "not-found")
    for action in ("complete", "suspend", "resume", "terminate"):
        await api.problem("POST", f"/management/transfers/urn:uuid:nope/{action}", 404,
                          "not-found")
    await api.problem("POST", "/management/transfers", 404, "not-found",
                      json={"agreementId": "urn:uuid:no-such-agreement"})
    problem = await nodes.provider.problem("POST", "/management/transfers", 404, "not-found",
                                           json={"agreementId": agreement})
    assert "as consumer" in problem["detail"]
    problem = await api.problem("POST", f"/management/negotiations/{negotiation['id']}/terminate",
                                409, "already-terminal")
    assert problem["state"] == "FINALIZED"

    assert await api.snapshot() == before
    assert await nodes.provider.snapshot() == provider_before
