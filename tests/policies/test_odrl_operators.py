"""Operator semantics on numbers, instants, durations, strings and sets; three-valued logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.operators import (
    COMPARISON,
    ORDERING,
    SET_OPERATORS,
    Operator,
    Truth,
    compare,
    holds,
)

values = st.text(alphabet="abcde", min_size=1, max_size=2)
sets = st.frozensets(values, max_size=4)
lists = st.lists(values, min_size=1, max_size=4, unique=True)
numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False))
instants = st.datetimes(timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=999))
truths = st.sampled_from(list(Truth))


@given(st.one_of(st.tuples(numbers, numbers), st.tuples(instants, instants),
                 st.tuples(durations, durations)))
def test_ordering_agrees_with_python_on_numbers_instants_durations(pair: tuple) -> None:
    left, right = pair
    assert compare(Operator.LT, left, right) == (left < right)
    assert compare(Operator.LTEQ, left, right) == (left <= right)
    assert compare(Operator.GT, left, right) == (left > right)
    assert compare(Operator.GTEQ, left, right) == (left >= right)
    assert compare(Operator.EQ, left, right) != compare(Operator.NEQ, left, right)
    # trichotomy
    assert [compare(o, left, right) for o in (Operator.LT, Operator.EQ, Operator.GT)].count(
        True) == 1


@pytest.mark.parametrize("op", sorted(ORDERING))
def test_strings_and_booleans_are_not_ordered(op: Operator) -> None:
    with pytest.raises(TypeError):
        compare(op, "a", "b")
    with pytest.raises(TypeError):
        compare(op, True, 1)


@given(values, values)
def test_string_equality(left: str, right: str) -> None:
    assert holds(Operator.EQ, left, right) == (left == right)
    assert holds(Operator.NEQ, left, right) == (left != right)


@given(values, lists)
def test_scalar_left_set_operators(left: str, right: list[str]) -> None:
    assert holds(Operator.IS_ANY_OF, left, right) == (left in right)
    assert holds(Operator.IS_PART_OF, left, right) == (left in right)
    assert holds(Operator.IS_NONE_OF, left, right) == (left not in right)
    assert holds(Operator.IS_ALL_OF, left, right) == (set(right) == {left})


@given(sets, lists)
def test_set_left_set_operators(left: frozenset[str], right: list[str]) -> None:
    r = frozenset(right)
    assert holds(Operator.IS_ANY_OF, left, right) == bool(left & r)
    assert holds(Operator.IS_ALL_OF, left, right) == (r <= left)
    assert holds(Operator.IS_NONE_OF, left, right) == (not left & r)
    assert holds(Operator.IS_PART_OF, left, right) == (bool(left) and left <= r)
    assert holds(Operator.EQ, left, right) == (left == r)
    assert holds(Operator.NEQ, left, right) != holds(Operator.EQ, left, right)
    # dualities
    assert holds(Operator.IS_NONE_OF, left, right) != holds(Operator.IS_ANY_OF, left, right)
    if left:
        assert holds(Operator.IS_PART_OF, left, right) == holds(
            Operator.IS_ALL_OF, r, tuple(left))


def test_an_empty_claim_is_part_of_nothing() -> None:
    assert not holds(Operator.IS_PART_OF, frozenset(), ["BMW"])
    assert holds(Operator.IS_NONE_OF, frozenset(), ["BMW"])
    assert not holds(Operator.IS_ANY_OF, frozenset(), ["BMW"])


def test_scalar_right_operand_of_a_set_operator_is_a_singleton() -> None:
    assert holds(Operator.EQ, frozenset({"vehicleDismantle"}), "vehicleDismantle")
    assert not holds(Operator.EQ, frozenset({"a", "b"}), "a")
    assert holds(Operator.IS_ANY_OF, frozenset({"a", "b"}), "a")


def test_operator_iris() -> None:
    for op in Operator:
        assert Operator.from_iri(op.iri) is op
    assert Operator.from_iri("http://www.w3.org/ns/odrl/2/isA") is None
    assert Operator.from_iri("https://example.org/eq") is None
    assert COMPARISON | SET_OPERATORS == frozenset(Operator)


# --- three-valued logic ------------------------------------------------------------------------


def _brute(values: list[Truth], combine: str) -> Truth:
    """Evaluate by trying every completion of the unknowns: decided iff all agree."""
    unknown = [i for i, v in enumerate(values) if v is Truth.UNKNOWN]
    outcomes = set()
    for mask in range(2 ** len(unknown)):
        filled = [v is Truth.TRUE for v in values]
        for bit, index in enumerate(unknown):
            filled[index] = bool(mask >> bit & 1)
        outcomes.add({"and": all, "or": any, "xone": lambda f: sum(f) == 1}[combine](filled))
    return Truth.of(outcomes.pop()) if len(outcomes) == 1 else Truth.UNKNOWN


@given(st.lists(truths, max_size=5))
def test_and_or_xone_truth_tables(values: list[Truth]) -> None:
    assert Truth.all_of(values) is _brute(values, "and")
    assert Truth.any_of(values) is _brute(values, "or")
    if values:
        assert Truth.exactly_one(values) is _brute(values, "xone")


@given(st.lists(st.booleans(), max_size=6))
def test_two_valued_logic_is_boolean_logic(flags: list[bool]) -> None:
    values = [Truth.of(f) for f in flags]
    assert Truth.all_of(values) is Truth.of(all(flags))
    assert Truth.any_of(values) is Truth.of(any(flags))
    assert Truth.exactly_one(values) is Truth.of(sum(flags) == 1)


def test_instants_compare_across_timezones() -> None:
    berlin = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert compare(Operator.EQ, berlin, datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert compare(Operator.LT, berlin, datetime(2026, 3, 1, 13, 0, tzinfo=UTC))
