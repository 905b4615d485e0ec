"""The DSP 2025-1 transfer process state machine, as one table and a pure function.

Same shape as ``connector.dsp.negotiation``: ``transition`` takes a process (``None`` before
the ``TransferRequestMessage``), a message and our role, and returns a ``Transition`` (next
process + effects) or a ``ProtocolError``. It decides protocol legality only: whether the
agreement named in a request is FINALIZED and covers this consumer is the application's call,
signalled by the ``NeedsDecision`` effect on a new request.

The table follows ``specifications/transfer/figures/transfer-process-state-machine.puml``:
only the provider starts a REQUESTED transfer; either side may complete, suspend or terminate a
STARTED one and resume (``TransferStartMessage``) or terminate a SUSPENDED one.
SUSPENDED → COMPLETED and anything after COMPLETED/TERMINATED are illegal (TP:03-xx).
The ``DataFlow`` effects tell the local data plane what the peer's message means for the bytes.
The engine that applies the table is ``connector.dsp.machine``, shared with negotiation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from connector.dsp.errors import Area, ProtocolError
from connector.dsp.errors import ErrorCode as ErrorCode  # re-exported, as before
from connector.dsp.machine import Machine, process_ids, with_reason
from connector.dsp.messages import (
    DataAddress,
    Message,
    TransferCompletionMessage,
    TransferProcess,
    TransferRequestMessage,
    TransferStartMessage,
    TransferState,
    TransferSuspensionMessage,
    TransferTerminationMessage,
)
from connector.dsp.process import (
    DataFlow,
    DataFlowAction,
    Direction,
    NeedsDecision,
    Role,
    Rule,
    TerminationReason,
    Transition,
    render_table,
)
from connector.dsp.process import fingerprint as fingerprint  # re-exported, as before
from connector.dsp.process import pid_mismatch as pid_mismatch  # re-exported, as before


class TransferMessage(StrEnum):
    """Message kinds the transfer machine distinguishes."""

    REQUEST = "TransferRequestMessage"
    START = "TransferStartMessage"
    SUSPENSION = "TransferSuspensionMessage"
    COMPLETION = "TransferCompletionMessage"
    TERMINATION = "TransferTerminationMessage"


TransferInput = (
    TransferRequestMessage
    | TransferStartMessage
    | TransferCompletionMessage
    | TransferSuspensionMessage
    | TransferTerminationMessage
)

_KINDS: dict[type[Message], TransferMessage] = {
    TransferRequestMessage: TransferMessage.REQUEST,
    TransferStartMessage: TransferMessage.START,
    TransferCompletionMessage: TransferMessage.COMPLETION,
    TransferSuspensionMessage: TransferMessage.SUSPENSION,
    TransferTerminationMessage: TransferMessage.TERMINATION,
}


def message_kind(message: Message) -> TransferMessage | None:
    """The table key for ``message``, or ``None`` if it is not a transfer message."""
    return _KINDS.get(type(message))


# --- the table ---------------------------------------------------------------------------------

_S = TransferState
_K = TransferMessage
_P = Role.PROVIDER
_C = Role.CONSUMER

_START = (DataFlow(DataFlowAction.START),)
_SUSPEND = (DataFlow(DataFlowAction.SUSPEND),)
_COMPLETE = (DataFlow(DataFlowAction.COMPLETE),)
_TERMINATE = (DataFlow(DataFlowAction.TERMINATE),)

TABLE: dict[tuple[Role, TransferState | None, TransferMessage], Rule[TransferState]] = {
    # The provider receives what the consumer sends.
    (_P, None, _K.REQUEST): Rule(
        _S.REQUESTED, (NeedsDecision((_K.START, _K.TERMINATION)),), "creates the process; 201"
    ),
    (_P, _S.REQUESTED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_P, _S.STARTED, _K.SUSPENSION): Rule(_S.SUSPENDED, _SUSPEND),
    (_P, _S.STARTED, _K.COMPLETION): Rule(_S.COMPLETED, _COMPLETE),
    (_P, _S.STARTED, _K.TERMINATION): Rule(_S.TERMINATED, _TERMINATE),
    (_P, _S.SUSPENDED, _K.START): Rule(_S.STARTED, _START, "the consumer resumes"),
    (_P, _S.SUSPENDED, _K.TERMINATION): Rule(_S.TERMINATED, _TERMINATE),
    # The consumer receives what the provider sends.
    (_C, _S.REQUESTED, _K.START): Rule(_S.STARTED, _START, "pull: carries the data address"),
    (_C, _S.REQUESTED, _K.TERMINATION): Rule(_S.TERMINATED),
    (_C, _S.STARTED, _K.SUSPENSION): Rule(_S.SUSPENDED, _SUSPEND),
    (_C, _S.STARTED, _K.COMPLETION): Rule(_S.COMPLETED, _COMPLETE),
    (_C, _S.STARTED, _K.TERMINATION): Rule(_S.TERMINATED, _TERMINATE),
    (_C, _S.SUSPENDED, _K.START): Rule(_S.STARTED, _START, "the provider resumes"),
    (_C, _S.SUSPENDED, _K.TERMINATION): Rule(_S.TERMINATED, _TERMINATE),
}
"""(receiver role, state or ``None`` for no process yet, message kind) → rule. Absent = 400."""


def render_markdown() -> str:
    """The table as Markdown (``STATE_MACHINES.md`` is generated from this)."""
    return render_table(TABLE, states=list(TransferState), kinds=list(TransferMessage))


# --- one type per state ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Transfer:
    """What every transfer state knows.

    ``data_address`` is the address most recently exchanged: the consumer's sink from a push
    request, then the provider's endpoint (EDR) from a pull start. ``fingerprint`` identifies the
    message that produced this state (duplicate detection).
    """

    state: ClassVar[TransferState]
    consumer_pid: str
    provider_pid: str
    agreement_id: str
    format: str
    data_address: DataAddress | None = None
    peer_callback_address: str | None = None
    fingerprint: str | None = None

    def ack(self) -> TransferProcess:
        """The ``TransferProcess`` body answering a message or a ``GET``."""
        return TransferProcess(**process_ids(self), state=self.state)


@dataclass(frozen=True, slots=True, kw_only=True)
class Requested(_Transfer):
    state: ClassVar[TransferState] = TransferState.REQUESTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Started(_Transfer):
    state: ClassVar[TransferState] = TransferState.STARTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspended(_Transfer):
    """Paused; ``reason`` is what the suspending side said."""

    state: ClassVar[TransferState] = TransferState.SUSPENDED
    reason: TerminationReason | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Completed(_Transfer):
    state: ClassVar[TransferState] = TransferState.COMPLETED


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated(_Transfer):
    """Ended early; ``reason`` is what the terminating side said."""

    state: ClassVar[TransferState] = TransferState.TERMINATED
    reason: TerminationReason | None


TransferProcessState = Requested | Started | Suspended | Completed | Terminated


# --- the transition function -------------------------------------------------------------------


def _pids(message: TransferInput) -> tuple[str | None, str | None]:
    if isinstance(message, TransferRequestMessage):
        return message.consumer_pid, None
    return message.consumer_pid, message.provider_pid


def _is_request(message: TransferInput) -> bool:
    """A ``TransferRequestMessage`` is the one message that creates a transfer process."""
    return isinstance(message, TransferRequestMessage)


def _enter(
    state: TransferState,
    previous: TransferProcessState | None,
    message: TransferInput,
    common: dict[str, Any],
) -> TransferProcessState:
    """Build the next state's value from the previous one and the message that caused it."""
    if isinstance(message, TransferRequestMessage):
        return Requested(
            agreement_id=message.agreement_id,
            format=message.format,
            data_address=message.data_address,
            **common,
        )
    if previous is None:  # only a TransferRequestMessage creates a process (see TABLE)
        raise AssertionError(f"{state} cannot be entered without a process")
    carried: dict[str, Any] = {
        "agreement_id": previous.agreement_id,
        "format": previous.format,
        "data_address": previous.data_address,
        **common,
    }
    if isinstance(message, TransferStartMessage):
        if message.data_address is not None:
            carried["data_address"] = message.data_address
        return Started(**carried)
    if isinstance(message, TransferCompletionMessage):
        return Completed(**carried)
    reason = TerminationReason.from_wire(message.code, message.reason)
    if isinstance(message, TransferSuspensionMessage):
        return Suspended(reason=reason, **carried)
    return Terminated(reason=reason, **carried)


