"""ODRL operators and their meaning on numbers, instants, durations, strings and sets.

Why one module: every left operand compares *something it knows about the requester* (an
instant, a count, a BPN, the activity types of a credential) with the right operand, and the
operator must mean the same thing whichever left operand uses it. The semantics, with ``L``
the value the engine knows and ``R`` the right operand:

===========  ==========================  =====================================================
operator     scalar ``L``                set ``L`` (e.g. the brands a credential allows)
===========  ==========================  =====================================================
eq / neq     ``L == R`` / ``L != R``     ``L == set(R)`` / its negation (a scalar R is {R})
lt … gteq    ordering (numbers, instants, durations; strings are not ordered)
isAnyOf      ``L in R``                  ``L ∩ R ≠ ∅``
isAllOf      ``R == [L]`` (all of R)     ``R ⊆ L`` (L covers every value of R)
isNoneOf     ``L not in R``              ``L ∩ R = ∅``
isPartOf     ``L in R``                  ``∅ ≠ L ⊆ R`` (an empty L is not "part of" anything:
                                          vacuous truth would open data to a blank claim)
===========  ==========================  =====================================================

Truth is three-valued (``Truth``): a constraint the engine cannot decide because the context
lacks the fact it needs (no BPN known, no purpose declared) is ``UNKNOWN``, not ``FALSE`` — a
permission needs ``TRUE``, but a prohibition must also bite when it is ``UNKNOWN``, or a missing
fact would switch a prohibition off (fail closed in both directions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from policies.namespaces import ODRL


class Operator(StrEnum):
    """The ODRL 2.2 operators the engine implements (``isA``/``hasPart`` are not)."""

    EQ = "eq"
    NEQ = "neq"
    LT = "lt"
    LTEQ = "lteq"
    GT = "gt"
    GTEQ = "gteq"
    IS_ANY_OF = "isAnyOf"
    IS_ALL_OF = "isAllOf"
    IS_NONE_OF = "isNoneOf"
    IS_PART_OF = "isPartOf"

    @property
    def iri(self) -> str:
        return ODRL + self.value

    @classmethod
    def from_iri(cls, iri: str) -> Operator | None:
        """The operator an expanded IRI names, or None (not ODRL, or not implemented)."""
        if not iri.startswith(ODRL):
            return None
        try:
            return cls(iri.removeprefix(ODRL))
        except ValueError:
            return None


class LogicalOperator(StrEnum):
    """ODRL logical constraints; ``andSequence`` is evaluated as ``and`` (order only matters
    to an enforcer that performs the members one after the other)."""

    AND = "and"
    OR = "or"
    XONE = "xone"
    AND_SEQUENCE = "andSequence"

    @property
    def iri(self) -> str:
        return ODRL + self.value


EQUALITY = frozenset({Operator.EQ, Operator.NEQ})
ORDERING = frozenset({Operator.LT, Operator.LTEQ, Operator.GT, Operator.GTEQ})
COMPARISON = EQUALITY | ORDERING
SET_OPERATORS = frozenset({Operator.IS_ANY_OF, Operator.IS_ALL_OF, Operator.IS_NONE_OF,
                           Operator.IS_PART_OF})
ALL_OPERATORS = COMPARISON | SET_OPERATORS
#: Operators whose right operand is a list.
LIST_OPERATORS = SET_OPERATORS


class Truth(Enum):
    """Three-valued logic (Kleene): ``UNKNOWN`` when the context lacks the fact needed."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"

    @staticmethod
    def of(value: bool) -> Truth:
        return Truth.TRUE if value else Truth.FALSE

    @staticmethod
    def all_of(values: Iterable[Truth]) -> Truth:
        """``and``: false if any is false, true if all are true, else unknown."""
        seen = list(values)
        if Truth.FALSE in seen:
            return Truth.FALSE
        return Truth.TRUE if all(v is Truth.TRUE for v in seen) else Truth.UNKNOWN

    @staticmethod
    def any_of(values: Iterable[Truth]) -> Truth:
        """``or``: true if any is true, false if all are false, else unknown."""
        seen = list(values)
        if Truth.TRUE in seen:
            return Truth.TRUE
        return Truth.FALSE if all(v is Truth.FALSE for v in seen) else Truth.UNKNOWN

    @staticmethod
    def exactly_one(values: Iterable[Truth]) -> Truth:
        """``xone``: decided only when the unknowns cannot change the count's verdict."""
        seen = list(values)
        true = sum(v is Truth.TRUE for v in seen)
        unknown = sum(v is Truth.UNKNOWN for v in seen)
        if true > 1:
            return Truth.FALSE
        if unknown == 0:
            return Truth.of(true == 1)
        return Truth.UNKNOWN  # an unknown member could still make the count 0, 1 or 2


