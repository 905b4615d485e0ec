"""Default policies per access level and data category, and ``explain``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from odrl_support import (
    NOW,
    RECYCLER,
    STRANGER,
    credential,
    ctx,
    dismantler,
    governance,
    membership,
    policy,
)

from connector.management.assets import DataCategory as AssetCategory
from policies import catenax_usage_problems, evaluate, explain, parse_policy
from policies.defaults import (
    CATEGORIES,
    LEVEL_RECIPES,
    DataCategory,
    default_policy,
    default_policy_for_level,
    open_policy,
)
from policies.namespaces import DELETE
from vocab.access import AccessLevel

CIRCULAR = credential("CircularEconomyCredential", {"contractVersion": "1.0.0"})


def test_categories_mirror_the_connectors_data_categories() -> None:
    assert [c.value for c in DataCategory] == [c.value for c in AssetCategory]
    assert set(CATEGORIES) == set(DataCategory)


def test_category_access_groups_come_from_the_regulations_matrix() -> None:
    levels = {c: rule.regulation_levels for c, rule in CATEGORIES.items()}
    assert levels[DataCategory.PUBLIC] == {AccessLevel.PUBLIC}
    # the regulation makes carbon footprint and recycled content public (DESIGN.md does not)
    assert levels[DataCategory.SUSTAINABILITY] == {AccessLevel.PUBLIC}
    assert levels[DataCategory.PERFORMANCE_HEALTH] == {AccessLevel.LEGITIMATE_INTEREST}
    assert levels[DataCategory.DISMANTLING_SAFETY] == {
        AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION}
    assert AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION in levels[DataCategory.PROVENANCE]


def test_public_data_needs_no_policy() -> None:
    assert default_policy(DataCategory.PUBLIC, "p") is None
    assert default_policy_for_level(AccessLevel.PUBLIC, "p") is None
    assert evaluate(open_policy("asset#public"), ctx(STRANGER)).allowed


@pytest.mark.parametrize("category", [c for c in DataCategory if c is not DataCategory.PUBLIC])
def test_restricted_defaults_are_catena_x_usage_policies(category: DataCategory) -> None:
    document = default_policy(category, f"urn:policy:{category}")
    assert document is not None
    parsed = parse_policy(document)
    assert parsed.to_json() == document
    assert catenax_usage_problems(parsed) == []
    assert not evaluate(parsed, ctx()).allowed  # nothing presented: nothing granted


@pytest.mark.parametrize("level", [AccessLevel.LEGITIMATE_INTEREST,
                                   AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION])
def test_legitimate_interest_needs_membership_and_a_role_credential(level: AccessLevel) -> None:
    document = default_policy_for_level(level, "urn:li")
    assert document is not None
    base = [governance(), membership()]
    granted = evaluate(document, ctx(credentials=[*base, CIRCULAR], purpose="cx.circular.dpp:1"))
    assert granted.allowed
    no_role = evaluate(document, ctx(credentials=base, purpose="cx.circular.dpp:1"))
    assert not no_role.allowed and no_role.missing == (
        "a CircularEconomyCredential from a trusted issuer")


def test_authorities_are_named_one_by_one() -> None:
    with pytest.raises(ValueError):
        default_policy_for_level(AccessLevel.AUTHORITIES, "urn:a")
    document = default_policy_for_level(AccessLevel.AUTHORITIES, "urn:a",
                                        allowed_participants=["did:web:msa.example"])
    assert document is not None
    msa = ctx("did:web:msa.example", credentials=[governance(holder="did:web:msa.example")],
              purpose="cx.circular.dpp:1")
    assert evaluate(document, msa).allowed
    assert not evaluate(document, ctx(credentials=[governance()],
                                      purpose="cx.circular.dpp:1")).allowed
    assert LEVEL_RECIPES[AccessLevel.PUBLIC] is None


def test_dismantling_default_grants_a_certified_recycler_seven_days_then_delete() -> None:
    document = default_policy(DataCategory.DISMANTLING_SAFETY, "urn:dismantling")
    assert document is not None
    start = NOW - timedelta(days=1)
    recycler = ctx(credentials=[governance(), dismantler()], purpose="cx.circular.dpp:1",
                   agreement_start=start)
    decision = evaluate(document, recycler)
    assert decision.allowed
    (delete,) = decision.duties
    assert delete.action == DELETE and delete.due_at == start + timedelta(days=7)
    assert delete.due_now is False
    expired = ctx(credentials=[governance(), dismantler()], purpose="cx.circular.dpp:1",
                  agreement_start=start, now=start + timedelta(days=7))
    assert not evaluate(document, expired).allowed
    wrong_activity = ctx(credentials=[governance(), dismantler(activity="paint")],
                         purpose="cx.circular.dpp:1")
    assert "vehicleDismantle" in (evaluate(document, wrong_activity).missing or "")
    # the allow-list of today's defaults can be kept on top
    listed = default_policy(DataCategory.DISMANTLING_SAFETY, "urn:d2",
                            allowed_participants=[STRANGER])
    assert listed is not None and not evaluate(listed, recycler).allowed
    with pytest.raises(ValueError):
        default_policy(DataCategory.DISMANTLING_SAFETY, "urn:d3", allowed_participants=[])


# --- explain -----------------------------------------------------------------------------------


def test_explain_says_per_dataset_which_offer_fails_and_what_is_missing() -> None:
    dismantling = default_policy(DataCategory.DISMANTLING_SAFETY, "urn:offer:dismantling")
    health = default_policy(DataCategory.PERFORMANCE_HEALTH, "urn:offer:health")
    assert dismantling is not None and health is not None
    catalog = {
        "battery-1/public": open_policy("urn:offer:public"),
        "battery-1/dismantling": [dismantling, policy(
            {"leftOperand": "bpc-policy:participantDid", "operator": "eq",
             "rightOperand": STRANGER})],
        "battery-1/health": health,
        "battery-1/broken": {"permission": [{"action": "use", "constraint": [
            {"leftOperand": "spatial", "operator": "eq", "rightOperand": "EU"}]}]},
        "battery-1/nothing": [],
    }
    report = explain(catalog, ctx(RECYCLER, credentials=[governance(), dismantler()],
                                  purpose="cx.circular.dpp:1"))
    assert report["battery-1/public"].offered
    assert report["battery-1/dismantling"].offered
    health_report = report["battery-1/health"]
    assert not health_report.offered
    assert health_report.missing() == [
        "a MembershipCredential (Catena-X membership) from a trusted issuer",
        "a CircularEconomyCredential from a trusted issuer"]
    body = health_report.to_json()
    assert body["offers"][0]["offer"] == "urn:offer:health"
    assert body["offers"][0]["failedConstraint"] == "permission[0].constraint[0].and[0]"
    broken = report["battery-1/broken"].to_json()
    assert not broken["offered"] and broken["offers"][0]["code"] == "unsupported"
    assert broken["offers"][0]["offer"] == "#0"
    assert not report["battery-1/nothing"].offered
    stranger = explain(catalog, ctx(STRANGER))
    dismantling_offers = stranger["battery-1/dismantling"].offers
    assert [o.decision.allowed for o in dismantling_offers] == [False, True]
