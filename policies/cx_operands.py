"""Catena-X left operands, with the semantics of Tractus-X EDC's ``cx-policy`` functions —
except where Tractus-X passes what it cannot check.

Read for this (eclipse-tractusx/tractusx-edc ``edc-extensions/cx-policy/src/main/java/org/
eclipse/tractusx/edc/policy/cx/``): ``membership/MembershipCredentialConstraintFunction``,
``framework/FrameworkAgreementCredentialConstraintFunction``, ``dismantler/
DismantlerCredentialConstraintFunction``, ``businesspartner/BusinessPartnerNumber…`` and
``…Group…ConstraintFunction``, ``usage/UsagePurposeConstraintFunction``, ``contractreference/
ContractReferenceConstraintFunction``, ``common/AbstractDataEndDurationDaysConstraintFunction``,
``common/AbstractDataEndDateConstraintFunction``, ``datausage/DataUsageEndDefinition…``,
``common/CredentialTypePredicate``, ``CxPolicyExtension``; and tractusx-profiles
``cx/policy/specs/policy.definitions.md`` and ``policy.mapping.md``. Where we differ, and why:

* **UsagePurpose and ContractReference** are placeholders in Tractus-X ("always returns true
  but allows the validation of policies to be strictly enforced"). Here UsagePurpose is checked
  against the purpose the requester declared, ContractReference against the references the
  provider knows it shares with the requester; without them the constraint is UNKNOWN (denied).
* **BusinessPartnerGroup** in Tractus-X holds for ``isAnyOf`` when both the policy's and the
  partner's group lists are empty; we require an intersection (an empty right operand is
  refused at parse time anyway). It also takes ``isAllOf`` (Tractus-X's tests use it).
* **Dismantler.activityType / allowedBrands**: Tractus-X splits comma-separated strings and reads
  ``in`` as "credential ⊆ policy list". We take JSON lists only (a string is one value) and
  ODRL's ``isPartOf`` for that meaning; ``isAllOf`` (credential covers every listed brand) is
  added. ``eq`` is set equality, as in Tractus-X.
* **FrameworkAgreement**: ``<subtype>[:<version>]`` → the credential type ``<Subtype>Credential``
  (policy.mapping.md), compared case-insensitively so ``circulareconomy`` finds the
  ``CircularEconomyCredential`` the samples carry (Tractus-X only upper-cases the first letter);
  the version must equal the credential's ``contractVersion``, as in Tractus-X. The legacy form
  ``FrameworkAgreement.<subtype> eq active[:<version>]`` is read too.
* **Membership** takes ``eq active`` only (Tractus-X ignores the operator).
* Credentials count only from an issuer on the trust list, while valid at ``now``, and when
  their subject is the requester (Tractus-X relies on DCP for the last two).
* Both namespaces — 2025-09 (``https://w3id.org/catenax/2025/9/policy/``) and the legacy
  ``https://w3id.org/catenax/policy/`` — are read with the same meaning (Tractus-X's tests run
  its policies under both); ``catenax_usage_problems`` flags the legacy one.
* The other Catena-X 2025-09 terms (Warranty, Liability, AffiliatesRegion, UsageRestriction,
  DataProvisioningEnd…, …) are contractual clauses Tractus-X validates but never checks. They
  are refused at parse time here (``UnknownLeftOperand``): fail closed.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from functools import cache
from typing import Any

from policies.context import EvaluationContext, find_credentials
from policies.errors import InvalidRightOperand
from policies.jsonld import CX_2025_9_TERMS
from policies.namespaces import CX_POLICY, CX_POLICY_LEGACY
from policies.operands import OperandSpec, instant, scalar_or_list, text, text_list
from policies.operators import SET_OPERATORS, Operator, Outcome, holds

ACTIVE = "active"
UNLIMITED = "cx.dataUsageEnd.unlimited:1"
BPNL = re.compile(r"BPNL[0-9A-Z]{12}")
_SUBTYPE = re.compile(r"(?P<sub>[A-Za-z][A-Za-z0-9]*)(?::(?P<version>[^:\s]+))?")

#: Catena-X 2025-09 terms the engine knows of but refuses (contractual clauses).
CX_CLAUSES = frozenset(CX_2025_9_TERMS) - {
    "access", "BusinessPartnerGroup", "BusinessPartnerNumber", "ContractReference",
    "DataUsageEndDate", "DataUsageEndDurationDays", "DataUsageEndDefinition",
    "FrameworkAgreement", "Membership", "UsagePurpose",
}


def _describe(op: Operator, right: Any) -> str:
    values = list(right) if isinstance(right, tuple | list) else right
    return {
        Operator.EQ: f"is {values!r}",
        Operator.NEQ: f"is not {values!r}",
        Operator.IS_ANY_OF: f"includes one of {values!r}",
        Operator.IS_ALL_OF: f"includes all of {values!r}",
        Operator.IS_NONE_OF: f"includes none of {values!r}",
        Operator.IS_PART_OF: f"lies within {values!r}",
    }.get(op, f"{op} {values!r}")


def _trusted(kind: str, note: str = "") -> str:
    return f"a {kind} from a trusted issuer{note}"


# --- credentials -------------------------------------------------------------------------------


def _active(op: Operator, value: Any, path: str) -> str:
    if text(value, path) != ACTIVE:
        raise InvalidRightOperand(path, f"rightOperand must be {ACTIVE!r}, not {value!r}")
    return ACTIVE


def _check_membership(op: Operator, right: str, ctx: EvaluationContext) -> Outcome:
    found = find_credentials(ctx, "MembershipCredential")
    if found.usable:
        return Outcome.true("a trusted MembershipCredential is presented")
    return Outcome.false(f"{ctx.participant_did} presents no usable MembershipCredential",
                         _trusted("MembershipCredential (Catena-X membership)", found.note()))


def _framework_right(op: Operator, value: Any, path: str) -> tuple[str, str | None]:
    raw = text(value, path, "'<subtype>[:<version>]'")
    match = _SUBTYPE.fullmatch(raw)
    if not match or match["sub"].casefold() == ACTIVE:
        raise InvalidRightOperand(path, f"{raw!r} is not '<subtype>[:<version>]' "
                                  "(e.g. 'DataExchangeGovernance:1.0'; 'active' is no subtype)")
    return _credential_type(match["sub"]), match["version"]


#: Catena-X credential types (tractusx-profiles cx/credentials/samples), for spelling hints:
#: matching is case-insensitive, so ``circulareconomy`` finds ``CircularEconomyCredential``.
CX_CREDENTIAL_TYPES = (
    "BehavioralTwinCredential", "BpdmCredential", "BpnCredential", "CircularEconomyCredential",
    "DataExchangeGovernanceCredential", "DemandCapacityCredential", "DismantlerCredential",
    "MembershipCredential", "PcfCredential", "PurisCredential", "QualityCredential",
    "ResiliencyCredential", "SustainabilityCredential", "TraceabilityCredential",
)
_SPELLING = {name.casefold(): name for name in CX_CREDENTIAL_TYPES}


def _credential_type(subtype: str) -> str:
    """``<Subtype>Credential`` (policy.mapping.md), spelled as Catena-X spells it if known."""
    name = subtype[:1].upper() + subtype[1:] + "Credential"
    return _SPELLING.get(name.casefold(), name)


def _check_framework(op: Operator, right: tuple[str, str | None],
                     ctx: EvaluationContext) -> Outcome:
    kind, version = right
    wanted = f"{kind} with contractVersion {version}" if version else kind
    found = find_credentials(ctx, kind)
    if not found.usable:
        return Outcome.false(f"{ctx.participant_did} presents no usable {kind}",
                             _trusted(wanted, found.note()))
    if version is None:
        return Outcome.true(f"a trusted {kind} is presented")
    versions = sorted({str(s.get("contractVersion")) for _, s in found.usable})
    if any(s.get("contractVersion") == version for _, s in found.usable):
        return Outcome.true(f"a trusted {kind} for contract version {version} is presented")
    return Outcome.false(f"the presented {kind} attests contract version(s) {versions}, "
                         f"not {version}", _trusted(wanted))


def _legacy_framework(kind: str) -> Any:
    def parse(op: Operator, value: Any, path: str) -> tuple[str, str | None]:
        raw = text(value, path, "'active[:<version>]'")
        head, _, version = raw.partition(":")
        if head != ACTIVE or (":" in raw and not version):
            raise InvalidRightOperand(path, f"{raw!r} is not 'active[:<version>]'")
        return kind, version or None

    return parse


def _check_dismantler(op: Operator, right: str, ctx: EvaluationContext) -> Outcome:
    found = find_credentials(ctx, "DismantlerCredential")
    if op is Operator.EQ:
        if found.usable:
            return Outcome.true("a trusted DismantlerCredential is presented")
        return Outcome.false(f"{ctx.participant_did} presents no usable DismantlerCredential",
                             _trusted("DismantlerCredential", found.note()))
    if found.usable:
        return Outcome.false("a trusted DismantlerCredential is presented, and the policy "
                             "excludes dismantlers")
    return Outcome.true("no trusted DismantlerCredential is presented")


def _dismantler_claim(claim: str) -> Any:
    def check(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
        phrase = (f"with {claim} {right}" if op is Operator.EQ and isinstance(right, str)
                  else f"whose {claim} {_describe(op, right)}")
        wanted = _trusted(f"DismantlerCredential {phrase}")
        found = find_credentials(ctx, "DismantlerCredential")
        if not found.usable:
            return Outcome.false(f"{ctx.participant_did} presents no usable "
                                 "DismantlerCredential", wanted + found.note())
        seen = []
        for held, subject in found.usable:
            values = held.claim_values(subject, claim) or frozenset()
            if holds(op, values, right):
                return Outcome.true(f"a trusted DismantlerCredential's {claim} "
                                    f"{_describe(op, right)}")
            seen.append(sorted(values))
        shown = seen[0] if len(seen) == 1 else seen
        return Outcome.false(f"the DismantlerCredential's {claim} is {shown}", wanted)

    return check


# --- business partners -------------------------------------------------------------------------


def _bpn_right(op: Operator, value: Any, path: str) -> Any:
    return scalar_or_list(op, value, path, BPNL, "BPNLs (BPNL + 12 characters)")


def _requester_bpn(ctx: EvaluationContext) -> str | None:
    if ctx.bpn:
        return ctx.bpn
    for kind, claim in (("BpnCredential", "bpn"), ("MembershipCredential", "holderIdentifier")):
        for _, subject in find_credentials(ctx, kind).usable:
            value = subject.get(claim)
            if isinstance(value, str) and value:
                return value
    return None


def _check_bpn(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    bpn = _requester_bpn(ctx)
    if bpn is None:
        return Outcome.unknown("the requester's BPN is not known",
                               "the requester's BPNL (resolved by the provider, or a "
                               "BpnCredential / MembershipCredential from a trusted issuer)")
    if holds(op, bpn, right):
        return Outcome.true(f"BPN {bpn} {_describe(op, right)}")
    if op in (Operator.NEQ, Operator.IS_NONE_OF):
        return Outcome.false(f"BPN {bpn} is excluded by the policy")
    named = right if isinstance(right, str) else f"one of {list(right)}"
    return Outcome.false(f"BPN {bpn} is not {named}", f"to be the business partner {named}")


def _check_group(op: Operator, right: tuple[str, ...], ctx: EvaluationContext) -> Outcome:
    groups = ctx.business_partner_groups
    if groups is None:
        return Outcome.unknown("the requester's business partner groups are not known",
                               "the provider's business partner groups for the requester's BPN")
    if holds(op, frozenset(groups), right):
        return Outcome.true(f"groups {sorted(groups)} {_describe(op, right)}")
    if op is Operator.IS_NONE_OF:
        return Outcome.false(f"the requester is in excluded group(s) "
                             f"{sorted(set(groups) & set(right))}")
    return Outcome.false(f"the requester's groups {sorted(groups)} do not satisfy {op} "
                         f"{list(right)}", f"membership in the business partner group(s) "
                         f"{list(right)} ({'all' if op is Operator.IS_ALL_OF else 'one'} of them)")


# --- purpose and contracts ---------------------------------------------------------------------


def _check_purpose(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    allowed = [right] if isinstance(right, str) else list(right)
    if ctx.purpose is None:
        return Outcome.unknown("the requester declared no usage purpose",
                               f"a declared usage purpose, one of {allowed}")
    if holds(op, ctx.purpose, right):
        return Outcome.true(f"the declared purpose {ctx.purpose!r} is permitted")
    return Outcome.false(f"the declared purpose {ctx.purpose!r} is not among {allowed}",
                         f"a declared usage purpose, one of {allowed}")


def _check_contract(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    wanted = [right] if isinstance(right, str) else list(right)
    if ctx.contract_references is None:
        return Outcome.unknown("no contract references are known for the requester",
                               f"the contract reference(s) {wanted} agreed with the provider")
    if holds(Operator.IS_ALL_OF, frozenset(ctx.contract_references), tuple(wanted)):
        return Outcome.true(f"the contract reference(s) {wanted} are in place")
    lacking = sorted(set(wanted) - set(ctx.contract_references))
    return Outcome.false(f"no contract {lacking} with the requester is known",
                         f"the contract reference(s) {lacking} agreed with the provider")


# --- usage windows -----------------------------------------------------------------------------


def _days(op: Operator, value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and re.fullmatch(r"[1-9][0-9]*", value):
        return int(value)
    raise InvalidRightOperand(path, f"{value!r} is not a day count (a whole number ≥ 1, "
                              "written as a string: \"30\")")


def _check_days(op: Operator, right: int, ctx: EvaluationContext) -> Outcome:
    if ctx.agreement_start is None:
        return Outcome.true(f"the {right}-day usage period starts with the agreement")
    # Catena-X compares whole UTC days: today < signing day + N
    end = ctx.agreement_start.astimezone(UTC).date() + timedelta(days=right)
    if ctx.now.astimezone(UTC).date() < end:
        return Outcome.true(f"the {right}-day usage period runs until {end.isoformat()}")
    return Outcome.false(f"the {right}-day usage period after the agreement is over (it ended "
                         f"with {end.isoformat()})", "a new agreement (this one's usage period "
                         "is over)")


def _check_end_date(op: Operator, right: Any, ctx: EvaluationContext) -> Outcome:
    if ctx.now.replace(microsecond=0) <= right:  # Tractus-X truncates now to seconds
        return Outcome.true(f"usage is permitted until {right.isoformat()}")
    return Outcome.false(f"the usage period ended at {right.isoformat()}",
                         "a new agreement (this one's usage period is over)")


def _unlimited(op: Operator, value: Any, path: str) -> str:
    if text(value, path) != UNLIMITED:
        raise InvalidRightOperand(path, f"rightOperand must be {UNLIMITED!r}")
    return UNLIMITED


def _spec(name: str, operators: frozenset[Operator], parse: Any, check: Any, *,
          claim: bool) -> OperandSpec:
    return OperandSpec(CX_POLICY + name, name, operators, parse, check, claim=claim,
                       aliases=(CX_POLICY_LEGACY + name,))


_CLAIM_SETS = SET_OPERATORS | {Operator.EQ, Operator.NEQ}


def _claim_right(op: Operator, value: Any, path: str) -> Any:
    """A credential claim compares with one value or, for ``eq``/``neq`` too, a list (set
    equality: the credential's values are exactly these)."""
    if op in (Operator.EQ, Operator.NEQ) and isinstance(value, str):
        return text(value, path)
    return text_list(value, path)


CX_OPERANDS: tuple[OperandSpec, ...] = (
    _spec("Membership", frozenset({Operator.EQ}), _active, _check_membership, claim=True),
    _spec("FrameworkAgreement", frozenset({Operator.EQ}), _framework_right, _check_framework,
          claim=True),
    _spec("Dismantler", frozenset({Operator.EQ, Operator.NEQ}), _active, _check_dismantler,
          claim=True),
    _spec("Dismantler.activityType", _CLAIM_SETS, _claim_right,
          _dismantler_claim("activityType"), claim=True),
    _spec("Dismantler.allowedBrands", _CLAIM_SETS, _claim_right,
          _dismantler_claim("allowedVehicleBrands"), claim=True),
    _spec("BusinessPartnerNumber",
          frozenset({Operator.EQ, Operator.NEQ, Operator.IS_ANY_OF, Operator.IS_NONE_OF}),
          _bpn_right, _check_bpn, claim=True),
    _spec("BusinessPartnerGroup",
          frozenset({Operator.IS_ANY_OF, Operator.IS_ALL_OF, Operator.IS_NONE_OF}),
          lambda op, v, p: text_list(v, p, what="group names"), _check_group, claim=True),
    _spec("UsagePurpose", frozenset({Operator.EQ, Operator.IS_ANY_OF}),
          lambda op, v, p: scalar_or_list(op, v, p, what="purposes"), _check_purpose,
          claim=True),
    _spec("ContractReference", frozenset({Operator.EQ, Operator.IS_ALL_OF}),
          lambda op, v, p: scalar_or_list(op, v, p, what="contract references"),
          _check_contract, claim=True),
    _spec("DataUsageEndDurationDays", frozenset({Operator.EQ}), _days, _check_days,
          claim=False),
    _spec("DataUsageEndDate", frozenset({Operator.EQ}), lambda op, v, p: instant(v, p),
          _check_end_date, claim=False),
    _spec("DataUsageEndDefinition", frozenset({Operator.EQ}), _unlimited,
          lambda op, r, ctx: Outcome.true("the usage period is unlimited"), claim=False),
)


@cache
def dynamic_operand(iri: str) -> OperandSpec | None:
    """Specs for operands named by pattern: legacy ``FrameworkAgreement.<subtype>``."""
    for namespace in (CX_POLICY, CX_POLICY_LEGACY):
        prefix = namespace + "FrameworkAgreement."
        if iri.startswith(prefix):
            subtype = iri.removeprefix(prefix)
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", subtype):
                return OperandSpec(iri, f"FrameworkAgreement.{subtype}",
                                   frozenset({Operator.EQ}),
                                   _legacy_framework(_credential_type(subtype)),
                                   _check_framework, claim=True)
    return None


def refusal_reason(iri: str) -> str | None:
    """Why a known-but-unevaluated Catena-X term is refused, for the parse error."""
    for namespace in (CX_POLICY, CX_POLICY_LEGACY):
        if iri.startswith(namespace) and iri.removeprefix(namespace) in CX_CLAUSES:
            return (f"{iri.removeprefix(namespace)} is a Catena-X contractual clause the "
                    "engine cannot check; Tractus-X passes it unchecked, this engine refuses "
                    "it (fails closed)")
    return None


__all__ = [
    "ACTIVE",
    "CX_CLAUSES",
    "CX_CREDENTIAL_TYPES",
    "CX_OPERANDS",
    "UNLIMITED",
    "dynamic_operand",
    "refusal_reason",
]
