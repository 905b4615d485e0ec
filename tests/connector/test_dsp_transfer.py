"""Transfer process machine: the table, exhaustively; duplicates; PIDs; the TCK sequences.

TCK coverage: every TP (CUT = provider) and TP_C (CUT = consumer) scenario of
``../shared/dsp/tck/dsp-tck-2025-1-scenarios.json`` — 32 of them — is replayed between our
machine in the CUT role and our machine in the TCK's role, including the six negative ones of
each group (completion/suspension while REQUESTED, completion while SUSPENDED, anything after
TERMINATED), which must be 4xx with the CUT's state unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.dsp import messages as m
from connector.dsp import transfer
from connector.dsp.errors import ErrorCode, ProtocolError
from connector.dsp.process import (
    DataFlow,
    DataFlowAction,
    Direction,
    NeedsDecision,
    Role,
    TerminationKind,
    TerminationReason,
    Transition,
)
from connector.dsp.transfer import TABLE, TransferMessage, TransferProcessState

pytest.register_assert_rewrite("dsp_support")  # explain its asserts as the tests' own
import dsp_support as shared  # noqa: E402

K = TransferMessage
S = m.TransferState
CPID = "urn:uuid:consumer-transfer"
PPID = "urn:uuid:provider-transfer"
AGREEMENT_ID = "urn:uuid:agreement-1"
EDR = m.DataAddress(
    endpoint_type="https://w3id.org/idsa/v4.1/HTTP",
    endpoint="https://provider.example/public",
    endpoint_properties=[
        m.EndpointProperty(name="authorization", value="token-1"),
        m.EndpointProperty(name="authType", value="bearer"),
    ],
)
SINK = m.DataAddress(endpoint_type="https://w3id.org/idsa/v4.1/HTTP", endpoint="https://c/in")
REASON = TerminationReason(TerminationKind.POLICY, "DataUsageEndDate", "agreement expired")


def process_in(state: m.TransferState | None) -> TransferProcessState | None:
    common: dict[str, Any] = {
        "consumer_pid": CPID,
        "provider_pid": PPID,
        "agreement_id": AGREEMENT_ID,
        "format": "HttpData-PULL",
    }
    match state:
        case None:
            return None
        case S.REQUESTED:
            return transfer.Requested(**common)
        case S.STARTED:
            return transfer.Started(**common, data_address=EDR)
        case S.SUSPENDED:
            return transfer.Suspended(**common, reason=None)
        case S.COMPLETED:
            return transfer.Completed(**common)
        case S.TERMINATED:
            return transfer.Terminated(**common, reason=None)
    raise AssertionError(state)


ANY_PROCESS = process_in(S.REQUESTED)


def message_for(kind: TransferMessage, process: TransferProcessState | None) -> m.Message:
    target = process or ANY_PROCESS
    assert target is not None
    match kind:
        case K.REQUEST:
            return transfer.request(
                consumer_pid=CPID,
                agreement_id=AGREEMENT_ID,
                format="HttpData-PULL",
                callback_address="https://consumer.example/cb",
            )
        case K.START:
            return transfer.start(target, EDR)
        case K.COMPLETION:
            return transfer.complete(target)
        case K.SUSPENSION:
            return transfer.suspend(target, REASON)
        case K.TERMINATION:
            return transfer.terminate(target, REASON)
    raise AssertionError(kind)


def compose(party: shared.Party, kind: TransferMessage) -> m.Message:
    """What a replayed party sends: pull transfers, the provider's start carrying ``EDR``."""
    p = party.process
    if kind is K.REQUEST:
        return transfer.request(
            consumer_pid=party.pid,
            agreement_id="ATP0101",
            format="HttpData-PULL",
            callback_address=f"https://{party.name}/cb",
        )
    assert p is not None, f"{party.name} has no process to send {kind} in"
    return {
        K.START: lambda: transfer.start(p, EDR if party.role is Role.PROVIDER else None),
        K.COMPLETION: lambda: transfer.complete(p),
        K.SUSPENSION: lambda: transfer.suspend(p, REASON),
        K.TERMINATION: lambda: transfer.terminate(p, REASON),
    }[kind]()


