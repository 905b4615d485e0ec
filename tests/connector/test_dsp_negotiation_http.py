"""Contract negotiation over HTTP between two REAL nodes on loopback (no mocks).

Each node is ``create_app(config, dsp_settings=...)`` (negotiation routes and outbox included), with
its own did:web (``http://127.0.0.1:<port>``, resolved over the socket), keystore and SQLite
store in a tmp dir. The consumer starts with ``start_negotiation``; everything after that is
the nodes talking to each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connector.app import IDENTITY, STORE, create_app
from connector.config import NodeConfig
from connector.dsp import messages as m
from connector.dsp.client import Delivery, DspClient
from connector.dsp.negotiation_service import (
    Decision,
    DspSettings,
    start_negotiation,
)
from connector.participant_auth import RequestSigner, sign_request
from connector.serve import RunningNode, running_node
from connector.store import AssetRecord, OfferRecord
from credentials.did_key import key_from_seed
from credentials.keys import Ed25519Key

PASSPHRASE_ENV = "BPC_TEST_DSP_PASSPHRASE"
ASSET = "urn:asset:battery-1"
OFFER = m.MessageOffer(id="urn:offer:battery-1", target=ASSET,
                       permission=[m.Rule(action="use")])
OUTSIDER = key_from_seed(bytes(range(7, 39)))
"""A participant (did:key) that is party to no negotiation."""


def fast_settings(**overrides: Any) -> DspSettings:
    values: dict[str, Any] = {"backoff_base_s": 0.05, "backoff_cap_s": 0.3, "lease_s": 1.0,
                              "poll_interval_s": 0.5, "max_attempts": 60}
    values.update(overrides)
    return DspSettings(**values)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_for(data_dir: Path, port: int) -> NodeConfig:
    return NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                      keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1)


def build_app(config: NodeConfig, settings: DspSettings) -> web.Application:
    return create_app(config, dsp_settings=settings)


@contextlib.asynccontextmanager
async def node(data_dir: Path, port: int, settings: DspSettings) -> AsyncIterator[RunningNode]:
    config = config_for(data_dir, port)
    async with running_node(config, build_app(config, settings)) as running:
        yield running


async def seed_offer(app: web.Application) -> None:
    async with app[STORE].transaction() as tx:
        await tx.put_asset(AssetRecord(id=ASSET, access_level="public"))
        await tx.put_offer(OfferRecord(id=OFFER.id, asset_id=ASSET, offer=OFFER.to_json()))


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def state_of(app: web.Application, pid: str) -> str | None:
    async with app[STORE].read() as reader:
        record = await reader.get_negotiation(pid)
    return None if record is None else record.state


async def wait_state(app: web.Application, pid: str, state: str) -> None:
    async def reached() -> bool:
        return await state_of(app, pid) == state

    try:
        await wait_for(reached)
    except AssertionError:
        raise AssertionError(f"{pid} is {await state_of(app, pid)}, not {state}") from None


async def provider_pid_of(consumer: web.Application, consumer_pid: str) -> str:
    async def known() -> bool:
        async with consumer[STORE].read() as reader:
            record = await reader.get_negotiation(consumer_pid)
        return record is not None and record.counterparty_pid is not None

    await wait_for(known)
    async with consumer[STORE].read() as reader:
        record = await reader.get_negotiation(consumer_pid)
    assert record is not None and record.counterparty_pid is not None
    return record.counterparty_pid


async def snapshot(app: web.Application) -> list[Any]:
    """Everything a bad message must not change: negotiations, agreements, outbox."""
    async with app[STORE].read() as reader:
        negotiations = await reader.list_negotiations(limit=1000)
        agreements = await reader.list_agreements(limit=1000)
        outbox = await reader.list_outbox(limit=1000)
    return [[(n.id, n.state, n.version) for n in negotiations], [a.id for a in agreements],
            [o.id for o in outbox]]


@dataclass
class Pair:
    provider: RunningNode
    consumer: RunningNode
    session: aiohttp.ClientSession

    def as_(self, key: Ed25519Key) -> DspClient:
        return DspClient(self.session, RequestSigner(key))

    @property
    def provider_did(self) -> str:
        return self.provider.app[IDENTITY].did

    @property
    def consumer_key(self) -> Ed25519Key:
        return self.consumer.app[IDENTITY].signing_key


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    settings = fast_settings()
    async with (
        node(tmp_path / "provider", free_port(), settings) as provider,
        node(tmp_path / "consumer", free_port(), fast_settings()) as consumer,
        aiohttp.ClientSession() as session,
    ):
        await seed_offer(provider.app)
        yield Pair(provider, consumer, session)


async def negotiate(pair: Pair) -> tuple[str, str]:
    consumer_pid = await start_negotiation(pair.consumer.app, pair.provider.url, OFFER)
    await wait_state(pair.consumer.app, consumer_pid, "FINALIZED")
    provider_pid = await provider_pid_of(pair.consumer.app, consumer_pid)
    await wait_state(pair.provider.app, provider_pid, "FINALIZED")
    return consumer_pid, provider_pid


# --- the happy path ---------------------------------------------------------------------------


async def test_two_nodes_negotiate_to_finalized_and_both_store_the_agreement(pair: Pair) -> None:
    consumer_pid, provider_pid = await negotiate(pair)
    consumer_did = pair.consumer.app[IDENTITY].did
    async with pair.provider.app[STORE].read() as reader:
        provider_record = await reader.get_negotiation(provider_pid)
        provider_agreements = await reader.list_agreements()
    async with pair.consumer.app[STORE].read() as reader:
        consumer_record = await reader.get_negotiation(consumer_pid)
        consumer_agreements = await reader.list_agreements()
    assert provider_record is not None and consumer_record is not None
    assert provider_record.counterparty_pid == consumer_pid
    assert provider_record.counterparty_did == consumer_did
    assert len(provider_agreements) == len(consumer_agreements) == 1
    ours, theirs = provider_agreements[0], consumer_agreements[0]
    assert ours.id == theirs.id == provider_record.agreement_id == consumer_record.agreement_id
    assert ours.agreement == theirs.agreement
    assert ours.agreement["@type"] == "Agreement"
    assert ours.agreement["assigner"] == pair.provider_did == theirs.provider_did
    assert ours.agreement["assignee"] == consumer_did == ours.consumer_did
    assert ours.agreement["target"] == ASSET and "timestamp" in ours.agreement

    # GET answers the counterparty, on both sides.
    got = await pair.as_(pair.consumer_key).get(
        f"{pair.provider.url}/negotiations/{provider_pid}", audience=pair.provider_did)
    assert got.status == 200, got.body
    assert got.body["state"] == "FINALIZED" and got.body["consumerPid"] == consumer_pid
    assert isinstance(m.parse_message(got.body), m.ContractNegotiation)


# --- bad input: status, DSP error body, nothing stored changes -------------------------------


async def raw_post(pair: Pair, path: str, data: bytes, *, key: Ed25519Key | None,
                   audience: str | None = None) -> Delivery:
    url = f"{pair.provider.url}{path}"
    headers = {"Content-Type": "application/json"}
    if key is not None:
        token = sign_request(key, audience=audience or pair.provider_did, method="POST",
                             url=url, body=data)
        headers["Authorization"] = f"Bearer {token}"
    async with pair.session.post(url, data=data, headers=headers) as response:
        return Delivery(response.status, await response.json())


def initial_request(callback: str) -> dict[str, Any]:
    return m.ContractRequestMessage(consumer_pid="urn:uuid:outsider-1", offer=OFFER,
                                    callback_address=callback).to_json()


async def test_bad_inputs_get_their_dsp_status_and_change_nothing(pair: Pair) -> None:
    consumer_pid, provider_pid = await negotiate(pair)
    before = await snapshot(pair.provider.app)
    good = json.dumps(initial_request(pair.consumer.url)).encode()
    wrong_context = {**initial_request(pair.consumer.url),
                     "@context": ["https://w3id.org/dspace/2024/1/context.json"]}
    unknown_type = {**initial_request(pair.consumer.url), "@type": "ContractWishMessage"}
    termination = m.ContractNegotiationTerminationMessage(
        consumer_pid=consumer_pid, provider_pid=provider_pid, code="internal",
        reason=["changed my mind"]).to_json()
    verification = m.ContractAgreementVerificationMessage(
        consumer_pid=consumer_pid, provider_pid=provider_pid).to_json()

    cases: list[tuple[str, str, bytes, Ed25519Key | None, int, str]] = [
        ("malformed JSON", "/negotiations/request", b'{"@context": [', OUTSIDER, 400,
         "invalid-message"),
        ("wrong @context", "/negotiations/request", json.dumps(wrong_context).encode(),
         OUTSIDER, 400, "invalid-message"),
        ("unknown @type", "/negotiations/request", json.dumps(unknown_type).encode(),
         OUTSIDER, 400, "invalid-message"),
        ("no participant auth", "/negotiations/request", good, None, 401, "unauthorized"),
        ("callback not the caller's", "/negotiations/request", good, OUTSIDER, 400,
         "invalid-message"),
        ("someone else's negotiation", f"/negotiations/{provider_pid}/termination",
         json.dumps(termination).encode(), OUTSIDER, 404, "unknown-process"),
        ("unknown negotiation", "/negotiations/urn:uuid:nope/termination",
         json.dumps(termination).encode(), pair.consumer_key, 404, "unknown-process"),
        ("illegal transition: terminate after FINALIZED",
         f"/negotiations/{provider_pid}/termination", json.dumps(termination).encode(),
         pair.consumer_key, 400, "illegal-transition"),
        ("wrong message for the endpoint", f"/negotiations/{provider_pid}/termination",
         json.dumps(verification).encode(), pair.consumer_key, 400, "invalid-message"),
    ]
    for name, path, data, key, status, code in cases:
        result = await raw_post(pair, path, data, key=key)
        assert result.status == status, (name, result.body)
        assert result.body["@type"] == "ContractNegotiationError", name
        assert result.body["code"] == code, (name, result.body)
        assert await snapshot(pair.provider.app) == before, name

    # An invalid token (signed for another audience) is a 401 too.
    result = await raw_post(pair, "/negotiations/request", good, key=OUTSIDER,
                            audience="did:web:elsewhere.example")
    assert result.status == 401
    # GET of someone else's negotiation: 404, not a hint that it exists.
    got = await pair.as_(OUTSIDER).get(f"{pair.provider.url}/negotiations/{provider_pid}",
                                       audience=pair.provider_did)
    assert got.status == 404 and got.body["code"] == "unknown-process"
    assert await snapshot(pair.provider.app) == before


async def test_a_delivered_message_sent_again_does_not_advance_the_peer_twice(
    pair: Pair,
) -> None:
    consumer_pid, provider_pid = await negotiate(pair)
    async with pair.consumer.app[STORE].read() as reader:
        sent = await reader.list_outbox(process_id=consumer_pid)
    verification = next(o for o in sent if o.kind == "ContractAgreementVerificationMessage")
    assert verification.delivered_at is not None
    before = await snapshot(pair.provider.app)

    # Exactly what the outbox would re-send after a crash before mark_delivered.
    again = await pair.as_(pair.consumer_key).post(
        verification.target_url, verification.body, audience=pair.provider_did)
    assert again.status == 200, again.body
    assert again.body["state"] == "VERIFIED"  # answered as the first time
    assert await snapshot(pair.provider.app) == before
    assert await state_of(pair.provider.app, provider_pid) == "FINALIZED"

    # The repeated initial request is recognised too: same 201, same process.
    request = next(o for o in sent if o.kind == "ContractRequestMessage")
    again = await pair.as_(pair.consumer_key).post(
        request.target_url, request.body, audience=pair.provider_did)
    assert again.status == 201, again.body
    assert again.body["providerPid"] == provider_pid
    assert await snapshot(pair.provider.app) == before


# --- policy refusal ---------------------------------------------------------------------------


async def test_policy_refusal_terminates_with_a_typed_reason(pair: Pair) -> None:
    unoffered = m.MessageOffer(id="urn:offer:never-offered", target=ASSET,
                               permission=[m.Rule(action="use")])
    consumer_pid = await start_negotiation(pair.consumer.app, pair.provider.url, unoffered)
    await wait_state(pair.consumer.app, consumer_pid, "TERMINATED")
    provider_pid = await provider_pid_of(pair.consumer.app, consumer_pid)
    await wait_state(pair.provider.app, provider_pid, "TERMINATED")

    got = await pair.as_(pair.consumer_key).get(
        f"{pair.provider.url}/negotiations/{provider_pid}", audience=pair.provider_did)
    assert got.status == 200, got.body
    assert got.body["state"] == "TERMINATED"
    assert got.body["code"] == "policy"
    assert "not one this node offered" in got.body["reason"][0]
    async with pair.consumer.app[STORE].read() as reader:
        record = await reader.get_negotiation(consumer_pid)
        agreements = await reader.list_agreements()
    assert record is not None and record.reason_kind == "policy"
    assert agreements == []


async def test_custom_policy_names_the_failed_constraint(tmp_path: Path) -> None:
    class NoPurpose:
        async def decide(self, offer: m.MessageOffer, consumer_did: str,
                     **_: object) -> Decision:
            return Decision(False, failed_constraint="UsagePurpose",
                            detail="purpose cx.circular.dpp:1 required")

    async with (
        node(tmp_path / "p", free_port(), fast_settings(policy=NoPurpose())) as provider,
        node(tmp_path / "c", free_port(), fast_settings()) as consumer,
    ):
        consumer_pid = await start_negotiation(consumer.app, provider.url, OFFER)
        await wait_state(consumer.app, consumer_pid, "TERMINATED")
        async with consumer.app[STORE].read() as reader:
            record = await reader.get_negotiation(consumer_pid)
        assert record is not None
        assert (record.reason_kind, record.failed_constraint) == ("policy", "UsagePurpose")


# --- transport failures -----------------------------------------------------------------------


async def test_outbox_retries_while_the_consumer_is_down(tmp_path: Path) -> None:
    """The provider's agreement finds the consumer stopped; it is retried with backoff until
    the consumer is back on the same port, and the negotiation still finishes on both sides."""
    entered, gate = asyncio.Event(), asyncio.Event()

    class Gated:
        async def decide(self, offer: m.MessageOffer, consumer_did: str,
                     **_: object) -> Decision:
            entered.set()
            await gate.wait()
            return Decision(True)

    consumer_port = free_port()
    async with node(tmp_path / "p", free_port(), fast_settings(policy=Gated())) as provider:
        async with node(tmp_path / "c", consumer_port, fast_settings()) as consumer:
            consumer_pid = await start_negotiation(consumer.app, provider.url, OFFER)
            await asyncio.wait_for(entered.wait(), 10)
        # The consumer is down; let the provider decide and try to deliver the agreement.
        gate.set()

        async def retried() -> bool:
            async with provider.app[STORE].read() as reader:
                pending = await reader.list_outbox(pending_only=True)
            return any(o.kind == "ContractAgreementMessage" and o.attempts >= 2 for o in pending)

        await wait_for(retried)
        async with node(tmp_path / "c", consumer_port, fast_settings()) as consumer:
            await wait_state(consumer.app, consumer_pid, "FINALIZED")
            provider_pid = await provider_pid_of(consumer.app, consumer_pid)
            await wait_state(provider.app, provider_pid, "FINALIZED")
            async with provider.app[STORE].read() as reader:
                assert len(await reader.list_agreements()) == 1
            async with consumer.app[STORE].read() as reader:
                assert len(await reader.list_agreements()) == 1


async def test_gives_up_and_terminates_with_reason_transport(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with node(tmp_path / "c", free_port(), fast_settings(max_attempts=3)) as consumer:
        consumer_pid = await start_negotiation(consumer.app, dead, OFFER,
                                               provider_did="did:web:127.0.0.1%3A1")
        await wait_state(consumer.app, consumer_pid, "TERMINATED")
        async with consumer.app[STORE].read() as reader:
            record = await reader.get_negotiation(consumer_pid)
            outbox = await reader.list_outbox(process_id=consumer_pid)
        assert record is not None and record.reason_kind == "transport"
        assert [o.failed_at is not None for o in outbox] == [True]
        assert outbox[0].attempts == 2  # two reschedules, then the third failure gave up


async def test_terminating_before_the_provider_answered_withdraws_the_request(
    tmp_path: Path,
) -> None:
    """A request still in the outbox must not reach the provider after we ended it there."""
    from connector.dsp.negotiation_service import service_of
    from connector.dsp.process import TerminationKind, TerminationReason

    async with node(tmp_path / "c", free_port(), fast_settings()) as consumer:
        absent = f"http://127.0.0.1:{free_port()}"  # nobody listens: the request stays queued
        pid = await start_negotiation(consumer.app, absent, OFFER)
        reason = TerminationReason(TerminationKind.INTERNAL, None, "operator changed mind")
        assert await service_of(consumer.app).terminate_locally(pid, reason)
        async with consumer.app[STORE].read() as reader:
            pending = await reader.list_outbox(process_id=pid, pending_only=True)
            record = await reader.get_negotiation(pid)
        assert pending == []
        assert record is not None and record.state == "TERMINATED"


async def test_a_body_over_the_limit_gets_a_dsp_413_and_changes_nothing(pair: Pair) -> None:
    before = await snapshot(pair.provider.app)
    padded = {**initial_request(pair.consumer.url), "pad": "x" * (1024 * 1024)}
    big = json.dumps(padded).encode()
    for path, error_type in (("/negotiations/request", "ContractNegotiationError"),
                             ("/catalog/request", "CatalogError"),
                             ("/transfers/request", "TransferError")):
        result = await raw_post(pair, path, big, key=pair.consumer_key)
        assert result.status == 413, (path, result.body)
        assert result.body["@type"] == error_type, path
        assert result.body["code"] == "payload-too-large", path
    assert await snapshot(pair.provider.app) == before
