"""The transition engine both DSP state machines run on: one table, one pure function.

``connector.dsp.negotiation`` and ``connector.dsp.transfer`` differ only in their states,
message kinds, tables and the values that hold a process; how a message is judged is the same,
and lives here once, as ``Machine.transition``:

1. a message the protocol does not know is ``unexpected-message`` (400);
2. the message that produced the current state, seen again from the same direction, is a
   duplicate: no change, answered as the first time (``fingerprint``);
3. PIDs that name another process are ``process-id-mismatch`` (400);
4. the table row for (receiver role, state, message kind) decides; no row is
   ``illegal-transition`` (400);
5. only a creating message starts a process (a continuation without one is 404) and it cannot
   continue one (400);
6. a creating message gets the PID its sender cannot know: ours (``local_pid``) when received,
   the peer's from its ACK when sent; an ACK that contradicts the transition is 502;
7. the protocol's ``enter`` builds the next process value; a received message returns the row's
   effects, an acknowledged send returns none.

Sans-IO like the rest of ``connector.dsp``: nothing here sends, stores or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import UnionType
from typing import Any, Generic, Protocol, TypeVar, cast

from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import Message
from connector.dsp.process import (
    Direction,
    Role,
    Rule,
    TerminationReason,
    Transition,
    fingerprint,
    pid_mismatch,
)


class Addressed(Protocol):
    """Anything that names a process by both PIDs (a process value, an ACK)."""

    @property
    def consumer_pid(self) -> str: ...

    @property
    def provider_pid(self) -> str: ...


class ProcessValue(Addressed, Protocol):
    """What the engine reads from a protocol's process values (one frozen dataclass per state)."""

    @property
    def state(self) -> StrEnum: ...

    @property
    def peer_callback_address(self) -> str | None: ...

    @property
    def fingerprint(self) -> str | None: ...


class Ack(Addressed, Protocol):
    """The peer's answer to a message we sent (``ContractNegotiation``, ``TransferProcess``)."""

    @property
    def state(self) -> StrEnum: ...


