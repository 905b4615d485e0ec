"""Checks shared by the DSP state-machine tests: each runs against a ``MachineCase``.

Both machines run on ``connector.dsp.machine``, so the same properties hold for both: the table
decides every (role, state, message), the sender applies the receiver's row, a repeated message
is a duplicate, foreign PIDs are refused, and each TCK scenario replays between two of our
machines. ``test_dsp_negotiation.py`` and ``test_dsp_transfer.py`` describe their machine as a
``MachineCase`` (how to build a process in a state and a message of a kind) and call these.

A plain module: the test files import it by name (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import product
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from connector.dsp import messages as m
from connector.dsp import schemas
from connector.dsp.errors import ErrorCode, ProtocolError
from connector.dsp.process import Direction, MustSend, NeedsDecision, Role, Transition

SCENARIOS = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "dsp" / "tck"
    / "dsp-tck-2025-1-scenarios.json"
).resolve()
needs_scenarios = pytest.mark.skipif(
    not SCENARIOS.is_file(), reason=f"TCK scenario list not found at {SCENARIOS}"
)

Key = tuple[Role, Any, Any]
"""(receiver role, state or ``None``, message kind): a key of a machine's ``TABLE``."""


@dataclass(frozen=True, kw_only=True)
class MachineCase:
    """One machine as the shared checks see it.

    ``module`` is ``connector.dsp.negotiation`` or ``connector.dsp.transfer``; ``process_in``
    builds a process in a state with the fixed PIDs ``cpid``/``ppid`` (``None``: no process);
    ``message_for`` builds a well-formed message of a kind for a process (the creating form
    when there is none); ``local_pid`` is the PID a receiving role mints. For the TCK replay:
    ``compose`` is the message a ``Party`` sends, ``sequence_of`` the steps of a scenario.
    """

    module: ModuleType
    states: type[StrEnum]
    kinds: type[StrEnum]
    cpid: str
    ppid: str
    process_in: Callable[[Any], Any]
    message_for: Callable[[Any, Any], m.Message]
    local_pid: Callable[[Role], str]
    ack_type: type[m.ContractNegotiation] | type[m.TransferProcess]
    error_schema: str
    termination: StrEnum
    tck_groups: tuple[str, ...]
    tck_kinds: Mapping[str, StrEnum]
    signal: str
    compose: Callable[[Party, Any], m.Message]
    sequence_of: Callable[[dict[str, Any]], list[dict[str, Any]]] = lambda s: s["sequence"]

    @property
    def table(self) -> Mapping[Key, Any]:
        table: Mapping[Key, Any] = self.module.TABLE
        return table

    def cross(self) -> list[Key]:
        """Every (role, state or ``None``, kind): legal or not."""
        return list(product(Role, [None, *self.states], self.kinds))

    def legal(self) -> list[Key]:
        return [key for key in self.cross() if key in self.table]


def case_id(key: Key) -> str:
    role, state, kind = key
    return f"{role}-{state or 'none'}-{kind.value.replace('ContractNegotiation', 'CN')}"


# --- the table ---------------------------------------------------------------------------------


def check_received(case: MachineCase, key: Key) -> Transition[Any] | None:
    """A received message does what its row says, or is an illegal transition if it has none.

    Returns the transition (``None`` when the row is absent) for machine-specific checks.
    """
    role, state, kind = key
    process = case.process_in(state)
    message = case.message_for(kind, process)
    result = case.module.transition(process, message, role=role, local_pid=case.local_pid(role))
    rule = case.table.get(key)
    if rule is None:
        assert isinstance(result, ProtocolError), result
        assert result.status == 400
        assert result.code is ErrorCode.ILLEGAL_TRANSITION
        assert schemas.schema_errors(result.body().to_json(), case.error_schema) == []
        return None
    assert isinstance(result, Transition), result
    assert result.process.state is rule.next
    assert (result.process.consumer_pid, result.process.provider_pid) == (case.cpid, case.ppid)
    assert result.effects == rule.effects
    assert result.created is (state is None)
    assert result.status == (201 if state is None else 200)
    return result


def check_sent(case: MachineCase, key: Key) -> None:
    """The sender applies the receiver's row when the peer ACKs, without the receiver's effects."""
    receiver, state, kind = key
    process = case.process_in(state)
    message = case.message_for(kind, process)
    rule = case.table.get(key)
    ack = case.ack_type(
        consumer_pid=case.cpid,
        provider_pid=case.ppid,
        state=rule.next if rule else case.states["TERMINATED"],
    )
    result = case.module.transition(
        process, message, role=receiver.peer, direction=Direction.SENT, ack=ack
    )
    if rule is None:
        assert isinstance(result, ProtocolError)
        assert (result.status, result.code) == (400, ErrorCode.ILLEGAL_TRANSITION)
        return
    assert isinstance(result, Transition), result
    assert result.process.state is rule.next
    assert result.effects == ()  # the effects are the receiver's to-do, not ours


# --- duplicates and process ids ----------------------------------------------------------------


def check_duplicate(case: MachineCase, key: Key) -> None:
    """The message that produced a state, received again, changes nothing and is answered alike."""
    role, state, kind = key
    message = case.message_for(kind, case.process_in(state))
    first = case.module.transition(
        case.process_in(state), message, role=role, local_pid=case.local_pid(role)
    )
    assert isinstance(first, Transition)
    again = case.module.transition(first.process, message, role=role, local_pid="urn:uuid:other")
    assert isinstance(again, Transition), again
    assert again.duplicate
    assert again.process is first.process
    assert again.effects == ()
    assert again.status == first.status  # a retried creating message gets its 201 again