CASE = shared.MachineCase(
    module=transfer,
    states=S,
    kinds=K,
    cpid=CPID,
    ppid=PPID,
    process_in=process_in,
    message_for=message_for,
    local_pid=lambda role: PPID,  # only a provider receives a creating message
    ack_type=m.TransferProcess,
    error_schema="TransferError",
    termination=K.TERMINATION,
    tck_groups=("TP", "TP_C"),
    tck_kinds={
        "TransferRequestMessage": K.REQUEST,
        "TransferStartMessage": K.START,
        "TransferCompletionMessage": K.COMPLETION,
        "TransferSuspensionMessage": K.SUSPENSION,
        "TransferTerminationMessage": K.TERMINATION,
    },
    signal="Signal to start transfer",
    compose=compose,
)
CROSS = CASE.cross()
LEGAL = CASE.legal()
Key = tuple[Role, m.TransferState | None, TransferMessage]


# --- the table, exhaustively -------------------------------------------------------------------


def test_the_cross_product_is_complete() -> None:
    assert len(CROSS) == 2 * 6 * 5
    assert len(LEGAL) == 14
    assert set(TABLE) <= set(CROSS)


@pytest.mark.parametrize("key", CROSS, ids=shared.case_id)
def test_every_received_message_in_every_state_matches_the_table(key: Key) -> None:
    shared.check_received(CASE, key)


@pytest.mark.parametrize("key", CROSS, ids=shared.case_id)
def test_the_sender_applies_the_same_row_when_its_message_is_acknowledged(key: Key) -> None:
    shared.check_sent(CASE, key)


def test_each_state_has_its_own_type() -> None:
    processes = [process_in(state) for state in S]
    assert len({type(p) for p in processes}) == len(S)
    assert [p.state for p in processes if p is not None] == list(S)


def test_terminal_states_accept_nothing() -> None:
    assert not [key for key in TABLE if key[1] in (S.COMPLETED, S.TERMINATED)]


def test_only_the_provider_starts_a_requested_transfer() -> None:
    assert (Role.CONSUMER, S.REQUESTED, K.START) in TABLE  # the consumer receives the start
    assert (Role.PROVIDER, S.REQUESTED, K.START) not in TABLE  # a consumer cannot start it


# --- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", LEGAL, ids=shared.case_id)
def test_a_repeated_message_is_a_duplicate_not_an_error(key: Key) -> None:
    shared.check_duplicate(CASE, key)


def test_a_retried_transfer_request_is_answered_like_the_first() -> None:
    """The spec asks providers to be idempotent on a repeated request with the same consumerPid."""
    request = message_for(K.REQUEST, None)
    first = transfer.transition(None, request, role=Role.PROVIDER, local_pid=PPID)
    assert isinstance(first, Transition)
    retry = transfer.transition(first.process, request, role=Role.PROVIDER, local_pid="urn:x")
    assert isinstance(retry, Transition)
    assert retry.duplicate and retry.status == 201
    assert retry.process.ack() == first.process.ack()


def test_a_retried_send_acknowledged_twice_does_not_advance_twice() -> None:
    started = process_in(S.STARTED)
    suspension = transfer.suspend(started, REASON)
    sent = transfer.transition(started, suspension, role=Role.PROVIDER, direction=Direction.SENT)
    assert isinstance(sent, Transition)
    again = transfer.transition(
        sent.process, suspension, role=Role.PROVIDER, direction=Direction.SENT
    )
    assert isinstance(again, Transition) and again.duplicate
    assert again.process is sent.process


# --- process ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [k for k in LEGAL if k[1] is not None], ids=shared.case_id)
@pytest.mark.parametrize("field", ["consumerPid", "providerPid"])
def test_a_message_naming_another_process_is_rejected(key: Key, field: str) -> None:
    result = shared.check_foreign_pid(CASE, key, field)
    assert (result.consumer_pid, result.provider_pid) == (CPID, PPID)


def test_a_request_for_an_existing_consumer_pid_is_not_a_second_process() -> None:
    requested = process_in(S.REQUESTED)
    other = transfer.request(
        consumer_pid=CPID, agreement_id="urn:other", format="HttpData-PULL", callback_address="x"
    )
    result = transfer.transition(requested, other, role=Role.PROVIDER)
    assert isinstance(result, ProtocolError)
    assert result.status == 400


