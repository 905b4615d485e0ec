"""Catena-X left operands against verified credentials, and the usage-policy check."""

from __future__ import annotations

from typing import Any

import pytest
from odrl_support import (
    CATENAX,
    CX_CONTEXT,
    ISSUER,
    NOW,
    RECYCLER,
    ROGUE,
    STRANGER,
    c,
    credential,
    ctx,
    dismantler,
    governance,
    load,
    membership,
    needs_shared,
    policy,
)

from policies import TrustList, catenax_usage_problems, evaluate, parse_policy
from policies.context import HeldCredential, find_credentials
from policies.namespaces import CX_POLICY, CX_POLICY_LEGACY

LEGACY = CX_POLICY_LEGACY


def cx(*constraints: dict[str, Any]) -> dict[str, Any]:
    return policy(*constraints, context=CX_CONTEXT)


# --- credentials -------------------------------------------------------------------------------


def test_membership_needs_a_trusted_valid_own_membership_credential() -> None:
    p = cx(c("Membership", "eq", "active"))
    assert evaluate(p, ctx(credentials=[membership()])).allowed
    nothing = evaluate(p, ctx())
    assert not nothing.allowed and nothing.left_operand == CX_POLICY + "Membership"
    assert nothing.missing == "a MembershipCredential (Catena-X membership) from a trusted issuer"
    rogue = evaluate(p, ctx(credentials=[membership(issuer=ROGUE)]))
    assert not rogue.allowed and rogue.missing and f"issuer {ROGUE} is not trusted" in \
        rogue.missing
    assert not evaluate(p, ctx(credentials=[membership(until="2026-01-01T00:00:00Z")])).allowed
    assert not evaluate(p, ctx(credentials=[membership(since="2027-01-01T00:00:00Z")])).allowed
    assert not evaluate(p, ctx(credentials=[membership(holder=STRANGER)])).allowed
    assert not evaluate(p, ctx(credentials=[membership()], trust=TrustList())).allowed


def test_trust_is_per_credential_type() -> None:
    trust = TrustList.of({"MembershipCredential": [ISSUER], "DismantlerCredential": [ROGUE]})
    assert trust.trusts(ISSUER, "https://w3id.org/catenax/credentials/MembershipCredential")
    assert not trust.trusts(ISSUER, "DismantlerCredential")
    p = cx(c("Membership", "eq", "active"), c(LEGACY + "Dismantler", "eq", "active"))
    assert not evaluate(p, ctx(credentials=[membership(), dismantler()], trust=trust)).allowed
    assert evaluate(p, ctx(credentials=[membership(), dismantler(issuer=ROGUE)],
                           trust=trust)).allowed
    assert TrustList.from_json(trust.to_json()) == trust
    with pytest.raises(ValueError):
        TrustList.from_json({"MembershipCredential": ISSUER})


def test_jwt_claims_and_iri_types_are_read() -> None:
    vc = membership()
    claims = {"iss": ISSUER, "sub": RECYCLER, "exp": 1893456000, "nbf": 1735689600,
              "vc": {**{k: vc[k] for k in ("@context", "credentialSubject")},
                     "type": ["VerifiableCredential",
                              "https://w3id.org/catenax/credentials/MembershipCredential"]}}
    assert evaluate(cx(c("Membership", "eq", "active")), ctx(credentials=[claims])).allowed
    assert HeldCredential.read({"type": 5}) is None
    assert not find_credentials(ctx(credentials=[{"junk": True}]), "MembershipCredential").usable


