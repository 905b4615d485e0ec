"""Contract negotiation machine: the table, exhaustively; duplicates; PIDs; the TCK sequences.

TCK coverage: every CN (CUT = provider) and CN_C (CUT = consumer) scenario of
``../shared/dsp/tck/dsp-tck-2025-1-scenarios.json`` — 31 of them — is replayed as a message
sequence between our machine in the CUT role and our machine in the TCK's role. MET and CAT
scenarios have no state machine and are not replayed here (their messages are covered by
``test_dsp_messages.py``); TP/TP_C are in ``test_dsp_transfer.py``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.dsp import docs, negotiation
from connector.dsp import messages as m
from connector.dsp.errors import ErrorCode, ProtocolError
from connector.dsp.negotiation import TABLE, NegotiationMessage, NegotiationProcess
from connector.dsp.process import (
    Direction,
    Role,
    TerminationKind,
    TerminationReason,
    Transition,
)

pytest.register_assert_rewrite("dsp_support")  # explain its asserts as the tests' own
import dsp_support as shared  # noqa: E402

K = NegotiationMessage
S = m.NegotiationState
CPID = "urn:uuid:consumer-process"
PPID = "urn:uuid:provider-process"
OFFER = m.MessageOffer(
    id="urn:uuid:offer-1", target="urn:uuid:dataset-1", permission=[m.Rule(action="use")]
)
COUNTER = m.MessageOffer(
    id="urn:uuid:offer-2", target="urn:uuid:dataset-1", prohibition=[m.Rule(action="distribute")]
)
AGREEMENT = negotiation.agreement_from_offer(
    OFFER,
    agreement_id="urn:uuid:agreement-1",
    assigner="did:web:provider.example",
    assignee="did:web:consumer.example",
    timestamp=datetime(2026, 3, 1, tzinfo=UTC),
)
REASON = TerminationReason(TerminationKind.POLICY, "purpose", "purpose not offered")


def process_in(state: m.NegotiationState | None) -> NegotiationProcess | None:
    """A process in ``state`` with the fixed PIDs (``None``: no process yet)."""
    common: dict[str, Any] = {"consumer_pid": CPID, "provider_pid": PPID, "offer": OFFER}
    match state:
        case None:
            return None
        case S.REQUESTED:
            return negotiation.Requested(**common)
        case S.OFFERED:
            return negotiation.Offered(**common)
        case S.ACCEPTED:
            return negotiation.Accepted(**common)
        case S.AGREED:
            return negotiation.Agreed(**common, agreement=AGREEMENT)
        case S.VERIFIED:
            return negotiation.Verified(**common, agreement=AGREEMENT)
        case S.FINALIZED:
            return negotiation.Finalized(**common, agreement=AGREEMENT)
        case S.TERMINATED:
            return negotiation.Terminated(**common, reason=None)
    raise AssertionError(state)


ANY_PROCESS = negotiation.Requested(consumer_pid=CPID, provider_pid=PPID, offer=OFFER)


def message_for(kind: NegotiationMessage, process: NegotiationProcess | None) -> m.Message:
    """A well-formed message of ``kind`` for ``process``; the initial form when there is none."""
    target = process or ANY_PROCESS
    match kind:
        case K.REQUEST if process is None:
            return negotiation.initial_request(
                consumer_pid=CPID, offer=OFFER, callback_address="https://consumer.example/cb"
            )
        case K.REQUEST:
            return negotiation.counter_request(target, COUNTER)
        case K.OFFER if process is None:
            return negotiation.initial_offer(
                provider_pid=PPID, offer=OFFER, callback_address="https://provider.example/cb"
            )
        case K.OFFER:
            return negotiation.counter_offer(target, COUNTER)
        case K.ACCEPTED:
            return negotiation.accept(target)
        case K.AGREEMENT:
            return negotiation.agree(target, AGREEMENT)
        case K.VERIFICATION:
            return negotiation.verify(target)
        case K.FINALIZED:
            return negotiation.finalize(target)
        case K.TERMINATION:
            return negotiation.terminate(target, REASON)
    raise AssertionError(kind)


def local_pid(role: Role) -> str:
    return PPID if role is Role.PROVIDER else CPID


def compose(party: shared.Party, kind: NegotiationMessage) -> m.Message:
    """What a replayed party sends (``OFFER`` each time; the TCK's agreement is ``AGREEMENT``)."""
    p = party.process
    if kind is K.REQUEST and p is None:
        return negotiation.initial_request(
            consumer_pid=party.pid, offer=OFFER, callback_address=f"https://{party.name}/cb"
        )
    assert p is not None, f"{party.name} has no process to send {kind} in"
    return {
        K.REQUEST: lambda: negotiation.counter_request(p, OFFER),
        K.OFFER: lambda: negotiation.counter_offer(p, OFFER),
        K.ACCEPTED: lambda: negotiation.accept(p),
        K.AGREEMENT: lambda: negotiation.agree(p, AGREEMENT),
        K.VERIFICATION: lambda: negotiation.verify(p),
        K.FINALIZED: lambda: negotiation.finalize(p),
        K.TERMINATION: lambda: negotiation.terminate(p, REASON),
    }[kind]()


def sequence_of(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = scenario["sequence"]
    if scenario["id"] == "CN:01-03":
        # The scenario file's note: the diagram ends with a CUT termination after FINALIZED,
        # but the test code stops at FINALIZED (and such a termination would be illegal).
        assert [s["message"] for s in steps[-2:]] == [
            "ContractNegotiationTerminationMessage",
            "200 OK",
        ]
        return steps[:-2]
    return steps


CASE = shared.MachineCase(
    module=negotiation,
    states=S,
    kinds=K,
    cpid=CPID,
    ppid=PPID,
    process_in=process_in,
    message_for=message_for,
    local_pid=local_pid,
    ack_type=m.ContractNegotiation,
    error_schema="ContractNegotiationError",
    termination=K.TERMINATION,
    tck_groups=("CN", "CN_C"),
    tck_kinds={
        "ContractRequestMessage": K.REQUEST,
        "ContractOfferMessage": K.OFFER,
        "ContractNegotiationEventMessage:accepted": K.ACCEPTED,
        "ContractAgreementMessage": K.AGREEMENT,
        "ContractAgreementVerificationMessage": K.VERIFICATION,
        "ContractVerificationMessage": K.VERIFICATION,  # the TCK's diagrams use both names
        "ContractNegotiationEventMessage:finalized": K.FINALIZED,
        "ContractNegotiationTerminationMessage": K.TERMINATION,
    },
    signal="Signal to start negotiation",
    compose=compose,
    sequence_of=sequence_of,
)
CROSS = CASE.cross()
LEGAL = CASE.legal()
Key = tuple[Role, m.NegotiationState | None, NegotiationMessage]


# --- the table, exhaustively -------------------------------------------------------------------


def test_the_cross_product_is_complete() -> None:
    assert len(CROSS) == 2 * 8 * 7
    assert len(LEGAL) == 19
    assert set(TABLE) <= set(CROSS)


@pytest.mark.parametrize("key", CROSS, ids=shared.case_id)
def test_every_received_message_in_every_state_matches_the_table(key: Key) -> None:
    result = shared.check_received(CASE, key)
    if result is not None:
        assert result.previous is key[1]
        assert not result.duplicate


@pytest.mark.parametrize("key", CROSS, ids=shared.case_id)
def test_the_sender_applies_the_same_row_when_its_message_is_acknowledged(key: Key) -> None:
    shared.check_sent(CASE, key)


def test_state_machines_md_is_generated_from_the_tables() -> None:
    assert docs.DOC_PATH.read_text("utf-8") == docs.render(), (
        "STATE_MACHINES.md is stale: run `python -m connector.dsp.docs`"
    )


def test_each_state_has_its_own_type() -> None:
    types = {type(process_in(state)) for state in S}
    assert len(types) == len(S)
    assert all(cls.state is state for state in S for cls in [type(process_in(state))])


def test_terminal_states_accept_nothing() -> None:
    assert not [key for key in TABLE if key[1] in (S.FINALIZED, S.TERMINATED)]


def test_no_message_is_accepted_by_both_roles_in_the_same_state_except_termination() -> None:
    """Each message has one sender, so only one role can receive it (events by eventType)."""
    for state, kind in itertools.product([None, *S], K):
        receivers = [role for role in Role if (role, state, kind) in TABLE]
        assert len(receivers) <= 1 or kind is K.TERMINATION, (state, kind)


# --- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", LEGAL, ids=shared.case_id)
def test_a_repeated_message_is_a_duplicate_not_an_error(key: Key) -> None:
    shared.check_duplicate(CASE, key)


@pytest.mark.parametrize("key", LEGAL, ids=shared.case_id)
def test_a_retried_send_acknowledged_twice_does_not_advance_twice(key: Key) -> None:
    receiver, state, kind = key
    message = message_for(kind, process_in(state))
    ack = m.ContractNegotiation(consumer_pid=CPID, provider_pid=PPID, state=TABLE[key].next)
    sent = negotiation.transition(
        process_in(state), message, role=receiver.peer, direction=Direction.SENT, ack=ack
    )
    assert isinstance(sent, Transition)
    again = negotiation.transition(
        sent.process, message, role=receiver.peer, direction=Direction.SENT, ack=ack
    )
    assert isinstance(again, Transition)
    assert again.duplicate
    assert again.process is sent.process


def test_the_same_content_from_the_other_direction_is_not_a_duplicate() -> None:
    process = process_in(S.REQUESTED)
    termination = negotiation.terminate(process, REASON)
    sent = negotiation.transition(
        process, termination, role=Role.PROVIDER, direction=Direction.SENT
    )
    assert isinstance(sent, Transition)
    assert not sent.duplicate
    # The same bytes now arriving from the peer find a terminal state: an error, not a no-op.
    received = negotiation.transition(sent.process, termination, role=Role.PROVIDER)
    assert isinstance(received, ProtocolError)


def test_a_new_message_with_the_same_content_but_its_own_id_is_judged_afresh() -> None:
    """CN:03-04: the TCK stamps every message with a fresh @id; the second counter-request is
    new, and REQUESTED does not accept a request."""
    offered = process_in(S.OFFERED)
    counter = negotiation.counter_request(offered, COUNTER)
    first_doc = {**counter.to_json(), "@id": "urn:uuid:message-1"}
    second_doc = {**counter.to_json(), "@id": "urn:uuid:message-2"}
    first = negotiation.transition(offered, m.parse_message(first_doc), role=Role.PROVIDER)
    assert isinstance(first, Transition)
    repeat = negotiation.transition(first.process, m.parse_message(first_doc), role=Role.PROVIDER)
    assert isinstance(repeat, Transition) and repeat.duplicate
    second = negotiation.transition(first.process, m.parse_message(second_doc), role=Role.PROVIDER)
    assert isinstance(second, ProtocolError)
    assert (second.status, second.code) == (400, ErrorCode.ILLEGAL_TRANSITION)


def test_only_the_message_that_produced_the_state_is_a_duplicate() -> None:
    """A repeat of an older message, after the process moved on, is judged on the table."""
    requested = negotiation.transition(
        None, message_for(K.REQUEST, None), role=Role.PROVIDER, local_pid=PPID
    )
    assert isinstance(requested, Transition)
    offer = negotiation.counter_offer(requested.process, COUNTER)
    offered = negotiation.transition(
        requested.process, offer, role=Role.PROVIDER, direction=Direction.SENT
    )
    assert isinstance(offered, Transition)
    late = negotiation.transition(
        offered.process, message_for(K.REQUEST, None), role=Role.PROVIDER, local_pid=PPID
    )
    assert isinstance(late, ProtocolError)
    assert late.status == 400


# --- process ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [k for k in LEGAL if k[1] is not None], ids=shared.case_id)
@pytest.mark.parametrize("field", ["consumerPid", "providerPid"])
def test_a_message_naming_another_process_is_rejected(key: Key, field: str) -> None:
    result = shared.check_foreign_pid(CASE, key, field)
    assert "someone-else" in result.reason
    # The error body names *our* process, never the one the peer guessed.
    body = result.body()
    assert (body.consumer_pid, body.provider_pid) == (CPID, PPID)


def test_a_continuation_without_a_process_is_an_unknown_process() -> None:
    counter = negotiation.counter_request(ANY_PROCESS, COUNTER)
    result = negotiation.transition(None, counter, role=Role.PROVIDER, local_pid=PPID)
    assert isinstance(result, ProtocolError)
    assert (result.status, result.code) == (404, ErrorCode.UNKNOWN_PROCESS)


def test_an_initial_request_cannot_continue_an_existing_process() -> None:
    initial = message_for(K.REQUEST, None)
    result = negotiation.transition(process_in(S.OFFERED), initial, role=Role.PROVIDER)
    assert isinstance(result, ProtocolError)
    assert (result.status, result.code) == (400, ErrorCode.PROCESS_ID_MISMATCH)


def test_unknown_process_helper_is_a_404_with_a_valid_body() -> None:
    shared.check_unknown_process_helper(CASE)


def test_a_transfer_message_is_not_a_negotiation_message() -> None:
    message = m.TransferCompletionMessage(consumer_pid=CPID, provider_pid=PPID)
    shared.check_foreign_message(CASE, S.REQUESTED, message)


def test_creating_a_process_needs_the_pid_the_peer_cannot_know() -> None:
    shared.check_creating_needs_the_unknown_pid(CASE, message_for(K.REQUEST, None))


def test_a_creating_send_takes_the_peer_pid_from_the_ack() -> None:
    ack = m.ContractNegotiation(
        consumer_pid=CPID, provider_pid="urn:uuid:minted", state=S.REQUESTED
    )
    result = negotiation.transition(
        None, message_for(K.REQUEST, None), role=Role.CONSUMER, direction=Direction.SENT, ack=ack
    )
    assert isinstance(result, Transition)
    assert result.process.provider_pid == "urn:uuid:minted"
    assert result.process.peer_callback_address is None


@pytest.mark.parametrize(
    ("ack", "code"),
    [
        (m.ContractNegotiation(consumer_pid="urn:x", provider_pid=PPID, state=S.REQUESTED),
         ErrorCode.PROCESS_ID_MISMATCH),
        (m.ContractNegotiation(consumer_pid=CPID, provider_pid=PPID, state=S.AGREED),
         ErrorCode.STATE_MISMATCH),
    ],
)
def test_a_contradicting_ack_is_reported(ack: m.ContractNegotiation, code: ErrorCode) -> None:
    result = negotiation.transition(
        None, message_for(K.REQUEST, None), role=Role.CONSUMER, direction=Direction.SENT, ack=ack
    )
    assert isinstance(result, ProtocolError)
    assert (result.status, result.code) == (502, code)


# --- what each state knows ---------------------------------------------------------------------


def test_the_provider_learns_the_consumer_callback_from_the_initial_request() -> None:
    result = negotiation.transition(
        None, message_for(K.REQUEST, None), role=Role.PROVIDER, local_pid=PPID
    )
    assert isinstance(result, Transition)
    assert result.process.peer_callback_address == "https://consumer.example/cb"
    assert result.process.ack().to_json() == {
        "@context": [m.DSP_CONTEXT],
        "@type": "ContractNegotiation",
        "providerPid": PPID,
        "consumerPid": CPID,
        "state": "REQUESTED",
    }


def test_termination_keeps_the_typed_reason_and_the_agreement() -> None:
    agreed = process_in(S.AGREED)
    result = negotiation.transition(
        agreed, negotiation.terminate(agreed, REASON), role=Role.PROVIDER
    )
    assert isinstance(result, Transition)
    assert isinstance(result.process, negotiation.Terminated)
    assert result.process.reason == REASON
    assert result.process.agreement == AGREEMENT


def test_agreement_from_offer_needs_an_aware_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone"):
        negotiation.agreement_from_offer(
            OFFER, agreement_id="a", assigner="p", assignee="c", timestamp=datetime(2026, 1, 1)
        )
    assert AGREEMENT.timestamp == "2026-03-01T00:00:00Z"
    assert AGREEMENT.permission == OFFER.permission


# --- TCK scenarios -----------------------------------------------------------------------------


@shared.needs_scenarios
def test_all_31_negotiation_scenarios_are_replayed() -> None:
    assert len(shared.load_scenarios(CASE)) == 31


@pytest.mark.parametrize("scenario", shared.load_scenarios(CASE), ids=lambda s: s["id"])
def test_tck_scenario_replays_against_the_machines(scenario: dict[str, Any]) -> None:
    cut, tck = shared.check_scenario(CASE, scenario)
    assert (cut.process.consumer_pid, cut.process.provider_pid) == (
        tck.process.consumer_pid,
        tck.process.provider_pid,
    )
