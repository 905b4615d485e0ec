"""The sans-IO core of the Dataspace Protocol 2025-1: messages and state machines.

No HTTP, no storage, no clock: ``messages`` parses and emits the compact JSON-LD wire form
(validated offline against the bundled official schemas), ``negotiation`` and ``transfer`` are
pure transition tables and functions that return the next process and the effects to perform,
or a typed ``ProtocolError`` carrying the status and body to answer with. A binding (aiohttp
routes, storage, outbox) sits on top and does the I/O.
"""

from __future__ import annotations

from connector.dsp import messages, negotiation, transfer
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import (
    DSP_CONTEXT,
    Message,
    MessageError,
    parse_as,
    parse_json,
    parse_message,
)
from connector.dsp.process import (
    DataFlow,
    DataFlowAction,
    Direction,
    Effect,
    MustSend,
    NeedsDecision,
    Role,
    TerminationKind,
    TerminationReason,
    Transition,
)

__all__ = [
    "DSP_CONTEXT",
    "Area",
    "DataFlow",
    "DataFlowAction",
    "Direction",
    "Effect",
    "ErrorCode",
    "Message",
    "MessageError",
    "MustSend",
    "NeedsDecision",
    "ProtocolError",
    "Role",
    "TerminationKind",
    "TerminationReason",
    "Transition",
    "messages",
    "negotiation",
    "parse_as",
    "parse_json",
    "parse_message",
    "transfer",
]
