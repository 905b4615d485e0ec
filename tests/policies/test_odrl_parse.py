"""Parsing compact ODRL: term spellings, contexts, round trips, typed errors with paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odrl_support import CATENAX, CX_CONTEXT, SHARED, c, load, needs_shared, policy

from policies import (
    AtomicConstraint,
    Duty,
    InvalidRightOperand,
    LogicalConstraint,
    LogicalOperator,
    MalformedPolicy,
    Operator,
    Permission,
    Policy,
    PolicyError,
    PolicyType,
    UnknownAction,
    UnknownContext,
    UnknownLeftOperand,
    UnknownOperator,
    UnsupportedFeature,
    parse_policy,
    parse_policy_definition,
)
from policies.namespaces import (
    CX_POLICY,
    CX_POLICY_LEGACY,
    DATE_TIME,
    DELETE,
    ODRL,
    PARTICIPANT_DID,
    USE,
)

CX = CX_POLICY


def only_constraint(p: Any) -> Any:
    return p.permissions[0].constraints[0]


# --- spellings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("left, context", [
    ("Membership", CX_CONTEXT),
    ("cx-policy:Membership", None),
    ("cx-policy:Membership", CX_CONTEXT),
    (CX + "Membership", None),
    ({"@id": "Membership"}, CX_CONTEXT),
    ("Membership", "https://w3id.org/catenax/2025/9/policy/context.jsonld"),
    ("cx:Membership", [{"cx": CX}]),
])
def test_left_operand_spellings_resolve_to_one_iri(left: Any, context: Any) -> None:
    parsed = parse_policy(policy(c(left, "eq", "active"), context=context))
    assert only_constraint(parsed).left_operand == CX + "Membership"


@pytest.mark.parametrize("op", ["eq", "odrl:eq", ODRL + "eq", {"@id": "odrl:eq"}])
def test_operator_spellings(op: Any) -> None:
    parsed = parse_policy(policy(c("dateTime", op.replace("eq", "lteq") if isinstance(op, str)
                                   else {"@id": "odrl:lteq"}, "2026-01-01T00:00:00Z")))
    assert only_constraint(parsed).operator is Operator.LTEQ


@pytest.mark.parametrize("action", ["use", "odrl:use", ODRL + "use", {"@id": "use"},
                                    {"@id": "odrl:use"}, ["use"]])
def test_action_spellings(action: Any) -> None:
    parsed = parse_policy({"permission": [{"action": action}]})
    assert parsed.permissions[0].action == USE
    assert parsed.to_json() == {"permission": [{"action": action}]}


def test_prefixed_keys_are_read_like_bare_ones() -> None:
    doc = {"@context": {"odrl": ODRL}, "@type": "odrl:Set", "odrl:permission": [{
        "odrl:action": {"@id": "odrl:use"},
        "odrl:constraint": [{"odrl:leftOperand": {"@id": "odrl:dateTime"},
                             "odrl:operator": {"@id": "odrl:lteq"},
                             "odrl:rightOperand": {"@value": "2026-12-31T00:00:00Z"}}]}]}
    parsed = parse_policy(doc)
    plain = parse_policy({"@type": "Set", "permission": [{"action": "use", "constraint": [
        c("dateTime", "lteq", "2026-12-31T00:00:00Z")]}]})
    assert parsed == plain  # spelling never affects equality
    assert parsed.to_json() == doc  # but it is written back


def test_message_context_applies_to_an_embedded_policy() -> None:
    embedded = {"@type": "Offer", "@id": "o1", "permission": [
        {"action": "use", "constraint": [c("Membership", "eq", "active")]}]}
    with pytest.raises(UnknownLeftOperand):
        parse_policy(embedded)  # bare Membership needs the Catena-X context
    parsed = parse_policy(embedded, context=CX_CONTEXT)
    assert only_constraint(parsed).left_operand == CX + "Membership"
    assert parsed.to_json() == embedded


def test_cx_access_action_needs_the_cx_context() -> None:
    access = {"permission": [{"action": "access", "constraint": [c("Membership", "eq",
                                                                   "active")]}]}
    with pytest.raises(UnknownAction) as err:
        parse_policy(access)
    assert err.value.path == "permission[0].action"
    assert parse_policy({"@context": CX_CONTEXT, **access}).permissions[0].action == \
        CX + "access"


def test_legacy_namespace_and_dotted_framework_operand() -> None:
    doc = {"@context": ["https://w3id.org/tractusx/policy/v1.0.0"], "permission": [
        {"action": "use", "constraint": [
            c("FrameworkAgreement.traceability", "eq", "active:1.0.0"),
            c("Dismantler.allowedBrands", "isAnyOf", ["BMW"])]}]}
    parsed = parse_policy(doc)
    lefts = [k.left_operand for k in parsed.permissions[0].constraints]
    assert lefts == [CX_POLICY_LEGACY + "FrameworkAgreement.traceability",
                     CX_POLICY_LEGACY + "Dismantler.allowedBrands"]
    with pytest.raises(InvalidRightOperand):
        parse_policy({**doc, "permission": [{"action": "use", "constraint": [
            c("FrameworkAgreement.pcf", "eq", "enabled")]}]})


# --- the reference files -----------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("path", sorted((CATENAX / "policy-samples-legacy").glob("*.json")),
                         ids=lambda p: p.name)
def test_every_legacy_catena_x_sample_parses_and_round_trips(path: Any) -> None:
    document = load(path)
    parsed = parse_policy_definition(document)
    assert parsed.policy_type is PolicyType.SET
    assert parsed.permissions[0].action is None  # the samples' permissions have no action
    assert parsed.to_json() == document["policy"]
    with pytest.raises(MalformedPolicy):  # a strict parse insists on an action
        parse_policy(document["policy"], context=document["@context"])


def test_notes_example_policies_parse_and_round_trip() -> None:
    # shared/notes/dataspace-protocol.md §3.2, validated there against the CX schema
    access = {"@context": CX_CONTEXT, "@id": "urn:uuid:a1", "@type": "Set", "permission": [{
        "action": "access", "constraint": [{"and": [
            c("Membership", "eq", "active"),
            c("BusinessPartnerGroup", "isAnyOf", ["certified-recyclers"])]}]}]}
    usage = {"@context": CX_CONTEXT, "@id": "urn:uuid:u1", "@type": "Set", "permission": [{
        "action": "use", "constraint": [{"and": [
            c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
            c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
            c("DataUsageEndDurationDays", "eq", "30")]}]}]}
    for document in (access, usage):
        parsed = parse_policy(document)
        assert parsed.to_json() == document
        assert isinstance(only_constraint(parsed), LogicalConstraint)


@needs_shared
def test_dsp_examples_with_made_up_operands_are_refused_with_paths() -> None:
    examples = SHARED / "dsp-2025-1" / "examples"
    agreement = load(examples / "negotiation" / "contract-agreement-message-full.json")
    with pytest.raises(UnknownLeftOperand) as err:
        parse_policy(agreement["agreement"], context=agreement["@context"])
    assert err.value.path == "permission[1].constraint[0].and[0]"  # "partner eq gold"
    request = load(examples / "negotiation" / "contract-request-message.json")
    offer = parse_policy(request["offer"], context=request["@context"])
    assert only_constraint(offer).left_operand == DATE_TIME  # "2023-12-31T06:00Z" parses
    assert offer.to_json() == request["offer"]


# --- round trips -------------------------------------------------------------------------------


def test_round_trip_keeps_lone_objects_value_wrappers_and_key_order() -> None:
    document = {
        "permission": {"constraint": {"rightOperand": {"@value": "P7D"},
                                      "operator": "lteq", "leftOperand": "elapsedTime"},
                       "action": "use", "@type": "Permission"},
        "@id": "urn:x", "timestamp": "2026-01-01T00:00:00Z", "@type": "Agreement",
        "assignee": {"@id": "did:web:a"}, "assigner": "did:web:b", "target": "urn:asset",
    }
    parsed = parse_policy(document)
    assert parsed.assignee == ("did:web:a",) and parsed.extra == {
        "timestamp": "2026-01-01T00:00:00Z"}
    out = parsed.to_json()
    assert out == document and list(out) == list(document)
    assert list(out["permission"]) == list(document["permission"])


def test_canonical_json_is_spelling_independent() -> None:
    a = parse_policy(policy(c("cx-policy:Membership", "odrl:eq", "active")))
    b = parse_policy(policy(c("Membership", "eq", {"@value": "active"}), context=CX_CONTEXT))
    assert a == b and a.canonical_json() == b.canonical_json()
    assert a.to_json() != b.to_json()
    rule = a.canonical_json()["permission"][0]
    assert rule["action"] == USE
    assert rule["constraint"][0]["leftOperand"] == CX + "Membership"


def test_models_built_in_code_serialise_compactly() -> None:
    built = Policy(policy_type=PolicyType.SET, permissions=(Permission(
        action=USE,
        constraints=(AtomicConstraint(left_operand=PARTICIPANT_DID, operator=Operator.IS_ANY_OF,
                                      right_operand=("did:web:a",)),
                     AtomicConstraint(left_operand=CX + "Membership", operator=Operator.EQ,
                                      right_operand="active")),
        duties=(Duty(action=DELETE),)),))
    assert built.to_json() == {"@type": "Set", "permission": [{
        "action": "use",
        "constraint": [c("bpc-policy:participantDid", "isAnyOf", ["did:web:a"]),
                       c("cx-policy:Membership", "eq", "active")],
        "duty": [{"action": "delete"}]}]}
    assert parse_policy(built.to_json()) == built
    # an edited copy drops the stale spelling of what changed, keeps the rest
    parsed = parse_policy(policy(c("odrl:count", "lt", 3)))
    rule = parsed.permissions[0]
    edited = parsed.model_copy(update={"permissions": (rule.model_copy(update={
        "action": DELETE}),)})
    assert edited.to_json()["permission"][0] == {"action": "delete",
                                                  "constraint": [c("odrl:count", "lt", 3)]}


_atoms = st.sampled_from([
    c("dateTime", "lteq", "2026-12-31T00:00:00Z"),
    c("odrl:dateTime", "gt", {"@value": "2026-01-01T00:00:00+02:00"}),
    c("elapsedTime", "lt", "P7D"),
    c("count", "lteq", 5),
    c(PARTICIPANT_DID, "isAnyOf", ["did:web:a", {"@id": "did:web:b"}]),
    c("bpc-policy:participantDid", "neq", "did:web:c"),
    c("cx-policy:Membership", "eq", "active"),
    c("cx-policy:UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
    c(CX + "FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
    c("cx-policy:DataUsageEndDurationDays", "eq", "7"),
    c("cx-policy:BusinessPartnerNumber", "isNoneOf", ["BPNL000000000001"]),
])


def _constraints(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return _atoms
    logical = st.builds(lambda op, members, single: {op: members[0] if single and len(
        members) == 1 else members}, st.sampled_from(["and", "or", "xone", "andSequence"]),
        st.lists(_constraints(depth - 1), min_size=1, max_size=3), st.booleans())
    return st.one_of(_atoms, logical)


_rules = st.fixed_dictionaries(
    {"action": st.sampled_from(["use", "odrl:use", {"@id": "use"}])},
    optional={"constraint": st.lists(_constraints(2), max_size=3),
              "assignee": st.sampled_from(["did:web:a", ["did:web:a", "did:web:b"]])})


@settings(max_examples=150, deadline=None)
@given(permissions=st.lists(_rules, min_size=1, max_size=3),
       prohibitions=st.lists(_rules, max_size=2),
       kind=st.sampled_from(["Set", "Offer", "Agreement", "odrl:Offer"]))
def test_parse_serialise_round_trip(permissions: list[Any], prohibitions: list[Any],
                                    kind: str) -> None:
    document: dict[str, Any] = {"@id": "urn:p", "@type": kind, "permission": permissions}
    if prohibitions:
        document["prohibition"] = prohibitions
    original = copy.deepcopy(document)
    parsed = parse_policy(document)
    assert document == original  # parsing does not mutate its input
    assert parsed.to_json() == document
    assert parse_policy(parsed.to_json()) == parsed
    assert parse_policy(parsed.canonical_json()) == parsed


# --- typed errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("document, error, path", [
    (policy(c("spatial", "eq", "EU")), UnknownLeftOperand, "permission[0].constraint[0]"),
    (policy(c("Membership", "eq", "active")), UnknownLeftOperand,
     "permission[0].constraint[0]"),
    (policy(c("https://example.org/x", "eq", "y")), UnknownLeftOperand,
     "permission[0].constraint[0]"),
    (policy(c("cx-policy:Warranty", "eq", "cx.warranty.none:1")), UnknownLeftOperand,
     "permission[0].constraint[0]"),
    (policy({"and": [c("dateTime", "after", "2026-01-01T00:00:00Z")]}), UnknownOperator,
     "permission[0].constraint[0].and[0].operator"),
    (policy(c("dateTime", "isA", "2026-01-01T00:00:00Z")), UnknownOperator,
     "permission[0].constraint[0].operator"),
    (policy(c(PARTICIPANT_DID, "gt", "did:web:a")), UnknownOperator,
     "permission[0].constraint[0].operator"),
    (policy(c("cx-policy:Membership", "neq", "active")), UnknownOperator,
     "permission[0].constraint[0].operator"),
    ({"permission": [{"action": "distribute"}]}, UnknownAction, "permission[0].action"),
    ({"permission": [{"action": "use", "duty": [{"action": "compensate"}]}]}, UnknownAction,
     "permission[0].duty[0].action"),
    ({"permission": [{"action": {"@id": "use", "refinement": []}}]}, UnsupportedFeature,
     "permission[0].action.refinement"),
    ({"permission": [{"action": "use"}], "prohibition": [{"action": "use", "remedy": []}]},
     UnsupportedFeature, "prohibition[0].remedy"),
    ({"permission": [{"action": "use"}], "conflict": "perm"}, UnsupportedFeature, "conflict"),
    ({"@type": "Ticket", "permission": [{"action": "use"}]}, UnsupportedFeature, "@type"),
    ({"permission": [{"action": "use", "ex:note": "x"}], "@context": {"ex": "urn:ex:"}},
     UnsupportedFeature, "permission[0].ex:note"),
    ({"@context": ["https://example.org/ctx.jsonld"], "permission": [{"action": "use"}]},
     UnknownContext, "@context[0]"),
    ({"@context": [*CX_CONTEXT, "https://w3id.org/tractusx/policy/v1.0.0"],
      "permission": [{"action": "use"}]}, MalformedPolicy, "@context[2].cx-policy"),
])
def test_refusals_are_typed_and_located(document: Any, error: type[PolicyError],
                                        path: str) -> None:
    with pytest.raises(error) as err:
        parse_policy(document)
    assert err.value.path == path
    assert str(err.value).startswith(path)


@pytest.mark.parametrize("constraint, path", [
    (c("dateTime", "lteq", "yesterday"), ".rightOperand"),
    (c("dateTime", "lteq", "2026-03-31T00:00:00"), ".rightOperand"),  # no timezone
    (c("dateTime", "lteq", 20260331), ".rightOperand"),
    (c("elapsedTime", "lteq", "P1Y"), ".rightOperand"),
    (c("count", "lteq", -1), ".rightOperand"),
    (c("count", "lteq", True), ".rightOperand"),
    (c(PARTICIPANT_DID, "isAnyOf", []), ".rightOperand"),
    (c(PARTICIPANT_DID, "isAnyOf", ["did:web:a", 7]), ".rightOperand[1]"),
    (c(PARTICIPANT_DID, "eq", ["did:web:a"]), ".rightOperand"),
    (c("cx-policy:Membership", "eq", "yes"), ".rightOperand"),
    (c("cx-policy:FrameworkAgreement", "eq", "active"), ".rightOperand"),
    (c("cx-policy:BusinessPartnerNumber", "isAnyOf", ["BPNL1"]), ".rightOperand[0]"),
    (c("cx-policy:BusinessPartnerGroup", "isAnyOf", ["a", "a"]), ".rightOperand"),
    (c("cx-policy:DataUsageEndDurationDays", "eq", "0"), ".rightOperand"),
    (c("cx-policy:DataUsageEndDurationDays", "eq", "30 days"), ".rightOperand"),
    (c("cx-policy:DataUsageEndDefinition", "eq", "forever"), ".rightOperand"),
    (c("cx-policy:UsagePurpose", "isAnyOf", "cx.circular.dpp:1"), ".rightOperand"),
    (c("dateTime", "lteq", {"kind": "date"}), ".rightOperand"),
    (c("dateTime", "lteq", None), ".rightOperand"),
])
def test_wrong_right_operands_are_refused_at_their_path(constraint: dict[str, Any],
                                                        path: str) -> None:
    with pytest.raises(InvalidRightOperand) as err:
        parse_policy(policy(constraint))
    assert err.value.path == "permission[0].constraint[0]" + path


@pytest.mark.parametrize("document, path", [
    (None, ""), ("use", ""), ([], ""), ({}, "permission"),
    ({"permission": []}, "permission"), ({"permission": "use"}, "permission[0]"),
    ({"permission": [{"constraint": []}]}, "permission[0].action"),
    ({"permission": [42]}, "permission[0]"),
    ({"permission": [{"action": ["use", "read"]}]}, "permission[0].action"),
    (policy({"leftOperand": "dateTime", "operator": "lteq"}), "permission[0].constraint[0]"),
    (policy({"and": []}), "permission[0].constraint[0].and"),
    (policy({"and": [c("count", "lt", 1)], "or": [c("count", "lt", 2)]}),
     "permission[0].constraint[0]"),
    (policy(c(123, "eq", "x")), "permission[0].constraint[0].leftOperand"),
    (policy(c("count", 5, 1)), "permission[0].constraint[0].operator"),
    (policy("not a constraint"), "permission[0].constraint[0]"),
    ({"@id": 5, "permission": [{"action": "use"}]}, "@id"),
    ({"permission": [{"action": "use"}], "odrl:permission": [{"action": "use"}]},
     "odrl:permission"),
    ({"permission": [{"action": "use", "@type": "Prohibition"}]}, "permission[0].@type"),
    ({"assignee": [], "permission": [{"action": "use"}]}, "assignee"),
    ({"@type": "Dataset", "permission": [{"action": "use"}]}, "@type"),
])
def test_malformed_structure_is_refused_at_its_path(document: Any, path: str) -> None:
    with pytest.raises(MalformedPolicy) as err:
        parse_policy(document)
    assert err.value.path == path


def test_model_shapes() -> None:
    parsed = parse_policy(policy({"xone": [c("count", "lt", 3), c("elapsedTime", "lteq",
                                                                   "PT12H")]}))
    logical = only_constraint(parsed)
    assert isinstance(logical, LogicalConstraint) and logical.operator is LogicalOperator.XONE
    first = logical.constraints[0]
    assert isinstance(first, AtomicConstraint) and first.right_operand == 3
    assert parsed.policy_type is PolicyType.OFFER and parsed.uid == "urn:uuid:p1"
    lists = parse_policy(policy(c(PARTICIPANT_DID, "isAnyOf", ["a:b", {"@id": "c:d"}])))
    assert only_constraint(lists).right_operand == ("a:b", "c:d")
