"""FROZEN REFERENCE COPY (tests only): the minimal policy gate the node used before
``policies``; ``test_odrl_compat.py`` checks the engine decides as it did.

The minimal policy gate: may *this* participant use an offer *now*? Fails closed.

Why it exists: the catalog, the negotiation and (later) the data plane all need one yes/no with
a reason, long before the full ODRL engine in ``policies/`` is ready. Everything goes through
``PolicyGate.evaluate`` so that engine can replace this class without touching its callers.

Why it fails closed: Tractus-X "interprets policies it can't evaluate as true by default"
(shared/notes/dataspace-protocol.md §3.1, §4), so a typo in a constraint silently opens data.
Here any constraint, operator, action or rule feature the gate does not understand makes the
decision *deny*, and the decision names it, so an operator (or a consumer asking ``explain``)
can see why a dataset is hidden.

What it understands (left operands are compared as IRIs; the compact spellings accepted are
listed with each):

``assignee`` (policy or rule level; string, ``{"@id": …}`` or a list of them)
    ODRL's own way to say who a rule is for: the caller's DID must be one of them.
``https://w3id.org/battery-passport-connector/policy#participantDid``
    (compact ``bpc-policy:participantDid``). Our left operand for a participant allow-list
    inside a constraint: ``eq``/``neq`` a DID, ``isAnyOf``/``isNoneOf`` a list of DIDs.
    Catalogs carry the full IRI, which needs no context.
``odrl:dateTime`` (also bare ``dateTime``, as the DSP spec's examples write ODRL operands)
    ``lt``/``lteq`` an absolute end, ``gt``/``gteq`` an absolute start (timezone required).
``odrl:elapsedTime`` (bare ``elapsedTime``)
    ``lt``/``lteq`` an ISO 8601 duration (``P7D``, ``PT12H``, ``P2W``) counted from the agreement.
``edc:inForceDate`` (``https://w3id.org/edc/v0.0.1/ns/inForceDate``)
    ``gt``/``gteq`` (start) or ``lt``/``lteq`` (end) as an absolute date-time or relative to the
    agreement: ``contractAgreement+7d`` (units ``s m h d w``), EDC's legacy form.
``cx-policy:DataUsageEndDurationDays`` ``eq "7"`` / ``cx-policy:DataUsageEndDate`` ``eq <date>``
    The Catena-X usage windows (bare names when the Catena-X policy context is listed).

Durations counted from the agreement cannot fail before there is one: with
``agreement_start=None`` (the catalog, a new negotiation) they pass, because the window would
start at the agreement. ``is_in_force`` is what the data plane asks once an agreement exists.

Logical constraints ``and``, ``andSequence`` (checked as ``and``), ``or`` and ``xone`` nest;
a rule's ``constraint`` list is an ``and``. A policy is allowed when one of its permissions
(action ``use``) holds. Prohibitions and obligations/duties are refused (not understood yet).
A malformed policy is a typed decision too (``DecisionCode.MALFORMED_POLICY``), never an
exception: ``evaluate`` does not raise. ``check`` raises, for the management API to refuse a
policy at the door rather than publish an offer nobody can ever satisfy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from aiohttp import web

ODRL = "http://www.w3.org/ns/odrl/2/"
CX_POLICY = "https://w3id.org/catenax/2025/9/policy/"
CX_POLICY_CONTEXT = "https://w3id.org/catenax/2025/9/policy/context.jsonld"
EDC = "https://w3id.org/edc/v0.0.1/ns/"
BPC_POLICY = "https://w3id.org/battery-passport-connector/policy#"

PARTICIPANT_DID = BPC_POLICY + "participantDid"
DATE_TIME = ODRL + "dateTime"
ELAPSED_TIME = ODRL + "elapsedTime"
IN_FORCE_DATE = EDC + "inForceDate"
CX_USAGE_END_DAYS = CX_POLICY + "DataUsageEndDurationDays"
CX_USAGE_END_DATE = CX_POLICY + "DataUsageEndDate"

_PREFIXES = {"odrl": ODRL, "cx-policy": CX_POLICY, "edc": EDC, "bpc-policy": BPC_POLICY}
_BARE_ODRL = {"dateTime", "elapsedTime"}
_BARE_CX = {"DataUsageEndDurationDays", "DataUsageEndDate"}
_USE_ACTIONS = {"use", "odrl:use", ODRL + "use"}
_RULE_KEYS = {"@id", "@type", "action", "constraint", "assignee", "assigner", "target"}
_LOGICAL = ("and", "andSequence", "or", "xone")


class DecisionCode(StrEnum):
    """Why a decision came out as it did; stable strings for APIs and audit lines."""

    ALLOWED = "allowed"
    CONSTRAINT_FAILED = "constraint-failed"
    NOT_ASSIGNEE = "not-assignee"
    UNSUPPORTED = "unsupported"
    MALFORMED_POLICY = "malformed-policy"


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """Who asks and when; ``agreement_start`` is ``None`` until an agreement exists."""

    participant_did: str
    now: datetime
    agreement_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with the constraint that decided a denial (a JSON path and its content)."""

    allowed: bool
    failed_constraint: str | None
    reason: str
    code: DecisionCode = DecisionCode.ALLOWED

    def to_json(self) -> dict[str, Any]:
        """The shape ``explain`` and the management API answer with."""
        return {
            "allowed": self.allowed,
            "code": str(self.code),
            "failedConstraint": self.failed_constraint,
            "reason": self.reason,
        }


