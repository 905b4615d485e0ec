"""What the negotiation and transfer machines share: roles, results, effects, reasons, tables.

Both machines are sans-IO in the h11 sense: feed a process and a message in, get a
``Transition`` (the next process plus the effects the caller should perform) or a
``ProtocolError`` out. Nothing here sends, stores, sleeps or reads a clock, so every path can be
tested without a network and the same code serves a provider and a consumer.

Each machine is one explicit table keyed by (receiver role, current state or ``None`` for a new
process, message kind). DSP moves both sides to the next state when the receiver ACKs the
message, so the sender applies the *same* row — the one keyed by its peer's role — when its
message is acknowledged (``Direction.SENT``). One table therefore decides what we accept, what
we may send, and what the markdown in ``STATE_MACHINES.md`` says.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from connector.dsp.messages import Message
from credentials.jcs import canonical_json


class Role(StrEnum):
    PROVIDER = "provider"
    CONSUMER = "consumer"

    @property
    def peer(self) -> Role:
        return Role.CONSUMER if self is Role.PROVIDER else Role.PROVIDER


class Direction(StrEnum):
    """Whether the message came from the peer or is ours and the peer has ACKed it."""

    RECEIVED = "received"
    SENT = "sent"


# --- termination reasons ---------------------------------------------------------------------


class TerminationKind(StrEnum):
    """Why a process ended — the first question an operator asks about a TERMINATED process."""

    POLICY = "policy"
    """A policy constraint failed (name it in ``constraint``)."""
    IDENTITY = "identity"
    """The peer's identity or credentials could not be established or verified."""
    TRANSPORT = "transport"
    """The peer could not be reached or kept failing (retries exhausted, timeouts)."""
    INTERNAL = "internal"
    """Anything else, including reasons a foreign peer gave in its own vocabulary."""


CONSTRAINT_PREFIX = "constraint: "


@dataclass(frozen=True, slots=True)
class TerminationReason:
    """A typed reason for terminating (or suspending) a process.

    On the wire it becomes the message's ``code`` (the kind) and ``reason`` (the detail, then
    ``"constraint: <left operand>"`` when a constraint failed). Plain strings are used because
    ``reason`` has no JSON-LD typing: objects would lose their keys on expansion.
    """

    kind: TerminationKind
    constraint: str | None
    detail: str

    def to_wire(self) -> tuple[str, list[str]]:
        """``(code, reason)`` for a termination or suspension message."""
        reasons = [self.detail]
        if self.constraint is not None:
            reasons.append(CONSTRAINT_PREFIX + self.constraint)
        return str(self.kind), reasons

    @classmethod
    def from_wire(cls, code: str | None, reason: Sequence[Any] | None) -> TerminationReason | None:
        """Read a peer's ``code``/``reason``; ``None`` when it gave neither.

        Our own reasons round-trip exactly. A foreign code is kept at the front of the detail
        (kind ``internal``) rather than guessed into a category.
        """
        if code is None and not reason:
            return None
        texts = [item if isinstance(item, str) else json.dumps(item) for item in reason or ()]
        constraint = next(
            (t[len(CONSTRAINT_PREFIX):] for t in texts if t.startswith(CONSTRAINT_PREFIX)), None
        )
        detail = "; ".join(t for t in texts if not t.startswith(CONSTRAINT_PREFIX))
        if code is not None and code in {kind.value for kind in TerminationKind}:
            return cls(TerminationKind(code), constraint, detail)
        prefix = f"[{code}] " if code is not None else ""
        return cls(TerminationKind.INTERNAL, constraint, prefix + detail)


# --- effects: what the caller should do next, as data -----------------------------------------


@dataclass(frozen=True, slots=True)
class NeedsDecision:
    """The application must choose the next message; ``options`` are the protocol's choices."""

    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MustSend:
    """The protocol expects ``message`` from us next.

    As in every non-terminal state, terminating instead is the only alternative (the TCK
    exercises that: CN:02-07, CN_C:02-03).
    """

    message: str


class DataFlowAction(StrEnum):
    START = "start"
    SUSPEND = "suspend"
    COMPLETE = "complete"
    TERMINATE = "terminate"


@dataclass(frozen=True, slots=True)
class DataFlow:
    """Tell the local data plane to start/resume, suspend, complete or tear down the flow."""

    action: DataFlowAction


Effect = NeedsDecision | MustSend | DataFlow

S = TypeVar("S", bound=StrEnum)
P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Rule(Generic[S]):
    """One row of a transition table: where a message leads and what the receiver does next."""

    next: S
    effects: tuple[Effect, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class Transition(Generic[P]):
    """A message was accepted. ``process`` is what to store; ``effects`` what to do after.

    ``duplicate`` marks a repeat of the message that produced the current state: nothing
    changes, the binding answers as it did the first time (``status``), and a retried send is
    never applied twice.
    """

    process: P
    previous: StrEnum | None
    duplicate: bool = False
    created: bool = False
    effects: tuple[Effect, ...] = ()

    @property
    def status(self) -> int:
        """HTTP status the binding answers with: 201 when the message created the process."""
        return 201 if self.created else 200


# --- helpers shared by both machines ----------------------------------------------------------


def fingerprint(message: Message, direction: Direction) -> str:
    """Identity of a message for duplicate detection: direction + SHA-256 of its JCS form.

    The whole message counts, unknown keys included: a peer that stamps each message with its
    own ``@id`` (the TCK does) sends a *new* message when it repeats a request, and gets the
    answer to a new message (CN:03-04 expects a 4xx for a second counter-request).
    """
    digest = hashlib.sha256(canonical_json(message.to_json())).hexdigest()
    return f"{direction}:{digest}"


def pid_mismatch(
    *,
    process_consumer_pid: str,
    process_provider_pid: str,
    consumer_pid: str | None,
    provider_pid: str | None,
) -> str | None:
    """Why the PIDs a message names do not belong to this process, or ``None`` if they do."""
    if consumer_pid is not None and consumer_pid != process_consumer_pid:
        return f"consumerPid {consumer_pid!r} is not this process ({process_consumer_pid!r})"
    if provider_pid is not None and provider_pid != process_provider_pid:
        return f"providerPid {provider_pid!r} is not this process ({process_provider_pid!r})"
    return None


K = TypeVar("K", bound=StrEnum)


def _describe(effect: Effect) -> str:
    if isinstance(effect, NeedsDecision):
        return "decide: " + " / ".join(effect.options)
    if isinstance(effect, MustSend):
        return f"send {effect.message}"
    return f"data plane: {effect.action}"


def render_table(
    table: Mapping[tuple[Role, S | None, K], Rule[S]],
    *,
    states: Sequence[S],
    kinds: Sequence[K],
) -> str:
    """A transition table as Markdown, one row per legal (receiver, state, message)."""
    lines = [
        "| receiver | state | message | sender | next state | receiver's next step | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for role in Role:
        for state in (None, *states):
            for kind in kinds:
                rule = table.get((role, state, kind))
                if rule is None:
                    continue
                effects = "; ".join(_describe(e) for e in rule.effects) or "—"
                shown_state = state if state is not None else "(none)"
                lines.append(
                    f"| {role} | {shown_state} | {kind} | {role.peer} | {rule.next} | "
                    f"{effects} | {rule.note or '—'} |"
                )
    return "\n".join(lines) + "\n"
