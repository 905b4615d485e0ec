"""The DSP 2025-1 contract negotiation state machine, as one table and a pure function.

``transition(process, message, role=…)`` answers "may this message move this negotiation, and
to what?" for a message we received (default) or one we sent and the peer acknowledged
(``direction=Direction.SENT``). It never raises for a protocol problem; it returns a
``ProtocolError`` carrying the status and body the HTTPS binding should answer with.

Per state there is one type (``Requested`` … ``Terminated``, run-dsp style) holding what is known
in that state — the offer on the table, the agreement once there is one, the typed termination
reason — so a caller can ``match`` on a process and never read an agreement that does not exist.

The table follows the state diagram of the specification
(``specifications/negotiation/figures/contract.negotiation.state.machine.puml``), with one
deliberate widening: the text lets either party terminate in any non-terminal state, so a
termination is accepted (and may be sent) wherever the diagram shows it for only one side; those
rows carry a note. Anything after FINALIZED or TERMINATED is an illegal transition (CN:03-01).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import (
    Agreement,
    ContractAgreementMessage,
    ContractAgreementVerificationMessage,
    ContractNegotiation,
    ContractNegotiationEventMessage,
    ContractNegotiationTerminationMessage,
    ContractOfferMessage,
    ContractRequestMessage,
    EventType,
    Message,
    MessageOffer,
    NegotiationState,
)
from connector.dsp.process import (
    Direction,
    MustSend,
    NeedsDecision,
    Role,
    Rule,
    TerminationReason,
    Transition,
    fingerprint,
    pid_mismatch,
    render_table,
)


class NegotiationMessage(StrEnum):
    """Message kinds the negotiation machine distinguishes (event messages by ``eventType``)."""

    REQUEST = "ContractRequestMessage"
    OFFER = "ContractOfferMessage"
    ACCEPTED = "ContractNegotiationEventMessage:ACCEPTED"
    AGREEMENT = "ContractAgreementMessage"
    VERIFICATION = "ContractAgreementVerificationMessage"
    FINALIZED = "ContractNegotiationEventMessage:FINALIZED"
    TERMINATION = "ContractNegotiationTerminationMessage"


NegotiationInput = (
    ContractRequestMessage
    | ContractOfferMessage
    | ContractAgreementMessage
    | ContractAgreementVerificationMessage
    | ContractNegotiationEventMessage
    | ContractNegotiationTerminationMessage
)


def message_kind(message: Message) -> NegotiationMessage | None:
    """The table key for ``message``, or ``None`` if it is not a negotiation message."""
    match message:
        case ContractRequestMessage():
            return NegotiationMessage.REQUEST
        case ContractOfferMessage():
            return NegotiationMessage.OFFER
        case ContractAgreementMessage():
            return NegotiationMessage.AGREEMENT
        case ContractAgreementVerificationMessage():
            return NegotiationMessage.VERIFICATION
        case ContractNegotiationEventMessage(event_type=EventType.ACCEPTED):
            return NegotiationMessage.ACCEPTED
        case ContractNegotiationEventMessage():
            return NegotiationMessage.FINALIZED
        case ContractNegotiationTerminationMessage():
            return NegotiationMessage.TERMINATION
    return None


# --- the table ---------------------------------------------------------------------------------

_S = NegotiationState
_K = NegotiationMessage
_P = Role.PROVIDER
_C = Role.CONSUMER

_PROVIDER_DECIDES = NeedsDecision((_K.OFFER, _K.AGREEMENT, _K.TERMINATION))
_CONSUMER_DECIDES = NeedsDecision((_K.REQUEST, _K.ACCEPTED, _K.TERMINATION))
_PROSE = "not in the state diagram; the text lets either party terminate"

TABLE: dict[tuple[Role, NegotiationState | None, NegotiationMessage], Rule[NegotiationState]] = {
    # The provider receives what the consumer sends.
    (_P, None, _K.REQUEST): Rule(_S.REQUESTED, (_PROVIDER_DECIDES,), "initial request; 201"),
    (_P, _S.OFFERED, _K.REQUEST): Rule(_S.REQUESTED, (_PROVIDER_DECIDES,), "counter-request"),
    (_P, _S.OFFERED, _K.ACCEPTED): Rule(
        _S.ACCEPTED, (NeedsDecision((_K.AGREEMENT, _K.TERMINATION)),)
    ),
    (_P, _S.AGREED, _K.VERIFICATION): Rule(_S.VERIFIED, (MustSend(_K.FINALIZED),)),
    (_P, _S.REQUESTED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_P, _S.OFFERED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_P, _S.ACCEPTED, _K.TERMINATION): Rule(_S.TERMINATED, note=_PROSE),
    (_P, _S.AGREED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_P, _S.VERIFIED, _K.TERMINATION): Rule(_S.TERMINATED, note=_PROSE),
    # The consumer receives what the provider sends.
    (_C, None, _K.OFFER): Rule(_S.OFFERED, (_CONSUMER_DECIDES,), "initial offer; 201"),
    (_C, _S.REQUESTED, _K.OFFER): Rule(_S.OFFERED, (_CONSUMER_DECIDES,), "counter-offer"),
    (_C, _S.REQUESTED, _K.AGREEMENT): Rule(
        _S.AGREED, (MustSend(_K.VERIFICATION),), "request agreed as is"
    ),
    (_C, _S.ACCEPTED, _K.AGREEMENT): Rule(_S.AGREED, (MustSend(_K.VERIFICATION),)),
    (_C, _S.VERIFIED, _K.FINALIZED): Rule(_S.FINALIZED),
    (_C, _S.REQUESTED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_C, _S.OFFERED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_C, _S.ACCEPTED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_C, _S.AGREED, _K.TERMINATION): Rule(_S.TERMINATED, note=_PROSE),
    (_C, _S.VERIFIED, _K.TERMINATION): Rule(_S.TERMINATED),
}
"""(receiver role, state or ``None`` for no process yet, message kind) → rule. Absent = 400."""


def render_markdown() -> str:
    """The table as Markdown (``STATE_MACHINES.md`` is generated from this)."""
    return render_table(TABLE, states=list(NegotiationState), kinds=list(NegotiationMessage))


# --- one type per state ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Negotiation:
    """What every negotiation state knows.

    ``offer`` is the offer last put on the table by either side (kept after agreement, so an
    agreement can be compared with what was offered). ``peer_callback_address`` is the peer's
    address when a message told us (initial request/offer); otherwise the caller knows it.
    ``fingerprint`` identifies the message that produced this state (duplicate detection).
    """

    state: ClassVar[NegotiationState]
    consumer_pid: str
    provider_pid: str
    offer: MessageOffer
    peer_callback_address: str | None = None
    fingerprint: str | None = None

    def ack(self) -> ContractNegotiation:
        """The ``ContractNegotiation`` body answering a message or a ``GET``."""
        return ContractNegotiation(
            consumer_pid=self.consumer_pid, provider_pid=self.provider_pid, state=self.state
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Requested(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Offered(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.OFFERED


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.ACCEPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Agreed(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.AGREED
    agreement: Agreement


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.VERIFIED
    agreement: Agreement


@dataclass(frozen=True, slots=True, kw_only=True)
class Finalized(_Negotiation):
    state: ClassVar[NegotiationState] = NegotiationState.FINALIZED
    agreement: Agreement


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated(_Negotiation):
    """Ended. ``reason`` is what the terminating side said (``None`` if it said nothing)."""

    state: ClassVar[NegotiationState] = NegotiationState.TERMINATED
    reason: TerminationReason | None
    agreement: Agreement | None = None


NegotiationProcess = Requested | Offered | Accepted | Agreed | Verified | Finalized | Terminated


# --- the transition function -------------------------------------------------------------------


def _pids(message: NegotiationInput) -> tuple[str | None, str | None]:
    return message.consumer_pid, message.provider_pid


def _is_initial(message: NegotiationInput) -> bool:
    """Initial request/offer: the message that creates a process (it names only its sender)."""
    return isinstance(message, ContractRequestMessage | ContractOfferMessage) and message.is_initial


def _error(
    process: NegotiationProcess | None,
    message: NegotiationInput | None,
    status: int,
    code: ErrorCode,
    reason: str,
) -> ProtocolError:
    if process is not None:
        consumer_pid: str | None = process.consumer_pid
        provider_pid: str | None = process.provider_pid
    elif message is not None:
        consumer_pid, provider_pid = _pids(message)
    else:
        consumer_pid = provider_pid = None
    return ProtocolError(
        area=Area.NEGOTIATION,
        status=status,
        code=code,
        reason=reason,
        consumer_pid=consumer_pid,
        provider_pid=provider_pid,
    )


def _enter(
    state: NegotiationState,
    previous: NegotiationProcess | None,
    message: NegotiationInput,
    *,
    consumer_pid: str,
    provider_pid: str,
    peer_callback_address: str | None,
    print_: str,
) -> NegotiationProcess:
    """Build the next state's value from the previous one and the message that caused it."""
    ids: dict[str, Any] = {
        "consumer_pid": consumer_pid,
        "provider_pid": provider_pid,
        "peer_callback_address": peer_callback_address,
        "fingerprint": print_,
    }
    if isinstance(message, ContractRequestMessage | ContractOfferMessage):
        cls = Requested if state is NegotiationState.REQUESTED else Offered
        return cls(offer=message.offer, **ids)
    if previous is None:  # only initial requests and offers create processes (see TABLE)
        raise AssertionError(f"{state} cannot be entered without a process")
    if isinstance(message, ContractAgreementMessage):
        return Agreed(offer=previous.offer, agreement=message.agreement, **ids)
    agreement = getattr(previous, "agreement", None)
    if isinstance(message, ContractNegotiationTerminationMessage):
        reason = TerminationReason.from_wire(message.code, message.reason)
        return Terminated(offer=previous.offer, agreement=agreement, reason=reason, **ids)
    if state is NegotiationState.ACCEPTED:
        return Accepted(offer=previous.offer, **ids)
    if agreement is None:
        raise AssertionError(f"{state} needs an agreement; {previous.state} has none")
    cls_with_agreement = Verified if state is NegotiationState.VERIFIED else Finalized
    return cls_with_agreement(offer=previous.offer, agreement=agreement, **ids)


