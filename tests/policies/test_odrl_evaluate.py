"""Evaluation: permissions, prohibitions, duties, time windows, counts, undecided facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from odrl_support import NOW, RECYCLER, STRANGER, c, ctx, policy

from policies import (
    DecisionCode,
    EvaluationContext,
    Policy,
    evaluate,
    is_in_force,
    parse_policy,
)
from policies.namespaces import CX_ACCESS, DELETE, ELAPSED_TIME, PARTICIPANT_DID

ALLOW = c(PARTICIPANT_DID, "eq", RECYCLER)
DENY = c(PARTICIPANT_DID, "eq", STRANGER)
UNDECIDED = c("cx-policy:UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])  # no purpose given


def test_unconstrained_permission_grants() -> None:
    decision = evaluate(policy(), ctx())
    assert decision.allowed and decision.code is DecisionCode.ALLOWED
    assert decision.granted_by == "permission[0]" and decision.failed_constraint is None


def test_evaluate_takes_a_model_or_json() -> None:
    document = policy(ALLOW)
    model = parse_policy(document)
    assert isinstance(model, Policy)
    assert evaluate(model, ctx()).allowed == evaluate(document, ctx()).allowed is True


def test_denial_names_path_left_operand_reason_and_missing() -> None:
    decision = evaluate(policy(ALLOW, DENY), ctx())
    assert not decision.allowed and decision.code is DecisionCode.CONSTRAINT_FAILED
    assert decision.failed_constraint == "permission[0].constraint[1]"
    assert decision.left_operand == PARTICIPANT_DID
    assert RECYCLER in decision.reason and decision.missing
    assert [u.path for u in decision.unmet] == ["permission[0].constraint[1]"]
    body = decision.to_json()
    assert body["failedConstraint"] == "permission[0].constraint[1]"
    assert body["unmet"][0]["leftOperand"] == PARTICIPANT_DID


def test_every_unmet_constraint_is_listed_definite_failures_first() -> None:
    decision = evaluate(policy({"and": [UNDECIDED, DENY, ALLOW]}), ctx())
    assert decision.failed_constraint == "permission[0].constraint[0].and[1]"
    assert [(u.path, u.truth.value) for u in decision.unmet] == [
        ("permission[0].constraint[0].and[0]", "unknown"),
        ("permission[0].constraint[0].and[1]", "false")]


def test_one_permission_suffices_and_the_first_failure_is_reported() -> None:
    document = {"permission": [{"action": "use", "constraint": [DENY]},
                               {"action": "use", "constraint": [ALLOW]}]}
    assert evaluate(document, ctx()).granted_by == "permission[1]"
    denied = evaluate(document, ctx(STRANGER + "2"))
    assert denied.failed_constraint == "permission[0].constraint[0]"


def test_logical_operators() -> None:
    assert evaluate(policy({"or": [DENY, ALLOW]}), ctx()).allowed
    none = evaluate(policy({"or": [DENY, DENY]}), ctx())
    assert not none.allowed and none.failed_constraint == "permission[0].constraint[0].or"
    assert none.missing and none.missing.startswith("one of:")
    assert evaluate(policy({"xone": [DENY, ALLOW]}), ctx()).allowed
    both = evaluate(policy({"xone": [ALLOW, ALLOW]}), ctx())
    assert not both.allowed and "2 do" in both.reason
    assert evaluate(policy({"andSequence": [ALLOW, ALLOW]}), ctx()).allowed
    assert not evaluate(policy({"and": [ALLOW, {"or": [DENY, DENY]}]}), ctx()).allowed


_leaves = {"T": ALLOW, "F": DENY, "U": UNDECIDED}


@given(st.lists(st.sampled_from("TFU"), min_size=1, max_size=4),
       st.sampled_from(["and", "or", "xone"]))
def test_logical_constraints_follow_kleene_logic(members: list[str], op: str) -> None:
    decision = evaluate(policy({op: [_leaves[m] for m in members]}), ctx())
    known = [m == "T" for m in members if m != "U"]
    unknown = members.count("U")
    if op == "and":
        expected = unknown == 0 and all(known)
    elif op == "or":
        expected = any(known)
    else:
        expected = unknown == 0 and sum(known) == 1
    assert decision.allowed is expected


# --- assignees and actions ---------------------------------------------------------------------


def test_assignees_on_policy_and_rule() -> None:
    on_policy = policy(assignee=RECYCLER)
    assert evaluate(on_policy, ctx()).allowed
    denied = evaluate(on_policy, ctx(STRANGER))
    assert denied.code is DecisionCode.NOT_ASSIGNEE and denied.failed_constraint == "assignee"
    on_rule = {"permission": [{"action": "use", "assignee": [{"@id": RECYCLER}]}]}
    assert evaluate(on_rule, ctx()).allowed
    assert evaluate(on_rule, ctx(STRANGER)).failed_constraint == "permission[0].assignee"


def test_permissions_grant_only_their_action() -> None:
    access = {"@context": ["https://w3id.org/catenax/2025/9/policy/context.jsonld"],
              "permission": [{"action": "access"}]}
    assert not evaluate(access, ctx()).allowed
    assert evaluate(access, ctx()).code is DecisionCode.NO_PERMISSION
    assert evaluate(access, ctx(action=CX_ACCESS)).allowed
    assert not evaluate(policy(), ctx(action=CX_ACCESS)).allowed


# --- prohibitions ------------------------------------------------------------------------------


def test_prohibitions_deny_when_they_match() -> None:
    document = {"permission": [{"action": "use"}],
                "prohibition": [{"action": "use", "constraint": [
                    c(PARTICIPANT_DID, "isAnyOf", [STRANGER])]}]}
    assert evaluate(document, ctx()).allowed
    denied = evaluate(document, ctx(STRANGER))
    assert denied.code is DecisionCode.PROHIBITED and denied.failed_constraint == "prohibition[0]"


def test_unconditional_prohibition_beats_permission() -> None:
    document = {"permission": [{"action": "use"}], "prohibition": [{"action": "use"}]}
    assert evaluate(document, ctx()).code is DecisionCode.PROHIBITED


def test_a_prohibition_that_cannot_be_ruled_out_denies() -> None:
    document = {"permission": [{"action": "use"}], "prohibition": [{"action": "use",
                "constraint": [c("cx-policy:BusinessPartnerNumber", "isAnyOf",
                                 ["BPNL000000000BAD"])]}]}
    unknown = evaluate(document, ctx())  # the requester's BPN is not known
    assert not unknown.allowed and unknown.code is DecisionCode.PROHIBITED
    assert unknown.missing and "BPNL" in unknown.missing
    assert evaluate(document, ctx(bpn="BPNL00000000GOOD")).allowed
    assert not evaluate(document, ctx(bpn="BPNL000000000BAD")).allowed


def test_prohibitions_on_other_actions_or_assignees_do_not_apply() -> None:
    document = {"permission": [{"action": "use"}],
                "prohibition": [{"action": "delete"}, {"action": "use", "assignee": STRANGER}]}
    assert evaluate(document, ctx()).allowed
    assert not evaluate(document, ctx(STRANGER)).allowed


# --- duties and obligations --------------------------------------------------------------------


def test_duties_are_returned_with_when_they_fall_due() -> None:
    start = NOW - timedelta(days=2)
    document = {"permission": [{"action": "use", "constraint": [
                    c("elapsedTime", "lteq", "P7D")],
                "duty": [{"action": "delete", "constraint": [
                    c("elapsedTime", "gteq", "P7D")]}]}],
                "obligation": [{"action": "delete", "assignee": RECYCLER}]}
    decision = evaluate(document, ctx(agreement_start=start))
    assert decision.allowed
    duty, obligation = decision.duties
    assert duty.path == "permission[0].duty[0]" and duty.action == DELETE
    assert duty.due_at == start + timedelta(days=7) and duty.due_now is False
    assert obligation.path == "obligation[0]" and obligation.due_now is True
    assert obligation.due_at is None and obligation.assignee == (RECYCLER,)
    later = evaluate(document, ctx(agreement_start=start, now=start + timedelta(days=7)))
    assert later.allowed and later.duties[0].due_now is True
    assert decision.to_json()["duties"][0]["dueAt"] == (start + timedelta(days=7)).isoformat()


def test_duties_are_not_access_conditions() -> None:
    document = {"permission": [{"action": "use", "duty": [{"action": "delete", "constraint": [
        c("dateTime", "gteq", "2099-01-01T00:00:00Z")]}]}]}
    decision = evaluate(document, ctx())
    assert decision.allowed and decision.duties[0].due_now is False
    assert decision.duties[0].due_at == datetime(2099, 1, 1, tzinfo=UTC)


def test_duty_before_an_agreement_is_not_due() -> None:
    document = {"permission": [{"action": "use", "duty": [{"action": "delete", "constraint": [
        c("elapsedTime", "gteq", "P7D")]}]}]}
    duty = evaluate(document, ctx()).duties[0]
    assert duty.due_at is None and duty.due_now is False  # no agreement: nothing elapsed


# --- time windows and counts -------------------------------------------------------------------


@pytest.mark.parametrize("left", ["odrl:dateTime", "dateTime",
                                  "http://www.w3.org/ns/odrl/2/dateTime"])
def test_absolute_window(left: str) -> None:
    end = policy(c(left, "lteq", "2026-03-31T00:00:00Z"))
    assert evaluate(end, ctx()).allowed
    late = evaluate(end, ctx(now=datetime(2026, 4, 1, tzinfo=UTC)))
    assert not late.allowed and "ended" in late.reason
    start = policy(c(left, "gt", {"@value": "2026-06-01T00:00:00+02:00"}))
    assert not evaluate(start, ctx()).allowed
    assert evaluate(start, ctx(now=datetime(2026, 6, 2, tzinfo=UTC))).allowed


def test_elapsed_time_counts_from_the_agreement() -> None:
    p = policy(c("elapsedTime", "lt", "P7D"))
    assert evaluate(p, ctx()).allowed  # no agreement yet
    assert evaluate(p, ctx(agreement_start=NOW - timedelta(days=6))).allowed
    expired = evaluate(p, ctx(agreement_start=NOW - timedelta(days=7)))
    assert not expired.allowed and expired.left_operand == ELAPSED_TIME
    waiting = policy(c("elapsedTime", "gteq", "PT12H"))
    assert not evaluate(waiting, ctx()).allowed
    assert evaluate(waiting, ctx(agreement_start=NOW - timedelta(hours=12))).allowed


@pytest.mark.parametrize("op, limit, uses_allowed", [
    ("lteq", 3, 3), ("lt", 3, 2), ("eq", 1, 1), ("lteq", "2", 2), ("lteq", 0, 0)])
def test_count_limits_the_number_of_uses(op: str, limit: Any, uses_allowed: int) -> None:
    p = policy(c("count", op, limit))
    allowed = [evaluate(p, ctx(access_count=n)).allowed for n in range(5)]
    assert allowed == [n < uses_allowed for n in range(5)]


def test_catena_x_usage_end_duration_counts_whole_utc_days() -> None:
    p = policy(c("cx-policy:DataUsageEndDurationDays", "eq", "30"))
    signed = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    assert evaluate(p, ctx(agreement_start=signed, now=datetime(2026, 3, 30, 23, 59,
                                                                tzinfo=UTC))).allowed
    assert not evaluate(p, ctx(agreement_start=signed, now=datetime(2026, 3, 31, 0, 0,
                                                                    tzinfo=UTC))).allowed
    assert evaluate(p, ctx()).allowed  # before the agreement the period has not started


def test_catena_x_usage_end_date_and_definition() -> None:
    p = policy(c("cx-policy:DataUsageEndDate", "eq", "2026-03-01T12:00:00Z"))
    assert evaluate(p, ctx(now=NOW.replace(microsecond=999_999))).allowed  # seconds resolution
    assert not evaluate(p, ctx(now=NOW + timedelta(seconds=1))).allowed
    unlimited = policy(c("cx-policy:DataUsageEndDefinition", "eq",
                         "cx.dataUsageEnd.unlimited:1"))
    assert evaluate(unlimited, ctx(now=datetime(2099, 1, 1, tzinfo=UTC))).allowed


def test_edc_in_force_date() -> None:
    relative = policy(c("edc:inForceDate", "lteq", "contractAgreement+7d"))
    assert evaluate(relative, ctx()).allowed
    assert not evaluate(relative, ctx(agreement_start=NOW - timedelta(days=8))).allowed


# --- never raises ------------------------------------------------------------------------------


@pytest.mark.parametrize("document, code", [
    (None, DecisionCode.MALFORMED_POLICY),
    ({"permission": [{"action": "use", "constraint": [c("spatial", "eq", "EU")]}]},
     DecisionCode.UNSUPPORTED),
    (policy(c("dateTime", "lteq", "soon")), DecisionCode.MALFORMED_POLICY),
])
def test_bad_policies_are_typed_denials(document: Any, code: DecisionCode) -> None:
    decision = evaluate(document, ctx())
    assert not decision.allowed and decision.code is code
    assert decision.reason.startswith(("policy malformed", "policy refused"))


def test_context_validation() -> None:
    with pytest.raises(ValueError):
        EvaluationContext(RECYCLER, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        EvaluationContext(RECYCLER, NOW, access_count=-1)


# --- agreements in force -----------------------------------------------------------------------


def test_is_in_force_rechecks_time_but_not_claims() -> None:
    agreement = {
        "@context": ["https://w3id.org/catenax/2025/9/policy/context.jsonld"],
        "@id": "urn:uuid:a1", "@type": "Agreement", "target": "urn:uuid:asset",
        "assigner": "did:web:provider.example", "assignee": RECYCLER,
        "permission": [{"action": "use", "constraint": [{"and": [
            c("Membership", "eq", "active"),
            c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
            c("DataUsageEndDurationDays", "eq", "7")]}]}],
    }
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert is_in_force(agreement, start, start + timedelta(days=3))
    assert not is_in_force(agreement, start, start + timedelta(days=7))
    assert not is_in_force({**agreement, "assignee": [RECYCLER, STRANGER]}, start, start)
    assert not is_in_force({k: v for k, v in agreement.items() if k != "assignee"}, start, start)
    assert not is_in_force("not a policy", start, start)  # type: ignore[arg-type]
    # the same agreement evaluated outside monitor mode needs the credentials again
    assert not evaluate(agreement, EvaluationContext(RECYCLER, start, start)).allowed


def test_monitor_mode_takes_claims_as_they_were_at_negotiation() -> None:
    agreement = {"@context": ["https://w3id.org/catenax/2025/9/policy/context.jsonld"],
                 "assignee": RECYCLER,
                 "permission": [{"action": "use", "constraint": [
                     c("Membership", "eq", "active"), c("elapsedTime", "lteq", "P7D")]}],
                 "prohibition": [{"action": "use", "constraint": [
                     c("BusinessPartnerNumber", "isAnyOf", ["BPNL000000000BAD"])]}]}
    start = NOW - timedelta(days=1)
    assert is_in_force(agreement, start, NOW)  # neither claim is re-checked
    assert not is_in_force(agreement, start, start + timedelta(days=8))
    timed = {**agreement, "prohibition": [{"action": "use", "constraint": [
        c("dateTime", "gteq", "2026-03-01T00:00:00Z")]}]}
    assert not is_in_force(timed, start, NOW)  # a time-based prohibition still applies


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = ALLOW
    for _ in range(20):
        deep = {"and": [deep]}
    decision = evaluate(policy(deep), ctx())
    assert not decision.allowed and decision.code is DecisionCode.MALFORMED_POLICY
    assert "nest deeper" in decision.reason
