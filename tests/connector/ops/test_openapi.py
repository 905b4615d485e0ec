"""``/openapi.json`` cannot drift: it documents exactly the routes the router serves, its
schemas are valid JSON Schema, and real answers of running nodes validate against it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connector.app import create_app
from connector.ops.openapi import OPEN_PATHS, UNDOCUMENTED, build_document, routes_of
from connector.problems import PROBLEM_JSON
from tests.connector.ops.test_metrics import node_config
from tests.connector.test_management_consumer import (  # noqa: F401
    ASSET,
    KEY,
    Api,
    Nodes,
    negotiate,
    nodes,
    passphrase,
    start_transfer,
)

#: Routes whose last parameter takes slashes (``{id:.+}`` in aiohttp: ids that are URLs).
GREEDY = {"/management/trust/lists/{source}", "/management/wallet/credentials/{id}"}
HUB = {"enabled": True, "source": "simulated",
       "simulated": {"battery_did": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}}


def routed_and_documented(app: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    document = build_document(app)
    routed = {(method, path) for method, path, _ in routes_of(app)}
    documented = {(method.upper(), path) for path, operations in document["paths"].items()
                  for method in operations}
    return routed, documented


def test_the_document_names_every_management_route_and_only_those(tmp_path: Path) -> None:
    app = create_app(node_config(tmp_path / "data"))
    routed, documented = routed_and_documented(app)
    assert routed == documented
    assert any(path.startswith("/management/") for _, path in routed)
    assert {path for _, path in documented if not path.startswith("/management/")} == OPEN_PATHS
    document = build_document(app)
    assert document[UNDOCUMENTED] == [], (
        "describe these routes in connector/management/api_spec.py")
    assert document["openapi"].startswith("3.1")
    # Every router path under /management is there, whatever registered it.
    for route in app.router.routes():
        resource = route.resource
        if resource is not None and resource.canonical.startswith("/management/") \
                and route.method != "HEAD":
            assert (route.method, resource.canonical) in documented


def test_plugin_routes_are_in_the_document_too(tmp_path: Path) -> None:
    app = create_app(node_config(tmp_path / "data", plugins={"hub": HUB}))
    routed, documented = routed_and_documented(app)
    assert routed == documented
    assert ("GET", "/management/hub/status") in documented


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_schemas_are_json_schema_and_every_reference_resolves(tmp_path: Path) -> None:
    document = build_document(create_app(node_config(tmp_path / "data")))
    schemas = document["components"]["schemas"]
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    # Answers name exactly their fields: a field added to a view without its model fails the
    # validation of real answers below.
    for name in ("Asset", "Negotiation", "Agreement", "Transfer", "TrustView", "Offer"):
        assert schemas[name]["additionalProperties"] is False, name
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path}"
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert list(answer["content"]) == [PROBLEM_JSON], f"{method} {path} {status}"


# --- real answers against the document -----------------------------------------------------------


class Checked:
    """Calls a node and validates every answer against the node's own ``/openapi.json``."""

    def __init__(self, api: Api, document: dict[str, Any]) -> None:
        self.api, self.document = api, document
        self.templates = sorted(document["paths"], key=lambda t: (t.count("{"), -len(t)))
        self.seen: set[tuple[str, str, int]] = set()

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        bare = path.split("?", 1)[0]
        for template in self.templates:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if template in GREEDY:
                pattern = re.sub(r"\[\^/\]\+$", ".+", pattern)
            operations = self.document["paths"][template]
            if re.fullmatch(pattern, bare) and method.lower() in operations:
                return template, operations[method.lower()]
        raise AssertionError(f"{method} {bare} is not in the document")

    async def call(self, method: str, path: str, status: int, *, key: str | None = KEY,
                   **kwargs: Any) -> Any:
        async with self.api.request(method, path, key=key, **kwargs) as response:
            raw = await response.read()
            media = response.headers.get("Content-Type", "").split(";")[0]
            assert response.status == status, raw[:2000]
        template, operation = self.operation(method, path)
        answer = operation["responses"].get(str(status))
        assert answer is not None, f"{status} is not documented for {method} {template}"
        self.seen.add((method, template, status))
        content = answer.get("content", {})
        if not content:
            assert raw == b"", f"{method} {template} {status} documents no body"
            return None
        if "*/*" in content:
            return raw
        assert media in content, f"{method} {template} {status}: {media} not in {list(content)}"
        if "schema" not in content[media]:  # e.g. the Prometheus text of /metrics
            return raw
        body = json.loads(raw)
        schema = {**content[media]["schema"], "components": self.document["components"]}
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in Draft202012Validator(schema).iter_errors(body)]
        assert not errors, f"{method} {template} {status}: {errors}"
        return body


