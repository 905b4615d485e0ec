"""ODRL policies for the battery passport connector: model, evaluator, Catena-X constraints,
default policies per access level, trust lists. A library: it may import ``credentials`` and
``vocab``, never ``connector``.

The model (``policies.odrl``)
    ODRL 2.2 as DSP 2025-1 and Catena-X use it: ``Policy`` (``Set``/``Offer``/``Agreement``,
    ``@id``, ``assigner``, ``assignee``, ``target``, ``profile``) with ``Permission``,
    ``Prohibition`` and obligation ``Duty`` rules (``action``, ``constraint``, ``duty``),
    ``AtomicConstraint`` (left operand IRI, ``Operator``, right operand) and
    ``LogicalConstraint`` (``and``/``or``/``xone``/``andSequence``). ``parse_policy`` reads
    compact JSON-LD — bare, ``odrl:``/``cx-policy:``-prefixed or full-IRI terms, resolved
    through the contexts the policy and its message name (bundled, never fetched:
    ``policies.jsonld``); ``Policy.to_json`` writes the same compact form back.

Evaluation (``policies.evaluate``)
    ``evaluate(policy, EvaluationContext) -> Decision``. The context holds the requester's DID,
    BPN, verified credentials (claims are read, signatures are not re-checked) with the node's
    ``TrustList``, declared purpose, ``now``, agreement start and access count. A ``Decision``
    says allowed or not, the failing constraint's JSON path and left operand, a reason, what is
    missing, every unmet constraint, and the duties to enforce. Prohibitions deny; duties and
    obligations are handed back, not evaluated as access conditions. ``is_in_force`` is the
    data plane's check of a concluded agreement.

Catena-X (``policies.cx_operands``, ``policies.catenax``)
    Membership, FrameworkAgreement, UsagePurpose, BusinessPartnerNumber/Group,
    ContractReference, Dismantler (activity types, brands), DataUsageEnd* — with Tractus-X
    semantics except where Tractus-X passes what it cannot check (listed in
    ``policies.cx_operands``). ``catenax_usage_problems`` says why Catena-X would refuse a
    usage policy (FrameworkAgreement AND UsagePurpose, …).

Defaults and explanations (``policies.defaults``, ``policies.explain``)
    DESIGN.md's five data categories mapped to the regulation's access groups and to default
    policies; ``explain`` tells a requester, per dataset, which offer it fails and why.

Compatibility (``policies.compat``)
    ``PolicyEngine`` has ``connector.policy_gate.PolicyGate``'s methods and decides every policy
    the gate accepts as the gate does, so the gate can delegate to it.

The fail-closed rule
    Nothing the engine does not understand is ignored. An unknown left operand, operator,
    action, context or ODRL feature is refused when the policy is parsed, with a typed error
    (``policies.errors``) naming its JSON path; ``evaluate`` turns it into a denial. A fact
    the context lacks (no BPN known, no purpose declared) makes a constraint *undecided*:
    a permission then does not grant, and a prohibition still forbids. Tractus-X "interprets
    policies it can't evaluate as true by default"; this engine never does.
"""

from policies.catenax import CatenaXProblem, catenax_usage_problems
from policies.context import EvaluationContext
from policies.errors import (
    InvalidRightOperand,
    MalformedPolicy,
    PolicyError,
    UnknownAction,
    UnknownContext,
    UnknownLeftOperand,
    UnknownOperator,
    UnsupportedFeature,
    UnsupportedPolicy,
)
from policies.evaluate import Decision, DecisionCode, DutyDue, Unmet, evaluate, is_in_force
from policies.explain import DatasetExplanation, OfferExplanation, explain
from policies.odrl import (
    AtomicConstraint,
    Constraint,
    Duty,
    LogicalConstraint,
    Permission,
    Policy,
    PolicyType,
    Prohibition,
    parse_policy,
    parse_policy_definition,
)
from policies.operators import LogicalOperator, Operator, Truth
from policies.trust import TrustList

__all__ = [
    "AtomicConstraint",
    "CatenaXProblem",
    "Constraint",
    "DatasetExplanation",
    "Decision",
    "DecisionCode",
    "Duty",
    "DutyDue",
    "EvaluationContext",
    "InvalidRightOperand",
    "LogicalConstraint",
    "LogicalOperator",
    "MalformedPolicy",
    "OfferExplanation",
    "Operator",
    "Permission",
    "Policy",
    "PolicyError",
    "PolicyType",
    "Prohibition",
    "TrustList",
    "Truth",
    "UnknownAction",
    "UnknownContext",
    "UnknownLeftOperand",
    "UnknownOperator",
    "Unmet",
    "UnsupportedFeature",
    "UnsupportedPolicy",
    "catenax_usage_problems",
    "evaluate",
    "explain",
    "is_in_force",
    "parse_policy",
    "parse_policy_definition",
]
