"""The policy gate's API on top of this engine, so ``connector/policy_gate.py`` can delegate.

Why: the catalog, the negotiation and the data plane call ``PolicyGate.evaluate``,
``PolicyGate.check`` and ``is_in_force`` today. ``PolicyEngine`` offers the same three methods
with the same meaning for every policy the gate accepts (tests/policies/test_odrl_compat.py
runs the gate's own cases through both), so the gate can become
``PolicyGate = policies.compat.PolicyEngine`` without touching its callers.

What changes for callers when it does: the engine *accepts* more — prohibitions, duties,
``count`` and the Catena-X operands — and still refuses what it does not know. A policy the gate
refused as unsupported because of a Catena-X constraint is now evaluated (and denied unless
the context carries the credentials it needs).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from policies.context import EvaluationContext
from policies.evaluate import Decision, DecisionCode, evaluate, is_in_force
from policies.jsonld import active_context
from policies.odrl import Policy, parse_policy
from policies.operands import duration


class PolicyEngine:
    """Drop-in for ``connector.policy_gate.PolicyGate``."""

    def evaluate(self, policy: Any, context: EvaluationContext) -> Decision:
        """Allowed, or denied naming the constraint (or the unsupported/malformed part)."""
        return evaluate(policy, context)

    def check(self, policy: Any) -> Policy:
        """Raise ``MalformedPolicy``/``UnsupportedPolicy`` unless the engine can evaluate it;
        returns the parsed policy (the gate returned None)."""
        return parse_policy(policy)

    def is_in_force(self, agreement_policy: Any, agreement_start: datetime,
                    now: datetime, *, access_count: int = 0) -> bool:
        """Whether an agreement still lets its assignee use the data at ``now`` (one more
        time, after ``access_count`` uses)."""
        return is_in_force(agreement_policy, agreement_start, now, access_count=access_count)


def expand_left_operand(term: str, policy: Mapping[str, Any]) -> str:
    """The IRI a compact left operand stands for under the policy's contexts (unchanged when
    it is not recognised, as in the gate)."""
    try:
        return active_context(policy.get("@context")).expand(term) or term
    except ValueError:
        return term


def parse_duration(text: str, path: str = "") -> timedelta:
    """An ISO 8601 duration without years/months: ``P7D``, ``PT12H`` (``MalformedPolicy``)."""
    return duration(text, path)


__all__ = [
    "Decision",
    "DecisionCode",
    "EvaluationContext",
    "PolicyEngine",
    "evaluate",
    "expand_left_operand",
    "is_in_force",
    "parse_duration",
]
