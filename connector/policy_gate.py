"""The node's policy decision point: the ``policies`` ODRL engine behind one app key.

Everything that decides "may this participant use this offer now?" — the catalog filter, the
provider's negotiation decision, ``explain``, the management API's check of a new policy, the
data plane and the agreement watch (``is_in_force``) — reads ``POLICY_GATE`` or calls
``is_in_force`` from here, so the engine can be configured (or replaced) in one place.

The engine (``policies``) fails closed: a left operand, operator or action it does not know
makes the policy unsupported (refused at the management API's door, denied everywhere else),
never silently allowed. Catena-X constraints that need credentials (Membership,
FrameworkAgreement, Dismantler, …) are denied until the context carries verified credentials
from trusted issuers; participant allow-lists and time windows work as before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from policies import DecisionCode, EvaluationContext, MalformedPolicy, UnsupportedPolicy
from policies.compat import PolicyEngine, expand_left_operand, parse_duration
from policies.errors import PolicyError
from policies.evaluate import Decision
from policies.evaluate import is_in_force as _engine_is_in_force
from policies.namespaces import (
    BPC_POLICY,
    CX_POLICY,
    CX_POLICY_CONTEXT,
    DATE_TIME,
    ELAPSED_TIME,
    IN_FORCE_DATE,
    PARTICIPANT_DID,
)

PolicyGate = PolicyEngine
"""The engine's facade with the gate's API (``evaluate``, ``check``, ``is_in_force``)."""

CX_USAGE_END_DAYS = CX_POLICY + "DataUsageEndDurationDays"
CX_USAGE_END_DATE = CX_POLICY + "DataUsageEndDate"

POLICY_GATE = web.AppKey("policy_gate", PolicyGate)
"""The engine a node's routes use; ``add_routes`` installs a default one if none is set."""


def is_in_force(agreement_policy: Any, agreement_start: datetime, now: datetime, *,
                access_count: int = 0) -> bool:
    """Whether an agreement still lets its assignee use the data at ``now``, one more time
    after ``access_count`` uses (data plane, agreement watch, refresh)."""
    return _engine_is_in_force(agreement_policy, agreement_start, now,
                               access_count=access_count)


__all__ = [
    "BPC_POLICY",
    "CX_POLICY_CONTEXT",
    "CX_USAGE_END_DATE",
    "CX_USAGE_END_DAYS",
    "DATE_TIME",
    "ELAPSED_TIME",
    "IN_FORCE_DATE",
    "PARTICIPANT_DID",
    "POLICY_GATE",
    "Decision",
    "DecisionCode",
    "EvaluationContext",
    "MalformedPolicy",
    "PolicyError",
    "PolicyGate",
    "UnsupportedPolicy",
    "expand_left_operand",
    "is_in_force",
    "parse_duration",
]