def check_foreign_pid(case: MachineCase, key: Key, field: str) -> ProtocolError:
    """A message whose ``field`` names another process is a 400 ``process-id-mismatch``."""
    role, state, kind = key
    process = case.process_in(state)
    document = {**case.message_for(kind, process).to_json(), field: "urn:uuid:someone-else"}
    result = case.module.transition(process, m.parse_message(document), role=role)
    assert isinstance(result, ProtocolError)
    assert (result.status, result.code) == (400, ErrorCode.PROCESS_ID_MISMATCH)
    return result


def check_foreign_message(case: MachineCase, state: StrEnum, message: m.Message) -> None:
    """Another protocol's message is a 400 ``unexpected-message``."""
    result = case.module.transition(case.process_in(state), message, role=Role.PROVIDER)
    assert isinstance(result, ProtocolError)
    assert (result.status, result.code) == (400, ErrorCode.UNEXPECTED_MESSAGE)


def check_unknown_process_helper(case: MachineCase) -> None:
    error = case.module.unknown_process("urn:uuid:nope")
    assert error.status == 404
    assert schemas.schema_errors(error.body().to_json(), case.error_schema) == []


def check_creating_needs_the_unknown_pid(case: MachineCase, creating: m.Message) -> None:
    """Receiving ``creating`` needs ``local_pid``; having sent it needs the peer's ``ack``."""
    with pytest.raises(ValueError, match="local_pid"):
        case.module.transition(None, creating, role=Role.PROVIDER)
    with pytest.raises(ValueError, match="ack"):
        case.module.transition(None, creating, role=Role.CONSUMER, direction=Direction.SENT)


# --- TCK scenarios -----------------------------------------------------------------------------


def load_scenarios(case: MachineCase) -> list[dict[str, Any]]:
    if not SCENARIOS.is_file():
        return []
    tests = json.loads(SCENARIOS.read_text("utf-8"))["tests"]
    return [t for t in tests if t["group"] in case.tck_groups]


class Party:
    """One side of a replayed process: our machine in the CUT's or the TCK's role."""

    def __init__(self, case: MachineCase, name: str, role: Role) -> None:
        self.case = case
        self.name = name
        self.role = role
        self.pid = f"urn:uuid:{name.lower()}-{role}"
        self.process: Any = None

    def build(self, kind: StrEnum, serial: int) -> m.Message:
        """The message this party sends; the TCK stamps each with a fresh ``@id`` as it does."""
        message = self.case.compose(self, kind)
        if self.name == "TCK":
            message = m.parse_message({**message.to_json(), "@id": f"urn:uuid:tck-msg-{serial}"})
        return message


def allowed_next(effects: tuple[Any, ...], termination: StrEnum) -> set[str] | None:
    """The messages an effect lets the receiver send next (``None``: the effects do not say)."""
    for effect in effects:
        if isinstance(effect, NeedsDecision):
            return set(effect.options)
        if isinstance(effect, MustSend):
            return {effect.message, termination}
    return None


def replay(case: MachineCase, scenario: dict[str, Any]) -> tuple[Party, Party]:
    """Play ``scenario`` between two machines; every step must be answered as it expects."""
    cut = Party(case, "CUT", Role(scenario["cut_role"]))
    tck = Party(case, "TCK", cut.role.peer)
    parties = {"CUT": cut, "TCK": tck}
    steps = case.sequence_of(scenario)
    expected_next: set[str] | None = None
    for index, step in enumerate(steps):
        if step["kind"] != "request" or step["message"] == case.signal:
            continue  # responses are checked with their request; the signal only triggers
        sender, receiver = parties[step["from"]], parties[step["to"]]
        kind = case.tck_kinds[step["message"]]
        if sender is cut:
            if expected_next is not None:
                assert kind in expected_next, f"step {index}: CUT sends {kind}, not {expected_next}"
            expected_next = None  # an effect is about the CUT's next message only
        message = sender.build(kind, index)
        answer = steps[index + 1]["message"] if index + 1 < len(steps) else None
        before = receiver.process
        result = case.module.transition(
            receiver.process, message, role=receiver.role, local_pid=receiver.pid
        )
        if answer == "4xx ERROR":
            assert isinstance(result, ProtocolError), f"step {index}: expected 4xx, got {result}"
            assert 400 <= result.status < 500
            assert receiver.process is before  # state unchanged; the TCK GETs it to check
            continue
        assert isinstance(result, Transition), f"step {index} {kind}: {result}"
        receiver.process = result.process
        sent = case.module.transition(
            sender.process,
            message,
            role=sender.role,
            direction=Direction.SENT,
            ack=receiver.process.ack(),
        )
        assert isinstance(sent, Transition), f"step {index} (sender side): {sent}"
        sender.process = sent.process
        if receiver is cut:
            expected_next = allowed_next(result.effects, case.termination)
    return cut, tck


def check_scenario(case: MachineCase, scenario: dict[str, Any]) -> tuple[Party, Party]:
    """Replay ``scenario``; both sides must end in the same state."""
    cut, tck = replay(case, scenario)
    assert cut.process is not None and tck.process is not None
    assert cut.process.ack() == tck.process.ack(), "both sides must hold the same state"
    return cut, tck
