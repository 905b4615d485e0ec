"""The management API on a real node (loopback port): round trips and every refusal.

Every refused request must leave the store exactly as it was: the tests compare a snapshot of
assets, policies, offers and the audit log before and after.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector.app import STORE, create_app
from connector.dsp import routes_catalog
from connector.management import routes
from connector.management.auth import OPERATOR_AUTH
from connector.serve import RunningNode, running_node
from connector.store import BatteryRecord, CredentialRecord
from tests.connector.test_node import assert_problem, bearer, node_config, passphrase  # noqa: F401

BATTERY = "did:key:z6MkBatteryOne"
OTHER_BATTERY = "did:key:z6MkBatteryTwo"
RECYCLER = "did:web:recycler.example"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    config = node_config(tmp_path / "data")
    app = create_app(config)
    routes.add_routes(app)
    routes_catalog.add_routes(app)
    async with running_node(config, app) as running:
        async with running.app[STORE].transaction() as tx:
            await tx.put_battery(BatteryRecord(did=BATTERY, properties={"model": "X1"}))
            await tx.add_credential(CredentialRecord(
                battery_did=BATTERY, position=0, digest="uEiDdigest0", previous_digest=None,
                issuer="did:web:cellmaker.example",
                types=("VerifiableCredential", "ManufacturingCredential"),
                credential={"type": ["VerifiableCredential"],
                            "credentialSubject": {"id": BATTERY}},
            ))
        yield running


@pytest.fixture
async def api(node: RunningNode) -> AsyncIterator[Api]:
    key = node.app[OPERATOR_AUTH].take_generated_key()
    assert key is not None
    async with aiohttp.ClientSession() as session:
        yield Api(node, session, key)


class Api:
    """A tiny client: the node URL, the operator key, and the store to snapshot."""

    def __init__(self, node: RunningNode, session: aiohttp.ClientSession, key: str) -> None:
        self.node, self.session, self.key = node, session, key

    def request(self, method: str, path: str, *, key: str | None = "", **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers.update(bearer(key or self.key))
        return self.session.request(method, self.node.url + path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        async with self.request(method, path, **kwargs) as response:
            text = await response.text()
            assert response.status == status, text
            return json.loads(text) if text else None

    async def snapshot(self) -> tuple[Any, ...]:
        async with self.node.app[STORE].read() as r:
            return (await r.list_assets(), await r.list_policies(), await r.list_offers(),
                    await r.list_audit())


def asset_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batteryDid": BATTERY, "accessLevel": "dismantling-safety",
        "title": "Dismantling & safety data of battery X1",
        "dataSource": {"kind": "passport-credentials"},
    }
    body.update(changes)
    return body


# --- round trips -------------------------------------------------------------------------------


async def test_asset_round_trip_with_default_offer(api: Api) -> None:
    created = await api.ok("POST", "/management/assets", 201,
                           json=asset_body(allowedParticipants=[RECYCLER]))
    assert created["accessLevel"] == "dismantling-safety" and created["public"] is False
    offer = created["defaultOffer"]
    assert offer["assetId"] == created["id"]
    constraint = offer["offer"]["permission"][0]["constraint"][0]["and"]
    assert constraint[0]["rightOperand"] == [RECYCLER]
    assert constraint[1] == {"leftOperand": "odrl:elapsedTime", "operator": "lteq",
                             "rightOperand": "P7D"}

    fetched = await api.ok("GET", f"/management/assets/{created['id']}")
    assert fetched["title"] == created["title"]
    assert fetched["dataSource"] == {"kind": "passport-credentials"}
    listed = await api.ok("GET", "/management/assets")
    assert [a["id"] for a in listed["items"]] == [created["id"]] and listed["next"] is None
    policies = await api.ok("GET", "/management/policies")
    assert [p["id"] for p in policies["items"]] == [offer["policyId"]]
    offers = await api.ok("GET", f"/management/offers?assetId={created['id']}")
    assert [o["id"] for o in offers["items"]] == [offer["id"]]


async def test_public_and_inline_assets(api: Api) -> None:
    public = await api.ok("POST", "/management/assets", 201, json=asset_body(
        id="urn:bpc:asset:public-x1", accessLevel="public", title="General data",
        dataSource={"kind": "inline", "data": {"chemistry": "NMC811", "massKg": 412}},
    ))
    assert public["public"] is True and public["defaultOffer"] is None
    # an unregistered battery is fine for inline data
    inline = await api.ok("POST", "/management/assets", 201, json=asset_body(
        batteryDid=OTHER_BATTERY, dataSource={"kind": "inline", "data": {}},
    ))
    assert inline["batteryDid"] == OTHER_BATTERY
    # without an allow-list, a restricted level is offered to role-credential holders
    constraint = json.dumps(inline["defaultOffer"]["offer"]["permission"])
    assert "Dismantler" in constraint and "cx.circular.dpp:1" in constraint
    assert inline["defaultOffer"]["offer"]["permission"][0]["duty"][0]["action"] == "delete"


async def test_policy_and_offer_round_trip_and_delete_rules(api: Api) -> None:
    asset = await api.ok("POST", "/management/assets", 201,
                         json=asset_body(defaultPolicy="none"))
    policy = await api.ok("POST", "/management/policies", 201, json={
        "id": "urn:bpc:policy:recyclers",
        "policy": {"permission": [{"action": "use", "constraint": [
            {"leftOperand": "odrl:dateTime", "operator": "lteq",
             "rightOperand": "2099-01-01T00:00:00Z"}]}]},
    })
    assert policy["policy"]["@id"] == "urn:bpc:policy:recyclers"
    offer = await api.ok("POST", "/management/offers", 201,
                         json={"assetId": asset["id"], "policyId": policy["id"]})
    assert offer["offer"]["@type"] == "Offer" and offer["offer"]["@id"] == offer["id"]

    before = await api.snapshot()
    async with api.request("DELETE", f"/management/assets/{asset['id']}") as response:
        body = await assert_problem(response, 409, "asset-in-use")
    assert body["offers"] == [offer["id"]]
    assert await api.snapshot() == before

    unused = await api.ok("POST", "/management/assets", 201,
                          json=asset_body(defaultPolicy="none"))
    async with api.request("DELETE", f"/management/assets/{unused['id']}") as response:
        assert response.status == 204
    async with api.request("GET", f"/management/assets/{unused['id']}") as response:
        await assert_problem(response, 404, "not-found")
    listed = await api.ok("GET", "/management/assets")
    assert [a["id"] for a in listed["items"]] == [asset["id"]]


async def test_batteries_and_their_credentials(api: Api) -> None:
    batteries = await api.ok("GET", "/management/batteries")
    assert [b["did"] for b in batteries["items"]] == [BATTERY]
    creds = await api.ok("GET", f"/management/batteries/{BATTERY}/credentials")
    assert creds["items"][0]["digest"] == "uEiDdigest0"
    assert creds["items"][0]["types"] == ["VerifiableCredential", "ManufacturingCredential"]
    async with api.request("GET", f"/management/batteries/{OTHER_BATTERY}/credentials") as r:
        await assert_problem(r, 404, "not-found")


async def test_paging(api: Api) -> None:
    for index in range(3):
        await api.ok("POST", "/management/assets", 201, json=asset_body(id=f"urn:a:{index}"))
    first = await api.ok("GET", "/management/assets?limit=2")
    assert [a["id"] for a in first["items"]] == ["urn:a:0", "urn:a:1"]
    second = await api.ok("GET", f"/management/assets?limit=2&after={first['next']}")
    assert [a["id"] for a in second["items"]] == ["urn:a:2"] and second["next"] is None
    async with api.request("GET", "/management/assets?limit=0") as response:
        await assert_problem(response, 400, "invalid-query")


# --- refusals, each leaving the store unchanged ------------------------------------------------

ROUTES = [
    ("POST", "/management/assets"), ("GET", "/management/assets"),
    ("GET", "/management/assets/x"), ("DELETE", "/management/assets/x"),
    ("POST", "/management/policies"), ("GET", "/management/policies"),
    ("POST", "/management/offers"), ("GET", "/management/offers"),
    ("GET", "/management/batteries"), ("GET", f"/management/batteries/{BATTERY}/credentials"),
    ("GET", "/management/catalog/explain?dataset=x&participant=did:web:a"),
]


@pytest.mark.parametrize("method, path", ROUTES)
async def test_every_route_needs_the_operator_key(api: Api, method: str, path: str) -> None:
    before = await api.snapshot()
    async with api.request(method, path, key=None, json=asset_body()) as response:
        await assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with api.request(method, path, key="bpc_op_wrong", json=asset_body()) as response:
        await assert_problem(response, 401, "unauthorized")
    assert await api.snapshot() == before


@pytest.mark.parametrize("path, body, field", [
    ("/management/assets", asset_body(colour="red"), "colour"),
    ("/management/assets", asset_body(dataSource={"kind": "inline", "data": {}, "x": 1}),
     "dataSource.inline.x"),
    ("/management/policies", {"policy": {"permission": [{"action": "use"}]}, "name": "p"},
     "name"),
    ("/management/offers", {"assetId": "a", "policyId": "p", "price": 3}, "price"),
])
async def test_unknown_fields_are_named(api: Api, path: str, body: Any, field: str) -> None:
    before = await api.snapshot()
    async with api.request("POST", path, json=body) as response:
        problem = await assert_problem(response, 400, "invalid-request")
    assert {"field": field, "message": "unknown field"} in problem["errors"]
    assert await api.snapshot() == before


@pytest.mark.parametrize("path, body, field", [
    ("/management/assets", asset_body(accessLevel="secret"), "accessLevel"),
    ("/management/assets", asset_body(batteryDid="battery-1"), "batteryDid"),
    ("/management/assets", asset_body(batteryDid=OTHER_BATTERY), "batteryDid"),  # not stored
    ("/management/assets", asset_body(accessLevel="public", allowedParticipants=[RECYCLER]),
     "allowedParticipants"),
    ("/management/assets", asset_body(allowedParticipants=["nobody"]), "allowedParticipants[0]"),
    ("/management/assets", asset_body(defaultPolicy="sometimes"), "defaultPolicy"),
    ("/management/assets", {k: v for k, v in asset_body().items() if k != "title"}, "title"),
    ("/management/policies", {"policy": {"permission": [{"action": "use", "constraint": [
        {"leftOperand": "spatial", "operator": "eq", "rightOperand": "EU"}]}]}},
     "policy.permission[0].constraint[0]"),
    ("/management/policies", {"policy": {"permission": []}}, "policy.permission"),
    ("/management/offers", {"assetId": "urn:nope", "policyId": "urn:nope"}, "assetId"),
])
async def test_invalid_bodies_name_the_field(api: Api, path: str, body: Any, field: str) -> None:
    before = await api.snapshot()
    async with api.request("POST", path, json=body) as response:
        problem = await assert_problem(response, 400, "invalid-request")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert await api.snapshot() == before


async def test_offer_refusals(api: Api) -> None:
    asset = await api.ok("POST", "/management/assets", 201, json=asset_body())
    public = await api.ok("POST", "/management/assets", 201,
                          json=asset_body(accessLevel="public"))
    before = await api.snapshot()
    for body, field in [({"assetId": asset["id"], "policyId": "urn:nope"}, "policyId"),
                        ({"assetId": public["id"], "policyId": "urn:nope"}, "assetId")]:
        async with api.request("POST", "/management/offers", json=body) as response:
            problem = await assert_problem(response, 400, "invalid-request")
        assert problem["errors"][0]["field"] == field
    assert await api.snapshot() == before


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'{"a": NaN}'])
@pytest.mark.parametrize("path", ["/management/assets", "/management/policies",
                                  "/management/offers"])
async def test_malformed_json(api: Api, path: str, raw: bytes) -> None:
    before = await api.snapshot()
    async with api.request("POST", path, data=raw,
                           headers={"Content-Type": "application/json"}) as response:
        await assert_problem(response, 400, "malformed-json")
    assert await api.snapshot() == before


@pytest.mark.parametrize("method, path", [
    ("GET", "/management/assets/urn:nope"), ("DELETE", "/management/assets/urn:nope"),
    ("GET", "/management/batteries/did:key:z6MkNope/credentials"),
    ("GET", "/management/catalog/explain?dataset=urn:nope&participant=did:web:a"),
])
async def test_unknown_ids_are_404(api: Api, method: str, path: str) -> None:
    before = await api.snapshot()
    async with api.request(method, path) as response:
        await assert_problem(response, 404, "not-found")
    assert await api.snapshot() == before


async def test_duplicate_ids_are_409(api: Api) -> None:
    await api.ok("POST", "/management/assets", 201, json=asset_body(id="urn:a:dup"))
    before = await api.snapshot()
    async with api.request("POST", "/management/assets", json=asset_body(id="urn:a:dup")) as r:
        await assert_problem(r, 409, "already-exists")
    assert await api.snapshot() == before
