"""The DSP catalog on a real node: schema-valid DCAT, filtered per participant, explainable.

Callers are real participants: did:key keys that sign each request with
``participant_auth.sign_request`` (audience = the provider node's DID); unsigned requests and
tokens for another audience are 401.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from json import dumps
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector.app import CONFIG, IDENTITY, STORE, create_app
from connector.dsp.messages import DSP_CONTEXT, RootCatalog, RootDataset, parse_message
from connector.dsp.schemas import schema_errors
from connector.management.auth import OPERATOR_AUTH
from connector.participant_auth import sign_request
from connector.serve import RunningNode, running_node
from connector.store import BatteryRecord
from credentials.did_key import key_from_seed
from credentials.keys import Ed25519Key
from tests.connector.test_node import (  # noqa: F401
    bearer,
    node_config,
    passphrase,
)

BATTERY = "did:key:z6MkBatteryOne"
RECYCLER_KEY = key_from_seed(bytes(range(1, 33)))
STRANGER_KEY = key_from_seed(bytes(range(2, 34)))
RECYCLER = RECYCLER_KEY.controller
STRANGER = STRANGER_KEY.controller
KEYS: dict[str, Ed25519Key] = {RECYCLER: RECYCLER_KEY, STRANGER: STRANGER_KEY}
CATALOG_REQUEST = {"@context": [DSP_CONTEXT], "@type": "CatalogRequestMessage"}


class Provider:
    """A provider node with a public, a restricted, an expired and an unoffered asset."""

    def __init__(self, node: RunningNode, session: aiohttp.ClientSession, key: str) -> None:
        self.node, self.session, self.key = node, session, key
        self.ids: dict[str, str] = {}

    async def manage(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.node.url + path, headers=bearer(self.key),
                                        **kwargs) as response:
            assert response.status in (200, 201), await response.text()
            return await response.json()

    async def dsp(self, method: str, path: str, caller: str | None, *, json: Any = None,
                  data: bytes | None = None, audience: str | None = None) -> Any:
        """Send a DSP request as ``caller`` (a DID of ``KEYS``; ``None``: no token), signed
        for ``audience`` (default: this node's DID)."""
        url = self.node.url + path
        body = data if data is not None else (
            b"" if json is None else dumps(json).encode())
        headers = {"Content-Type": "application/json"} if body else {}
        if caller is not None:
            token = sign_request(KEYS[caller], method=method, url=url, body=body,
                                 audience=audience or self.node.app[IDENTITY].did)
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, url, headers=headers, data=body) as response:
            return response.status, await response.json()

    async def catalog(self, caller: str) -> dict[str, Any]:
        status, body = await self.dsp("POST", "/catalog/request", caller, json=CATALOG_REQUEST)
        assert status == 200, body
        assert schema_errors(body, "Catalog") == []
        assert isinstance(parse_message(body), RootCatalog)
        return body


def asset(title: str, level: str, **extra: Any) -> dict[str, Any]:
    return {"batteryDid": BATTERY, "accessLevel": level, "title": title,
            "dataSource": {"kind": "passport-credentials"}, **extra}


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[Provider]:
    config = node_config(tmp_path / "data")
    app = create_app(config)  # registers the management, catalog and negotiation routes
    async with running_node(config, app) as node, aiohttp.ClientSession() as session:
        async with node.app[STORE].transaction() as tx:
            await tx.put_battery(BatteryRecord(did=BATTERY))
        key = node.app[OPERATOR_AUTH].take_generated_key()
        assert key is not None
        p = Provider(node, session, key)
        p.ids["public"] = (await p.manage("POST", "/management/assets", json=asset(
            "General & technical data", "public", id="urn:bpc:a:public")))["id"]
        restricted = await p.manage("POST", "/management/assets", json=asset(
            "Dismantling & safety data", "dismantling-safety", id="urn:bpc:a:dismantling",
            allowedParticipants=[RECYCLER]))
        p.ids["dismantling"] = restricted["id"]
        p.ids["dismantling-offer"] = restricted["defaultOffer"]["id"]
        expired = await p.manage("POST", "/management/assets", json=asset(
            "State of health", "performance-health", id="urn:bpc:a:health",
            defaultPolicy="none"))
        policy = await p.manage("POST", "/management/policies", json={"policy": {
            "permission": [{"action": "use", "constraint": [
                {"leftOperand": "odrl:dateTime", "operator": "lteq",
                 "rightOperand": "2020-01-01T00:00:00Z"}]}]}})
        offer = await p.manage("POST", "/management/offers",
                               json={"assetId": expired["id"], "policyId": policy["id"]})
        p.ids["health"], p.ids["health-offer"] = expired["id"], offer["id"]
        p.ids["unoffered"] = (await p.manage("POST", "/management/assets", json=asset(
            "Provenance", "provenance", id="urn:bpc:a:provenance",
            defaultPolicy="none")))["id"]
        yield p


def dataset_ids(catalog: dict[str, Any]) -> list[str]:
    return [dataset["@id"] for dataset in catalog.get("dataset", [])]