def transition(
    process: NegotiationProcess | None,
    message: Message,
    *,
    role: Role,
    direction: Direction = Direction.RECEIVED,
    local_pid: str | None = None,
    ack: ContractNegotiation | None = None,
) -> Transition[NegotiationProcess] | ProtocolError:
    """Apply ``message`` to ``process`` (``None``: no process yet) for a node in ``role``.

    ``direction=RECEIVED`` (default): the peer sent it; answer with the result. ``SENT``: we
    sent it and the peer ACKed; call this then, so both sides move on the same ACK.

    A message that creates a process needs the PID the other side does not know yet:
    ``local_pid`` (ours, freshly minted) when we receive it, ``ack`` (the peer's
    ``ContractNegotiation`` answer) when we sent it. ``ack`` is also checked when given for
    any other sent message. Missing either is a programming error (``ValueError``).

    The caller finds ``process`` by the PID in the URL (404 via
    ``ProtocolError.unknown_process`` if there is none) and, for the creating endpoints, by the
    peer's PID, so a retried initial request is recognised as a duplicate.
    """
    kind = message_kind(message)
    if kind is None:
        return _error(
            process,
            None,
            400,
            ErrorCode.UNEXPECTED_MESSAGE,
            f"{message.type} is not a contract negotiation message",
        )
    assert isinstance(message, NegotiationInput)  # message_kind said so
    print_ = fingerprint(message, direction)
    if process is not None and process.fingerprint == print_:
        return Transition(
            process=process, previous=process.state, duplicate=True, created=_is_initial(message)
        )

    consumer_pid, provider_pid = _pids(message)
    if process is not None:
        mismatch = pid_mismatch(
            process_consumer_pid=process.consumer_pid,
            process_provider_pid=process.provider_pid,
            consumer_pid=consumer_pid,
            provider_pid=provider_pid,
        )
        if mismatch is not None:
            return _error(process, message, 400, ErrorCode.PROCESS_ID_MISMATCH, mismatch)

    state = process.state if process is not None else None
    receiver = role if direction is Direction.RECEIVED else role.peer
    rule = TABLE.get((receiver, state, kind))
    if rule is None:
        where = f"in state {state}" if state is not None else "without a process"
        return _error(
            process,
            message,
            400,
            ErrorCode.ILLEGAL_TRANSITION,
            f"a {receiver} cannot accept {kind} {where}",
        )

    initial = _is_initial(message)
    if process is None and not initial:
        named = provider_pid if receiver is Role.PROVIDER else consumer_pid
        return _error(
            None, message, 404, ErrorCode.UNKNOWN_PROCESS, f"no process {named!r} to continue"
        )
    if process is not None and initial:
        return _error(
            process,
            message,
            400,
            ErrorCode.PROCESS_ID_MISMATCH,
            "once a negotiation exists, every message names both consumerPid and providerPid",
        )

    if process is None:
        peer_callback = message.callback_address if direction is Direction.RECEIVED else None
        if direction is Direction.RECEIVED:
            if local_pid is None:
                raise ValueError("local_pid is required when a received message creates a process")
            if role is Role.PROVIDER:
                provider_pid = local_pid
            else:
                consumer_pid = local_pid
        else:
            if ack is None:
                raise ValueError("ack is required when a sent message created a process")
            own = consumer_pid if role is Role.CONSUMER else provider_pid
            acked = ack.consumer_pid if role is Role.CONSUMER else ack.provider_pid
            if own != acked:
                return _error(
                    None,
                    message,
                    502,
                    ErrorCode.PROCESS_ID_MISMATCH,
                    f"the peer acknowledged process {acked!r}, we sent {own!r}",
                )
            consumer_pid, provider_pid = ack.consumer_pid, ack.provider_pid
    else:
        consumer_pid, provider_pid = process.consumer_pid, process.provider_pid
        peer_callback = process.peer_callback_address
    assert consumer_pid is not None and provider_pid is not None  # set on every path above

    if ack is not None and direction is Direction.SENT:
        problem = _ack_problem(ack, rule.next, consumer_pid, provider_pid)
        if problem is not None:
            return problem

    new = _enter(
        rule.next,
        process,
        message,
        consumer_pid=consumer_pid,
        provider_pid=provider_pid,
        peer_callback_address=peer_callback,
        print_=print_,
    )
    effects = rule.effects if direction is Direction.RECEIVED else ()
    return Transition(process=new, previous=state, created=process is None, effects=effects)


