"""The left operands the engine evaluates, and the registry the parser checks against.

Why a registry keyed by IRI: the parser must refuse an unknown left operand *when the policy is
read* (an operator publishing a typo'd constraint hears about it at once, a peer's offer with a
constraint we cannot evaluate is never accepted), and it must refuse an operator or a right
operand the left operand cannot take. Each ``OperandSpec`` therefore carries the operators it
takes, a right-operand parser that raises ``InvalidRightOperand`` with the JSON path, and the
check that decides it against an ``EvaluationContext``.

This module holds the ODRL operands (``dateTime``, ``elapsedTime``, ``count``), EDC's legacy
``inForceDate`` and our participant allow-list; ``policies.cx_operands`` adds Catena-X's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any

from policies.context import EvaluationContext
from policies.errors import InvalidRightOperand
from policies.namespaces import COUNT, DATE_TIME, ELAPSED_TIME, IN_FORCE_DATE, PARTICIPANT_DID
from policies.operators import (
    ALL_OPERATORS,
    COMPARISON,
    EQUALITY,
    ORDERING,
    Operator,
    Outcome,
    holds,
)

RightParser = Callable[[Operator, Any, str], Any]
Check = Callable[[Operator, Any, EvaluationContext], Outcome]
DueAt = Callable[[Operator, Any, EvaluationContext], datetime | None]


@dataclass(frozen=True, slots=True)
class OperandSpec:
    """One left operand: its IRI, what it takes, and how it is decided.

    ``claim`` marks operands about *who* the requester is (credentials, BPN, groups, purpose,
    contract references): a policy monitor (``EvaluationContext.monitor``) does not re-check
    them. ``due_at`` gives the instant a time constraint starts to hold, for duties.
    """

    iri: str
    label: str
    operators: frozenset[Operator]
    parse_right: RightParser
    check: Check
    claim: bool = False
    due_at: DueAt | None = None
    aliases: tuple[str, ...] = field(default=())


# --- right-operand parsers ---------------------------------------------------------------------


def text(value: Any, path: str, what: str = "a string") -> str:
    """A non-empty string (``{"@value": …}`` already unwrapped by the parser)."""
    if not isinstance(value, str) or not value:
        raise InvalidRightOperand(path, f"rightOperand must be {what}, not {value!r}")
    return value


def text_list(value: Any, path: str, pattern: re.Pattern[str] | None = None,
              what: str = "strings") -> tuple[str, ...]:
    """A non-empty list of distinct non-empty strings (each matching ``pattern``)."""
    if not isinstance(value, tuple | list) or not value:
        raise InvalidRightOperand(path, f"rightOperand must be a non-empty list of {what}")
    items = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item or (pattern and not pattern.fullmatch(item)):
            raise InvalidRightOperand(f"{path}[{index}]", f"{item!r} is not one of the {what} "
                                      "this constraint takes")
        items.append(item)
    if len(set(items)) != len(items):
        raise InvalidRightOperand(path, "rightOperand lists a value twice")
    return tuple(items)


def scalar_or_list(op: Operator, value: Any, path: str,
                   pattern: re.Pattern[str] | None = None, what: str = "strings") -> Any:
    """One string for ``eq``/``neq``, a list of strings for the set operators."""
    if op in EQUALITY:
        item = text(value, path)
        if pattern and not pattern.fullmatch(item):
            raise InvalidRightOperand(path, f"{item!r} is not one of the {what} this "
                                      "constraint takes")
        return item
    return text_list(value, path, pattern, what)


def instant(value: Any, path: str) -> datetime:
    """An ISO 8601 date-time with a timezone (an instant, not a wall-clock time)."""
    raw = text(value, path, "an ISO 8601 date-time")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRightOperand(path, f"{raw!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise InvalidRightOperand(path, f"{raw!r} has no timezone; write e.g. {raw}Z")
    return parsed


_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)


def duration(value: Any, path: str) -> timedelta:
    """An ISO 8601 duration without years or months (their length varies): ``P7D``, ``PT12H``."""
    raw = text(value, path, "an ISO 8601 duration")
    match = _DURATION.fullmatch(raw)
    if not match or raw in ("P", "PT") or raw.endswith("T"):
        raise InvalidRightOperand(path, f"{raw!r} is not a supported ISO 8601 duration "
                                  "(use W, D, H, M, S: 'P7D')")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                     minutes=parts.get("m", 0), seconds=parts.get("s", 0))


def non_negative_int(value: Any, path: str) -> int:
    """An integer ≥ 0, as a JSON number or a string of digits (``xsd:nonNegativeInteger``)."""
    if isinstance(value, bool):
        raise InvalidRightOperand(path, "rightOperand must be a whole number, not a boolean")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        return int(value)
    raise InvalidRightOperand(path, f"rightOperand must be a whole number ≥ 0, not {value!r}")


def _participants(op: Operator, value: Any, path: str) -> Any:
    def one(item: Any, where: str) -> str:
        if isinstance(item, dict) and isinstance(item.get("@id"), str):
            item = item["@id"]
        if not isinstance(item, str) or not item:
            raise InvalidRightOperand(where, "participants must be strings (DIDs) or "
                                      "{'@id': DID}")
        return item

    if op in EQUALITY:
        if isinstance(value, tuple | list):
            raise InvalidRightOperand(path, f"{op} compares with one DID")
        return one(value, path)
    if not isinstance(value, tuple | list) or not value:
        raise InvalidRightOperand(path, "an empty participant list admits nobody; remove the "
                                  "constraint instead")
    return tuple(one(item, f"{path}[{i}]") for i, item in enumerate(value))


# --- checks ------------------------------------------------------------------------------------


def _check_participant(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    did = ctx.participant_did
    if holds(op, did, right):
        return Outcome.true(f"{did} satisfies participantDid {op}")
    if op in (Operator.EQ, Operator.IS_ANY_OF, Operator.IS_PART_OF):
        return Outcome.false(f"{did} is not on the allow-list",
                             "to be one of the participants the policy names")
    return Outcome.false(f"{did} is on the deny-list", None)


def _window(op: Operator, point: datetime, now: datetime, what: str) -> Outcome:
    if holds(op, now, point):
        return Outcome.true(f"{what} holds at {now.isoformat()}")
    if op in (Operator.LT, Operator.LTEQ):
        return Outcome.false(f"the validity window ended at {point.isoformat()}",
                             f"a new agreement (this one's window ended {point.isoformat()})")
    return Outcome.false(f"the validity window starts at {point.isoformat()}",
                         f"to wait until {point.isoformat()}")


def _check_date_time(op: Operator, right: datetime, ctx: EvaluationContext) -> Outcome:
    return _window(op, right, ctx.now, f"dateTime {op} {right.isoformat()}")


def _start_due(op: Operator, point: datetime) -> datetime | None:
    if op is Operator.GT:
        return point + timedelta(microseconds=1)
    if op in (Operator.GTEQ, Operator.EQ):
        return point
    return None


def _check_elapsed(op: Operator, right: timedelta, ctx: EvaluationContext) -> Outcome:
    if ctx.agreement_start is None:
        if op in (Operator.LT, Operator.LTEQ):
            return Outcome.true("elapsedTime counts from the agreement, which has not started")
        elapsed = timedelta(0)
    else:
        elapsed = ctx.now - ctx.agreement_start
    if holds(op, elapsed, right):
        return Outcome.true(f"elapsedTime {elapsed} satisfies {op} {right}")
    if op in (Operator.LT, Operator.LTEQ):
        return Outcome.false(f"the agreement's {right} are over ({elapsed} elapsed)",
                             "a new agreement (this one's usage period is over)")
    return Outcome.false(f"only {elapsed} of the required {right} have elapsed",
                         f"to wait until {right} after the agreement")


def _due_elapsed(op: Operator, right: timedelta, ctx: EvaluationContext) -> datetime | None:
    if ctx.agreement_start is None:
        return None
    return _start_due(op, ctx.agreement_start + right)


def _check_count(op: Operator, right: int, ctx: EvaluationContext) -> Outcome:
    this_use = ctx.access_count + 1
    if holds(op, this_use, right):
        return Outcome.true(f"use number {this_use} satisfies count {op} {right}")
    return Outcome.false(f"this would be use number {this_use}; the policy allows count {op} "
                         f"{right}", "a new agreement (the permitted number of uses is spent)")


_RELATIVE = re.compile(r"contractAgreement\s*\+\s*(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_in_force(op: Operator, value: Any, path: str) -> Any:
    raw = text(value, path, "a date-time or 'contractAgreement+<n><s|m|h|d|w>'")
    relative = _RELATIVE.fullmatch(raw.strip())
    if relative:
        return timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    return instant(raw, path)


def _check_in_force(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    if isinstance(right, datetime):
        return _window(op, right, ctx.now, f"inForceDate {op} {right.isoformat()}")
    if ctx.agreement_start is None:
        return Outcome.true("inForceDate counts from the agreement, which has not started")
    return _window(op, ctx.agreement_start + right, ctx.now, f"inForceDate {op} agreement+{right}")


def _due_in_force(op: Operator, right: Any, ctx: EvaluationContext) -> datetime | None:
    if isinstance(right, datetime):
        return _start_due(op, right)
    return None if ctx.agreement_start is None else _start_due(op, ctx.agreement_start + right)


CORE_OPERANDS: tuple[OperandSpec, ...] = (
    OperandSpec(
        PARTICIPANT_DID, "participantDid",
        frozenset({Operator.EQ, Operator.NEQ, Operator.IS_ANY_OF, Operator.IS_NONE_OF}),
        _participants, _check_participant,
    ),
    OperandSpec(DATE_TIME, "dateTime", ORDERING, lambda op, v, p: instant(v, p),
                _check_date_time, due_at=lambda op, r, ctx: _start_due(op, r)),
    OperandSpec(ELAPSED_TIME, "elapsedTime", ORDERING, lambda op, v, p: duration(v, p),
                _check_elapsed, due_at=_due_elapsed),
    OperandSpec(COUNT, "count", COMPARISON, lambda op, v, p: non_negative_int(v, p),
                _check_count),
    OperandSpec(IN_FORCE_DATE, "inForceDate", ORDERING, _parse_in_force, _check_in_force,
                due_at=_due_in_force),
)


# --- the registry ------------------------------------------------------------------------------


@cache
def _registry() -> Mapping[str, OperandSpec]:
    # deferred: cx_operands builds on the helpers above
    from policies.cx_operands import CX_OPERANDS

    table: dict[str, OperandSpec] = {}
    for spec in (*CORE_OPERANDS, *CX_OPERANDS):
        for iri in (spec.iri, *spec.aliases):
            table[iri] = spec
    return MappingProxyType(table)


def lookup(iri: str) -> OperandSpec | None:
    """The spec for a left operand IRI, or None when the engine does not evaluate it."""
    found = _registry().get(iri)
    if found is not None:
        return found
    from policies.cx_operands import dynamic_operand

    return dynamic_operand(iri)


def known_left_operands() -> frozenset[str]:
    """Every left operand IRI with fixed semantics (dotted framework operands come on top)."""
    return frozenset(_registry())


__all__ = [
    "ALL_OPERATORS",
    "CORE_OPERANDS",
    "OperandSpec",
    "duration",
    "instant",
    "known_left_operands",
    "lookup",
    "non_negative_int",
    "scalar_or_list",
    "text",
    "text_list",
]