@pytest.mark.slow
async def test_real_answers_of_two_nodes_validate_against_the_document(
        nodes: Nodes) -> None:  # noqa: F811
    async with nodes.provider.request("GET", "/openapi.json", key=None) as response:
        assert response.status == 200
        document = await response.json()
    assert document[UNDOCUMENTED] == []
    provider, consumer = Checked(nodes.provider, document), Checked(nodes.consumer, document)

    # Operations endpoints and problems.
    await provider.call("GET", "/health", 200, key=None)
    await provider.call("GET", "/ready", 200, key=None)
    await provider.call("GET", "/openapi.json", 200, key=None)
    await provider.call("GET", "/metrics", 200, key=None)
    await provider.call("GET", "/management/assets", 401, key=None)
    await provider.call("GET", "/management/assets/no-such-asset", 404)
    await provider.call("POST", "/management/assets", 400, json={"title": ""})
    await provider.call("GET", "/management/assets?limit=0", 400)

    # Provider: assets, policies, offers, batteries, explain.
    battery = await provider.call("POST", "/management/batteries", 201, json={"label": "b1"})
    public = await provider.call("POST", "/management/assets", 201, json={
        "batteryDid": battery["did"], "accessLevel": "public", "title": "General data",
        "description": "open to all", "dataSource": {"kind": "inline", "data": {"x": 1}}})
    assert public["defaultOffer"] is None
    restricted = await provider.call("POST", "/management/assets", 201, json={
        "batteryDid": battery["did"], "accessLevel": "sustainability", "title": "Footprint",
        "dataSource": {"kind": "passport-credentials"}})
    assert restricted["defaultOffer"] is not None
    await provider.call("GET", "/management/assets", 200)
    await provider.call("GET", f"/management/assets/{restricted['id']}", 200)
    await provider.call("DELETE", f"/management/assets/{public['id']}", 204)
    policy = await provider.call("POST", "/management/policies", 201, json={"policy": {
        "permission": [{"action": "use", "constraint": [{
            "leftOperand": "bpc-policy:participantDid", "operator": "isAnyOf",
            "rightOperand": [consumer.api.did]}]}]}})
    await provider.call("GET", "/management/policies", 200)
    await provider.call("POST", "/management/offers", 201,
                        json={"assetId": restricted["id"], "policyId": policy["id"]})
    await provider.call("GET", f"/management/offers?assetId={restricted['id']}", 200)
    await provider.call("GET", "/management/batteries", 200)
    await provider.call("GET", f"/management/batteries/{battery['did']}/credentials", 200)
    await provider.call("GET", f"/management/catalog/explain?dataset={ASSET}"
                               f"&participant={consumer.api.did}", 200)

    # Trust, wallet, usage control.
    authority = "did:web:authority.example"
    await provider.call("POST", "/management/trust/issuers", 201, json={
        "credentialType": "DismantlerCredential", "issuer": "did:web:issuer.example"})
    await provider.call("POST", "/management/trust/authorities", 201, json={
        "issuer": authority, "credentialTypes": ["DismantlerCredential"]})
    await provider.call("GET", "/management/trust", 200)
    await provider.call("DELETE", "/management/trust/issuers?credentialType="
                                  "DismantlerCredential&issuer=did:web:issuer.example", 204)
    await provider.call("DELETE", "/management/trust/authorities", 204,
                        json={"issuer": authority})
    await provider.call("GET", "/management/wallet/credentials", 200)
    await provider.call("GET", "/management/received-data", 200)
    await provider.call("GET", "/management/deletion-receipts", 200)
    await provider.call("GET", "/management/deletion-receipts/overdue", 200)

    # Consumer: catalog, negotiation, agreement, transfer and its actions.
    await consumer.call("POST", "/management/catalog/request", 200,
                        json={"counterPartyAddress": nodes.address})
    negotiation = await negotiate(nodes)
    await consumer.call("GET", "/management/negotiations", 200)
    await consumer.call("GET", f"/management/negotiations/{negotiation['id']}", 200)
    await provider.call("GET", "/management/negotiations?role=provider", 200)
    agreement = negotiation["agreementId"]
    await consumer.call("GET", "/management/agreements", 200)
    await consumer.call("GET", f"/management/agreements/{agreement}", 200)
    transfer = await start_transfer(nodes, agreement)
    await consumer.call("GET", f"/management/transfers?agreementId={agreement}", 200)
    await consumer.call("GET", f"/management/transfers/{transfer['id']}", 200)
    await provider.call("GET", f"/management/transfers/{transfer['counterPartyPid']}", 200)
    await consumer.call("POST", f"/management/transfers/{transfer['id']}/suspend", 200,
                        json={"reason": "maintenance"})
    await consumer.call("POST", f"/management/transfers/{transfer['id']}/complete", 409)
    await consumer.call("POST", f"/management/transfers/{transfer['id']}/terminate", 200)
    await provider.call("POST", f"/management/agreements/{agreement}/terminate", 200,
                        json={"reason": "ended early"})
    await provider.call("POST", f"/management/agreements/{agreement}/terminate", 409, json={})
    await consumer.call("POST", "/management/negotiations", 400, json={
        "counterPartyAddress": nodes.address})
    assert len(provider.seen | consumer.seen) >= 40
