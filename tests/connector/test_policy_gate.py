"""The minimal policy gate: each supported constraint, fail-closed unknowns, malformed input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.policy_gate import (
    CX_POLICY_CONTEXT,
    PARTICIPANT_DID,
    DecisionCode,
    EvaluationContext,
    MalformedPolicy,
    PolicyGate,
    UnsupportedPolicy,
    is_in_force,
    parse_duration,
)

ALICE = "did:web:recycler.example"
BOB = "did:web:stranger.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
gate = PolicyGate()


def policy(*constraints: dict[str, Any], **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "use"}
    if constraints:
        rule["constraint"] = list(constraints)
    return {"@id": "urn:uuid:p1", "@type": "Offer", "permission": [rule], **extra}


def c(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def ctx(did: str = ALICE, now: datetime = NOW, start: datetime | None = None) -> EvaluationContext:
    return EvaluationContext(participant_did=did, now=now, agreement_start=start)


def test_unconstrained_use_is_allowed() -> None:
    decision = gate.evaluate(policy(), ctx())
    assert decision.allowed and decision.code is DecisionCode.ALLOWED
    assert decision.failed_constraint is None


# --- allow-list ------------------------------------------------------------------------------


@pytest.mark.parametrize("left", [PARTICIPANT_DID, "bpc-policy:participantDid"])
def test_participant_allow_list(left: str) -> None:
    p = policy(c(left, "isAnyOf", [ALICE, "did:web:other.example"]))
    assert gate.evaluate(p, ctx(ALICE)).allowed
    denied = gate.evaluate(p, ctx(BOB))
    assert not denied.allowed and denied.code is DecisionCode.CONSTRAINT_FAILED
    assert denied.failed_constraint is not None
    assert "permission[0].constraint[0]" in denied.failed_constraint
    assert BOB in denied.reason


def test_participant_eq_neq_and_none_of() -> None:
    assert gate.evaluate(policy(c(PARTICIPANT_DID, "eq", ALICE)), ctx(ALICE)).allowed
    assert not gate.evaluate(policy(c(PARTICIPANT_DID, "eq", ALICE)), ctx(BOB)).allowed
    assert not gate.evaluate(policy(c(PARTICIPANT_DID, "neq", ALICE)), ctx(ALICE)).allowed
    assert gate.evaluate(policy(c(PARTICIPANT_DID, "isNoneOf", [BOB])), ctx(ALICE)).allowed
    assert not gate.evaluate(policy(c(PARTICIPANT_DID, "isNoneOf", [BOB])), ctx(BOB)).allowed


def test_odrl_assignee_on_policy_and_rule() -> None:
    on_policy = policy(assignee=ALICE)
    assert gate.evaluate(on_policy, ctx(ALICE)).allowed
    denied = gate.evaluate(on_policy, ctx(BOB))
    assert denied.code is DecisionCode.NOT_ASSIGNEE and denied.failed_constraint == "assignee"
    on_rule = {"@id": "x", "permission": [{"action": "use", "assignee": [{"@id": ALICE}]}]}
    assert gate.evaluate(on_rule, ctx(ALICE)).allowed
    assert gate.evaluate(on_rule, ctx(BOB)).failed_constraint == "permission[0].assignee"


# --- validity windows ------------------------------------------------------------------------


@pytest.mark.parametrize("left", ["odrl:dateTime", "dateTime",
                                  "http://www.w3.org/ns/odrl/2/dateTime"])
def test_absolute_end_date(left: str) -> None:
    p = policy(c(left, "lteq", "2026-03-31T00:00:00Z"))
    assert gate.evaluate(p, ctx(now=NOW)).allowed
    late = gate.evaluate(p, ctx(now=datetime(2026, 4, 1, tzinfo=UTC)))
    assert not late.allowed and "ended" in late.reason
    assert late.failed_constraint == "permission[0].constraint[0]"
    assert late.left_operand == "http://www.w3.org/ns/odrl/2/dateTime"


def test_absolute_start_date() -> None:
    p = policy(c("odrl:dateTime", "gteq", {"@value": "2026-06-01T00:00:00+02:00"}))
    assert not gate.evaluate(p, ctx()).allowed
    assert gate.evaluate(p, ctx(now=datetime(2026, 6, 2, tzinfo=UTC))).allowed


def test_elapsed_time_from_agreement() -> None:
    p = policy(c("odrl:elapsedTime", "lteq", "P7D"))
    # no agreement yet (catalog): the window has not started, so it cannot have ended
    assert gate.evaluate(p, ctx()).allowed
    start = NOW - timedelta(days=6)
    assert gate.evaluate(p, ctx(start=start)).allowed
    expired = gate.evaluate(p, ctx(start=NOW - timedelta(days=7, seconds=1)))
    assert not expired.allowed
    assert expired.failed_constraint == "permission[0].constraint[0]"
    assert expired.left_operand == "http://www.w3.org/ns/odrl/2/elapsedTime"


def test_edc_in_force_relative_and_absolute() -> None:
    relative = policy(c("edc:inForceDate", "lteq", "contractAgreement+7d"))
    assert gate.evaluate(relative, ctx()).allowed
    assert gate.evaluate(relative, ctx(start=NOW - timedelta(days=1))).allowed
    assert not gate.evaluate(relative, ctx(start=NOW - timedelta(days=8))).allowed
    absolute = policy(c("https://w3id.org/edc/v0.0.1/ns/inForceDate", "gteq",
                        "2026-01-01T00:00:00Z"))
    assert gate.evaluate(absolute, ctx()).allowed


def test_catena_x_usage_end_duration_days() -> None:
    p = policy(c("DataUsageEndDurationDays", "eq", "30"), **{"@context": [CX_POLICY_CONTEXT]})
    assert gate.evaluate(p, ctx(start=NOW - timedelta(days=29))).allowed
    assert not gate.evaluate(p, ctx(start=NOW - timedelta(days=30))).allowed


def test_logical_or_and_xone() -> None:
    allow_a = c(PARTICIPANT_DID, "eq", ALICE)
    allow_b = c(PARTICIPANT_DID, "eq", BOB)
    assert gate.evaluate(policy({"or": [allow_a, allow_b]}), ctx(BOB)).allowed
    none = gate.evaluate(policy({"or": [allow_a, allow_a]}), ctx(BOB))
    assert not none.allowed and none.failed_constraint == "permission[0].constraint[0].or"
    assert not gate.evaluate(policy({"xone": [allow_a, allow_a]}), ctx(ALICE)).allowed


def test_one_permission_suffices() -> None:
    p = {"@id": "x", "permission": [
        {"action": "use", "constraint": [c(PARTICIPANT_DID, "eq", BOB)]},
        {"action": "odrl:use", "constraint": [c(PARTICIPANT_DID, "eq", ALICE)]},
    ]}
    assert gate.evaluate(p, ctx(ALICE)).allowed


# --- fail closed -----------------------------------------------------------------------------


@pytest.mark.parametrize("constraint", [
    c("spatial", "eq", "http://example.org/EU"),
    c("Membership", "eq", "active"),  # Catena-X term, but the CX context is not listed
    c("https://example.org/ns#whatever", "eq", "x"),
])
def test_unknown_constraints_fail_closed_and_are_named(constraint: dict[str, Any]) -> None:
    p = policy(c(PARTICIPANT_DID, "eq", ALICE), constraint)
    decision = gate.evaluate(p, ctx(ALICE))
    assert not decision.allowed and decision.code is DecisionCode.UNSUPPORTED
    assert decision.failed_constraint == "permission[0].constraint[1]"
    assert constraint["leftOperand"] in decision.reason
    with pytest.raises(UnsupportedPolicy):
        gate.check(p)


@pytest.mark.parametrize("p, where", [
    (policy(c(PARTICIPANT_DID, "gt", ALICE)), "permission[0].constraint[0].operator"),
    ({"@id": "x", "permission": [{"action": "distribute"}]}, "permission[0].action"),
])
def test_unsupported_features_fail_closed(p: dict[str, Any], where: str) -> None:
    decision = gate.evaluate(p, ctx())
    assert not decision.allowed and decision.code is DecisionCode.UNSUPPORTED
    assert decision.failed_constraint == where


def test_what_the_engine_decides_that_the_minimal_gate_refused() -> None:
    """Since the gate delegates to ``policies``: Catena-X constraints are evaluated (denied
    without the credential, naming it), prohibitions deny, duties come back to be enforced."""
    framework = policy(c(PARTICIPANT_DID, "eq", ALICE),
                       c("cx-policy:FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"))
    denied = gate.evaluate(framework, ctx(ALICE))
    assert not denied.allowed and denied.code is DecisionCode.CONSTRAINT_FAILED
    assert denied.failed_constraint == "permission[0].constraint[1]"
    assert denied.missing is not None and "DataExchangeGovernanceCredential" in denied.missing
    prohibited = {"@id": "x", "permission": [{"action": "use"}],
                  "prohibition": [{"action": "use"}]}
    assert gate.evaluate(prohibited, ctx()).code is DecisionCode.PROHIBITED
    with_duty = {"@id": "x", "permission": [{"action": "use", "duty": [{"action": "delete"}]}]}
    decision = gate.evaluate(with_duty, ctx())
    assert decision.allowed
    assert [d.action for d in decision.duties] == ["http://www.w3.org/ns/odrl/2/delete"]


@pytest.mark.parametrize("p", [
    None, "use", [], {}, {"permission": []}, {"permission": "use"},
    {"permission": [{"constraint": []}]},
    {"permission": [42]},
    policy(c("odrl:dateTime", "lteq", "yesterday")),
    policy(c("odrl:dateTime", "lteq", "2026-03-31T00:00:00")),  # no timezone
    policy(c("odrl:dateTime", "lteq", 20260331)),
    policy(c("odrl:elapsedTime", "lteq", "P1Y")),  # years have no fixed length
    policy(c("odrl:elapsedTime", "lteq", "PT")),
    policy(c(PARTICIPANT_DID, "isAnyOf", [])),
    policy(c(PARTICIPANT_DID, "isAnyOf", [7])),
    policy({"leftOperand": "odrl:dateTime", "operator": "lteq"}),
    policy({"and": []}),
    policy({"and": [c(PARTICIPANT_DID, "eq", ALICE)], "or": [c(PARTICIPANT_DID, "eq", BOB)]}),
    policy(c(123, "eq", "x")),  # type: ignore[arg-type]
])
def test_malformed_policies_are_typed_denials(p: Any) -> None:
    decision = gate.evaluate(p, ctx())  # never raises
    assert not decision.allowed
    assert decision.code is DecisionCode.MALFORMED_POLICY
    assert decision.reason.startswith("policy malformed")
    with pytest.raises(MalformedPolicy):
        gate.check(p)


def test_parse_duration() -> None:
    assert parse_duration("P7D") == timedelta(days=7)
    assert parse_duration("P1W2DT3H4M5S") == timedelta(days=9, hours=3, minutes=4, seconds=5)
    for bad in ("7D", "P", "P1M1Y", "PT1D"):
        with pytest.raises(MalformedPolicy):
            parse_duration(bad)


# --- agreements in force -----------------------------------------------------------------------


def test_is_in_force_checks_window_and_assignee() -> None:
    agreement = {
        "@id": "urn:uuid:a1", "@type": "Agreement", "target": "urn:uuid:asset",
        "assigner": "did:web:provider.example", "assignee": ALICE,
        "timestamp": "2026-03-01T00:00:00Z",
        "permission": [{"action": "use", "constraint": [
            c("odrl:elapsedTime", "lteq", "P7D")]}],
    }
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert is_in_force(agreement, start, start + timedelta(days=3))
    assert not is_in_force(agreement, start, start + timedelta(days=8))
    assert not is_in_force({**agreement, "assignee": None}, start, start)
    assert not is_in_force("not a policy", start, start)
    broken = {**agreement, "permission": [{"action": "use", "constraint": [c("x", "eq", "y")]}]}
    assert not is_in_force(broken, start, start)


def test_decision_json_shape() -> None:
    decision = gate.evaluate(policy(c(PARTICIPANT_DID, "eq", ALICE)), ctx(BOB))
    body = decision.to_json()
    assert body["allowed"] is False and body["code"] == "constraint-failed"
    assert body["failedConstraint"].startswith("permission[0].constraint[0]")