@pytest.mark.parametrize("right, creds, allowed", [
    ("DataExchangeGovernance:1.0", [governance("1.0")], True),
    ("DataExchangeGovernance:1.0", [governance("2.0")], False),
    ("DataExchangeGovernance", [governance("2.0")], True),
    ("circulareconomy", [credential("CircularEconomyCredential")], True),  # case-insensitive
    ("traceability:1.0.0", [credential("TraceabilityCredential",
                                       {"contractVersion": "1.0.0"})], True),
    ("pcf", [credential("TraceabilityCredential")], False),
])
def test_framework_agreement_maps_to_the_use_case_credential(right: str, creds: list[Any],
                                                             allowed: bool) -> None:
    decision = evaluate(cx(c("FrameworkAgreement", "eq", right)), ctx(credentials=creds))
    assert decision.allowed is allowed
    if not allowed:
        assert decision.missing and "Credential" in decision.missing


def test_legacy_dotted_framework_agreement() -> None:
    p = policy(c(LEGACY + "FrameworkAgreement.traceability", "eq", "active:1.0.0"))
    good = credential("TraceabilityCredential", {"contractVersion": "1.0.0"})
    assert evaluate(p, ctx(credentials=[good])).allowed
    assert not evaluate(p, ctx(credentials=[membership()])).allowed


def test_dismantler_presence_activity_and_brands() -> None:
    holder = ctx(credentials=[dismantler()])
    activity = LEGACY + "Dismantler.activityType"
    brands = LEGACY + "Dismantler.allowedBrands"
    assert evaluate(policy(c(LEGACY + "Dismantler", "eq", "active")), holder).allowed
    assert not evaluate(policy(c(LEGACY + "Dismantler", "neq", "active")), holder).allowed
    assert evaluate(policy(c(LEGACY + "Dismantler", "neq", "active")), ctx()).allowed
    assert evaluate(policy(c(activity, "eq", "vehicleDismantle")), holder).allowed
    assert not evaluate(policy(c(activity, "eq", "batteryRecycling")), holder).allowed
    assert evaluate(policy(c(brands, "isAnyOf", ["BMW", "Audi"])), holder).allowed
    assert not evaluate(policy(c(brands, "isAllOf", ["BMW", "Audi"])), holder).allowed
    assert evaluate(policy(c(brands, "isAllOf", ["BMW"])), holder).allowed
    assert evaluate(policy(c(brands, "isPartOf", ["BMW", "Alpina", "Mini"])), holder).allowed
    assert not evaluate(policy(c(brands, "isPartOf", ["BMW"])), holder).allowed
    assert evaluate(policy(c(brands, "isNoneOf", ["Audi"])), holder).allowed
    assert evaluate(policy(c(brands, "eq", ["Alpina", "BMW"])), holder).allowed


def test_dismantler_missing_hint_names_credential_claim_and_trust() -> None:
    p = policy(c(LEGACY + "Dismantler.activityType", "eq", "vehicleDismantle"))
    decision = evaluate(p, ctx())
    assert decision.missing == ("a DismantlerCredential with activityType vehicleDismantle "
                                "from a trusted issuer")
    wrong = evaluate(p, ctx(credentials=[dismantler(activity="batteryRecycling")]))
    assert "batteryRecycling" in wrong.reason


@needs_shared
def test_the_catena_x_credential_samples_are_read() -> None:
    samples = CATENAX / "credentials" / "samples"
    sample = load(samples / "dismantler.credential.json")
    held = HeldCredential.read(sample)
    assert held is not None and held.has_type("DismantlerCredential")
    subject = held.subjects[0]
    assert held.claim_values(subject, "allowedVehicleBrands") == {"Alfa Romeo", "Alpina", "BMW"}
    p = policy(c(LEGACY + "Dismantler.allowedBrands", "isAnyOf", ["Alfa Romeo"]))
    owner = "did:web:com.example.participant"
    trust = TrustList.of({"*": ["did:web:com.example.issuer"]})
    assert not evaluate(p, ctx(owner, credentials=[sample], trust=trust)).allowed  # expired 2022
    fresh = {**sample, "expirationDate": "2030-01-01T00:00:00Z"}
    assert evaluate(p, ctx(owner, credentials=[fresh], trust=trust)).allowed
    for path in samples.glob("*.json"):
        assert HeldCredential.read(load(path)) is not None, path.name


