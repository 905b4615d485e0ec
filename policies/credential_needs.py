"""Which credential types a policy asks the requester to present.

Why: a provider fetching a consumer's presentation (DCP) asks for *scopes*, one per credential
type, and should ask only for what its policies can use — a consumer must not hand every
credential it holds to every provider (Tractus-X derives the scopes from the policies' left
operands in the same way: ``FrameworkAgreement`` → the framework's credential, ``Dismantler``
→ ``DismantlerCredential``). A policy the engine cannot parse needs nothing (it is denied
anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.errors import PolicyError
from policies.odrl import AtomicConstraint, Constraint, LogicalConstraint, Policy, parse_policy
from policies.operands import lookup

MEMBERSHIP = "MembershipCredential"
BPN = "BpnCredential"
DISMANTLER = "DismantlerCredential"

#: Operand label → the credential types that can satisfy it (BPN: a BpnCredential or the
#: MembershipCredential's holderIdentifier).
_BY_LABEL: Mapping[str, tuple[str, ...]] = {
    "Membership": (MEMBERSHIP,),
    "Dismantler": (DISMANTLER,),
    "Dismantler.activityType": (DISMANTLER,),
    "Dismantler.allowedBrands": (DISMANTLER,),
    "BusinessPartnerNumber": (BPN, MEMBERSHIP),
    "BusinessPartnerGroup": (BPN, MEMBERSHIP),
}


def _constraint_types(constraint: Constraint, path: str) -> set[str]:
    if isinstance(constraint, LogicalConstraint):
        found: set[str] = set()
        for index, inner in enumerate(constraint.constraints):
            found |= _constraint_types(inner, f"{path}[{index}]")
        return found
    assert isinstance(constraint, AtomicConstraint)
    spec = lookup(constraint.left_operand)
    if spec is None:
        return set()
    if spec.label in _BY_LABEL:
        return set(_BY_LABEL[spec.label])
    if spec.label.startswith("FrameworkAgreement"):
        try:
            kind, _ = spec.parse_right(constraint.operator, constraint.right_operand, path)
        except PolicyError:
            return set()
        return {str(kind)}
    return set()


def credential_types(policy: Policy | Mapping[str, Any]) -> frozenset[str]:
    """The credential types ``policy``'s permissions, prohibitions and duties refer to."""
    try:
        parsed = policy if isinstance(policy, Policy) else parse_policy(policy)
    except PolicyError:
        return frozenset()
    found: set[str] = set()
    rules = [*parsed.permissions, *parsed.prohibitions, *parsed.obligations]
    rules += [duty for permission in parsed.permissions for duty in permission.duties]
    for rule in rules:
        for index, constraint in enumerate(rule.constraints):
            found |= _constraint_types(constraint, f"constraint[{index}]")
    return frozenset(found)


def usage_purposes(policy: Policy | Mapping[str, Any]) -> tuple[str, ...]:
    """The purposes a policy's ``UsagePurpose`` constraints permit, in order (none: ())."""
    try:
        parsed = policy if isinstance(policy, Policy) else parse_policy(policy)
    except PolicyError:
        return ()
    found: list[str] = []

    def walk(constraint: Constraint) -> None:
        if isinstance(constraint, LogicalConstraint):
            for inner in constraint.constraints:
                walk(inner)
            return
        spec = lookup(constraint.left_operand)
        if spec is None or spec.label != "UsagePurpose":
            return
        right = constraint.right_operand
        for value in right if isinstance(right, list | tuple) else [right]:
            if isinstance(value, str) and value not in found:
                found.append(value)

    for permission in parsed.permissions:
        for constraint in permission.constraints:
            walk(constraint)
    return tuple(found)


def credential_types_of_all(policies: Iterable[Policy | Mapping[str, Any]]) -> frozenset[str]:
    """The union over several policies (a catalog's offers)."""
    found: set[str] = set()
    for policy in policies:
        found |= credential_types(policy)
    return frozenset(found)


__all__ = ["BPN", "DISMANTLER", "MEMBERSHIP", "credential_types", "credential_types_of_all",
           "usage_purposes"]
