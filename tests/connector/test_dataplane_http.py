"""The data plane between two REAL nodes on loopback: pull with the token, refresh, expiry.

The provider publishes "dismantling & safety data of battery X" for the consumer only, with
its default seven-day window; the consumer negotiates, starts a transfer and pulls. Both nodes
share one injected clock, so expiry is tested by moving time, never by sleeping.
"""

from __future__ import annotations

import asyncio
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
from connector.dataplane.pull import PullRefused, pull
from connector.dataplane.routes import data_plane_of
from connector.dataplane.tokens import (
    PROP_AUTHORIZATION,
    PROP_REFRESH_ENDPOINT,
    PROP_REFRESH_TOKEN,
)
from connector.demo_dataspace import ShiftedClock
from connector.dsp import messages as m
from connector.dsp.negotiation_service import start_negotiation
from connector.dsp.process import TerminationKind, TerminationReason
from connector.dsp.transfer_service import resume_transfer, start_transfer, suspend_transfer
from connector.participant_auth import RequestSigner
from connector.serve import RunningNode, running_node
from connector.store import TransferRecord
from tests.connector.test_dsp_negotiation_http import (
    OUTSIDER,
    PASSPHRASE_ENV,
    fast_settings,
    free_port,
    wait_state,
)
from tests.connector.test_dsp_transfer_http import wait_transfer

OPERATOR_KEY = "test-operator-key-0123456789abcdef"
BATTERY = "did:web:oem.example:battery:wbx-2031-0001"
DISMANTLING = {"packDisassemblySequence": ["remove lid", "disconnect HV", "remove modules"],
               "hazardousSubstances": ["LiPF6"], "extinguishingAgent": "water"}


Clock = ShiftedClock  # both nodes' clock: wall time plus what the test moves it on by


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@contextlib.asynccontextmanager
async def node(data_dir: Path, clock: Clock) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key=OPERATOR_KEY)
    app = create_app(config, dsp_settings=fast_settings(clock=clock))
    async with running_node(config, app) as running:
        yield running


@dataclass
class Setup:
    provider: RunningNode
    consumer: RunningNode
    session: aiohttp.ClientSession
    clock: Clock
    asset_id: str
    public_asset_id: str
    offer: m.MessageOffer

    async def manage(self, target: RunningNode, method: str, path: str,
                     body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
            method, target.url + path, json=body,
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        ) as response:
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text


async def publish(provider: RunningNode, session: aiohttp.ClientSession,
                  consumer_did: str) -> tuple[str, str, m.MessageOffer]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    restricted = {"batteryDid": BATTERY, "accessLevel": "dismantling-safety",
                  "title": "Dismantling and safety data", "allowedParticipants": [consumer_did],
                  "dataSource": {"kind": "inline", "data": DISMANTLING}}
    public = {"batteryDid": BATTERY, "accessLevel": "public", "title": "Public data",
              "dataSource": {"kind": "inline", "data": {"chemistry": "NMC811"}}}
    ids = []
    for body in (restricted, public):
        async with session.post(provider.url + "/management/assets", json=body,
                                headers=headers) as response:
            assert response.status == 201, await response.text()
            ids.append((await response.json())["id"])
    async with provider.app[STORE].read() as reader:
        (offer,) = await reader.list_offers(asset_id=ids[0])
    requested = {k: v for k, v in offer.offer.items() if k != "@context"}
    return ids[0], ids[1], m.MessageOffer.model_validate({**requested, "target": ids[0]})


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = Clock()
    async with (
        node(tmp_path / "oem", clock) as provider,
        node(tmp_path / "recycler", clock) as consumer,
        aiohttp.ClientSession() as session,
    ):
        asset, public, offer = await publish(provider, session, consumer.app[IDENTITY].did)
        yield Setup(provider, consumer, session, clock, asset, public, offer)


async def agreed(s: Setup) -> str:
    pid = await start_negotiation(s.consumer.app, s.provider.url, s.offer)
    await wait_state(s.consumer.app, pid, "FINALIZED")
    async with s.consumer.app[STORE].read() as reader:
        negotiation = await reader.get_negotiation(pid)
    assert negotiation is not None and negotiation.agreement_id is not None
    return negotiation.agreement_id


