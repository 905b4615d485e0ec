"""``/metrics`` of real nodes on loopback: per-node registries, route templates as labels,
negotiation and transfer states from the store after a real negotiation, verification and
issuance counters, the metrics token, and plugin families (the hub's, through the hook)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from connector.app import create_app
from connector.config import NodeConfig
from connector.ops.metrics import store_families
from connector.plugins import hookimpl
from connector.plugins.hub.plugin import HubPlugin
from connector.serve import running_node
from connector.store import AgreementRecord, TokenRecord, open_store
from tests.connector.test_dsp_negotiation_http import config_for, free_port
from tests.connector.test_management_consumer import (  # noqa: F401
    KEY,
    Nodes,
    negotiate,
    nodes,
    passphrase,
    start_transfer,
)
from tests.connector.test_node import assert_problem, bearer


def node_config(data_dir: Path, **settings: Any) -> NodeConfig:
    """A loopback node's settings (the passphrase fixture's variable) with ``settings``."""
    base = config_for(data_dir, free_port()).model_dump()
    return NodeConfig.model_validate({**base, **settings})


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def scrape(session: aiohttp.ClientSession, url: str, **headers: str) -> Samples:
    async with session.get(f"{url}/metrics", headers=headers) as response:
        text = await response.text()
        assert response.status == 200, text
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(text)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- after a real negotiation and transfer between two nodes -----------------------------------


@pytest.mark.slow
async def test_states_after_a_real_negotiation_and_transfer(nodes: Nodes) -> None:  # noqa: F811
    session = nodes.consumer.session
    before = await scrape(session, nodes.consumer.node.url)
    assert named(before, "bpc_negotiations") == {}
    assert value(before, "bpc_store_up") == 1

    negotiation = await negotiate(nodes)
    transfer = await start_transfer(nodes, negotiation["agreementId"])

    consumer = await scrape(session, nodes.consumer.node.url)
    provider = await scrape(session, nodes.provider.node.url)
    assert named(consumer, "bpc_negotiations") == {
        (("role", "consumer"), ("state", "FINALIZED")): 1}
    assert named(provider, "bpc_negotiations") == {
        (("role", "provider"), ("state", "FINALIZED")): 1}
    assert value(consumer, "bpc_transfers", role="consumer", state="STARTED") == 1
    assert value(provider, "bpc_transfers", role="provider", state="STARTED") == 1

    # Requests are labelled by route template, never by a process id.
    routes = {dict(labels)["route"] for labels in named(consumer, "bpc_http_requests_total")}
    assert "/management/negotiations/{id}" in routes
    assert "/management/transfers/{id}" in routes
    assert not any(negotiation["id"] in route or transfer["id"] in route for route in routes)
    polled = value(consumer, "bpc_http_requests_total", method="GET",
                   route="/management/negotiations/{id}", status="200")
    assert polled is not None and polled >= 1
    assert value(consumer, "bpc_http_request_duration_seconds_count", method="GET",
                 route="/management/negotiations/{id}") == polled

    # Each node its own registry: the consumer never answered the provider's DSP routes.
    provider_routes = {dict(labels)["route"]
                       for labels in named(provider, "bpc_http_requests_total")}
    assert "/negotiations/request" in provider_routes
    assert "/negotiations/request" not in routes

    # The stopped transfer moves at once in the gauge (read from the store at scrape time).
    await nodes.consumer.ok("POST", f"/management/transfers/{transfer['id']}/terminate")
    after = await scrape(session, nodes.consumer.node.url)
    assert value(after, "bpc_transfers", role="consumer", state="TERMINATED") == 1
    assert value(after, "bpc_transfers", role="consumer", state="STARTED") is None


# --- tokens and passport entries, counted in the store (both backends) -------------------------


def token(jti: str, *, revoked: bool = False, refreshed: bool = False,
          expires_in: timedelta = timedelta(minutes=5)) -> TokenRecord:
    return TokenRecord(jti=jti, agreement_id="agr-1", consumer_did="did:web:consumer.example",
                       asset_id="asset-1", expires_at=datetime.now(UTC) + expires_in,
                       revoked=revoked,
                       previous_refresh_token_hash="old-hash" if refreshed else None)


async def test_token_counts_come_from_the_store(store_url: str, tmp_path: Path) -> None:
    async with await open_store(store_url, data_dir=tmp_path) as store:
        async with store.transaction() as tx:
            await tx.add_agreement(AgreementRecord(
                id="agr-1", asset_id="asset-1", provider_did="did:web:provider.example",
                consumer_did="did:web:consumer.example", agreement={"@type": "Agreement"},
                signed_at=datetime.now(UTC)))
            # Started a transfer (t1), refreshed it twice (t1 → t2 → t3), then a second
            # transfer (t4, expired) and a third (t5) whose agreement end revoked it.
            await tx.put_token(token("t1", revoked=True))
            await tx.put_token(token("t2", revoked=True, refreshed=True))
            await tx.put_token(token("t3", refreshed=True))
            await tx.put_token(token("t4", expires_in=timedelta(minutes=-1)))
            await tx.put_token(token("t5", revoked=True))
        async with store.read() as reader:
            counts = await reader.count_states(datetime.now(UTC))
    families = {family.name: family for family in store_families(counts)}
    issued = {tuple(s.labels.values()): s.value for s in families["bpc_access_tokens_issued"]
              .samples if s.name.endswith("_total")}
    assert issued == {("transfer-start",): 3, ("refresh",): 2}
    revoked = [s.value for s in families["bpc_access_tokens_revoked"].samples
               if s.name.endswith("_total")]
    assert revoked == [1]  # t5; t1 and t2 were rotated out by refreshes, not revoked
    assert [s.value for s in families["bpc_access_tokens_live"].samples] == [1]  # t3


# --- credentials issued and verified -----------------------------------------------------------


async def test_issued_and_verified_credentials_are_counted_once(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    config = node_config(tmp_path / "data", operator_api_key=SecretStr(KEY))
    async with running_node(config) as node:
        did = (await (await client.get(f"{node.url}/health")).json())["did"]
        credential = {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential"], "issuer": did,
            "credentialSubject": {"id": "did:web:someone.example"},
        }
        async with client.post(f"{node.url}/credentials/issue", headers=bearer(KEY),
                               json={"credential": credential}) as response:
            assert response.status == 201, await response.text()
            signed = (await response.json())["verifiableCredential"]
        async with client.post(f"{node.url}/credentials/verify",
                               json={"verifiableCredential": signed}) as response:
            assert response.status == 200, await response.text()
        tampered = json.loads(json.dumps(signed))
        tampered["credentialSubject"]["id"] = "did:web:mallory.example"
        async with client.post(f"{node.url}/credentials/verify",
                               json={"verifiableCredential": tampered}) as response:
            assert response.status == 400
        samples = await scrape(client, node.url)
    assert value(samples, "bpc_credentials_issued_total", via="vc-api") == 1
    # The signed credential has status entries: checking them verifies the node's status list
    # credential too, which is part of this verification, not one of its own.
    assert named(samples, "bpc_credential_verifications_total") == {
        (("kind", "credential"), ("result", "verified")): 1,
        (("kind", "credential"), ("result", "failed")): 1}


# --- who may scrape ----------------------------------------------------------------------------


async def test_metrics_token_guards_the_endpoint_when_set(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    token = "metrics-scrape-token-0123456789"
    config = node_config(tmp_path / "data", metrics_token=SecretStr(token),
                         operator_api_key=SecretStr(KEY))
    async with running_node(config) as node:
        async with client.get(f"{node.url}/metrics") as response:
            await assert_problem(response, 401, "unauthorized")
        async with client.get(f"{node.url}/metrics", headers=bearer(KEY)) as response:
            await assert_problem(response, 401, "unauthorized")  # not the operator key
        samples = await scrape(client, node.url, **bearer(token))
    assert value(samples, "bpc_store_up") == 1


async def test_metrics_are_open_by_default(tmp_path: Path,
                                           client: aiohttp.ClientSession) -> None:
    async with running_node(node_config(tmp_path / "data")) as node:
        samples = await scrape(client, node.url)
        did = (await (await client.get(f"{node.url}/health")).json())["did"]
    infos = named(samples, "bpc_node_info")
    assert len(infos) == 1 and dict(next(iter(infos)))["did"] == did


# --- plugins: the hook, the hub's families, a failing plugin -----------------------------------


class HubWithMetrics(HubPlugin):
    """The hub plugin with the registration line the lead adds to ``plugin.py``."""

    @hookimpl
    def bpc_collect_metrics(self, app: Any) -> list[Any]:
        from connector.plugins.hub.metrics import collect_metrics

        return collect_metrics(app)


class BrokenMetrics:
    @hookimpl
    def bpc_collect_metrics(self, app: Any) -> list[Any]:
        raise RuntimeError("this plugin's collector is broken")


async def _started(config: Any, plugins: dict[str, object]) -> Any:
    return running_node(config, create_app(config, plugins=plugins))


@pytest.mark.slow
async def test_hub_families_come_through_the_hook(tmp_path: Path,
                                                  client: aiohttp.ClientSession) -> None:
    battery = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    config = node_config(tmp_path / "data", plugins={
        "hub": {"enabled": True, "source": "simulated",
                "simulated": {"battery_did": battery, "cells": 4, "pace_s": 0.05, "ticks": 5}},
        "broken": {"enabled": True}})
    async with await _started(config, {"hub": HubWithMetrics(),
                                       "broken": BrokenMetrics()}) as node:
        samples: Samples = {}
        for _ in range(100):  # the simulated hub ticks every 50 ms
            samples = await scrape(client, node.url)
            if (value(samples, "bpc_hub_messages_total") or 0) > 0:
                break
            await asyncio.sleep(0.1)
    assert (value(samples, "bpc_hub_messages_total") or 0) > 0
    assert value(samples, "bpc_hub_events_stored_total") is not None
    assert value(samples, "bpc_store_up") == 1  # the broken plugin cost only its own families
