"""Is this a usage policy Catena-X accepts? ``catenax_usage_problems`` says what is wrong.

Why a separate check from evaluation: a policy can be perfectly evaluable and still be refused
by every Catena-X partner. "Every CX usage policy MUST contain FrameworkAgreement and
UsagePurpose, combined with and" (Tractus-X ``docs/usage/management-api-walkthrough/
02_policies.md``; ``edc-extensions/cx-policy/.../validator/UsagePolicyValidator``), and the
2025-09 JSON schemas (shared/dsp/catenax/policy-2025-9/schema/policy-schema.json) add: one
permission with action ``use`` whose constraint list holds one ``and``; ``FrameworkAgreement eq
DataExchangeGovernance:1.0``; ``UsagePurpose isAnyOf [...]`` (a lone ``eq`` fails the schema);
at most one ``DataUsageEnd*`` constraint per ``and``. The management API should run this before
publishing an offer to Catena-X partners.

``strict=True`` also reports constraints outside the 2025-09 usage schema — our participant
allow-list, the legacy Dismantler operands, ODRL time operands — which a Tractus-X connector
with ``policy.validation.enabled`` refuses, although its evaluator understands some of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.errors import PolicyError
from policies.jsonld import CX_2025_9_TERMS
from policies.namespaces import CX_POLICY, CX_POLICY_LEGACY, USE
from policies.odrl import AtomicConstraint, Constraint, LogicalConstraint, Policy, parse_policy
from policies.operators import LogicalOperator, Operator

DATA_EXCHANGE_GOVERNANCE = "DataExchangeGovernance:1.0"
#: Atomic constraints the 2025-09 schema allows in a usage permission (AtomicUsagePermission…).
CX_USAGE_OPERANDS = frozenset({
    "FrameworkAgreement", "Membership", "UsagePurpose", "ContractReference", "AffiliatesRegion",
    "AffiliatesBpnl", "DataFrequency", "VersionChanges", "ContractTermination",
    "ConfidentialInformationMeasures", "ConfidentialInformationSharing", "ExclusiveUsage",
    "Warranty", "WarrantyDurationMonths", "WarrantyDefinition", "Liability",
    "JurisdictionLocation", "JurisdictionLocationReference", "Precedence",
    "DataUsageEndDurationDays", "DataUsageEndDate", "DataUsageEndDefinition",
})
_USAGE_END = frozenset({"DataUsageEndDurationDays", "DataUsageEndDate",
                        "DataUsageEndDefinition"})


@dataclass(frozen=True, slots=True)
class CatenaXProblem:
    """One reason Catena-X would refuse the policy; ``path`` points into the policy JSON.

    ``schema`` tells whether policy-schema.json itself rejects it; the others (FrameworkAgreement
    AND UsagePurpose, the legacy namespace) are Catena-X rules the schema does not encode but
    Tractus-X's policy validator and the operating model require.
    """

    path: str
    message: str
    schema: bool = True

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def cx_name(iri: str) -> str | None:
    """``FrameworkAgreement`` for either Catena-X namespace's IRI, None for other IRIs."""
    for namespace in (CX_POLICY, CX_POLICY_LEGACY):
        if iri.startswith(namespace):
            return iri.removeprefix(namespace)
    return None