async def started(s: Setup) -> tuple[TransferRecord, TransferRecord]:
    """(consumer transfer, provider transfer), both STARTED."""
    pid = await start_transfer(s.consumer.app, s.provider.url, await agreed(s))
    consumer = await wait_transfer(s.consumer.app, pid, "STARTED")
    assert consumer.counterparty_pid is not None
    provider = await wait_transfer(s.provider.app, consumer.counterparty_pid, "STARTED")
    return consumer, provider


def props(record: TransferRecord) -> dict[str, str]:
    assert record.data_address is not None
    return {p["name"]: p["value"] for p in record.data_address["endpointProperties"]}


async def raw_get(s: Setup, url: str, token: str | None) -> tuple[int, dict[str, Any],
                                                                  dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with s.session.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


async def provider_state(s: Setup) -> list[Any]:
    """What a refused data plane request must leave as it was (the audit log may grow)."""
    async with s.provider.app[STORE].read() as reader:
        transfers = await reader.list_transfers(limit=500)
        tokens = await reader.list_tokens(limit=500)
    return [[(t.id, t.state, t.version) for t in transfers],
            [(t.jti, t.revoked, t.version) for t in tokens]]


# --- pulling -----------------------------------------------------------------------------------


async def test_the_consumer_pulls_the_agreed_asset_with_its_token(setup: Setup) -> None:
    consumer, provider = await started(setup)
    pulled = await pull(setup.consumer.app, consumer.id)
    document = json.loads(pulled.body)
    assert document["assetId"] == setup.asset_id
    assert document["accessLevel"] == "dismantling-safety"
    assert document["data"] == DISMANTLING
    assert not pulled.refreshed
    status, body = await setup.manage(setup.consumer, "GET",
                                      f"/management/transfers/{consumer.id}/data")
    assert status == 200 and body["data"] == DISMANTLING
    async with setup.provider.app[STORE].read() as reader:
        served = [e for e in await reader.list_audit(subject_id=provider.id, limit=500)
                  if e.action == "dataplane.served"]
    assert len(served) == 2 and served[0].actor == setup.consumer.app[IDENTITY].did


async def test_public_data_is_open_and_restricted_data_needs_a_token(setup: Setup) -> None:
    plane = data_plane_of(setup.provider.app)
    status, body, _ = await raw_get(setup, plane.urls.asset_endpoint(setup.public_asset_id), None)
    assert status == 200 and body["data"] == {"chemistry": "NMC811"}
    status, body, headers = await raw_get(setup, plane.urls.asset_endpoint(setup.asset_id), None)
    assert (status, body["code"]) == (401, "missing-token")
    assert "Bearer" in headers["WWW-Authenticate"]
    assert "packDisassemblySequence" not in str(body)
    status, body, _ = await raw_get(setup, plane.urls.asset_endpoint("urn:asset:nope"), "x")
    assert (status, body["code"]) == (404, "unknown-asset")


async def test_bad_tokens_are_refused_and_change_nothing(setup: Setup) -> None:
    consumer, _ = await started(setup)
    token = props(consumer)[PROP_AUTHORIZATION]
    plane = data_plane_of(setup.provider.app)
    before = await provider_state(setup)
    status, body, _ = await raw_get(setup, plane.urls.asset_endpoint(setup.public_asset_id),
                                    token)
    assert status == 200, "a token does not hurt on public data"
    other = plane.urls.asset_endpoint(setup.public_asset_id).replace(
        setup.public_asset_id.replace(":", "%3A"), "x")
    for url, bad, expected in [
        (plane.urls.asset_endpoint(setup.asset_id), token[:-4] + "AAAA", (401, "invalid-token")),
        (plane.urls.asset_endpoint(setup.asset_id), "not-a-jwt", (401, "invalid-token")),
        (other, token, (404, "unknown-asset")),
    ]:
        status, body, _ = await raw_get(setup, url, bad)
        assert (status, body["code"]) == expected, (url, body)
    # A token for the restricted asset does not open another restricted asset.
    async with setup.provider.app[STORE].transaction() as tx:
        from connector.store import AssetRecord

        await tx.put_asset(AssetRecord(id="urn:asset:other", access_level="dismantling-safety",
                                       properties={"dataSource": {"kind": "inline",
                                                                  "data": {"x": 1}}}))
    before = await provider_state(setup)
    status, body, _ = await raw_get(setup, plane.urls.asset_endpoint("urn:asset:other"), token)
    assert (status, body["code"]) == (403, "wrong-asset")
    assert await provider_state(setup) == before


async def test_an_expired_token_is_refused_then_refreshed_by_the_consumer(setup: Setup) -> None:
    consumer, _ = await started(setup)
    old = props(consumer)
    setup.clock.advance(timedelta(seconds=301))  # past the 300 s token lifetime, well inside 7 days
    status, body, _ = await raw_get(
        setup, data_plane_of(setup.provider.app).urls.asset_endpoint(setup.asset_id),
        old[PROP_AUTHORIZATION])
    assert (status, body["code"]) == (401, "expired-token")
    pulled = await pull(setup.consumer.app, consumer.id)
    assert pulled.refreshed
    async with setup.consumer.app[STORE].read() as reader:
        rotated = await reader.get_transfer(consumer.id)
    assert rotated is not None
    new = props(rotated)
    assert new[PROP_AUTHORIZATION] != old[PROP_AUTHORIZATION]
    assert new[PROP_REFRESH_TOKEN] != old[PROP_REFRESH_TOKEN]
    again = await pull(setup.consumer.app, consumer.id)
    assert not again.refreshed


async def refresh_as(s: Setup, key: Any, refresh_token: str, endpoint: str,
                     *, signed: bool = True) -> tuple[int, dict[str, Any]]:
    data = urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers.update(RequestSigner(key, s.clock).headers(
            audience=s.provider.app[IDENTITY].did, method="POST", url=endpoint, body=data))
    async with s.session.post(endpoint, data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_only_the_consumer_may_refresh_and_old_refresh_tokens_expire(setup: Setup) -> None:
    consumer, _ = await started(setup)
    p = props(consumer)
    endpoint, refresh_token = p[PROP_REFRESH_ENDPOINT], p[PROP_REFRESH_TOKEN]
    before = await provider_state(setup)
    status, body = await refresh_as(setup, OUTSIDER, refresh_token, endpoint)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "wrong-consumer" in body["error_description"]
    status, body = await refresh_as(setup, None, refresh_token, endpoint, signed=False)
    assert (status, body["error"]) == (401, "invalid_client")
    key = setup.consumer.app[IDENTITY].signing_key
    status, body = await refresh_as(setup, key, "guessed", endpoint)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await provider_state(setup) == before

    status, first = await refresh_as(setup, key, refresh_token, endpoint)
    assert status == 200 and first["token_type"] == "Bearer" and first["expires_in"] == 300
    # The answer may have been lost: the old refresh token still works once more…
    status, second = await refresh_as(setup, key, refresh_token, endpoint)
    assert status == 200
    # …until the new one is used; then the old one is dead.
    status, _ = await refresh_as(setup, key, second["refresh_token"], endpoint)
    assert status == 200
    status, body = await refresh_as(setup, key, refresh_token, endpoint)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_malformed_refresh_requests_get_oauth_errors_and_change_nothing(
    setup: Setup,
) -> None:
    consumer, _ = await started(setup)
    endpoint = props(consumer)[PROP_REFRESH_ENDPOINT]
    key = setup.consumer.app[IDENTITY].signing_key
    before = await provider_state(setup)

    async def post(data: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": content_type, **RequestSigner(key, setup.clock).headers(
            audience=setup.provider.app[IDENTITY].did, method="POST", url=endpoint, body=data)}
        async with setup.session.post(endpoint, data=data, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    form = "application/x-www-form-urlencoded"
    for data, content_type, error in [
        (b"grant_type=client_credentials&refresh_token=x", form, "unsupported_grant_type"),
        (b"grant_type=refresh_token", form, "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=", form, "invalid_request"),
        (b'{"grant_type": "refresh_token"}', "application/json", "invalid_request"),
        (b"\xff\xfe=%", form, "invalid_request"),
    ]:
        status, body = await post(data, content_type)
        assert (status, body["error"]) == (400, error), (data, body)
    assert await provider_state(setup) == before


# --- the end of access -------------------------------------------------------------------------


async def test_after_the_seven_days_access_ends_and_the_transfer_terminates(setup: Setup) -> None:
    consumer, provider = await started(setup)
    await pull(setup.consumer.app, consumer.id)
    setup.clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(PullRefused) as refused:
        await pull(setup.consumer.app, consumer.id)
    assert refused.value.status == 403
    assert "no longer in force" in refused.value.detail or "expired" in refused.value.detail
    ended = await wait_transfer(setup.provider.app, provider.id, "TERMINATED")
    assert (ended.reason_kind, ended.failed_constraint) == ("policy", "agreement-ended")
    await wait_transfer(setup.consumer.app, consumer.id, "TERMINATED")
    async with setup.provider.app[STORE].read() as reader:
        assert all(t.revoked for t in await reader.list_tokens(transfer_id=provider.id))
    with pytest.raises(PullRefused) as again:
        await pull(setup.consumer.app, consumer.id)
    assert again.value.code == "transfer-not-started"


async def test_the_watch_ends_transfers_nobody_is_fetching(setup: Setup) -> None:
    consumer, _ = await started(setup)
    plane = data_plane_of(setup.provider.app)
    assert await plane.end_expired_transfers() == 0
    setup.clock.advance(timedelta(days=8))
    assert await plane.end_expired_transfers() == 1
    await wait_transfer(setup.consumer.app, consumer.id, "TERMINATED")
    assert await plane.end_expired_transfers() == 0


async def test_the_provider_terminates_the_agreement_early(setup: Setup) -> None:
    consumer, _ = await started(setup)
    token = props(consumer)[PROP_AUTHORIZATION]
    status, body = await setup.manage(
        setup.provider, "POST", f"/management/agreements/{consumer.agreement_id}/terminate",
        {"reason": "certificate withdrawn"})
    assert status == 200 and body["terminatedTransfers"] == 1
    await wait_transfer(setup.consumer.app, consumer.id, "TERMINATED")
    status, body, _ = await raw_get(
        setup, data_plane_of(setup.provider.app).urls.asset_endpoint(setup.asset_id), token)
    assert (status, body["code"]) == (401, "revoked-token")
    status, body = await setup.manage(
        setup.provider, "POST", f"/management/agreements/{consumer.agreement_id}/terminate")
    assert status == 409 and body["type"].endswith("already-terminated")
    status, _ = await setup.manage(setup.consumer, "POST",
                                   f"/management/agreements/{consumer.agreement_id}/terminate")
    assert status == 404, "a consumer cannot terminate the provider's agreement"
    # A new transfer under the ended agreement is refused by the provider.
    pid = await start_transfer(setup.consumer.app, setup.provider.url, consumer.agreement_id)
    refused = await wait_transfer(setup.consumer.app, pid, "TERMINATED")
    assert refused.reason_detail is not None and "agreement" in refused.reason_detail


async def test_a_suspended_transfer_serves_nothing_until_resumed(setup: Setup) -> None:
    consumer, provider = await started(setup)
    await suspend_transfer(setup.provider.app, provider.id,
                           TerminationReason(TerminationKind.INTERNAL, None, "maintenance"))
    await wait_transfer(setup.consumer.app, consumer.id, "SUSPENDED")
    status, body, _ = await raw_get(
        setup, data_plane_of(setup.provider.app).urls.asset_endpoint(setup.asset_id),
        props(consumer)[PROP_AUTHORIZATION])
    assert (status, body["code"]) == (403, "transfer-not-started")
    with pytest.raises(PullRefused, match="SUSPENDED"):
        await pull(setup.consumer.app, consumer.id)
    p = props(consumer)
    status, refused = await refresh_as(setup, setup.consumer.app[IDENTITY].signing_key,
                                       p[PROP_REFRESH_TOKEN], p[PROP_REFRESH_ENDPOINT])
    assert (status, refused["error"]) == (400, "invalid_grant")
    assert refused["error_description"].startswith("transfer-not-started")
    await resume_transfer(setup.provider.app, provider.id)
    resumed = await wait_transfer(setup.consumer.app, consumer.id, "STARTED")
    assert (resumed.reason_kind, resumed.reason_detail) == (None, None), "suspension is over"
    assert (await pull(setup.consumer.app, consumer.id)).body


# --- the negotiation decision ------------------------------------------------------------------


async def test_a_participant_off_the_allow_list_cannot_negotiate(tmp_path: Path,
                                                                 setup: Setup) -> None:
    async with node(tmp_path / "stranger", setup.clock) as stranger:
        pid = await start_negotiation(stranger.app, setup.provider.url, setup.offer)
        await wait_state(stranger.app, pid, "TERMINATED")
        async with stranger.app[STORE].read() as reader:
            record = await reader.get_negotiation(pid)
    assert record is not None and record.reason_kind == "policy"
    assert record.failed_constraint is not None and "constraint" in record.failed_constraint


async def test_an_offer_stripped_of_its_time_limit_is_refused(setup: Setup) -> None:
    stripped = setup.offer.model_copy(update={"permission": [m.Rule(action="use")]})
    pid = await start_negotiation(setup.consumer.app, setup.provider.url, stripped)
    await wait_state(setup.consumer.app, pid, "TERMINATED")
    async with setup.consumer.app[STORE].read() as reader:
        record = await reader.get_negotiation(pid)
        agreements = await reader.list_agreements()
    assert record is not None and record.failed_constraint == "offer"
    assert agreements == []



# --- the CLI -----------------------------------------------------------------------------------


async def test_bpc_fetch_gets_the_data_then_reports_the_refusal(setup: Setup,
                                                               tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from connector.cli import app as bpc

    consumer, _ = await started(setup)
    env = {"BPC_NODE_URL": setup.consumer.url, "BPC_API_KEY": OPERATOR_KEY, "COLUMNS": "200"}

    def run(*args: str) -> Any:  # the CLI blocks: run it off the loop that serves the nodes
        return asyncio.to_thread(CliRunner().invoke, bpc, list(args), env=env)

    result = await run("fetch", consumer.id)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"] == DISMANTLING
    target = tmp_path / "dismantling.json"
    result = await run("fetch", consumer.id, "-o", str(target))
    assert result.exit_code == 0 and json.loads(target.read_bytes())["data"] == DISMANTLING
    setup.clock.advance(timedelta(days=8))
    result = await run("fetch", consumer.id)
    assert result.exit_code == 2
    assert "no longer in force" in result.output or "expired" in result.output
    result = await run("fetch", "urn:uuid:no-such-transfer")
    assert result.exit_code == 2 and "no transfer" in result.output


async def test_the_catalog_says_where_public_data_is_and_it_is_there(setup: Setup) -> None:
    status, catalog = await setup.manage(setup.consumer, "POST", "/management/catalog/request",
                                         {"counterPartyAddress": setup.provider.url})
    assert status == 200, catalog
    datasets = {d["@id"]: d for d in catalog["dataset"]}
    public = datasets[setup.public_asset_id]["distribution"][0]
    assert "dcat:accessURL" not in datasets[setup.asset_id]["distribution"][0]
    status, body, _ = await raw_get(setup, public["dcat:accessURL"], None)
    assert status == 200 and body["data"] == {"chemistry": "NMC811"}
    from connector.dsp import schemas

    assert schemas.schema_errors(catalog, "Catalog") == []


async def test_bpc_policy_explain_says_who_may_see_a_dataset_and_why_not(setup: Setup) -> None:
    from typer.testing import CliRunner

    from connector.cli import app as bpc

    env = {"BPC_NODE_URL": setup.provider.url, "BPC_API_KEY": OPERATOR_KEY, "COLUMNS": "250"}

    def run(*args: str) -> Any:
        return asyncio.to_thread(CliRunner().invoke, bpc, list(args), env=env)

    recycler = setup.consumer.app[IDENTITY].did
    result = await run("policy", "explain", setup.asset_id, "--participant", recycler)
    assert result.exit_code == 0, result.output
    assert "is offered to" in result.output
    stranger = "did:web:stranger.example"
    result = await run("policy", "explain", setup.asset_id, "--participant", stranger, "--json")
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    (offer,) = answer["offers"]
    assert answer["visible"] is False and offer["leftOperand"].endswith("participantDid")
    assert stranger in offer["reason"]
    result = await run("policy", "explain", "urn:asset:nope", "--participant", stranger)
    assert result.exit_code == 2