_MACHINE: Machine[
    TransferState, TransferMessage, TransferInput, TransferProcessState, TransferProcess
] = Machine(
    area=Area.TRANSFER,
    name="transfer process",
    process_noun="transfer process",
    table=TABLE,
    inputs=TransferInput,
    kind_of=message_kind,
    pids_of=_pids,
    creates=_is_request,
    enter=_enter,
)


def transition(
    process: TransferProcessState | None,
    message: Message,
    *,
    role: Role,
    direction: Direction = Direction.RECEIVED,
    local_pid: str | None = None,
    ack: TransferProcess | None = None,
) -> Transition[TransferProcessState] | ProtocolError:
    """Apply ``message`` to ``process`` (``None``: no process yet) for a node in ``role``.

    ``direction=RECEIVED`` (default): the peer sent it. ``SENT``: we sent it and the peer ACKed.
    Creating a process needs ``local_pid`` (provider receiving a request: the PID it mints) or
    ``ack`` (consumer whose request was answered: carries the provider's PID); missing either is
    a programming error (``ValueError``).

    The caller finds ``process`` by the PID in the URL (``unknown_process`` → 404 if none) and,
    for ``POST /transfers/request``, by the consumer's PID, so a retried request is answered as
    the first one was (the spec asks providers to be idempotent there).
    The rules every protocol shares are listed in ``connector.dsp.machine``.
    """
    return _MACHINE.transition(
        process, message, role=role, direction=direction, local_pid=local_pid, ack=ack
    )


def unknown_process(pid: str) -> ProtocolError:
    """404 for a transfer PID the binding could not find (or the peer may not see)."""
    return _MACHINE.unknown_process(pid)


# --- outbound messages -------------------------------------------------------------------------


def request(
    *,
    consumer_pid: str,
    agreement_id: str,
    format: str,
    callback_address: str,
    data_address: DataAddress | None = None,
) -> TransferRequestMessage:
    """A transfer request; ``data_address`` only for push (where the provider should send)."""
    return TransferRequestMessage(
        consumer_pid=consumer_pid,
        agreement_id=agreement_id,
        format=format,
        callback_address=callback_address,
        data_address=data_address,
    )


def start(
    process: TransferProcessState, data_address: DataAddress | None = None
) -> TransferStartMessage:
    """Start (provider) or resume (either side); pull transfers MUST carry ``data_address``."""
    return TransferStartMessage(**process_ids(process), data_address=data_address)


def complete(process: TransferProcessState) -> TransferCompletionMessage:
    return TransferCompletionMessage(**process_ids(process))


def suspend(
    process: TransferProcessState, reason: TerminationReason
) -> TransferSuspensionMessage:
    return TransferSuspensionMessage(**with_reason(process, reason))


def terminate(
    process: TransferProcessState, reason: TerminationReason
) -> TransferTerminationMessage:
    return TransferTerminationMessage(**with_reason(process, reason))