# --- business partners, purpose, contract references -------------------------------------------


def test_business_partner_number() -> None:
    p = cx(c("BusinessPartnerNumber", "isAnyOf", ["BPNL00000000RCYC"]))
    assert evaluate(p, ctx(bpn="BPNL00000000RCYC")).allowed
    assert not evaluate(p, ctx(bpn="BPNL00000000OTHR")).allowed
    unknown = evaluate(p, ctx())
    assert not unknown.allowed and unknown.unmet[0].truth.value == "unknown"
    # read from a trusted Membership credential when the caller does not know it
    assert evaluate(p, ctx(credentials=[membership()])).allowed
    assert not evaluate(p, ctx(credentials=[membership(issuer=ROGUE)])).allowed
    none_of = cx(c("BusinessPartnerNumber", "isNoneOf", ["BPNL00000000RCYC"]))
    assert not evaluate(none_of, ctx(bpn="BPNL00000000RCYC")).allowed
    assert not evaluate(none_of, ctx()).allowed  # undecided: not granted


def test_business_partner_group() -> None:
    p = cx(c("BusinessPartnerGroup", "isAnyOf", ["certified-recyclers"]))
    assert evaluate(p, ctx(business_partner_groups=frozenset({"certified-recyclers"}))).allowed
    assert not evaluate(p, ctx(business_partner_groups=frozenset())).allowed
    assert not evaluate(p, ctx()).allowed
    excluded = cx(c("BusinessPartnerGroup", "isNoneOf", ["blocked"]))
    assert evaluate(excluded, ctx(business_partner_groups=frozenset())).allowed
    assert not evaluate(excluded, ctx(business_partner_groups=frozenset({"blocked"}))).allowed
    both = cx(c("BusinessPartnerGroup", "isAllOf", ["a", "b"]))
    assert evaluate(both, ctx(business_partner_groups=frozenset({"a", "b", "c"}))).allowed
    assert not evaluate(both, ctx(business_partner_groups=frozenset({"a"}))).allowed


def test_usage_purpose_is_checked_against_the_declared_purpose() -> None:
    p = cx(c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1",
                                         "cx.core.legalRequirementForThirdparty:1"]))
    assert evaluate(p, ctx(purpose="cx.circular.dpp:1")).allowed
    wrong = evaluate(p, ctx(purpose="cx.pcf.base:1"))
    assert not wrong.allowed and wrong.missing and "cx.circular.dpp:1" in wrong.missing
    undeclared = evaluate(p, ctx())
    assert not undeclared.allowed and undeclared.missing and "declared" in undeclared.missing
    legacy = policy(c(LEGACY + "UsagePurpose", "eq", "trace.aspects:1.0"))
    assert evaluate(legacy, ctx(purpose="trace.aspects:1.0")).allowed


def test_contract_reference_needs_every_reference() -> None:
    p = cx(c("ContractReference", "isAllOf", ["frame-2024", "annex-7"]))
    assert evaluate(p, ctx(contract_references=frozenset({"frame-2024", "annex-7"}))).allowed
    partial = evaluate(p, ctx(contract_references=frozenset({"frame-2024"})))
    assert not partial.allowed and partial.missing and "annex-7" in partial.missing
    assert not evaluate(p, ctx()).allowed


def test_policy_monitor_does_not_recheck_claims() -> None:
    p = cx(c("Membership", "eq", "active"), c("elapsedTime", "lteq", "P1D"))
    from datetime import timedelta
    assert evaluate(p, ctx(monitor=True, agreement_start=NOW)).allowed
    assert not evaluate(p, ctx(monitor=True, agreement_start=NOW - timedelta(days=2))).allowed


# --- the usage-policy check --------------------------------------------------------------------

GOOD = {"@context": CX_CONTEXT, "@id": "urn:uuid:u1", "@type": "Set", "permission": [{
    "action": "use", "constraint": [{"and": [
        c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
        c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
        c("DataUsageEndDurationDays", "eq", "30")]}]}]}


