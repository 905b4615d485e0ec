"""Protocol errors as values, with the HTTP status and the DSP error body a binding should send.

The state machines never raise for a peer's mistake: ``transition`` returns a ``ProtocolError``
so the caller can answer it (400 + ``ContractNegotiationError``/``TransferError``) without a
try/except around every call, and so tests can compare errors like any other result. Statuses
follow the HTTPS binding as summarised in ``shared/notes/dataspace-protocol.md`` §1.3: an illegal
transition (including anything after a terminal state) is 400, an unknown — or unauthorised —
process is 404. 409 is not used: the binding never asks for it, and the TCK accepts any 4xx.
A peer's ACK that contradicts the transition we applied for a sent message is reported as 502
(nothing to answer; the caller should terminate or retry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from connector.dsp.messages import (
    CatalogError,
    ContractNegotiationError,
    MessageError,
    TransferError,
)

UNKNOWN_PID = ""
"""Placeholder PID in error bodies when the failing message created no process.

Schema quirk: ``ContractNegotiationError``/``TransferError`` require both PIDs, even for a
rejected initial request that never got a provider PID. An empty string satisfies the schema and
cannot be mistaken for a real process IRI.
"""


class Area(StrEnum):
    """Which family of error body a binding answers with."""

    CATALOG = "catalog"
    NEGOTIATION = "negotiation"
    TRANSFER = "transfer"


class ErrorCode(StrEnum):
    """The DSP ``code`` of the errors this node sends (the spec leaves codes to implementations)."""

    INVALID_MESSAGE = "invalid-message"
    """Not an acceptable DSP 2025-1 message (context, type, schema or model)."""
    UNEXPECTED_MESSAGE = "unexpected-message"
    """A well-formed message that is not part of this state machine."""
    ILLEGAL_TRANSITION = "illegal-transition"
    """The message is not allowed in the process's current state for the receiver's role."""
    PROCESS_ID_MISMATCH = "process-id-mismatch"
    """The message names another process (or omits a PID the process has)."""
    UNKNOWN_PROCESS = "unknown-process"
    """No process with that PID exists for this peer (or it may not see it)."""
    STATE_MISMATCH = "state-mismatch"
    """The peer acknowledged with a state other than the one the transition leads to."""
    PAYLOAD_TOO_LARGE = "payload-too-large"
    """The request body is over the node's ``max_body_bytes`` (answered with 413)."""


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A protocol-level refusal: what to answer, with which status, for which process."""

    area: Area
    status: int
    code: ErrorCode
    reason: str
    consumer_pid: str | None = None
    provider_pid: str | None = None
    details: tuple[str, ...] = field(default=())

    @classmethod
    def from_message_error(
        cls,
        error: MessageError,
        area: Area,
        *,
        consumer_pid: str | None = None,
        provider_pid: str | None = None,
    ) -> ProtocolError:
        """The 400 a binding answers when ``parse_message`` refused a body."""
        return cls(
            area=area,
            status=400,
            code=ErrorCode.INVALID_MESSAGE,
            reason=f"{error.code}: {error.detail}",
            consumer_pid=consumer_pid,
            provider_pid=provider_pid,
            details=tuple(error.problems),
        )

    @classmethod
    def unknown_process(cls, area: Area, pid: str) -> ProtocolError:
        """404 for a PID the binding could not find (or that this peer may not see)."""
        return cls(
            area=area,
            status=404,
            code=ErrorCode.UNKNOWN_PROCESS,
            reason=f"no process {pid!r}",
        )

    @property
    def reasons(self) -> list[str]:
        return [self.reason, *self.details]

    def body(self) -> CatalogError | ContractNegotiationError | TransferError:
        """The DSP error message for this error's area, ready for ``to_json()``."""
        if self.area is Area.CATALOG:
            return CatalogError(code=str(self.code), reason=self.reasons)
        consumer_pid = self.consumer_pid if self.consumer_pid is not None else UNKNOWN_PID
        provider_pid = self.provider_pid if self.provider_pid is not None else UNKNOWN_PID
        if self.area is Area.NEGOTIATION:
            return ContractNegotiationError(
                consumer_pid=consumer_pid,
                provider_pid=provider_pid,
                code=str(self.code),
                reason=self.reasons,
            )
        return TransferError(
            consumer_pid=consumer_pid,
            provider_pid=provider_pid,
            code=str(self.code),
            reason=self.reasons,
        )
