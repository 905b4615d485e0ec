"""Default policies: one place from DESIGN.md's data categories to the regulation's access
groups and to the ODRL policy a node offers when the operator says nothing more.

Why here and not in the management API: what "certified recyclers may read dismantling data
for seven days" means as ODRL is a policy question, and the catalog, the management API and the
tests must all produce the same offer for it.

Two layers:

* ``default_policy_for_level(level)`` — per access group of Regulation (EU) 2023/1542
  (``vocab.access.AccessLevel``): ``public`` needs no policy; ``legitimate-interest`` (and
  ``…-and-commission``) needs a Catena-X membership plus a role credential (default: the
  Circular Economy framework credential); ``authorities`` are named one by one (an allow-list
  is required: there is no authority credential in Catena-X).
* ``CATEGORIES`` / ``default_policy(category)`` — per data category of DESIGN.md's table. Each
  names the access-matrix attributes that stand for it, so its regulation access groups are
  *computed* from ``vocab``'s matrix, and the recipe of its default policy.

Every restricted default is a Catena-X usage policy (``catenax_usage_problems`` is empty):
``FrameworkAgreement eq DataExchangeGovernance:1.0`` AND ``UsagePurpose isAnyOf
[cx.circular.dpp:1]`` (the purpose Catena-X names for "Digital Product Pass, Battery Pass": use
"in accordance to those applicable public legal regulation directly requiring digital product
passports") AND the role AND ``DataUsageEndDurationDays``. Dismantling data adds a ``delete``
duty at the end of the window (``elapsedTime gteq P7D``), returned to the caller with its due
date by ``evaluate``.

Note (reported): the regulation's matrix makes carbon footprint, recycled content and the
supply-chain due-diligence report *public* (Annex XIII point 1), while DESIGN.md restricts
"sustainability" and "supply-chain provenance" to regulators and partners. The defaults follow
DESIGN.md (a node may publish more detail than the regulation requires, and restrict the
extra); ``CategoryRule.regulation_levels`` shows the regulation's view next to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from policies.namespaces import (
    CX_POLICY_CONTEXT,
    CX_POLICY_LEGACY,
    DSP_ODRL_PROFILE,
    PARTICIPANT_DID,
)
from vocab.access import AccessLevel, access_level

#: The Catena-X purpose for battery-passport data.
BATTERY_PASS_PURPOSE = "cx.circular.dpp:1"
DEFAULT_CONTEXT = (DSP_ODRL_PROFILE, CX_POLICY_CONTEXT)
#: Written as a full IRI: the 2025-09 context does not define the (legacy) Dismantler terms.
DISMANTLER_ACTIVITY = CX_POLICY_LEGACY + "Dismantler.activityType"


class DataCategory(StrEnum):
    """DESIGN.md's data categories (the string values of connector.management.assets')."""

    PUBLIC = "public"
    SUSTAINABILITY = "sustainability"
    PROVENANCE = "provenance"
    PERFORMANCE_HEALTH = "performance-health"
    DISMANTLING_SAFETY = "dismantling-safety"


def _atom(left: str, op: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


MEMBERSHIP = _atom("Membership", "eq", "active")


def framework(subtype: str) -> dict[str, Any]:
    """``FrameworkAgreement eq <subtype>``: holds a trusted ``<Subtype>Credential``."""
    return _atom("FrameworkAgreement", "eq", subtype)


def dismantler(activity: str = "vehicleDismantle") -> dict[str, Any]:
    """A DismantlerCredential for ``activity`` (legacy Catena-X operand, full IRI: the 2025-09
    context does not define it)."""
    return _atom(DISMANTLER_ACTIVITY, "eq", activity)


@dataclass(frozen=True, slots=True)
class Recipe:
    """What a default policy asks for: who (``roles``), for how long, and a delete duty."""

    roles: tuple[Mapping[str, Any], ...]
    days: int
    delete_at_end: bool = False


#: Per regulation access group. ``None``: public, no policy. AUTHORITIES has no recipe: its
#: members are named by an allow-list.
LEVEL_RECIPES: Mapping[AccessLevel, Recipe | None] = MappingProxyType({
    AccessLevel.PUBLIC: None,
    AccessLevel.LEGITIMATE_INTEREST: Recipe((MEMBERSHIP, framework("circulareconomy")), 30),
    AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION: Recipe(
        (MEMBERSHIP, framework("circulareconomy")), 30),
    AccessLevel.AUTHORITIES: Recipe((), 30),
})


@dataclass(frozen=True, slots=True)
class CategoryRule:
    """A DESIGN.md data category: its examples, who may read it, the access-matrix attributes
    that stand for it and the recipe of its default policy."""

    category: DataCategory
    title: str
    readers: str
    matrix_attributes: tuple[str, ...]
    recipe: Recipe | None

    @property
    def regulation_levels(self) -> frozenset[AccessLevel]:
        """The regulation's access groups of the category's attributes (from the matrix)."""
        return frozenset(access_level(name) for name in self.matrix_attributes)


CATEGORIES: Mapping[DataCategory, CategoryRule] = MappingProxyType({
    DataCategory.PUBLIC: CategoryRule(
        DataCategory.PUBLIC, "general & technical", "public",
        ("Battery chemistry", "Rated capacity", "Battery mass", "Manufacturing date"), None),
    DataCategory.SUSTAINABILITY: CategoryRule(
        DataCategory.SUSTAINABILITY, "sustainability", "regulators, B2B partners",
        ("Battery carbon footprint per Functional Unit", "Pre-consumer recycled nickel share",
         "Post-consumer recycled cobalt share", "Renewable content share"),
        Recipe((MEMBERSHIP,), 90)),
    DataCategory.PROVENANCE: CategoryRule(
        DataCategory.PROVENANCE, "supply-chain provenance", "regulators, auditors",
        ("Information of due diligence report", "Materials used in cathode, anode and "
         "electrolyte"), Recipe((MEMBERSHIP, framework("traceability")), 90)),
    DataCategory.PERFORMANCE_HEALTH: CategoryRule(
        DataCategory.PERFORMANCE_HEALTH, "performance & health",
        "second-life buyers, recyclers",
        ("Remaining capacity", "Number of full charging and discharging cycles",
         "Time spent in extreme temperatures above boundary", "Number of deep discharge events"),
        LEVEL_RECIPES[AccessLevel.LEGITIMATE_INTEREST]),
    DataCategory.DISMANTLING_SAFETY: CategoryRule(
        DataCategory.DISMANTLING_SAFETY, "dismantling & safety",
        "certified recyclers, emergency services",
        ("Dismantling information", "Safety measures", "Part numbers for components"),
        Recipe((dismantler(),), 7, delete_at_end=True)),
})


def build_policy(recipe: Recipe, policy_id: str, *,
                 allowed_participants: Sequence[str] | None = None,
                 purposes: Sequence[str] = (BATTERY_PASS_PURPOSE,)) -> dict[str, Any]:
    """The compact JSON policy for ``recipe`` (parse it with ``parse_policy``)."""
    members: list[dict[str, Any]] = [dict(role) for role in recipe.roles]
    if allowed_participants is not None:
        if not allowed_participants:
            raise ValueError("an empty allow-list admits nobody; pass None for no allow-list")
        members.append(_atom(PARTICIPANT_DID, "isAnyOf", list(allowed_participants)))
    members += [
        framework("DataExchangeGovernance:1.0"),
        _atom("UsagePurpose", "isAnyOf", list(purposes)),
        _atom("DataUsageEndDurationDays", "eq", str(recipe.days)),
    ]
    permission: dict[str, Any] = {"action": "use", "constraint": [{"and": members}]}
    if recipe.delete_at_end:
        permission["duty"] = [{"action": "delete", "constraint": [
            _atom("elapsedTime", "gteq", f"P{recipe.days}D")]}]
    return {"@context": list(DEFAULT_CONTEXT), "@id": policy_id, "@type": "Set",
            "permission": [permission]}


def default_policy_for_level(level: AccessLevel | str, policy_id: str, *,
                             allowed_participants: Sequence[str] | None = None,
                             ) -> dict[str, Any] | None:
    """The default policy of a regulation access group; None for public data."""
    level = AccessLevel(level)
    recipe = LEVEL_RECIPES[level]
    if recipe is None:
        return None
    if not recipe.roles and allowed_participants is None:
        raise ValueError(f"{level} data has no role credential in Catena-X: name the "
                         "authorities with allowed_participants")
    return build_policy(recipe, policy_id, allowed_participants=allowed_participants)


def default_policy(category: DataCategory | str, policy_id: str, *,
                   allowed_participants: Sequence[str] | None = None,
                   ) -> dict[str, Any] | None:
    """The default policy of a DESIGN.md data category; None for public data."""
    rule = CATEGORIES[DataCategory(category)]
    if rule.recipe is None:
        return None
    return build_policy(rule.recipe, policy_id, allowed_participants=allowed_participants)


def open_policy(policy_id: str) -> dict[str, Any]:
    """The offer public data shows in a catalog: ``use``, no constraint, no contract."""
    return {"@id": policy_id, "@type": "Offer", "permission": [{"action": "use"}]}


__all__ = [
    "BATTERY_PASS_PURPOSE",
    "CATEGORIES",
    "DEFAULT_CONTEXT",
    "LEVEL_RECIPES",
    "MEMBERSHIP",
    "CategoryRule",
    "DataCategory",
    "Recipe",
    "build_policy",
    "default_policy",
    "default_policy_for_level",
    "dismantler",
    "framework",
    "open_policy",
]