async def test_catalog_is_filtered_per_participant(provider: Provider) -> None:
    recycler = await provider.catalog(RECYCLER)
    assert dataset_ids(recycler) == ["urn:bpc:a:dismantling", "urn:bpc:a:public"]
    assert recycler["participantId"] == provider.node.app[IDENTITY].did
    assert recycler["@context"] == [DSP_CONTEXT]
    dismantling = recycler["dataset"][0]
    assert [offer["@id"] for offer in dismantling["hasPolicy"]] == [
        provider.ids["dismantling-offer"]]
    assert dismantling["distribution"][0]["accessService"] == recycler["service"][0]["@id"]
    assert recycler["service"][0]["endpointURL"] == provider.node.app[CONFIG].public_base_url

    stranger = await provider.catalog(STRANGER)
    assert dataset_ids(stranger) == ["urn:bpc:a:public"]


async def test_public_assets_need_no_contract(provider: Provider) -> None:
    catalog = await provider.catalog(STRANGER)
    (public,) = catalog["dataset"]
    (offer,) = public["hasPolicy"]
    assert offer["permission"] == [{"action": "use"}]  # no constraint at all
    assert public["dcat:keyword"] == ["public"] and public["dct:subject"] == BATTERY


async def test_empty_catalog_is_still_schema_valid(provider: Provider) -> None:
    async with provider.node.app[STORE].transaction() as tx:
        record = await tx.get_asset("urn:bpc:a:public", for_update=True)
        assert record is not None
        await tx.put_asset(replace(record, properties={**record.properties,
                                                       "withdrawnAt": "2026-01-01T00:00:00Z"}))
    catalog = await provider.catalog(STRANGER)
    assert "dataset" not in catalog  # minItems 1: an empty list would violate the schema


async def test_dataset_endpoint(provider: Provider) -> None:
    status, body = await provider.dsp("GET", "/catalog/datasets/urn:bpc:a:dismantling", RECYCLER)
    assert status == 200, body
    assert schema_errors(body, "Dataset") == []
    assert isinstance(parse_message(body), RootDataset)
    # not visible and unknown look the same: 404 with a CatalogError
    for dataset, caller in [("urn:bpc:a:dismantling", STRANGER), ("urn:bpc:a:health", RECYCLER),
                            ("urn:bpc:a:provenance", RECYCLER), ("urn:nope", RECYCLER)]:
        status, body = await provider.dsp("GET", f"/catalog/datasets/{dataset}", caller)
        assert status == 404 and body["@type"] == "CatalogError"
        assert schema_errors(body, "CatalogError") == []


async def test_explain_names_the_failing_constraint(provider: Provider) -> None:
    path = "/management/catalog/explain"
    hidden = await provider.manage(
        "GET", f"{path}?dataset=urn:bpc:a:dismantling&participant={STRANGER}")
    assert hidden["visible"] is False
    (offer,) = hidden["offers"]
    assert offer["offerId"] == provider.ids["dismantling-offer"]
    assert offer["code"] == "constraint-failed"
    assert offer["failedConstraint"] == "permission[0].constraint[0].and[0]"
    assert offer["leftOperand"].endswith("participantDid")
    assert STRANGER in offer["reason"]

    expired = await provider.manage(
        "GET", f"{path}?dataset=urn:bpc:a:health&participant={RECYCLER}")
    assert expired["visible"] is False
    assert expired["offers"][0]["leftOperand"] == "http://www.w3.org/ns/odrl/2/dateTime"
    assert "ended" in expired["offers"][0]["reason"]

    shown = await provider.manage(
        "GET", f"{path}?dataset=urn:bpc:a:dismantling&participant={RECYCLER}")
    assert shown["visible"] is True and shown["offers"][0]["failedConstraint"] is None


@pytest.mark.parametrize("body, code", [
    ({"@context": [DSP_CONTEXT], "@type": "DatasetRequestMessage", "dataset": "x"},
     "invalid-message"),
    ({"@type": "CatalogRequestMessage"}, "invalid-message"),
    ({**CATALOG_REQUEST, "filter": [{"title": "x"}]}, "unsupported-filter"),
])
async def test_bad_catalog_requests(provider: Provider, body: Any, code: str) -> None:
    status, answer = await provider.dsp("POST", "/catalog/request", RECYCLER, json=body)
    assert status == 400 and answer["@type"] == "CatalogError" and answer["code"] == code
    assert schema_errors(answer, "CatalogError") == []


async def test_not_json_is_400(provider: Provider) -> None:
    status, answer = await provider.dsp("POST", "/catalog/request", RECYCLER, data=b"{nope")
    assert status == 400 and answer["@type"] == "CatalogError"


# --- who is calling ----------------------------------------------------------------------------


async def test_no_token_is_401(provider: Provider) -> None:
    status, answer = await provider.dsp("POST", "/catalog/request", None, json=CATALOG_REQUEST)
    assert status == 401 and answer["@type"] == "CatalogError"
    assert answer["code"] == "unauthorized" and answer["reason"][0] == "missing-token"
    assert schema_errors(answer, "CatalogError") == []
    status, answer = await provider.dsp("GET", "/catalog/datasets/urn:bpc:a:public", None)
    assert status == 401 and answer["@type"] == "CatalogError"


async def test_token_for_another_audience_is_401(provider: Provider) -> None:
    status, answer = await provider.dsp("POST", "/catalog/request", RECYCLER,
                                        json=CATALOG_REQUEST, audience=STRANGER)
    assert status == 401 and answer["@type"] == "CatalogError"
    assert answer["code"] == "unauthorized" and answer["reason"][0] == "wrong-audience"
    assert schema_errors(answer, "CatalogError") == []
    status, answer = await provider.dsp("GET", "/catalog/datasets/urn:bpc:a:public", RECYCLER,
                                        audience=STRANGER)
    assert status == 401 and answer["code"] == "unauthorized"