def with_constraints(*constraints: Any) -> dict[str, Any]:
    return {**GOOD, "permission": [{"action": "use", "constraint": list(constraints)}]}


def test_a_conformant_usage_policy_has_no_problems() -> None:
    assert catenax_usage_problems(GOOD) == []
    assert catenax_usage_problems(parse_policy(GOOD), strict=True) == []


@pytest.mark.parametrize("document, fragment", [
    (with_constraints({"and": [c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])]}),
     "FrameworkAgreement (eq DataExchangeGovernance:1.0) is missing"),
    (with_constraints({"and": [c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0")]}),
     "UsagePurpose (isAnyOf [purposes]) is missing"),
    (with_constraints({"or": [c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
                              c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])]}),
     "appears only inside 'or'/'xone'"),
    (with_constraints({"and": [c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
                               c("UsagePurpose", "eq", "cx.circular.dpp:1")]}),
     "isAnyOf"),
    (with_constraints({"and": [c("FrameworkAgreement", "eq", "traceability"),
                               c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])]}),
     "FrameworkAgreement (eq DataExchangeGovernance:1.0) is missing"),
    (with_constraints(c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
                      c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])),
     "exactly one constraint"),
    (with_constraints({"and": [c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
                               c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
                               c("DataUsageEndDurationDays", "eq", "30"),
                               c("DataUsageEndDate", "eq", "2027-01-01T00:00:00Z")]}),
     "at most one DataUsageEnd*"),
    ({"@context": CX_CONTEXT, "permission": [{"action": "access", "constraint": [
        c("Membership", "eq", "active")]}]}, "action 'use'"),
    ({**GOOD, "permission": GOOD["permission"] * 2}, "exactly one permission"),
    ({"permission": [{"action": "use", "constraint": [{"and": [
        c(LEGACY + "FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
        c(LEGACY + "UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"])]}]}]}, "legacy namespace"),
    ({"permission": [{"action": "use", "constraint": [c("spatial", "eq", "EU")]}]},
     "does not parse"),
])
def test_usage_policy_problems(document: dict[str, Any], fragment: str) -> None:
    problems = catenax_usage_problems(document)
    assert problems, document
    assert any(fragment in str(p) for p in problems), [str(p) for p in problems]


def test_strict_mode_reports_constraints_outside_the_2025_09_schema() -> None:
    extended = with_constraints({"and": [
        c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
        c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
        c("bpc-policy:participantDid", "isAnyOf", [RECYCLER])]})
    assert catenax_usage_problems(extended) == []
    strict = catenax_usage_problems(extended, strict=True)
    assert [p.path for p in strict] == ["permission[0].constraint[0].and[2]"]


@needs_shared
def test_legacy_samples_are_not_2025_09_usage_policies() -> None:
    from policies import parse_policy_definition
    for path in sorted((CATENAX / "policy-samples-legacy").glob("*.json")):
        assert catenax_usage_problems(parse_policy_definition(load(path))), path.name


def test_a_node_trust_registry_serves_as_the_trust_source() -> None:
    """The node passes ``credentials.trust.TrustRegistry`` (federated lists included) where
    tests use a ``TrustList``: the engine only asks ``trusts(issuer, type)``."""
    from credentials.trust import TrustRegistry

    registry = TrustRegistry()
    registry.trust("MembershipCredential", ISSUER)
    registry.trust("DismantlerCredential", ROGUE)
    assert registry.trusts(ISSUER, "https://w3id.org/catenax/credentials/MembershipCredential")
    assert not registry.trusts(ISSUER, "DismantlerCredential")
    p = cx(c("Membership", "eq", "active"), c(LEGACY + "Dismantler", "eq", "active"))
    assert not evaluate(p, ctx(credentials=[membership(), dismantler()], trust=registry)).allowed
    assert evaluate(p, ctx(credentials=[membership(), dismantler(issuer=ROGUE)],
                           trust=registry)).allowed