def test_a_negotiation_message_is_not_a_transfer_message() -> None:
    message = m.ContractAgreementVerificationMessage(consumer_pid=CPID, provider_pid=PPID)
    shared.check_foreign_message(CASE, S.STARTED, message)


def test_unknown_process_helper_is_a_404_with_a_valid_body() -> None:
    shared.check_unknown_process_helper(CASE)


def test_creating_a_process_needs_the_pid_the_peer_cannot_know() -> None:
    shared.check_creating_needs_the_unknown_pid(CASE, message_for(K.REQUEST, None))


def test_the_consumer_takes_the_provider_pid_from_the_ack_and_checks_its_own() -> None:
    request = message_for(K.REQUEST, None)
    good = m.TransferProcess(consumer_pid=CPID, provider_pid="urn:p:new", state=S.REQUESTED)
    result = transfer.transition(
        None, request, role=Role.CONSUMER, direction=Direction.SENT, ack=good
    )
    assert isinstance(result, Transition)
    assert result.process.provider_pid == "urn:p:new"
    wrong = m.TransferProcess(consumer_pid="urn:c:x", provider_pid="urn:p:new", state=S.REQUESTED)
    bad = transfer.transition(
        None, request, role=Role.CONSUMER, direction=Direction.SENT, ack=wrong
    )
    assert isinstance(bad, ProtocolError)
    assert (bad.status, bad.code) == (502, ErrorCode.PROCESS_ID_MISMATCH)
    late = m.TransferProcess(consumer_pid=CPID, provider_pid="urn:p:new", state=S.STARTED)
    stale = transfer.transition(
        None, request, role=Role.CONSUMER, direction=Direction.SENT, ack=late
    )
    assert isinstance(stale, ProtocolError)
    assert stale.code is ErrorCode.STATE_MISMATCH


# --- what each state knows ---------------------------------------------------------------------


def test_pull_start_hands_the_consumer_the_data_address() -> None:
    requested = process_in(S.REQUESTED)
    result = transfer.transition(requested, transfer.start(requested, EDR), role=Role.CONSUMER)
    assert isinstance(result, Transition)
    assert isinstance(result.process, transfer.Started)
    assert result.process.data_address == EDR
    assert result.effects == (DataFlow(DataFlowAction.START),)


def test_push_request_carries_the_sink_and_asks_the_provider_to_decide() -> None:
    request = transfer.request(
        consumer_pid=CPID,
        agreement_id=AGREEMENT_ID,
        format="HttpData-PUSH",
        callback_address="https://consumer.example/cb",
        data_address=SINK,
    )
    result = transfer.transition(None, request, role=Role.PROVIDER, local_pid=PPID)
    assert isinstance(result, Transition)
    assert result.process.data_address == SINK
    assert result.process.agreement_id == AGREEMENT_ID
    assert result.process.peer_callback_address == "https://consumer.example/cb"
    assert result.effects == (NeedsDecision((K.START, K.TERMINATION)),)


def test_suspension_and_termination_keep_the_typed_reason() -> None:
    started = process_in(S.STARTED)
    suspended = transfer.transition(started, transfer.suspend(started, REASON), role=Role.CONSUMER)
    assert isinstance(suspended, Transition)
    assert isinstance(suspended.process, transfer.Suspended)
    assert suspended.process.reason == REASON
    assert suspended.process.data_address == EDR  # kept for resumption
    ended = transfer.transition(
        suspended.process, transfer.terminate(suspended.process, REASON), role=Role.CONSUMER
    )
    assert isinstance(ended, Transition)
    assert isinstance(ended.process, transfer.Terminated)
    assert ended.process.reason == REASON


# --- TCK scenarios -----------------------------------------------------------------------------


@shared.needs_scenarios
def test_all_32_transfer_scenarios_are_replayed() -> None:
    assert len(shared.load_scenarios(CASE)) == 32


@pytest.mark.parametrize("scenario", shared.load_scenarios(CASE), ids=lambda s: s["id"])
def test_tck_scenario_replays_against_the_machines(scenario: dict[str, Any]) -> None:
    shared.check_scenario(CASE, scenario)