@dataclass(frozen=True, slots=True)
class Outcome:
    """What checking one atomic constraint found.

    ``reason`` says what the engine saw ("did:web:x holds no DismantlerCredential"); ``missing``
    says what would make it hold ("a DismantlerCredential with activityType vehicleDismantle
    from a trusted issuer"), for ``explain`` and for the consumer's error message.
    """

    truth: Truth
    reason: str
    missing: str | None = None

    @staticmethod
    def true(reason: str) -> Outcome:
        return Outcome(Truth.TRUE, reason)

    @staticmethod
    def false(reason: str, missing: str | None = None) -> Outcome:
        return Outcome(Truth.FALSE, reason, missing)

    @staticmethod
    def unknown(reason: str, missing: str | None = None) -> Outcome:
        return Outcome(Truth.UNKNOWN, reason, missing)


Scalar = str | int | float | datetime | timedelta


def compare(op: Operator, left: Any, right: Any) -> bool:
    """``left op right`` for scalars. Ordering needs numbers, instants or durations; strings
    only compare for (in)equality. ``TypeError`` for anything else (a parse-time bug)."""
    if op is Operator.EQ:
        return bool(left == right)
    if op is Operator.NEQ:
        return bool(left != right)
    if op not in ORDERING:
        raise TypeError(f"{op} is not a comparison operator")
    if isinstance(left, str) or isinstance(right, str) or isinstance(left, bool) \
            or isinstance(right, bool):
        raise TypeError(f"{op} does not order strings or booleans")
    if op is Operator.LT:
        return bool(left < right)
    if op is Operator.LTEQ:
        return bool(left <= right)
    if op is Operator.GT:
        return bool(left > right)
    return bool(left >= right)


def holds(op: Operator, left: Any, right: Any) -> bool:
    """``left op right`` with the table in the module docstring.

    ``left`` is a scalar or a ``frozenset`` (a set-valued fact); ``right`` a scalar or a
    sequence (list operands). A scalar right operand of a set operator counts as ``[right]``.
    """
    if op in COMPARISON and not isinstance(left, frozenset):
        return compare(op, left, right)
    values = frozenset(right) if isinstance(right, list | tuple | frozenset | set) \
        else frozenset([right])
    mine = left if isinstance(left, frozenset) else frozenset([left])
    if op is Operator.EQ:
        return mine == values
    if op is Operator.NEQ:
        return mine != values
    if op is Operator.IS_ANY_OF:
        return bool(mine & values)
    if op is Operator.IS_ALL_OF:
        return bool(values) and values <= mine
    if op is Operator.IS_NONE_OF:
        return not mine & values
    if op is Operator.IS_PART_OF:
        return bool(mine) and mine <= values
    raise TypeError(f"{op} does not apply to sets")


__all__ = [
    "ALL_OPERATORS",
    "COMPARISON",
    "EQUALITY",
    "LIST_OPERATORS",
    "ORDERING",
    "SET_OPERATORS",
    "LogicalOperator",
    "Operator",
    "Outcome",
    "Truth",
    "compare",
    "holds",
]
