"""Transfer process over HTTP between two REAL nodes on loopback (no mocks).

The nodes are the negotiation test's (``create_app`` + did:web on 127.0.0.1 + SQLite), with the
transfer settings passed to ``create_app``. They negotiate an
agreement first (``negotiate``), then transfer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connector.app import IDENTITY, STORE, create_app
from connector.dsp import messages as m
from connector.dsp.negotiation_service import DspSettings
from connector.dsp.process import TerminationKind, TerminationReason
from connector.dsp.transfer_service import (
    TransferSettings,
    complete_transfer,
    start_transfer,
    terminate_transfer,
)
from connector.serve import RunningNode, running_node
from connector.store import AgreementRecord, TransferRecord
from tests.connector.test_dsp_negotiation_http import (
    OUTSIDER,
    PASSPHRASE_ENV,
    Pair,
    config_for,
    fast_settings,
    free_port,
    negotiate,
    seed_offer,
    wait_for,
)

EDR = {"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
       "endpoint": "http://127.0.0.1:1/data"}


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@contextlib.asynccontextmanager
async def node(data_dir: Path, port: int, settings: DspSettings,
               transfer: TransferSettings | None = None) -> AsyncIterator[RunningNode]:
    config = config_for(data_dir, port)
    app = create_app(config, dsp_settings=settings, transfer_settings=transfer)
    async with running_node(config, app) as running:
        yield running


def edr_hook(agreement: AgreementRecord, consumer_did: str) -> dict[str, Any] | None:
    return {**EDR, "endpoint": f"http://127.0.0.1:1/data/{agreement.asset_id}"}


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    provider_settings = fast_settings(allow_loopback_did_key_callbacks=True)
    async with (
        node(tmp_path / "provider", free_port(), provider_settings,
             TransferSettings(data_address=edr_hook)) as provider,
        node(tmp_path / "consumer", free_port(), fast_settings()) as consumer,
        aiohttp.ClientSession() as session,
    ):
        await seed_offer(provider.app)
        yield Pair(provider, consumer, session)


async def transfer_of(app: web.Application, pid: str) -> TransferRecord | None:
    async with app[STORE].read() as reader:
        return await reader.get_transfer(pid)


async def wait_transfer(app: web.Application, pid: str, state: str) -> TransferRecord:
    async def reached() -> bool:
        record = await transfer_of(app, pid)
        return record is not None and record.state == state

    try:
        await wait_for(reached)
    except AssertionError:
        record = await transfer_of(app, pid)
        raise AssertionError(f"{pid} is {record and record.state}, not {state}") from None
    record = await transfer_of(app, pid)
    assert record is not None
    return record


async def agreement_id(pair: Pair) -> str:
    await negotiate(pair)
    async with pair.consumer.app[STORE].read() as reader:
        agreements = await reader.list_agreements()
    assert len(agreements) == 1
    return agreements[0].id


async def started(pair: Pair) -> tuple[TransferRecord, TransferRecord]:
    """Negotiate, transfer to STARTED; (consumer record, provider record)."""
    agreement = await agreement_id(pair)
    consumer_pid = await start_transfer(pair.consumer.app, pair.provider.url, agreement)
    consumer = await wait_transfer(pair.consumer.app, consumer_pid, "STARTED")
    assert consumer.counterparty_pid is not None
    provider = await wait_transfer(pair.provider.app, consumer.counterparty_pid, "STARTED")
    return consumer, provider


async def snapshot(app: web.Application) -> list[Any]:
    async with app[STORE].read() as reader:
        transfers = await reader.list_transfers(limit=1000)
        outbox = await reader.list_outbox(limit=1000)
    return [[(t.id, t.state, t.version) for t in transfers], [o.id for o in outbox]]


def request_body(
    agreement: str, callback: str, consumer_pid: str = "urn:uuid:c-1"
) -> dict[str, Any]:
    return m.TransferRequestMessage(consumer_pid=consumer_pid, agreement_id=agreement,
                                    format="HttpData-PULL", callback_address=callback).to_json()


# --- happy paths --------------------------------------------------------------------------------


async def test_transfer_starts_with_the_hooks_data_address_then_completes(pair: Pair) -> None:
    consumer, provider = await started(pair)
    consumer_did = pair.consumer.app[IDENTITY].did
    assert provider.counterparty_pid == consumer.id
    assert provider.counterparty_did == consumer_did
    assert provider.agreement_id == consumer.agreement_id
    assert consumer.data_address is not None
    assert consumer.data_address["endpoint"] == f"http://127.0.0.1:1/data/{consumer.asset_id}"

    url = f"{pair.provider.url}/transfers/{provider.id}"
    got = await pair.as_(pair.consumer_key).get(url, audience=pair.provider_did)
    assert got.status == 200, got.body
    assert got.body["@type"] == "TransferProcess" and got.body["state"] == "STARTED"
    assert got.body["consumerPid"] == consumer.id and got.body["providerPid"] == provider.id
    hidden = await pair.as_(OUTSIDER).get(url, audience=pair.provider_did)
    assert hidden.status == 404 and hidden.body["@type"] == "TransferError"

    await complete_transfer(pair.consumer.app, consumer.id)
    await wait_transfer(pair.consumer.app, consumer.id, "COMPLETED")
    await wait_transfer(pair.provider.app, provider.id, "COMPLETED")


async def test_without_a_hook_the_start_carries_the_nodes_own_data_plane_grant(
    tmp_path: Path,
) -> None:
    async with (
        node(tmp_path / "p", free_port(), fast_settings()) as provider,
        node(tmp_path / "c", free_port(), fast_settings()) as consumer,
        aiohttp.ClientSession() as session,
    ):
        await seed_offer(provider.app)
        record, provider_record = await started(Pair(provider, consumer, session))
        assert record.data_address is not None
        assert record.data_address["endpoint"].startswith(provider.url + "/dataplane/assets/")
        async with provider.app[STORE].read() as reader:
            tokens = await reader.list_tokens(transfer_id=provider_record.id)
        assert len(tokens) == 1 and tokens[0].consumer_did == consumer.app[IDENTITY].did


async def test_provider_terminates_and_both_sides_end_terminated(pair: Pair) -> None:
    consumer, provider = await started(pair)
    reason = TerminationReason(TerminationKind.POLICY, None, "agreement retired")
    await terminate_transfer(pair.provider.app, provider.id, reason)
    ended = await wait_transfer(pair.consumer.app, consumer.id, "TERMINATED")
    assert ended.reason_detail is not None and "agreement retired" in ended.reason_detail
    await wait_transfer(pair.provider.app, provider.id, "TERMINATED")
    with pytest.raises(ValueError):  # nothing after TERMINATED
        await complete_transfer(pair.provider.app, provider.id)


# --- bad inputs ---------------------------------------------------------------------------------


async def test_unknown_or_someone_elses_agreement_is_404_and_changes_nothing(pair: Pair) -> None:
    agreement = await agreement_id(pair)
    before = await snapshot(pair.provider.app)
    target = f"{pair.provider.url}/transfers/request"

    unknown = await pair.as_(pair.consumer_key).post(
        target, request_body("urn:uuid:no-such-agreement", pair.consumer.url),
        audience=pair.provider_did)
    assert unknown.status == 404, unknown.body
    assert unknown.body["@type"] == "TransferError"
    assert unknown.body["code"] == "unknown-agreement"

    # Another participant (did:key, loopback callbacks allowed) names the real agreement.
    stolen = await pair.as_(OUTSIDER).post(
        target, request_body(agreement, "http://127.0.0.1:9/cb"), audience=pair.provider_did)
    assert stolen.status == 404, stolen.body
    assert stolen.body == {**unknown.body, "reason": stolen.body["reason"]}

    # A callback that is not the caller's: 400.
    foreign = await pair.as_(pair.consumer_key).post(
        target, request_body(agreement, "http://example.org/cb"), audience=pair.provider_did)
    assert foreign.status == 400 and foreign.body["code"] == "invalid-message"

    # Not a transfer request at all: 400.
    wrong = await pair.as_(pair.consumer_key).post(
        target, m.TransferCompletionMessage(consumer_pid="a", provider_pid="b").to_json(),
        audience=pair.provider_did)
    assert wrong.status == 400

    # Unknown process on a callback: 404.
    nowhere = await pair.as_(pair.consumer_key).post(
        f"{pair.provider.url}/transfers/urn:uuid:nope/completion",
        m.TransferCompletionMessage(consumer_pid="a", provider_pid="urn:uuid:nope").to_json(),
        audience=pair.provider_did)
    assert nowhere.status == 404
    assert await snapshot(pair.provider.app) == before


async def test_illegal_transition_is_400_and_repeats_are_idempotent(pair: Pair) -> None:
    consumer, provider = await started(pair)
    client = pair.as_(pair.consumer_key)
    base = f"{pair.provider.url}/transfers/{provider.id}"
    ids = {"consumer_pid": consumer.id, "provider_pid": provider.id}

    # The consumer may not "start" a STARTED transfer.
    illegal = await client.post(f"{base}/start", m.TransferStartMessage(**ids).to_json(),
                                audience=pair.provider_did)
    assert illegal.status == 400, illegal.body
    assert illegal.body["code"] == "illegal-transition"
    unchanged = await transfer_of(pair.provider.app, provider.id)
    assert unchanged is not None and unchanged.state == "STARTED"

    completion = m.TransferCompletionMessage(**ids).to_json()
    first = await client.post(f"{base}/completion", completion, audience=pair.provider_did)
    assert first.status == 200 and first.body["state"] == "COMPLETED"
    before = await snapshot(pair.provider.app)
    again = await client.post(f"{base}/completion", completion, audience=pair.provider_did)
    assert (again.status, again.body) == (first.status, first.body)
    assert await snapshot(pair.provider.app) == before

    # After COMPLETED, a termination is illegal.
    late = await client.post(f"{base}/termination",
                             m.TransferTerminationMessage(**ids, code="x", reason=["y"]).to_json(),
                             audience=pair.provider_did)
    assert late.status == 400 and late.body["code"] == "illegal-transition"


async def test_a_repeated_transfer_request_is_answered_as_the_first(pair: Pair) -> None:
    agreement = await agreement_id(pair)
    client = pair.as_(pair.consumer_key)
    body = request_body(agreement, pair.consumer.url, consumer_pid="urn:uuid:manual-1")
    target = f"{pair.provider.url}/transfers/request"
    first = await client.post(target, body, audience=pair.provider_did)
    assert first.status == 201, first.body
    assert first.body["state"] == "REQUESTED"
    again = await client.post(target, body, audience=pair.provider_did)
    assert (again.status, again.body) == (first.status, first.body)
    async with pair.provider.app[STORE].read() as reader:
        transfers = await reader.list_transfers()
    assert [t.id for t in transfers] == [first.body["providerPid"]]
    assert transfers[0].state == "STARTED"


async def test_the_same_message_after_the_process_moved_on_is_new_not_a_retry(
        pair: Pair) -> None:
    """Suspend, resume, then the identical suspension again: a new suspension (TCK TP_C:01-04
    resumes with the start message it started with), not a retry answered from history."""
    consumer, provider = await started(pair)
    client = pair.as_(pair.consumer_key)
    base = f"{pair.provider.url}/transfers/{provider.id}"
    ids = {"consumer_pid": consumer.id, "provider_pid": provider.id}
    suspension = m.TransferSuspensionMessage(**ids, code="x", reason=["pause"]).to_json()
    resume = m.TransferStartMessage(**ids).to_json()
    for _ in range(2):
        paused = await client.post(f"{base}/suspension", suspension, audience=pair.provider_did)
        assert paused.status == 200, paused.body
        stored = await transfer_of(pair.provider.app, provider.id)
        assert stored is not None and stored.state == "SUSPENDED"
        resumed = await client.post(f"{base}/start", resume, audience=pair.provider_did)
        assert resumed.status == 200, resumed.body
        stored = await transfer_of(pair.provider.app, provider.id)
        assert stored is not None and stored.state == "STARTED"
    # A retry of the message that produced the current state is still answered as the first.
    again = await client.post(f"{base}/start", resume, audience=pair.provider_did)
    assert again.status == 200 and again.body["state"] == "STARTED"