S = TypeVar("S", bound=StrEnum)
"""The protocol's states."""
K = TypeVar("K", bound=StrEnum)
"""The protocol's message kinds (the table's third key)."""
M = TypeVar("M", bound=Message)
"""The messages the protocol accepts."""
P = TypeVar("P", bound=ProcessValue)
"""The protocol's process values."""
A = TypeVar("A", bound=Ack)
"""The protocol's ACK body."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine(Generic[S, K, M, P, A]):
    """One protocol's transition function: its table plus how to read its messages.

    ``kind_of`` maps a message to its table key (``None``: not this protocol's); ``inputs`` is
    the union of the message classes it maps. ``pids_of`` reads the PIDs a message names
    (``None`` where it names none); ``creates`` says whether it is the message that starts a
    process. ``enter`` builds the next process value from (next state, previous process or
    ``None``, message, the fields every process has: both PIDs, ``peer_callback_address`` and
    ``fingerprint``). ``name`` and ``process_noun`` only word the error reasons.
    """

    area: Area
    name: str
    process_noun: str
    table: Mapping[tuple[Role, S | None, K], Rule[S]]
    inputs: type | UnionType
    kind_of: Callable[[Message], K | None]
    pids_of: Callable[[M], tuple[str | None, str | None]]
    creates: Callable[[M], bool]
    enter: Callable[[S, P | None, M, dict[str, Any]], P]

    def transition(
        self,
        process: P | None,
        message: Message,
        *,
        role: Role,
        direction: Direction = Direction.RECEIVED,
        local_pid: str | None = None,
        ack: A | None = None,
    ) -> Transition[P] | ProtocolError:
        """Apply ``message`` to ``process`` (``None``: no process yet) for a node in ``role``.

        The protocol modules' ``transition`` functions document the arguments; this is their
        body. Missing ``local_pid``/``ack`` where a process is created is a ``ValueError``.
        """
        kind = self.kind_of(message)
        if kind is None:
            return self.error(
                process,
                None,
                400,
                ErrorCode.UNEXPECTED_MESSAGE,
                f"{message.type} is not a {self.name} message",
            )
        assert isinstance(message, self.inputs)  # kind_of said so
        typed = cast(M, message)
        print_ = fingerprint(message, direction)
        if process is not None and process.fingerprint == print_:
            return Transition(
                process=process,
                previous=process.state,
                duplicate=True,
                created=self.creates(typed),
            )

        consumer_pid, provider_pid = self.pids_of(typed)
        if process is not None:
            mismatch = pid_mismatch(
                process_consumer_pid=process.consumer_pid,
                process_provider_pid=process.provider_pid,
                consumer_pid=consumer_pid,
                provider_pid=provider_pid,
            )
            if mismatch is not None:
                return self.error(process, typed, 400, ErrorCode.PROCESS_ID_MISMATCH, mismatch)

        state = cast("S | None", process.state) if process is not None else None
        receiver = role if direction is Direction.RECEIVED else role.peer
        rule = self.table.get((receiver, state, kind))
        if rule is None:
            where = f"in state {state}" if state is not None else "without a process"
            return self.error(
                process,
                typed,
                400,
                ErrorCode.ILLEGAL_TRANSITION,
                f"a {receiver} cannot accept {kind} {where}",
            )

        initial = self.creates(typed)
        if process is None and not initial:
            named = provider_pid if receiver is Role.PROVIDER else consumer_pid
            return self.error(
                None, typed, 404, ErrorCode.UNKNOWN_PROCESS, f"no process {named!r} to continue"
            )
        if process is not None and initial:
            return self.error(
                process,
                typed,
                400,
                ErrorCode.PROCESS_ID_MISMATCH,
                f"once a {self.process_noun} exists, every message names both consumerPid and "
                "providerPid",
            )

        if process is None:
            peer_callback: str | None = None
            if direction is Direction.RECEIVED:
                if local_pid is None:
                    raise ValueError(
                        "local_pid is required when a received message creates a process"
                    )
                peer_callback = getattr(message, "callback_address", None)
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
                    return self.error(
                        None,
                        typed,
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
            problem = self.ack_problem(ack, rule.next, consumer_pid, provider_pid)
            if problem is not None:
                return problem

        common: dict[str, Any] = {
            "consumer_pid": consumer_pid,
            "provider_pid": provider_pid,
            "peer_callback_address": peer_callback,
            "fingerprint": print_,
        }
        new = self.enter(rule.next, process, typed, common)
        effects = rule.effects if direction is Direction.RECEIVED else ()
        return Transition(process=new, previous=state, created=process is None, effects=effects)

    def error(
        self, process: P | None, message: M | None, status: int, code: ErrorCode, reason: str
    ) -> ProtocolError:
        """A refusal naming ``process``'s PIDs, else those ``message`` names, else none."""
        if process is not None:
            consumer_pid: str | None = process.consumer_pid
            provider_pid: str | None = process.provider_pid
        elif message is not None:
            consumer_pid, provider_pid = self.pids_of(message)
        else:
            consumer_pid = provider_pid = None
        return ProtocolError(
            area=self.area,
            status=status,
            code=code,
            reason=reason,
            consumer_pid=consumer_pid,
            provider_pid=provider_pid,
        )

    def ack_problem(
        self, ack: A, expected: S, consumer_pid: str, provider_pid: str
    ) -> ProtocolError | None:
        """A peer's ACK that contradicts the transition (status 502: the peer answered wrongly)."""
        base: dict[str, Any] = {
            "area": self.area,
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

    def unknown_process(self, pid: str) -> ProtocolError:
        """404 for a PID the binding could not find (or the peer may not see)."""
        return ProtocolError.unknown_process(self.area, pid)


# --- shaping outbound messages -----------------------------------------------------------------


def process_ids(process: Addressed) -> dict[str, str]:
    """``consumer_pid``/``provider_pid`` keyword arguments for a message about ``process``."""
    return {"consumer_pid": process.consumer_pid, "provider_pid": process.provider_pid}


def with_reason(process: Addressed, reason: TerminationReason) -> dict[str, Any]:
    """Keyword arguments for a termination or suspension message: the PIDs, ``code``, ``reason``."""
    code, reasons = reason.to_wire()
    return {**process_ids(process), "code": code, "reason": reasons}
