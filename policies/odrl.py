"""ODRL 2.2 policies as DSP 2025-1 and Catena-X write them: model, parser, serialiser.

Why a model of our own rather than JSON-LD expansion: a policy is a small tree whose meaning
the engine must know *exactly* — every left operand, operator and action resolved to an IRI
with a known semantics — and whose compact JSON must come back out unchanged, because a DSP
consumer echoes the provider's offer verbatim and Tractus-X refuses an agreement whose policy
differs from the offer (tutorial-resources #258).

* **Parsing** (``parse_policy``) resolves every term through the contexts the policy (and the
  message around it) names (``policies.jsonld``): ``Membership`` with the Catena-X context,
  ``cx-policy:Membership``, ``odrl:eq``, ``{"@id": "odrl:use"}`` and full IRIs all work. It
  refuses — with a typed error naming the JSON path — unknown left operands, operators and
  actions, operators or right operands a left operand cannot take, and ODRL features outside
  the engine's subset (refinements, remedies, consequences, conflict strategies). Nothing is
  ignored.
* **The model** holds IRIs and normalised right operands, so two spellings of one policy are
  equal models (``==``). How the document was written — key and term spellings, lone objects
  where lists were allowed, ``{"@value": …}`` wrappers, key order — is kept in a ``Style`` that
  never takes part in equality.
* **Serialising** (``Policy.to_json``) writes that style back, so parse → serialise returns the
  document it was given; parts without a style (built in code) get the shortest spelling the
  policy's contexts allow. ``canonical_json`` writes full IRIs, for comparing offers with
  agreements regardless of spelling.

Only ``Set``, ``Offer`` and ``Agreement`` policies are read (DSP's three). Rules need an action
(``require_action=False`` relaxes that for the legacy Catena-X samples, whose permissions have
none; such a permission grants nothing).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policies.cx_operands import refusal_reason
from policies.errors import (
    InvalidRightOperand,
    MalformedPolicy,
    UnknownAction,
    UnknownLeftOperand,
    UnknownOperator,
    UnsupportedFeature,
)
from policies.jsonld import ActiveContext, active_context
from policies.namespaces import CX_ACCESS, CX_POLICY_LEGACY, DELETE, EDC, ODRL, USE
from policies.operands import lookup
from policies.operators import LogicalOperator, Operator

#: How deep logical constraints may nest (a bound on work and recursion for hostile input).
MAX_DEPTH = 16
#: Actions the engine can grant or forbid (``use``; Catena-X ``access``) or hand to the
#: caller as a duty (``delete``; ``use`` appears in Catena-X obligations).
KNOWN_ACTIONS = frozenset({USE, CX_ACCESS, CX_POLICY_LEGACY + "access", DELETE})


class PolicyType(StrEnum):
    """The ODRL policy subclasses DSP exchanges."""

    SET = "Set"
    OFFER = "Offer"
    AGREEMENT = "Agreement"

    @property
    def iri(self) -> str:
        return ODRL + self.value


@dataclass(frozen=True, slots=True, eq=False)
class Style:
    """How a node was written: key spellings in document order, containers written as a lone
    object, and the JSON written for terms and right operands. Never part of equality."""

    keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    singles: frozenset[str] = frozenset()
    written: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Style)

    def __hash__(self) -> int:
        return 0


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    uid: str | None = None
    style: Style = Field(default_factory=Style, repr=False, exclude=True)


class AtomicConstraint(_Node):
    """``leftOperand operator rightOperand``; the left operand is an IRI the engine knows."""

    left_operand: str
    operator: Operator
    right_operand: Any


class LogicalConstraint(_Node):
    """``and`` / ``or`` / ``xone`` / ``andSequence`` over at least one member."""

    operator: LogicalOperator
    constraints: tuple[AtomicConstraint | LogicalConstraint, ...] = Field(min_length=1)


Constraint = AtomicConstraint | LogicalConstraint


class _Rule(_Node):
    action: str | None = None
    constraints: tuple[Constraint, ...] = ()
    assignee: tuple[str, ...] | None = None
    assigner: str | None = None
    target: str | None = None


class Duty(_Rule):
    """Something the assignee must do (``delete`` at the end of the usage period). Returned to
    the caller to enforce; its constraints say when it is due, not whether access is granted."""

    kind: Literal["duty"] = "duty"


class Permission(_Rule):
    """May perform ``action`` when every constraint holds; ``duties`` come with it."""

    kind: Literal["permission"] = "permission"
    duties: tuple[Duty, ...] = ()


class Prohibition(_Rule):
    """May not perform ``action`` when every constraint holds (or cannot be ruled out)."""

    kind: Literal["prohibition"] = "prohibition"


class Policy(_Node):
    """An ODRL ``Set``/``Offer``/``Agreement`` (``policy_type`` None: untyped, read as Set).

    ``extra`` keeps policy-level keys outside ODRL (DSP's ``timestamp``, ``dct:title`` …) as
    written: they are carried, not evaluated.
    """

    policy_type: PolicyType | None = None
    profile: tuple[str, ...] = ()
    assigner: str | None = None
    assignee: tuple[str, ...] | None = None
    target: str | None = None
    permissions: tuple[Permission, ...] = ()
    prohibitions: tuple[Prohibition, ...] = ()
    obligations: tuple[Duty, ...] = ()
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The compact JSON-LD form, as written when parsed (see the module docstring)."""
        return _Writer(self._active(), canonical=False).policy(self)

    def canonical_json(self) -> dict[str, Any]:
        """Full IRIs for every term and lists for every container; no ``@context``: policies
        with equal canonical forms mean the same, however they were spelled."""
        return _Writer(active_context(), canonical=True).policy(self)

    def _active(self) -> ActiveContext:
        return active_context(self.style.written.get("@outer"), self.style.written.get("@context"))


LogicalConstraint.model_rebuild()
_Rule.model_rebuild()
Duty.model_rebuild()
Permission.model_rebuild()
Prohibition.model_rebuild()
Policy.model_rebuild()


# --- parsing -----------------------------------------------------------------------------------

_LOGICAL = {op.value: op for op in LogicalOperator}
_RULE_CLASS = {"permission": {"Permission", "Rule"}, "prohibition": {"Prohibition", "Rule"},
               "duty": {"Duty", "Rule"}}
_SUPPORTED = {
    "policy": {"@context", "@id", "@type", "permission", "prohibition", "obligation", "assigner",
               "assignee", "target", "profile"},
    "permission": {"@id", "@type", "action", "constraint", "assignee", "assigner", "target",
                   "duty"},
    "prohibition": {"@id", "@type", "action", "constraint", "assignee", "assigner", "target"},
    "duty": {"@id", "@type", "action", "constraint", "assignee", "assigner", "target"},
    "atomic": {"@id", "@type", "leftOperand", "operator", "rightOperand"},
    "logical": {"@id", "@type", *_LOGICAL},
}


def parse_policy(data: Any, *, context: Any = None, require_action: bool = True) -> Policy:
    """Read a compact ODRL policy; ``context`` is the ``@context`` of the message around it.

    Raises a ``PolicyError`` subclass naming the JSON path of the first problem.

    Parsed policies are remembered by their JSON text (``_PARSED``, bounded): a catalog
    request reads each offer's policy for the credentials it needs, the purpose it names and
    the decision, and the data plane reads an agreement's on every fetch — the models are
    frozen, so one parse can serve them all.
    """
    key = _cache_key(data, context, require_action)
    if key is not None:
        cached = _PARSED.get(key)
        if cached is not None:
            _PARSED.move_to_end(key)
            return cached
    policy = _Reader(active_context(context), context, require_action).policy(data)
    if key is not None:
        _PARSED[key] = policy
        if len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return policy


_PARSED: OrderedDict[tuple[str, Any, bool], Policy] = OrderedDict()
_PARSED_MAX = 2048


def _cache_key(data: Any, context: Any, require_action: bool) -> tuple[str, Any, bool] | None:
    """``(JSON text, context, require_action)``, or ``None`` for what cannot be a key (a
    context given as an object, data that is not JSON)."""
    if isinstance(context, list | tuple):
        if not all(isinstance(item, str) for item in context):
            return None
        context = tuple(context)
    elif context is not None and not isinstance(context, str):
        return None
    try:
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text, context, require_action


def parse_policy_definition(data: Any) -> Policy:
    """Read an EDC management-API ``PolicyDefinition`` (``{"@context", "@id", "policy"}``), the
    shape of the legacy Catena-X samples: the policy inherits the definition's context, and its
    rules may lack an action (they then grant nothing)."""
    if not isinstance(data, dict):
        raise MalformedPolicy("", "a policy definition is a JSON object")
    outer = data.get("@context")
    active = active_context(outer)
    for key, value in data.items():
        if key == "policy" or active.expand(key) == EDC + "policy":
            return _Reader(active_context(outer), outer, require_action=False).policy(
                value, path="policy")
    raise MalformedPolicy("policy", "a policy definition needs a policy")


@dataclass(slots=True)
class _Reader:
    active: ActiveContext
    outer: Any
    require_action: bool

    def policy(self, data: Any, path: str = "") -> Policy:
        if not isinstance(data, dict):
            raise MalformedPolicy(path, "a policy is a JSON object")
        here = self
        if "@context" in data:
            active = active_context(self.outer, data["@context"]) if not path else \
                self.active.extend(data["@context"], _join(path, "@context"))
            here = _Reader(active, self.outer, self.require_action)
        fields, style_keys, extra = here._keys(data, path, "policy")
        written: dict[str, Any] = {"@outer": self.outer}
        if "@context" in data:
            written["@context"] = data["@context"]
        singles: set[str] = set()
        values: dict[str, Any] = {"extra": extra}
        if "@id" in fields:
            values["uid"] = _string(fields["@id"], _join(path, style_keys["@id"]))
        if "@type" in fields:
            values["policy_type"], written["@type"] = here._policy_type(
                fields["@type"], _join(path, style_keys["@type"]))
        for key in ("assigner", "target"):
            if key in fields:
                values[key], written[key] = here._party(fields[key], _join(path, style_keys[key]))
        if "assignee" in fields:
            values["assignee"], written["assignee"] = here._parties(
                fields["assignee"], _join(path, style_keys["assignee"]))
        if "profile" in fields:
            values["profile"], written["profile"] = here._parties(
                fields["profile"], _join(path, style_keys["profile"]))
        for key, target, kind in (("permission", "permissions", "permission"),
                                  ("prohibition", "prohibitions", "prohibition"),
                                  ("obligation", "obligations", "duty")):
            if key in fields:
                where = _join(path, style_keys[key])
                items, single = _items(fields[key], where, allow_empty=False)
                if single:
                    singles.add(key)
                values[target] = tuple(here.rule(item, f"{where}[{i}]", kind)
                                       for i, item in enumerate(items))
        if not any(values.get(k) for k in ("permissions", "prohibitions", "obligations")):
            raise MalformedPolicy(path or "permission", "a policy needs a non-empty permission, "
                                  "prohibition or obligation list")
        style = Style(MappingProxyType(style_keys), frozenset(singles),
                      MappingProxyType(written))
        return Policy(style=style, **values)

    def rule(self, data: Any, path: str, kind: str) -> Any:
        if not isinstance(data, dict):
            raise MalformedPolicy(path, "a rule is a JSON object")
        fields, style_keys, _ = self._keys(data, path, kind)
        written: dict[str, Any] = {}
        singles: set[str] = set()
        values: dict[str, Any] = {}
        if "@id" in fields:
            values["uid"] = _string(fields["@id"], _join(path, style_keys["@id"]))
        if "@type" in fields:
            written["@type"] = self._class(fields["@type"], _join(path, style_keys["@type"]),
                                           _RULE_CLASS[kind])
        if "action" in fields:
            values["action"], written["action"], single = self._action(
                fields["action"], _join(path, style_keys["action"]))
            if single:
                singles.add("action")
        elif self.require_action:
            raise MalformedPolicy(f"{path}.action", "a rule needs an action")
        for key in ("assigner", "target"):
            if key in fields:
                values[key], written[key] = self._party(fields[key], _join(path, style_keys[key]))
        if "assignee" in fields:
            values["assignee"], written["assignee"] = self._parties(
                fields["assignee"], _join(path, style_keys["assignee"]))
        if "constraint" in fields:
            where = _join(path, style_keys["constraint"])
            items, single = _items(fields["constraint"], where, allow_empty=True)
            if single:
                singles.add("constraint")
            values["constraints"] = tuple(self.constraint(item, f"{where}[{i}]")
                                          for i, item in enumerate(items))
        if "duty" in fields:
            where = _join(path, style_keys["duty"])
            items, single = _items(fields["duty"], where, allow_empty=False)
            if single:
                singles.add("duty")
            values["duties"] = tuple(self.rule(item, f"{where}[{i}]", "duty")
                                     for i, item in enumerate(items))
        style = Style(MappingProxyType(style_keys), frozenset(singles),
                      MappingProxyType(written))
        model = {"permission": Permission, "prohibition": Prohibition, "duty": Duty}[kind]
        return model(style=style, **values)

    def constraint(self, data: Any, path: str, depth: int = 0) -> Constraint:
        if not isinstance(data, dict):
            raise MalformedPolicy(path, "a constraint is a JSON object")
        keyed = {self._canonical(k): k for k in data}
        logical = [name for name in _LOGICAL if name in keyed]
        if logical:
            if depth >= MAX_DEPTH:
                raise MalformedPolicy(path, f"logical constraints nest deeper than {MAX_DEPTH}")
            return self._logical(data, path, logical, depth)
        fields, style_keys, _ = self._keys(data, path, "atomic")
        for key in ("leftOperand", "operator", "rightOperand"):
            if key not in fields:
                raise MalformedPolicy(path, f"an atomic constraint needs {key}")
        written: dict[str, Any] = {}
        if "@type" in fields:
            written["@type"] = self._class(fields["@type"], _join(path, style_keys["@type"]),
                                           {"Constraint"})
        left_raw = fields["leftOperand"]
        left_text = left_raw.get("@id") if isinstance(left_raw, dict) else left_raw
        if not isinstance(left_text, str) or not left_text:
            raise MalformedPolicy(_join(path, style_keys["leftOperand"]),
                                  "leftOperand must be a string")
        left = self.active.expand(left_text)
        spec = lookup(left) if left else None
        if spec is None:
            why = refusal_reason(left) if left else None
            raise UnknownLeftOperand(path, why or f"constraint on {left_text!r} is not "
                                     "understood by this engine, so it refuses it (fails closed)")
        op_path = _join(path, style_keys["operator"])
        op_raw = fields["operator"]
        op_text = op_raw.get("@id") if isinstance(op_raw, dict) else op_raw
        if not isinstance(op_text, str):
            raise MalformedPolicy(op_path, "operator must be a string")
        op_iri = self.active.expand(op_text)
        operator = Operator.from_iri(op_iri) if op_iri else None
        if operator is None:
            raise UnknownOperator(op_path, f"operator {op_text!r} is not one of "
                                  f"{[o.value for o in Operator]}")
        if operator not in spec.operators:
            raise UnknownOperator(op_path, f"operator {operator.value!r} is not supported on "
                                  f"{spec.label} ({', '.join(sorted(spec.operators))})")
        right_path = _join(path, style_keys["rightOperand"])
        right = _normalise_right(fields["rightOperand"], right_path, self.active)
        spec.parse_right(operator, right, right_path)  # raises InvalidRightOperand
        written.update(leftOperand=left_raw, operator=op_raw, rightOperand=fields["rightOperand"])
        uid = _string(fields["@id"], _join(path, style_keys["@id"])) if "@id" in fields else None
        style = Style(MappingProxyType(style_keys), frozenset(), MappingProxyType(written))
        return AtomicConstraint(uid=uid, left_operand=left, operator=operator,
                                right_operand=right, style=style)

    def _logical(self, data: dict[str, Any], path: str, logical: list[str],
                 depth: int) -> Constraint:
        fields, style_keys, _ = self._keys(data, path, "logical")
        if len(logical) > 1 or any(k in fields for k in ("leftOperand", "operator")):
            raise MalformedPolicy(path, "a logical constraint has exactly one of and, "
                                  "andSequence, or, xone")
        name = logical[0]
        where = _join(path, style_keys[name])
        items, single = _items(fields[name], where, allow_empty=False)
        written: dict[str, Any] = {}
        if "@type" in fields:
            written["@type"] = self._class(fields["@type"], _join(path, style_keys["@type"]),
                                           {"LogicalConstraint", "Constraint"})
        members = tuple(self.constraint(item, f"{where}[{i}]", depth + 1)
                        for i, item in enumerate(items))
        uid = _string(fields["@id"], _join(path, style_keys["@id"])) if "@id" in fields else None
        style = Style(MappingProxyType(style_keys), frozenset({name} if single else ()),
                      MappingProxyType(written))
        return LogicalConstraint(uid=uid, operator=_LOGICAL[name], constraints=members,
                                 style=style)

    # -- keys and terms --

    def _canonical(self, key: str) -> str | None:
        """``@id``/``@type``/ODRL property name for a key, None for a non-ODRL key."""
        if key.startswith("@"):
            return key
        iri = self.active.expand(key)
        if iri in ("@id", "@type"):
            return iri
        if iri and iri.startswith(ODRL):
            return iri.removeprefix(ODRL)
        return None

    def _keys(self, data: dict[str, Any], path: str,
              kind: str) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
        fields: dict[str, Any] = {}
        style_keys: dict[str, str] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            canonical = self._canonical(key)
            where = _join(path, key)
            if canonical is None or (canonical.startswith("@") and canonical not in (
                    "@id", "@type", "@context")):
                if kind == "policy" and canonical is None:
                    extra[key] = value
                    style_keys[key] = key
                    continue
                raise UnsupportedFeature(where, f"{key!r} is not an ODRL term this engine "
                                         "evaluates, so it refuses the rule (fails closed)")
            if canonical not in _SUPPORTED[kind]:
                raise UnsupportedFeature(where, f"ODRL {canonical!r} is not supported here "
                                         "(the engine refuses what it cannot evaluate)")
            if canonical in fields:
                raise MalformedPolicy(where, f"{canonical!r} is given twice "
                                      f"({style_keys[canonical]!r} and {key!r})")
            fields[canonical] = value
            style_keys[canonical] = key
        return fields, style_keys, extra

    def _policy_type(self, value: Any, path: str) -> tuple[PolicyType, Any]:
        raw = value[0] if isinstance(value, list) and len(value) == 1 else value
        if not isinstance(raw, str):
            raise MalformedPolicy(path, "@type must be one of Set, Offer, Agreement")
        iri = self.active.expand(raw) or raw
        for kind in PolicyType:
            if iri == kind.iri:
                return kind, value
        if iri.startswith(ODRL):
            raise UnsupportedFeature(path, f"ODRL {iri.removeprefix(ODRL)} policies are not "
                                     "supported (Set, Offer, Agreement)")
        raise MalformedPolicy(path, f"@type {raw!r} is not an ODRL policy type")

    def _class(self, value: Any, path: str, allowed: set[str]) -> Any:
        raw = value[0] if isinstance(value, list) and len(value) == 1 else value
        iri = self.active.expand(raw) if isinstance(raw, str) else None
        if iri is None or iri.removeprefix(ODRL) not in allowed or not iri.startswith(ODRL):
            raise MalformedPolicy(path, f"@type {raw!r} is not one of {sorted(allowed)}")
        return value

    def _action(self, value: Any, path: str) -> tuple[str, Any, bool]:
        single = False
        raw = value
        if isinstance(raw, list):
            if len(raw) != 1:
                raise MalformedPolicy(path, "a rule has exactly one action")
            raw, single = raw[0], True
        if isinstance(raw, dict):
            unexpected = sorted(set(raw) - {"@id", "@type"})
            if unexpected:
                if any(self._canonical(k) == "refinement" for k in unexpected):
                    raise UnsupportedFeature(f"{path}.refinement", "action refinements are "
                                             "not supported (the engine refuses what it cannot "
                                             "evaluate)")
                raise MalformedPolicy(f"{path}.{unexpected[0]}", "unexpected key in an action")
            raw = raw.get("@id")
        if not isinstance(raw, str) or not raw:
            raise MalformedPolicy(path, "a rule needs an action")
        iri = self.active.expand(raw)
        if iri not in KNOWN_ACTIONS:
            raise UnknownAction(path, f"action {raw!r} is not evaluated (use, access, delete)")
        return iri, value, single

    def _party(self, value: Any, path: str) -> tuple[str, Any]:
        raw = value.get("@id") if isinstance(value, dict) else value
        if isinstance(value, dict) and set(value) - {"@id", "@type"}:
            raise UnsupportedFeature(path, "party or asset collections and refinements are not "
                                     "supported")
        if not isinstance(raw, str) or not raw:
            raise MalformedPolicy(path, "must be an identifier (a string or {'@id': …})")
        return self.active.expand_id(raw), value

    def _parties(self, value: Any, path: str) -> tuple[tuple[str, ...], Any]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise MalformedPolicy(path, "an empty list names nobody; remove it instead")
        return tuple(self._party(item, f"{path}[{i}]" if isinstance(value, list) else path)[0]
                     for i, item in enumerate(items)), value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedPolicy(path, "must be a non-empty string")
    return value


def _items(value: Any, path: str, *, allow_empty: bool) -> tuple[list[Any], bool]:
    """A JSON-LD container's members and whether it was written as a lone value."""
    if isinstance(value, dict) and set(value) == {"@list"}:
        value = value["@list"]
    if isinstance(value, list):
        if not value and not allow_empty:
            raise MalformedPolicy(path, "must be a non-empty list (omit it instead)")
        return value, False
    return [value], True


def _normalise_right(value: Any, path: str, active: ActiveContext) -> Any:
    """``{"@value": v}`` → v, ``{"@id": x}`` → the IRI, lists → tuples; objects refused."""
    if isinstance(value, dict):
        if "@value" in value and set(value) <= {"@value", "@type", "@language"}:
            inner = value["@value"]
            if isinstance(inner, dict | list):
                raise InvalidRightOperand(path, "@value must be a scalar")
            return inner
        if set(value) == {"@id"} and isinstance(value["@id"], str):
            return active.expand_id(value["@id"])
        if set(value) == {"@list"} and isinstance(value["@list"], list):
            return _normalise_right(value["@list"], path, active)
        raise InvalidRightOperand(path, "rightOperand objects other than {'@value': …} or "
                                  "{'@id': …} are not supported")
    if isinstance(value, list):
        out = []
        for index, item in enumerate(value):
            normal = _normalise_right(item, f"{path}[{index}]", active)
            if isinstance(normal, tuple):
                raise InvalidRightOperand(f"{path}[{index}]", "nested lists are not supported")
            out.append(normal)
        return tuple(out)
    if value is None:
        raise InvalidRightOperand(path, "rightOperand cannot be null")
    return value


# --- serialising -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Writer:
    active: ActiveContext
    canonical: bool

    def policy(self, policy: Policy) -> dict[str, Any]:
        style = Style() if self.canonical else policy.style
        out: dict[str, Any] = {}
        if "@context" in style.written:
            out["@context"] = style.written["@context"]
        if policy.uid is not None:
            out["@id"] = policy.uid
        if policy.policy_type is not None:
            out["@type"] = self._term(policy.policy_type.iri, style.written.get("@type"))
        if policy.profile:
            out["profile"] = self._ids(policy.profile, style.written.get("profile"))
        if policy.assigner is not None:
            out["assigner"] = self._id(policy.assigner, style.written.get("assigner"))
        if policy.assignee is not None:
            out["assignee"] = self._ids(policy.assignee, style.written.get("assignee"))
        if policy.target is not None:
            out["target"] = self._id(policy.target, style.written.get("target"))
        for key, rules in (("permission", policy.permissions),
                           ("prohibition", policy.prohibitions),
                           ("obligation", policy.obligations)):
            if rules:
                out[key] = self._container([self.rule(r) for r in rules], key, style)
        out.update(policy.extra)
        return self._order(out, style)

    def rule(self, rule: Permission | Prohibition | Duty) -> dict[str, Any]:
        style = Style() if self.canonical else rule.style
        out: dict[str, Any] = {}
        if rule.uid is not None:
            out["@id"] = rule.uid
        if "@type" in style.written:
            out["@type"] = style.written["@type"]
        if rule.action is not None:
            written = style.written.get("action")
            if "action" in style.singles and isinstance(written, list):
                written = written[0]
            term = self._term(rule.action, written)
            out["action"] = [term] if "action" in style.singles else term
        if rule.assigner is not None:
            out["assigner"] = self._id(rule.assigner, style.written.get("assigner"))
        if rule.assignee is not None:
            out["assignee"] = self._ids(rule.assignee, style.written.get("assignee"))
        if rule.target is not None:
            out["target"] = self._id(rule.target, style.written.get("target"))
        if rule.constraints or "constraint" in style.keys:
            out["constraint"] = self._container([self.constraint(c) for c in rule.constraints],
                                                "constraint", style)
        if isinstance(rule, Permission) and rule.duties:
            out["duty"] = self._container([self.rule(d) for d in rule.duties], "duty", style)
        return self._order(out, style)

    def constraint(self, constraint: Constraint) -> dict[str, Any]:
        style = Style() if self.canonical else constraint.style
        out: dict[str, Any] = {}
        if constraint.uid is not None:
            out["@id"] = constraint.uid
        if "@type" in style.written:
            out["@type"] = style.written["@type"]
        if isinstance(constraint, LogicalConstraint):
            name = constraint.operator.value
            out[name] = self._container([self.constraint(c) for c in constraint.constraints],
                                        name, style)
            return self._order(out, style)
        out["leftOperand"] = self._term(constraint.left_operand, style.written.get("leftOperand"))
        out["operator"] = self._term(constraint.operator.iri, style.written.get("operator"))
        written = style.written.get("rightOperand", _MISSING)
        if written is not _MISSING and _same_right(written, constraint.right_operand,
                                                   self.active):
            out["rightOperand"] = written
        else:
            right = constraint.right_operand
            out["rightOperand"] = list(right) if isinstance(right, tuple) else right
        return self._order(out, style)

    # -- helpers --

    def _term(self, iri: str, written: Any) -> Any:
        if self.canonical:
            return iri
        text = written.get("@id") if isinstance(written, dict) else written
        if isinstance(text, str) and self.active.expand(text) == iri:
            return written
        return self.active.compact(iri)

    def _id(self, value: str, written: Any) -> Any:
        if self.canonical:
            return value
        text = written.get("@id") if isinstance(written, dict) else written
        if isinstance(text, str) and self.active.expand_id(text) == value:
            return written
        return value

    def _ids(self, values: tuple[str, ...], written: Any) -> Any:
        if self.canonical:
            return list(values)
        items = written if isinstance(written, list) else [written]
        if len(items) == len(values) and all(
            isinstance(t := (w.get("@id") if isinstance(w, dict) else w), str)
            and self.active.expand_id(t) == v for w, v in zip(items, values, strict=True)
        ):
            return written
        return values[0] if len(values) == 1 else list(values)

    def _container(self, items: list[Any], key: str, style: Style) -> Any:
        if key in style.singles and len(items) == 1 and not self.canonical:
            return items[0]
        return items

    def _order(self, out: dict[str, Any], style: Style) -> dict[str, Any]:
        """Keys as written and in the written order; new keys after them, bare."""
        if self.canonical:
            return out
        ordered: dict[str, Any] = {}
        for canonical, written in style.keys.items():
            if canonical in out:
                ordered[written] = out.pop(canonical)
        ordered.update(out)
        return ordered


_MISSING = object()


def _same_right(written: Any, current: Any, active: ActiveContext) -> bool:
    try:
        return bool(_normalise_right(written, "", active) == current)
    except InvalidRightOperand:
        return False


def rules_of(policy: Policy) -> list[tuple[str, Permission | Prohibition | Duty]]:
    """Every top-level rule with its JSON path (``permission[0]``, ``obligation[1]`` …)."""
    found: list[tuple[str, Permission | Prohibition | Duty]] = []
    found += [(f"permission[{i}]", r) for i, r in enumerate(policy.permissions)]
    found += [(f"prohibition[{i}]", r) for i, r in enumerate(policy.prohibitions)]
    found += [(f"obligation[{i}]", r) for i, r in enumerate(policy.obligations)]
    return found


__all__ = [
    "KNOWN_ACTIONS",
    "AtomicConstraint",
    "Constraint",
    "Duty",
    "LogicalConstraint",
    "Permission",
    "Policy",
    "PolicyType",
    "Prohibition",
    "Style",
    "parse_policy",
    "parse_policy_definition",
    "rules_of",
]