class PolicyError(ValueError):
    """A policy the gate cannot evaluate; ``path`` says where (``permission[0].constraint[1]``)."""

    code: DecisionCode = DecisionCode.MALFORMED_POLICY

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class MalformedPolicy(PolicyError):
    """Not an ODRL policy of the expected shape (wrong types, missing keys)."""


class UnsupportedPolicy(PolicyError):
    """Well-formed, but uses something this gate does not evaluate (so it refuses)."""

    code = DecisionCode.UNSUPPORTED


class _Denied(Exception):
    """Internal: a constraint evaluated to false."""

    def __init__(self, path: str, reason: str, code: DecisionCode) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.code = code


# --- parsing helpers ---------------------------------------------------------------------------


def _contexts(policy: Mapping[str, Any]) -> tuple[set[str], dict[str, str]]:
    """Context URLs listed and prefixes defined inline (``{"ex": "https://…"}``)."""
    raw = policy.get("@context", [])
    items = raw if isinstance(raw, list) else [raw]
    urls: set[str] = set()
    prefixes: dict[str, str] = {}
    for item in items:
        if isinstance(item, str):
            urls.add(item)
        elif isinstance(item, dict):
            prefixes.update({k: v for k, v in item.items() if isinstance(v, str)})
    return urls, prefixes


def expand_left_operand(term: str, policy: Mapping[str, Any]) -> str:
    """The IRI a compact left operand stands for (unchanged when it is not recognised)."""
    if term.startswith(("http://", "https://", "urn:")):
        return term
    urls, inline = _contexts(policy)
    prefix, sep, rest = term.partition(":")
    if sep:
        base = {**_PREFIXES, **inline}.get(prefix)
        return base + rest if base else term
    if term in _BARE_ODRL:
        return ODRL + term
    if term in _BARE_CX and CX_POLICY_CONTEXT in urls:
        return CX_POLICY + term
    return term


