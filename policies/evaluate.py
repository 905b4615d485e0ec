"""``evaluate(policy, context) -> Decision``: may this participant perform the action now?

Why it answers with more than a bool: a denied consumer needs to know what to fix, an operator
needs to know which constraint hid a dataset, and the node needs the duties that come with a
grant. A ``Decision`` names the failing constraint's JSON path, its left operand, a reason, and
a ``missing`` hint ("a DismantlerCredential with activityType vehicleDismantle from a trusted
issuer"); ``unmet`` lists every unmet constraint of the failing permission, not only the first.

How a policy is decided (ODRL 2.2 with the engine's fail-closed reading):

1. A policy-level ``assignee`` must name the requester.
2. **Prohibitions** on the requested action deny when all their constraints hold — and also
   when that *cannot be ruled out* (a constraint is ``UNKNOWN`` for lack of a fact), because a
   prohibition that a missing fact switches off is no prohibition.
3. **Permissions** on the requested action grant when their assignee (if any) is the requester
   and every constraint is ``TRUE``; the first that does wins. A rule's ``constraint`` list is
   an ``and``; ``andSequence`` is checked as ``and``.
4. **Duties** of the granting permission and the policy's **obligations** are not access
   conditions: they come back in ``Decision.duties`` for the caller to enforce, each with when
   it falls due (``delete`` at the end of the usage period: ``elapsedTime gteq P7D`` → due at
   agreement + 7 days) and whether it is due now.

``evaluate`` never raises for a bad policy: a policy that does not parse is a denial with code
``malformed-policy`` or ``unsupported`` and the path of the problem (a catalog must not crash on
one bad offer, and must not show it either). ``is_in_force`` is the data plane's question:
does a concluded agreement still hold at ``now``?
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from policies.context import EvaluationContext
from policies.errors import PolicyError, UnsupportedPolicy
from policies.namespaces import CX_POLICY_CONTEXT, DSP_ODRL_PROFILE
from policies.odrl import (
    AtomicConstraint,
    Constraint,
    Duty,
    LogicalConstraint,
    Policy,
    Prohibition,
    parse_policy,
)
from policies.operands import lookup
from policies.operators import LogicalOperator, Truth


class DecisionCode(StrEnum):
    """Why a decision came out as it did; stable strings for APIs and audit lines."""

    ALLOWED = "allowed"
    CONSTRAINT_FAILED = "constraint-failed"
    NOT_ASSIGNEE = "not-assignee"
    PROHIBITED = "prohibited"
    NO_PERMISSION = "no-permission"
    UNSUPPORTED = "unsupported"
    MALFORMED_POLICY = "malformed-policy"


@dataclass(frozen=True, slots=True)
class Unmet:
    """One constraint that does not hold (``truth`` FALSE) or cannot be decided (UNKNOWN)."""

    path: str
    left_operand: str | None
    reason: str
    missing: str | None
    truth: Truth

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "leftOperand": self.left_operand, "reason": self.reason,
                "missing": self.missing, "undecided": self.truth is Truth.UNKNOWN}


@dataclass(frozen=True, slots=True)
class DutyDue:
    """A duty the caller must enforce: ``due_at`` when known, ``due_now`` None if undecidable."""

    path: str
    action: str | None
    assignee: tuple[str, ...] | None
    due_at: datetime | None
    due_now: bool | None
    duty: Duty

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "action": self.action,
                "assignee": list(self.assignee) if self.assignee else None,
                "dueAt": self.due_at.isoformat() if self.due_at else None,
                "dueNow": self.due_now}


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer. Field order matches ``connector.policy_gate.Decision`` (allowed,
    failed_constraint, reason, code) so the gate can hand this one out unchanged."""

    allowed: bool
    failed_constraint: str | None
    reason: str
    code: DecisionCode = DecisionCode.ALLOWED
    left_operand: str | None = None
    missing: str | None = None
    granted_by: str | None = None
    duties: tuple[DutyDue, ...] = ()
    unmet: tuple[Unmet, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The shape ``explain`` and the management API answer with."""
        return {
            "allowed": self.allowed,
            "code": str(self.code),
            "failedConstraint": self.failed_constraint,
            "leftOperand": self.left_operand,
            "reason": self.reason,
            "missing": self.missing,
            "grantedBy": self.granted_by,
            "duties": [d.to_json() for d in self.duties],
            "unmet": [u.to_json() for u in self.unmet],
        }


@dataclass(slots=True)
class _Result:
    truth: Truth
    path: str
    reason: str
    left_operand: str | None = None
    missing: str | None = None
    unmet: list[Unmet] = field(default_factory=list)


# --- public API --------------------------------------------------------------------------------


def evaluate(policy: Policy | Mapping[str, Any], context: EvaluationContext, *,
             message_context: Any = None) -> Decision:
    """Decide ``policy`` (a model, or compact JSON parsed with ``message_context``)."""
    try:
        model = policy if isinstance(policy, Policy) else parse_policy(
            policy, context=message_context)
        return _decide(model, context)
    except PolicyError as exc:
        return refusal(exc)
    except Exception as exc:  # a bug here must deny, never open data or crash a catalog
        return Decision(False, None, f"policy could not be evaluated: {exc!r}",
                        DecisionCode.MALFORMED_POLICY)


def refusal(exc: PolicyError) -> Decision:
    """The denial for a policy that does not parse (same wording as the policy gate)."""
    unsupported = isinstance(exc, UnsupportedPolicy)
    verb = "refused (fails closed)" if unsupported else "malformed"
    code = DecisionCode.UNSUPPORTED if unsupported else DecisionCode.MALFORMED_POLICY
    return Decision(False, exc.path or None, f"policy {verb}: {exc}", code)


#: The context an agreement without its own ``@context`` is read in. A DSP agreement message
#: carries the DSP context at its root, and our agreements are made from offers written in
#: the DSP ODRL profile plus the Catena-X policy context (``policies.defaults``); stored
#: without the root, its compact Catena-X terms (``FrameworkAgreement``…) would otherwise be
#: unknown, and every such agreement would fail closed as "not in force".
AGREEMENT_PROFILE_CONTEXT = (DSP_ODRL_PROFILE, CX_POLICY_CONTEXT)


def agreement_context(policy: Any) -> Any:
    """The context to read a stored agreement in (``None``: it carries its own)."""
    if isinstance(policy, Mapping) and "@context" in policy:
        return None
    return list(AGREEMENT_PROFILE_CONTEXT)


def is_in_force(agreement_policy: Policy | Mapping[str, Any], agreement_start: datetime,
                now: datetime, *, access_count: int = 0) -> bool:
    """Whether a concluded agreement still lets its assignee use the data at ``now``.

    The participant is the agreement's own (single) ``assignee``; an agreement without one is
    not in force. Evaluated in policy-monitor mode: time windows, counts and participant
    constraints are re-checked, claims proven at negotiation are taken as still holding.
    ``access_count``: uses so far; an ``odrl:count`` limit is "in force" while one more use
    is allowed.
    """
    try:
        model = agreement_policy if isinstance(agreement_policy, Policy) else parse_policy(
            agreement_policy, context=agreement_context(agreement_policy))
    except (PolicyError, TypeError, ValueError):
        return False
    if not model.assignee or len(model.assignee) != 1:
        return False
    context = EvaluationContext(model.assignee[0], now, agreement_start, monitor=True,
                                access_count=access_count)
    return evaluate(model, context).allowed


# --- the decision ------------------------------------------------------------------------------


def _decide(policy: Policy, ctx: EvaluationContext) -> Decision:
    if policy.assignee is not None and ctx.participant_did not in policy.assignee:
        return Decision(False, "assignee", f"{ctx.participant_did} is not an assignee of the "
                        "policy", DecisionCode.NOT_ASSIGNEE,
                        missing="to be the policy's assignee")
    for index, rule in enumerate(policy.prohibitions):
        denied = _prohibition(rule, f"prohibition[{index}]", ctx)
        if denied is not None:
            return denied
    candidates = [(i, r) for i, r in enumerate(policy.permissions) if r.action == ctx.action]
    if not candidates:
        return Decision(False, "permission", f"the policy grants no permission for "
                        f"{ctx.action}", DecisionCode.NO_PERMISSION)
    first: Decision | None = None
    for index, rule in candidates:
        path = f"permission[{index}]"
        if rule.assignee is not None and ctx.participant_did not in rule.assignee:
            first = first or Decision(
                False, f"{path}.assignee", f"{ctx.participant_did} is not an assignee of this "
                "permission", DecisionCode.NOT_ASSIGNEE, missing="to be the permission's "
                "assignee")
            continue
        result = _all(rule.constraints, f"{path}.constraint", ctx)
        if result.truth is Truth.TRUE:
            duties = tuple(_duty(d, f"{path}.duty[{j}]", ctx) for j, d in enumerate(rule.duties))
            duties += tuple(_duty(d, f"obligation[{j}]", ctx)
                            for j, d in enumerate(policy.obligations))
            return Decision(True, None, f"{path} grants {_short(ctx.action)}",
                            DecisionCode.ALLOWED, granted_by=path, duties=duties)
        first = first or Decision(False, result.path, result.reason,
                                  DecisionCode.CONSTRAINT_FAILED, result.left_operand,
                                  result.missing, unmet=tuple(result.unmet))
    assert first is not None
    return first


def _prohibition(rule: Prohibition, path: str, ctx: EvaluationContext) -> Decision | None:
    if rule.action != ctx.action:
        return None
    if rule.assignee is not None and ctx.participant_did not in rule.assignee:
        return None
    # in monitor mode a claim is taken as it was at negotiation, when this prohibition did not
    # apply (else there would be no agreement): claims count as false here
    result = _all(rule.constraints, f"{path}.constraint", ctx, assume=Truth.FALSE)
    if result.truth is Truth.FALSE:
        return None
    if result.truth is Truth.TRUE:
        return Decision(False, path, f"{path} forbids {_short(ctx.action)}"
                        + (f" ({result.reason})" if rule.constraints else ""),
                        DecisionCode.PROHIBITED, result.left_operand)
    return Decision(False, path, f"{path} may forbid {_short(ctx.action)} and cannot be ruled "
                    f"out: {result.reason}", DecisionCode.PROHIBITED, result.left_operand,
                    result.missing, unmet=tuple(result.unmet))


def _duty(duty: Duty, path: str, ctx: EvaluationContext) -> DutyDue:
    result = _all(duty.constraints, f"{path}.constraint", ctx)
    due_now = {Truth.TRUE: True, Truth.FALSE: False}.get(result.truth)
    moments = [m for m in (_due_at(c, ctx) for c in duty.constraints) if m is not None]
    return DutyDue(path, duty.action, duty.assignee, max(moments) if moments else None,
                   due_now, duty)


def _due_at(constraint: Constraint, ctx: EvaluationContext) -> datetime | None:
    if isinstance(constraint, LogicalConstraint):
        if constraint.operator not in (LogicalOperator.AND, LogicalOperator.AND_SEQUENCE):
            return None
        moments = [m for m in (_due_at(c, ctx) for c in constraint.constraints) if m]
        return max(moments) if moments else None
    spec = lookup(constraint.left_operand)
    if spec is None or spec.due_at is None:
        return None
    right = spec.parse_right(constraint.operator, constraint.right_operand, "")
    return spec.due_at(constraint.operator, right, ctx)


# --- constraints -------------------------------------------------------------------------------


def _all(constraints: tuple[Constraint, ...], path: str, ctx: EvaluationContext,
         assume: Truth = Truth.TRUE) -> _Result:
    """A rule's constraint list: an implicit ``and``. ``assume`` is what a claim counts as in
    monitor mode (its verdict at negotiation)."""
    results = [_constraint(c, f"{path}[{i}]", ctx, assume) for i, c in enumerate(constraints)]
    return _and(results, path)


def _constraint(constraint: Constraint, path: str, ctx: EvaluationContext,
                assume: Truth) -> _Result:
    if isinstance(constraint, LogicalConstraint):
        return _logical(constraint, path, ctx, assume)
    return _atomic(constraint, path, ctx, assume)


def _atomic(constraint: AtomicConstraint, path: str, ctx: EvaluationContext,
            assume: Truth) -> _Result:
    spec = lookup(constraint.left_operand)
    if spec is None:  # a model built in code can carry what the parser would refuse
        raise UnsupportedPolicy(path, f"constraint on {constraint.left_operand!r} is not "
                                "understood by this engine, so it refuses it (fails closed)")
    if constraint.operator not in spec.operators:
        raise UnsupportedPolicy(f"{path}.operator", f"operator {constraint.operator.value!r} "
                                f"is not supported on {spec.label}")
    right = spec.parse_right(constraint.operator, constraint.right_operand,
                             f"{path}.rightOperand")
    if ctx.monitor and spec.claim:
        return _Result(assume, path, f"{spec.label} was checked when the agreement was "
                       "concluded", constraint.left_operand)
    outcome = spec.check(constraint.operator, right, ctx)
    unmet = [] if outcome.truth is Truth.TRUE else [
        Unmet(path, constraint.left_operand, outcome.reason, outcome.missing, outcome.truth)]
    return _Result(outcome.truth, path, outcome.reason, constraint.left_operand,
                   outcome.missing, unmet)


def _logical(constraint: LogicalConstraint, path: str, ctx: EvaluationContext,
             assume: Truth) -> _Result:
    where = f"{path}.{constraint.operator.value}"
    results = [_constraint(c, f"{where}[{i}]", ctx, assume)
               for i, c in enumerate(constraint.constraints)]
    if constraint.operator in (LogicalOperator.AND, LogicalOperator.AND_SEQUENCE):
        return _and(results, where)
    unmet = [u for r in results for u in r.unmet]
    if constraint.operator is LogicalOperator.OR:
        truth = Truth.any_of(r.truth for r in results)
        if truth is Truth.TRUE:
            return _Result(truth, where, "an alternative holds")
        failing = [r for r in results if r.truth is not Truth.TRUE]
        reasons = "; ".join(f"{r.path}: {r.reason}" for r in failing)
        hints = [r.missing for r in failing if r.missing]
        return _Result(truth, where, f"no alternative of 'or' holds: {reasons}", None,
                       ("one of: " + " | ".join(hints)) if hints else None, unmet)
    truth = Truth.exactly_one(r.truth for r in results)
    held = sum(r.truth is Truth.TRUE for r in results)
    if truth is Truth.TRUE:
        return _Result(truth, where, "exactly one alternative holds")
    if held > 1:
        reason = f"'xone' needs exactly one member to hold, {held} do"
        return _Result(truth, where, reason, None, None,
                       [Unmet(where, None, reason, None, truth)])
    hints = [r.missing for r in results if r.missing]
    return _Result(truth, where, f"'xone' needs exactly one member to hold, {held} do",
                   None, ("exactly one of: " + " | ".join(hints)) if hints else None, unmet)


def _and(results: list[_Result], path: str) -> _Result:
    truth = Truth.all_of(r.truth for r in results)
    if truth is Truth.TRUE:
        return _Result(truth, path, "every constraint holds")
    # report the first FALSE member (a definite failure) before an undecided one
    failing = [r for r in results if r.truth is Truth.FALSE] or \
        [r for r in results if r.truth is Truth.UNKNOWN]
    head = failing[0]
    unmet = [u for r in results for u in r.unmet]
    return replace(head, truth=truth, unmet=unmet)


def _short(iri: str) -> str:
    return iri.rsplit("/", 1)[-1]


__all__ = [
    "AGREEMENT_PROFILE_CONTEXT",
    "Decision",
    "DecisionCode",
    "DutyDue",
    "Unmet",
    "agreement_context",
    "evaluate",
    "is_in_force",
    "refusal",
]
