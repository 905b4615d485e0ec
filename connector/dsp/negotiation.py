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

How a message is judged against the table (duplicates, PIDs, ACKs, the errors) is shared with the
transfer machine and lives in ``connector.dsp.machine``; this module supplies what is particular
to negotiation: the message kinds, the table, the state types and the outbound-message builders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from connector.dsp.errors import Area, ProtocolError
from connector.dsp.errors import ErrorCode as ErrorCode  # re-exported, as before
from connector.dsp.machine import Machine, process_ids, with_reason
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
    render_table,
)
from connector.dsp.process import fingerprint as fingerprint  # re-exported, as before
from connector.dsp.process import pid_mismatch as pid_mismatch  # re-exported, as before


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
        return ContractNegotiation(**process_ids(self), state=self.state)


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


def _enter(
    state: NegotiationState,
    previous: NegotiationProcess | None,
    message: NegotiationInput,
    common: dict[str, Any],
) -> NegotiationProcess:
    """Build the next state's value from the previous one and the message that caused it."""
    if isinstance(message, ContractRequestMessage | ContractOfferMessage):
        cls = Requested if state is NegotiationState.REQUESTED else Offered
        return cls(offer=message.offer, **common)
    if previous is None:  # only initial requests and offers create processes (see TABLE)
        raise AssertionError(f"{state} cannot be entered without a process")
    if isinstance(message, ContractAgreementMessage):
        return Agreed(offer=previous.offer, agreement=message.agreement, **common)
    agreement = getattr(previous, "agreement", None)
    if isinstance(message, ContractNegotiationTerminationMessage):
        reason = TerminationReason.from_wire(message.code, message.reason)
        return Terminated(offer=previous.offer, agreement=agreement, reason=reason, **common)
    if state is NegotiationState.ACCEPTED:
        return Accepted(offer=previous.offer, **common)
    if agreement is None:
        raise AssertionError(f"{state} needs an agreement; {previous.state} has none")
    cls_with_agreement = Verified if state is NegotiationState.VERIFIED else Finalized
    return cls_with_agreement(offer=previous.offer, agreement=agreement, **common)


_MACHINE: Machine[
    NegotiationState,
    NegotiationMessage,
    NegotiationInput,
    NegotiationProcess,
    ContractNegotiation,
] = Machine(
    area=Area.NEGOTIATION,
    name="contract negotiation",
    process_noun="negotiation",
    table=TABLE,
    inputs=NegotiationInput,
    kind_of=message_kind,
    pids_of=_pids,
    creates=_is_initial,
    enter=_enter,
)


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
    The rules every protocol shares are listed in ``connector.dsp.machine``.
    """
    return _MACHINE.transition(
        process, message, role=role, direction=direction, local_pid=local_pid, ack=ack
    )


def unknown_process(pid: str) -> ProtocolError:
    """404 for a negotiation PID the binding could not find (or the peer may not see)."""
    return _MACHINE.unknown_process(pid)


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
    return ContractRequestMessage(**process_ids(process), offer=offer)


def counter_offer(process: NegotiationProcess, offer: MessageOffer) -> ContractOfferMessage:
    return ContractOfferMessage(**process_ids(process), offer=offer)


def accept(process: NegotiationProcess) -> ContractNegotiationEventMessage:
    return ContractNegotiationEventMessage(**process_ids(process), event_type=EventType.ACCEPTED)


def agree(process: NegotiationProcess, agreement: Agreement) -> ContractAgreementMessage:
    return ContractAgreementMessage(**process_ids(process), agreement=agreement)


def verify(process: NegotiationProcess) -> ContractAgreementVerificationMessage:
    return ContractAgreementVerificationMessage(**process_ids(process))


def finalize(process: NegotiationProcess) -> ContractNegotiationEventMessage:
    return ContractNegotiationEventMessage(**process_ids(process), event_type=EventType.FINALIZED)


def terminate(
    process: NegotiationProcess, reason: TerminationReason
) -> ContractNegotiationTerminationMessage:
    return ContractNegotiationTerminationMessage(**with_reason(process, reason))


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