def _operator(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise MalformedPolicy(path, "operator must be a string")
    return value.removeprefix(ODRL).removeprefix("odrl:")


def _scalar(value: Any, path: str) -> str:
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if not isinstance(value, str):
        raise MalformedPolicy(path, "rightOperand must be a string here")
    return value


def _datetime(value: Any, path: str) -> datetime:
    text = _scalar(value, path)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPolicy(path, f"{text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise MalformedPolicy(path, f"{text!r} has no timezone; write e.g. {text}Z")
    return parsed


_DURATION = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?"
)


def parse_duration(text: str, path: str = "") -> timedelta:
    """An ISO 8601 duration without years/months (their length varies): ``P7D``, ``PT12H``."""
    match = _DURATION.fullmatch(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise MalformedPolicy(
            path, f"{text!r} is not a supported ISO 8601 duration (use W, D, H, M, S: 'P7D')"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(weeks=parts.get("w", 0), days=parts.get("d", 0), hours=parts.get("h", 0),
                     minutes=parts.get("m", 0), seconds=parts.get("s", 0))


_RELATIVE = re.compile(r"contractAgreement\s*\+\s*(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _dids(value: Any, path: str) -> list[str]:
    """Participant ids from a string, ``{"@id": …}`` or a list of either."""
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("@id"), str):
            item = item["@id"]
        if not isinstance(item, str) or not item:
            raise MalformedPolicy(path, "participants must be strings (DIDs) or {'@id': DID}")
        found.append(item)
    if not found:
        raise MalformedPolicy(path, "an empty participant list admits nobody; remove it instead")
    return found


# --- the gate ----------------------------------------------------------------------------------


ConstraintCheck = Callable[[str, Any, str, EvaluationContext], None]


class PolicyGate:
    """Evaluates ODRL policies (compact JSON-LD, as in DSP offers and agreements)."""

    def __init__(self) -> None:
        self._checks: dict[str, ConstraintCheck] = {
            PARTICIPANT_DID: self._participant,
            DATE_TIME: self._date_time,
            ELAPSED_TIME: self._elapsed,
            IN_FORCE_DATE: self._in_force,
            CX_USAGE_END_DAYS: self._cx_days,
            CX_USAGE_END_DATE: self._cx_date,
        }

    # -- public API --

    def evaluate(self, policy: Any, context: EvaluationContext) -> Decision:
        """Allowed, or denied naming the constraint (or the unsupported/malformed part)."""
        try:
            self.check(policy)
            return self._evaluate(policy, context)
        except _Denied as denied:
            return Decision(False, denied.path, denied.reason, denied.code)
        except PolicyError as exc:
            verb = "refused (fails closed)" if isinstance(exc, UnsupportedPolicy) else "malformed"
            return Decision(False, exc.path or None, f"policy {verb}: {exc}", exc.code)
        except Exception as exc:  # a bug here must deny, never open data or crash a catalog
            return Decision(False, None, f"policy could not be evaluated: {exc!r}",
                            DecisionCode.MALFORMED_POLICY)

    def check(self, policy: Any) -> None:
        """Raise ``MalformedPolicy``/``UnsupportedPolicy`` unless the gate can evaluate it."""
        if not isinstance(policy, dict):
            raise MalformedPolicy("", "a policy is a JSON object")
        for key in ("prohibition", "obligation"):
            if key in policy:
                raise UnsupportedPolicy(key, f"{key}s are not evaluated by this gate")
        permissions = policy.get("permission")
        if not isinstance(permissions, list) or not permissions:
            raise MalformedPolicy("permission", "a policy needs a non-empty permission list")
        if "assignee" in policy:
            _dids(policy["assignee"], "assignee")
        for index, rule in enumerate(permissions):
            self._check_rule(rule, f"permission[{index}]", policy)

    def is_in_force(self, agreement_policy: Any, agreement_start: datetime,
                    now: datetime) -> bool:
        """Whether an agreement still lets its assignee use the data at ``now``.

        The participant is the agreement's own ``assignee``; an agreement without one is not
        in force (there is nobody it could be for).
        """
        if not isinstance(agreement_policy, dict):
            return False
        assignee = agreement_policy.get("assignee")
        if isinstance(assignee, dict):
            assignee = assignee.get("@id")
        if not isinstance(assignee, str) or not assignee:
            return False
        context = EvaluationContext(assignee, now, agreement_start)
        return self.evaluate(agreement_policy, context).allowed

    # -- structure --

    def _check_rule(self, rule: Any, path: str, policy: Mapping[str, Any]) -> None:
        if not isinstance(rule, dict):
            raise MalformedPolicy(path, "a rule is a JSON object")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise UnsupportedPolicy(f"{path}.{unknown[0]}", f"rule feature {unknown[0]!r} is "
                                    "not evaluated by this gate")
        action = rule.get("action")
        if isinstance(action, dict):
            action = action.get("@id")
        if not isinstance(action, str):
            raise MalformedPolicy(f"{path}.action", "a rule needs an action")
        if action not in _USE_ACTIONS:
            raise UnsupportedPolicy(f"{path}.action", f"action {action!r} is not evaluated "
                                    "(only 'use')")
        if "assignee" in rule:
            _dids(rule["assignee"], f"{path}.assignee")
        constraints = rule.get("constraint", [])
        if not isinstance(constraints, list):
            raise MalformedPolicy(f"{path}.constraint", "constraint must be a list")
        for index, constraint in enumerate(constraints):
            self._check_constraint(constraint, f"{path}.constraint[{index}]", policy)

    def _check_constraint(self, constraint: Any, path: str, policy: Mapping[str, Any]) -> None:
        if not isinstance(constraint, dict):
            raise MalformedPolicy(path, "a constraint is a JSON object")
        logical = [key for key in _LOGICAL if key in constraint]
        if logical:
            if len(logical) > 1 or "leftOperand" in constraint:
                raise MalformedPolicy(path, "a logical constraint has exactly one of "
                                      "and, andSequence, or, xone")
            members = constraint[logical[0]]
            if not isinstance(members, list) or not members:
                raise MalformedPolicy(f"{path}.{logical[0]}", "must be a non-empty list")
            for index, member in enumerate(members):
                self._check_constraint(member, f"{path}.{logical[0]}[{index}]", policy)
            return
        for key in ("leftOperand", "operator", "rightOperand"):
            if key not in constraint:
                raise MalformedPolicy(path, f"an atomic constraint needs {key}")
        left = constraint["leftOperand"]
        if isinstance(left, dict):
            left = left.get("@id")
        if not isinstance(left, str):
            raise MalformedPolicy(f"{path}.leftOperand", "leftOperand must be a string")
        iri = expand_left_operand(left, policy)
        check = self._checks.get(iri)
        if check is None:
            raise UnsupportedPolicy(path, f"constraint on {left!r} is not understood by this "
                                    "gate, so it refuses (fails closed)")
        op = _operator(constraint["operator"], f"{path}.operator")
        # A dry run with a neutral context catches bad operators and right operands now.
        probe = EvaluationContext("did:example:probe", datetime(2000, 1, 1, tzinfo=UTC))
        try:
            check(op, constraint["rightOperand"], path, probe)
        except _Denied:
            pass

    # -- evaluation --

    def _evaluate(self, policy: dict[str, Any], context: EvaluationContext) -> Decision:
        if "assignee" in policy and context.participant_did not in _dids(
            policy["assignee"], "assignee"
        ):
            raise _Denied("assignee", f"{context.participant_did} is not an assignee of the "
                          "policy", DecisionCode.NOT_ASSIGNEE)
        first: _Denied | None = None
        for index, rule in enumerate(policy["permission"]):
            path = f"permission[{index}]"
            try:
                self._rule(rule, path, policy, context)
            except _Denied as denied:
                first = first or denied
                continue
            return Decision(True, None, f"{path} grants use", DecisionCode.ALLOWED)
        assert first is not None  # check() guaranteed at least one permission
        raise first

    def _rule(self, rule: dict[str, Any], path: str, policy: dict[str, Any],
              context: EvaluationContext) -> None:
        if "assignee" in rule and context.participant_did not in _dids(
            rule["assignee"], f"{path}.assignee"
        ):
            raise _Denied(f"{path}.assignee", f"{context.participant_did} is not an assignee "
                          "of this permission", DecisionCode.NOT_ASSIGNEE)
        for index, constraint in enumerate(rule.get("constraint", [])):
            self._constraint(constraint, f"{path}.constraint[{index}]", policy, context)

    def _constraint(self, constraint: dict[str, Any], path: str, policy: dict[str, Any],
                    context: EvaluationContext) -> None:
        for key in _LOGICAL:
            if key in constraint:
                self._logical(key, constraint[key], f"{path}.{key}", policy, context)
                return
        left = constraint["leftOperand"]
        left = left.get("@id") if isinstance(left, dict) else left
        op = _operator(constraint["operator"], f"{path}.operator")
        right = constraint["rightOperand"]
        described = f"{path} ({left} {op} {right})"
        try:
            self._checks[expand_left_operand(left, policy)](op, right, path, context)
        except _Denied as denied:
            raise _Denied(described, denied.reason, denied.code) from None

    def _logical(self, key: str, members: list[Any], path: str, policy: dict[str, Any],
                 context: EvaluationContext) -> None:
        failures: list[_Denied] = []
        for index, member in enumerate(members):
            try:
                self._constraint(member, f"{path}[{index}]", policy, context)
            except _Denied as denied:
                if key in ("and", "andSequence"):
                    raise
                failures.append(denied)
        held = len(members) - len(failures)
        if key == "or" and held == 0:
            reasons = "; ".join(f"{f.path}: {f.reason}" for f in failures)
            raise _Denied(path, f"no alternative of 'or' holds: {reasons}",
                          DecisionCode.CONSTRAINT_FAILED)
        if key == "xone" and held != 1:
            raise _Denied(path, f"'xone' needs exactly one member to hold, {held} do",
                          DecisionCode.CONSTRAINT_FAILED)

    # -- the constraints --

    @staticmethod
    def _deny(path: str, reason: str) -> _Denied:
        return _Denied(path, reason, DecisionCode.CONSTRAINT_FAILED)

    def _participant(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        if op in ("eq", "neq"):
            if not isinstance(right, str | dict):
                raise MalformedPolicy(path, f"{op} compares with one DID")
        elif op not in ("isAnyOf", "isNoneOf"):
            raise UnsupportedPolicy(f"{path}.operator", f"operator {op!r} is not supported on "
                                    "participantDid (eq, neq, isAnyOf, isNoneOf)")
        dids = _dids(right, f"{path}.rightOperand")
        member = context.participant_did in dids
        if op in ("eq", "isAnyOf") and not member:
            raise self._deny(path, f"{context.participant_did} is not on the allow-list")
        if op in ("neq", "isNoneOf") and member:
            raise self._deny(path, f"{context.participant_did} is on the deny-list")

    def _end(self, op: str, end: datetime, path: str, now: datetime) -> None:
        if (op == "lt" and not now < end) or (op == "lteq" and not now <= end):
            raise self._deny(path, f"the validity window ended at {end.isoformat()}")

    def _start(self, op: str, start: datetime, path: str, now: datetime) -> None:
        if (op == "gt" and not now > start) or (op == "gteq" and not now >= start):
            raise self._deny(path, f"the validity window starts at {start.isoformat()}")

    def _window(self, op: str, point: datetime, path: str, now: datetime) -> None:
        if op in ("lt", "lteq"):
            self._end(op, point, path, now)
        elif op in ("gt", "gteq"):
            self._start(op, point, path, now)
        else:
            raise UnsupportedPolicy(f"{path}.operator", f"operator {op!r} is not supported "
                                    "for a time window (lt, lteq, gt, gteq)")

    def _date_time(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        self._window(op, _datetime(right, f"{path}.rightOperand"), path, context.now)

    def _elapsed(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        if op not in ("lt", "lteq"):
            raise UnsupportedPolicy(f"{path}.operator", "elapsedTime takes lt or lteq")
        length = parse_duration(_scalar(right, f"{path}.rightOperand"), f"{path}.rightOperand")
        if context.agreement_start is not None:
            self._end(op, context.agreement_start + length, path, context.now)

    def _in_force(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        text = _scalar(right, f"{path}.rightOperand")
        relative = _RELATIVE.fullmatch(text.strip())
        if relative is None:
            self._window(op, _datetime(text, f"{path}.rightOperand"), path, context.now)
            return
        if op not in ("lt", "lteq", "gt", "gteq"):
            raise UnsupportedPolicy(f"{path}.operator", f"operator {op!r} is not supported "
                                    "for inForceDate")
        if context.agreement_start is None:
            return  # the window opens at the agreement
        offset = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        self._window(op, context.agreement_start + offset, path, context.now)

    def _cx_days(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        if op != "eq":
            raise UnsupportedPolicy(f"{path}.operator", "DataUsageEndDurationDays takes eq")
        text = _scalar(right, f"{path}.rightOperand")
        if not re.fullmatch(r"[1-9][0-9]*", text):
            raise MalformedPolicy(f"{path}.rightOperand", f"{text!r} is not a day count")
        if context.agreement_start is None:
            return
        # Catena-X compares whole days: now.day < signing.day + N
        start = context.agreement_start.astimezone(UTC).date()
        if not context.now.astimezone(UTC).date() < start + timedelta(days=int(text)):
            raise self._deny(path, f"the {text}-day usage period after the agreement is over")

    def _cx_date(self, op: str, right: Any, path: str, context: EvaluationContext) -> None:
        if op != "eq":
            raise UnsupportedPolicy(f"{path}.operator", "DataUsageEndDate takes eq")
        self._end("lteq", _datetime(right, f"{path}.rightOperand"), path, context.now)


_DEFAULT_GATE = PolicyGate()

POLICY_GATE = web.AppKey("policy_gate", PolicyGate)
"""The gate a node's routes use; ``add_routes`` installs a default one if none is set."""


def is_in_force(agreement_policy: Any, agreement_start: datetime, now: datetime) -> bool:
    """``PolicyGate().is_in_force``: for the data plane and the agreement-expiry timers."""
    return _DEFAULT_GATE.is_in_force(agreement_policy, agreement_start, now)


__all__ = [
    "BPC_POLICY",
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