def _ack_problem(
    ack: ContractNegotiation, expected: NegotiationState, consumer_pid: str, provider_pid: str
) -> ProtocolError | None:
    """A peer's ACK that contradicts the transition (status 502: the peer answered wrongly)."""
    base: dict[str, Any] = {
        "area": Area.NEGOTIATION,
        "consumer_pid": consumer_pid,
        "provider_pid": provider_pid,
    }
    if (ack.consumer_pid, ack.provider_pid) != (consumer_pid, provider_pid):
        return ProtocolError(
            status=502,
            code=ErrorCode.PROCESS_ID_MISMATCH,
            reason="the peer acknowledged another process",
            **base,
        )
    if ack.state is not expected:
        return ProtocolError(
            status=502,
            code=ErrorCode.STATE_MISMATCH,
            reason=f"the peer reports {ack.state}, the transition leads to {expected}",
            **base,
        )
    return None


def unknown_process(pid: str) -> ProtocolError:
    """404 for a negotiation PID the binding could not find (or the peer may not see)."""
    return ProtocolError.unknown_process(Area.NEGOTIATION, pid)


# --- outbound messages -------------------------------------------------------------------------
# Builders only shape messages from a process; whether sending one is legal is decided when its
# ACK comes back (transition(..., direction=SENT)).