def catenax_usage_problems(policy: Policy | Mapping[str, Any], *,
                           strict: bool = False) -> list[CatenaXProblem]:
    """Everything that keeps ``policy`` from being a Catena-X usage policy; empty when fine."""
    if not isinstance(policy, Policy):
        try:
            policy = parse_policy(policy)
        except PolicyError as exc:
            return [CatenaXProblem(exc.path, f"the policy does not parse: {exc.message}")]
    problems: list[CatenaXProblem] = []
    uses = [(i, r) for i, r in enumerate(policy.permissions) if r.action == USE]
    if not uses:
        return [CatenaXProblem("permission", "a Catena-X usage policy has a permission with "
                               "action 'use'")]
    if len(policy.permissions) > 1:
        problems.append(CatenaXProblem("permission", "Catena-X usage policies have exactly one "
                                       "permission (policy-schema.json: maxItems 1)"))
    for index, rule in uses:
        path = f"permission[{index}].constraint"
        if len(rule.constraints) != 1:
            problems.append(CatenaXProblem(path, "Catena-X expects exactly one constraint: one "
                                           "'and' holding all atomic constraints"))
        members = list(_and_members(rule.constraints, path))
        named: dict[str | None, list[tuple[str, AtomicConstraint]]] = {}
        for where, constraint in members:
            named.setdefault(cx_name(constraint.left_operand), []).append((where, constraint))
        governance = [(p, fa) for p, fa in named.get("FrameworkAgreement", [])
                      if fa.right_operand == DATA_EXCHANGE_GOVERNANCE]
        for needed, shape, found in (
            ("FrameworkAgreement", f"eq {DATA_EXCHANGE_GOVERNANCE}", governance),
            ("UsagePurpose", "isAnyOf [purposes]", named.get("UsagePurpose", [])),
        ):
            if not found:
                nested = any(cx_name(c.left_operand) == needed
                             for _, c in _all_atomic(rule.constraints, path))
                where = "appears only inside 'or'/'xone'" if nested and not named.get(
                    needed) else "is missing"
                problems.append(CatenaXProblem(path, f"a Catena-X usage policy must AND "
                                               f"FrameworkAgreement with UsagePurpose; "
                                               f"{needed} ({shape}) {where}", schema=False))
        if strict:
            for where, fa in named.get("FrameworkAgreement", []):
                if fa.right_operand != DATA_EXCHANGE_GOVERNANCE:
                    problems.append(CatenaXProblem(where, "the 2025-09 schema allows only "
                                                   "FrameworkAgreement eq "
                                                   f"{DATA_EXCHANGE_GOVERNANCE}; use-case "
                                                   f"framework credentials ({fa.right_operand})"
                                                   " are a legacy notation"))
        for where, purpose in named.get("UsagePurpose", []):
            if purpose.operator is not Operator.IS_ANY_OF:
                problems.append(CatenaXProblem(where, "UsagePurpose must use isAnyOf with a "
                                               "list (a lone 'eq' fails policy-schema.json)"))
        for group_path, group in _and_groups(rule.constraints, path):
            ends = [p for p, c in group if cx_name(c.left_operand) in _USAGE_END]
            if len(ends) > 1:
                problems.append(CatenaXProblem(group_path, "at most one DataUsageEnd* "
                                               f"constraint per 'and' ({', '.join(ends)})"))
        if strict:
            for where, constraint in _all_atomic(rule.constraints, path):
                name = cx_name(constraint.left_operand)
                if name not in CX_USAGE_OPERANDS:
                    problems.append(CatenaXProblem(where, f"{constraint.left_operand} is not "
                                                   "a Catena-X 2025-09 usage constraint"))
    for where, constraint in _every_atomic(policy):
        legacy = constraint.left_operand.startswith(CX_POLICY_LEGACY)
        if legacy and constraint.left_operand.removeprefix(CX_POLICY_LEGACY) in CX_2025_9_TERMS:
            problems.append(CatenaXProblem(where, f"{constraint.left_operand} uses the legacy "
                                           f"namespace {CX_POLICY_LEGACY}; Catena-X 2025-09 "
                                           f"expects {CX_POLICY}", schema=False))
    return problems


def _and_members(constraints: tuple[Constraint, ...],
                 path: str) -> Iterator[tuple[str, AtomicConstraint]]:
    """Atomic constraints reached through ``and``s only (what is really ANDed)."""
    for i, constraint in enumerate(constraints):
        where = f"{path}[{i}]"
        if isinstance(constraint, AtomicConstraint):
            yield where, constraint
        elif constraint.operator in (LogicalOperator.AND, LogicalOperator.AND_SEQUENCE):
            yield from _and_members(constraint.constraints,
                                    f"{where}.{constraint.operator.value}")


def _and_groups(constraints: tuple[Constraint, ...], path: str, conjunctive: bool = True,
                ) -> Iterator[tuple[str, list[tuple[str, AtomicConstraint]]]]:
    """Each conjunction (the rule's list, every ``and``) with its direct atomic members."""
    if conjunctive:
        yield path, [(f"{path}[{i}]", c) for i, c in enumerate(constraints)
                     if isinstance(c, AtomicConstraint)]
    for i, constraint in enumerate(constraints):
        if isinstance(constraint, LogicalConstraint):
            yield from _and_groups(
                constraint.constraints, f"{path}[{i}].{constraint.operator.value}",
                constraint.operator in (LogicalOperator.AND, LogicalOperator.AND_SEQUENCE))


def _all_atomic(constraints: tuple[Constraint, ...],
                path: str) -> Iterator[tuple[str, AtomicConstraint]]:
    for i, constraint in enumerate(constraints):
        where = f"{path}[{i}]"
        if isinstance(constraint, AtomicConstraint):
            yield where, constraint
        else:
            yield from _all_atomic(constraint.constraints, f"{where}.{constraint.operator.value}")


def _every_atomic(policy: Policy) -> Iterator[tuple[str, AtomicConstraint]]:
    for kind, rules in (("permission", policy.permissions), ("prohibition", policy.prohibitions),
                        ("obligation", policy.obligations)):
        for i, rule in enumerate(rules):
            yield from _all_atomic(rule.constraints, f"{kind}[{i}].constraint")
            for j, duty in enumerate(getattr(rule, "duties", ())):
                yield from _all_atomic(duty.constraints, f"{kind}[{i}].duty[{j}].constraint")


__all__ = [
    "CX_USAGE_OPERANDS",
    "DATA_EXCHANGE_GOVERNANCE",
    "CatenaXProblem",
    "catenax_usage_problems",
    "cx_name",
]
