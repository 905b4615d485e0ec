"""``explain``: for each dataset, is it offered to this requester, and if not, why not?

Why: "the dataset is hidden" is the most common support question in a data space, and the
answer is always "which constraint, and what would satisfy it". Given the policies a node
offers per dataset and one requester's context, ``explain`` evaluates every offer and reports,
per dataset, whether any offer is open to the requester and, for every offer that is not, the
failing constraints with the credential or claim that is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.context import EvaluationContext
from policies.evaluate import Decision, evaluate
from policies.odrl import Policy


@dataclass(frozen=True, slots=True)
class OfferExplanation:
    """One offer's decision (``offer_id`` is the policy's ``@id`` or its index)."""

    offer_id: str
    decision: Decision

    def to_json(self) -> dict[str, Any]:
        decision = self.decision
        return {
            "offer": self.offer_id,
            "offered": decision.allowed,
            "code": str(decision.code),
            "failedConstraint": decision.failed_constraint,
            "leftOperand": decision.left_operand,
            "reason": decision.reason,
            "missing": decision.missing,
            "unmet": [u.to_json() for u in decision.unmet],
        }


@dataclass(frozen=True, slots=True)
class DatasetExplanation:
    """A dataset is offered when at least one of its offers is open to the requester."""

    dataset: str
    offers: tuple[OfferExplanation, ...]

    @property
    def offered(self) -> bool:
        return any(o.decision.allowed for o in self.offers)

    def missing(self) -> list[str]:
        """Every distinct hint of what would open one of the offers."""
        hints: list[str] = []
        for offer in self.offers:
            for unmet in offer.decision.unmet or ():
                if unmet.missing and unmet.missing not in hints:
                    hints.append(unmet.missing)
            if not offer.decision.unmet and offer.decision.missing and \
                    offer.decision.missing not in hints:
                hints.append(offer.decision.missing)
        return hints

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "offered": self.offered,
                "offers": [o.to_json() for o in self.offers], "missing": self.missing()}


def explain(policies_by_dataset: Mapping[str, Sequence[Policy | Mapping[str, Any]]
                                        | Policy | Mapping[str, Any]],
            context: EvaluationContext) -> dict[str, DatasetExplanation]:
    """Per dataset id: its offers' decisions for ``context``'s requester.

    A dataset maps to one policy or a list of them (a DCAT dataset's ``hasPolicy``). A dataset
    without offers is not offered (there is nothing to agree to).
    """
    result: dict[str, DatasetExplanation] = {}
    for dataset, policies in policies_by_dataset.items():
        items = list(policies) if isinstance(policies, Sequence) else [policies]
        offers = []
        for index, policy in enumerate(items):
            uid = policy.uid if isinstance(policy, Policy) else (
                policy.get("@id") if isinstance(policy, Mapping) else None)
            offers.append(OfferExplanation(uid if isinstance(uid, str) else f"#{index}",
                                           evaluate(policy, context)))
        result[dataset] = DatasetExplanation(dataset, tuple(offers))
    return result


__all__ = ["DatasetExplanation", "OfferExplanation", "explain"]