def initial_request(
    *, consumer_pid: str, offer: MessageOffer, callback_address: str
) -> ContractRequestMessage:
    return ContractRequestMessage(
        consumer_pid=consumer_pid, offer=offer, callback_address=callback_address
    )


def initial_offer(
    *, provider_pid: str, offer: MessageOffer, callback_address: str
) -> ContractOfferMessage:
    return ContractOfferMessage(
        provider_pid=provider_pid, offer=offer, callback_address=callback_address
    )


def counter_request(process: NegotiationProcess, offer: MessageOffer) -> ContractRequestMessage:
    return ContractRequestMessage(
        consumer_pid=process.consumer_pid, provider_pid=process.provider_pid, offer=offer
    )


def counter_offer(process: NegotiationProcess, offer: MessageOffer) -> ContractOfferMessage:
    return ContractOfferMessage(
        consumer_pid=process.consumer_pid, provider_pid=process.provider_pid, offer=offer
    )


def accept(process: NegotiationProcess) -> ContractNegotiationEventMessage:
    return ContractNegotiationEventMessage(
        consumer_pid=process.consumer_pid,
        provider_pid=process.provider_pid,
        event_type=EventType.ACCEPTED,
    )


def agree(process: NegotiationProcess, agreement: Agreement) -> ContractAgreementMessage:
    return ContractAgreementMessage(
        consumer_pid=process.consumer_pid, provider_pid=process.provider_pid, agreement=agreement
    )


def verify(process: NegotiationProcess) -> ContractAgreementVerificationMessage:
    return ContractAgreementVerificationMessage(
        consumer_pid=process.consumer_pid, provider_pid=process.provider_pid
    )


def finalize(process: NegotiationProcess) -> ContractNegotiationEventMessage:
    return ContractNegotiationEventMessage(
        consumer_pid=process.consumer_pid,
        provider_pid=process.provider_pid,
        event_type=EventType.FINALIZED,
    )


def terminate(
    process: NegotiationProcess, reason: TerminationReason
) -> ContractNegotiationTerminationMessage:
    code, reasons = reason.to_wire()
    return ContractNegotiationTerminationMessage(
        consumer_pid=process.consumer_pid,
        provider_pid=process.provider_pid,
        code=code,
        reason=reasons,
    )


def agreement_from_offer(
    offer: MessageOffer, *, agreement_id: str, assigner: str, assignee: str, timestamp: datetime
) -> Agreement:
    """The agreement for ``offer`` as offered: same target and rules, parties and time added.

    ``timestamp`` is passed in (sans-IO: no clock here). It must be timezone-aware; it is sent
    in UTC. The text requires it even though the schema does not.
    """
    if timestamp.tzinfo is None:
        raise ValueError("the agreement timestamp must be timezone-aware")
    return Agreement(
        id=agreement_id,
        target=offer.target,
        assigner=assigner,
        assignee=assignee,
        timestamp=timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        profile=offer.profile,
        permission=offer.permission,
        prohibition=offer.prohibition,
        obligation=offer.obligation,
    )
