"""The engine decides every policy the minimal policy gate accepts exactly as the gate does.

The gate the node used before (a frozen copy in ``legacy_gate.py``) is the reference here:
its own test cases, and random policies built from what it understands, go through both;
wherever the gate accepts a policy (``check`` passes) the engine must agree on
allowed/denied, the code and the failing path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import legacy_gate as gate_module
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from legacy_gate import PolicyError as GatePolicyError
from legacy_gate import PolicyGate
from odrl_support import c

from policies import DecisionCode, EvaluationContext, MalformedPolicy, UnsupportedPolicy
from policies.compat import PolicyEngine, expand_left_operand, is_in_force, parse_duration

ALICE = "did:web:recycler.example"
BOB = "did:web:stranger.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARTICIPANT_DID = gate_module.PARTICIPANT_DID
gate = PolicyGate()
engine = PolicyEngine()


def policy(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "use"}
    if constraints:
        rule["constraint"] = list(constraints)
    return {"@id": "urn:uuid:p1", "@type": "Offer", "permission": [rule], **extra}


def same(p: Any, context: EvaluationContext) -> None:
    """Both decide ``p`` alike (when the gate accepts it)."""
    theirs = gate.evaluate(p, gate_module.EvaluationContext(
        context.participant_did, context.now, context.agreement_start))
    ours = engine.evaluate(p, context)
    assert ours.allowed == theirs.allowed, (p, theirs, ours)
    assert str(ours.code) == str(theirs.code), (p, theirs, ours)
    if not theirs.allowed:
        assert theirs.failed_constraint is not None and ours.failed_constraint is not None
        assert theirs.failed_constraint.startswith(ours.failed_constraint), (theirs, ours)


# The gate's own cases (tests/connector/test_policy_gate.py), as data.
GATE_CASES: list[tuple[dict[str, Any], EvaluationContext]] = [
    (policy(), EvaluationContext(ALICE, NOW)),
    (policy(c(PARTICIPANT_DID, "isAnyOf", [ALICE, "did:web:other.example"])),
     EvaluationContext(ALICE, NOW)),
    (policy(c("bpc-policy:participantDid", "isAnyOf", [ALICE])), EvaluationContext(BOB, NOW)),
    (policy(c(PARTICIPANT_DID, "eq", ALICE)), EvaluationContext(BOB, NOW)),
    (policy(c(PARTICIPANT_DID, "neq", ALICE)), EvaluationContext(ALICE, NOW)),
    (policy(c(PARTICIPANT_DID, "isNoneOf", [BOB])), EvaluationContext(ALICE, NOW)),
    (policy(c(PARTICIPANT_DID, "isNoneOf", [BOB])), EvaluationContext(BOB, NOW)),
    (policy(assignee=ALICE), EvaluationContext(ALICE, NOW)),
    (policy(assignee=ALICE), EvaluationContext(BOB, NOW)),
    ({"@id": "x", "permission": [{"action": "use", "assignee": [{"@id": ALICE}]}]},
     EvaluationContext(BOB, NOW)),
    *[(policy(c(left, "lteq", "2026-03-31T00:00:00Z")), EvaluationContext(ALICE, when))
      for left in ("odrl:dateTime", "dateTime", "http://www.w3.org/ns/odrl/2/dateTime")
      for when in (NOW, datetime(2026, 4, 1, tzinfo=UTC))],
    (policy(c("odrl:dateTime", "gteq", {"@value": "2026-06-01T00:00:00+02:00"})),
     EvaluationContext(ALICE, NOW)),
    *[(policy(c("odrl:elapsedTime", "lteq", "P7D")), EvaluationContext(ALICE, NOW, start))
      for start in (None, NOW - timedelta(days=6), NOW - timedelta(days=7, seconds=1))],
    *[(policy(c("edc:inForceDate", "lteq", "contractAgreement+7d")),
       EvaluationContext(ALICE, NOW, start))
      for start in (None, NOW - timedelta(days=1), NOW - timedelta(days=8))],
    (policy(c("https://w3id.org/edc/v0.0.1/ns/inForceDate", "gteq", "2026-01-01T00:00:00Z")),
     EvaluationContext(ALICE, NOW)),
    *[(policy(c("DataUsageEndDurationDays", "eq", "30"),
              **{"@context": [gate_module.CX_POLICY_CONTEXT]}),
       EvaluationContext(ALICE, NOW, NOW - timedelta(days=days))) for days in (29, 30)],
    (policy({"or": [c(PARTICIPANT_DID, "eq", ALICE), c(PARTICIPANT_DID, "eq", BOB)]}),
     EvaluationContext(BOB, NOW)),
    (policy({"or": [c(PARTICIPANT_DID, "eq", ALICE), c(PARTICIPANT_DID, "eq", ALICE)]}),
     EvaluationContext(BOB, NOW)),
    (policy({"xone": [c(PARTICIPANT_DID, "eq", ALICE), c(PARTICIPANT_DID, "eq", ALICE)]}),
     EvaluationContext(ALICE, NOW)),
    ({"@id": "x", "permission": [
        {"action": "use", "constraint": [c(PARTICIPANT_DID, "eq", BOB)]},
        {"action": "odrl:use", "constraint": [c(PARTICIPANT_DID, "eq", ALICE)]}]},
     EvaluationContext(ALICE, NOW)),
]


@pytest.mark.parametrize("p, context", GATE_CASES)
def test_the_gates_cases_decide_alike(p: dict[str, Any], context: EvaluationContext) -> None:
    gate.check(p)
    engine.check(p)
    same(p, context)


# Malformed inputs the gate refuses: the engine refuses them too (as malformed).
@pytest.mark.parametrize("p", [
    None, "use", [], {}, {"permission": []}, {"permission": "use"},
    {"permission": [{"constraint": []}]}, {"permission": [42]},
    policy(c("odrl:dateTime", "lteq", "yesterday")),
    policy(c("odrl:dateTime", "lteq", "2026-03-31T00:00:00")),
    policy(c("odrl:dateTime", "lteq", 20260331)),
    policy(c("odrl:elapsedTime", "lteq", "P1Y")),
    policy(c("odrl:elapsedTime", "lteq", "PT")),
    policy(c(PARTICIPANT_DID, "isAnyOf", [])),
    policy(c(PARTICIPANT_DID, "isAnyOf", [7])),
    policy({"leftOperand": "odrl:dateTime", "operator": "lteq"}),
    policy({"and": []}),
    policy({"and": [c(PARTICIPANT_DID, "eq", ALICE)], "or": [c(PARTICIPANT_DID, "eq", BOB)]}),
    policy(c(123, "eq", "x")),
])
def test_malformed_for_the_gate_is_malformed_for_the_engine(p: Any) -> None:
    decision = engine.evaluate(p, EvaluationContext(ALICE, NOW))
    assert not decision.allowed and decision.code is DecisionCode.MALFORMED_POLICY
    assert decision.reason.startswith("policy malformed")
    with pytest.raises(MalformedPolicy):
        engine.check(p)


@pytest.mark.parametrize("p", [
    policy(c("spatial", "eq", "http://example.org/EU")),
    policy(c("Membership", "eq", "active")),  # Catena-X term without the Catena-X context
    policy(c(PARTICIPANT_DID, "gt", ALICE)),
    {"@id": "x", "permission": [{"action": "distribute"}]},
])
def test_unsupported_for_the_gate_is_unsupported_for_the_engine(p: Any) -> None:
    assert engine.evaluate(p, EvaluationContext(ALICE, NOW)).code is DecisionCode.UNSUPPORTED
    with pytest.raises(UnsupportedPolicy):
        engine.check(p)


def test_what_the_engine_adds_over_the_gate() -> None:
    """Prohibitions, duties, count and Catena-X operands: refused by the gate, decided here."""
    extended = [
        {"@id": "x", "permission": [{"action": "use"}], "prohibition": [{"action": "use"}]},
        {"@id": "x", "permission": [{"action": "use", "duty": [{"action": "delete"}]}]},
        policy(c("cx-policy:FrameworkAgreement", "eq", "DataExchangeGovernance:1.0")),
        policy(c("odrl:count", "lteq", 3)),
    ]
    for p in extended:
        with pytest.raises(GatePolicyError):
            gate.check(p)
        engine.check(p)
    decisions = [engine.evaluate(p, EvaluationContext(ALICE, NOW)) for p in extended]
    assert [d.allowed for d in decisions] == [False, True, False, True]


# --- random policies built from what the gate understands --------------------------------------

_instants = st.sampled_from(["2026-02-01T00:00:00Z", "2026-03-01T12:00:00Z",
                             "2026-03-01T12:00:00+01:00", "2026-04-01T00:00:00Z"])
_atoms = st.one_of(
    st.builds(lambda op, dids: c(PARTICIPANT_DID, op, dids[0] if op in ("eq", "neq") else dids),
              st.sampled_from(["eq", "neq", "isAnyOf", "isNoneOf"]),
              st.lists(st.sampled_from([ALICE, BOB, "did:web:c"]), min_size=1, max_size=2)),
    st.builds(lambda left, op, when: c(left, op, when),
              st.sampled_from(["dateTime", "odrl:dateTime", "edc:inForceDate"]),
              st.sampled_from(["lt", "lteq", "gt", "gteq"]), _instants),
    st.builds(lambda op, d: c("odrl:elapsedTime", op, d), st.sampled_from(["lt", "lteq"]),
              st.sampled_from(["P1D", "P7D", "PT12H", "P2W"])),
    st.builds(lambda d: c("edc:inForceDate", "lteq", f"contractAgreement+{d}d"),
              st.integers(1, 10)),
    st.builds(lambda n: c("cx-policy:DataUsageEndDurationDays", "eq", str(n)),
              st.integers(1, 10)),
    st.builds(lambda when: c("cx-policy:DataUsageEndDate", "eq", when), _instants),
)
_constraint = st.recursive(_atoms, lambda inner: st.builds(
    lambda op, members: {op: members}, st.sampled_from(["and", "or", "xone", "andSequence"]),
    st.lists(inner, min_size=1, max_size=3)), max_leaves=6)
_rule = st.builds(lambda cs, assignee: {"action": "use", "constraint": cs,
                                        **({"assignee": assignee} if assignee else {})},
                  st.lists(_constraint, max_size=3),
                  st.sampled_from([None, ALICE, [ALICE, BOB], {"@id": BOB}]))


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(_rule, min_size=1, max_size=3),
       assignee=st.sampled_from([None, ALICE, BOB]),
       who=st.sampled_from([ALICE, BOB]),
       minutes=st.integers(-60 * 24 * 40, 60 * 24 * 40),
       started=st.one_of(st.none(), st.integers(0, 60 * 24 * 20)))
def test_random_gate_policies_decide_alike(rules: list[Any], assignee: str | None, who: str,
                                           minutes: int, started: int | None) -> None:
    p: dict[str, Any] = {"@id": "urn:p", "permission": rules}
    if assignee:
        p["assignee"] = assignee
    now = NOW + timedelta(minutes=minutes)
    start = None if started is None else now - timedelta(minutes=started)
    gate.check(p)
    same(p, EvaluationContext(who, now, start))


# --- helpers and agreements --------------------------------------------------------------------


def test_is_in_force_matches_the_gate() -> None:
    agreement = {
        "@id": "urn:uuid:a1", "@type": "Agreement", "target": "urn:uuid:asset",
        "assigner": "did:web:provider.example", "assignee": ALICE,
        "timestamp": "2026-03-01T00:00:00Z",
        "permission": [{"action": "use", "constraint": [c("odrl:elapsedTime", "lteq", "P7D")]}],
    }
    start = datetime(2026, 3, 1, tzinfo=UTC)
    variants = [agreement, {**agreement, "assignee": None}, "not a policy",
                {**agreement, "permission": [{"action": "use", "constraint": [
                    c("x", "eq", "y")]}]}]
    for candidate in variants:
        for days in (0, 3, 8):
            when = start + timedelta(days=days)
            assert is_in_force(candidate, start, when) == gate_module.is_in_force(
                candidate, start, when) == engine.is_in_force(candidate, start, when)


def test_helpers_match_the_gate() -> None:
    for text in ("P7D", "P1W2DT3H4M5S", "PT12H"):
        assert parse_duration(text) == gate_module.parse_duration(text)
    for bad in ("7D", "P", "P1M1Y", "PT1D"):
        with pytest.raises(MalformedPolicy):
            parse_duration(bad)
    cx_policy = {"@context": [gate_module.CX_POLICY_CONTEXT]}
    for term, p in [("dateTime", {}), ("odrl:elapsedTime", {}), ("bpc-policy:participantDid",
                                                                 {}),
                    ("DataUsageEndDurationDays", cx_policy), ("edc:inForceDate", {}),
                    (PARTICIPANT_DID, {})]:
        assert expand_left_operand(term, p) == gate_module.expand_left_operand(term, p)
