"""SHACL check of battery passport credentials (``vocab/shapes/battery-passport-shapes.ttl``).

The shapes say, per credential type of ``vocab/PASSPORT.md``, which subject fields are required
and what they must hold. They are checked on the credential's RDF meaning, not its JSON: the
credential is canonicalised with the strict offline JSON-LD processor (``canonize_rdfc``, so an
undefined term or a context we do not ship fails here exactly as it fails verification) and the
N-Quads are validated with pyshacl. A JSON shape check could be fooled by an alias or a context
that maps a familiar key to another IRI; the RDF check cannot.

Each violation names the failing attribute as a JSON-style path (``credentialSubject.
stateOfHealthPct``, ``credentialSubject.elementMass.massKg``) and says, in words, what was
wrong and what the field must hold (the shape's ``sh:message``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from pyshacl import validate as shacl_validate
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.exceptions import ParserError
from rdflib.namespace import RDF, SH

from credentials.errors import MalformedDocument
from credentials.jsonld import canonize_rdfc
from vocab import BATTERY_VOCAB

SHAPES_FILE = "shapes/battery-passport-shapes.ttl"
CREDENTIALS_VOCAB = "https://www.w3.org/2018/credentials#"
_VERIFIABLE_CREDENTIAL = URIRef(CREDENTIALS_VOCAB + "VerifiableCredential")
_BP = BATTERY_VOCAB


class Violation(NamedTuple):
    """One failed constraint: where (a JSON-style path) and what, in words."""

    path: str
    message: str


class ShapeViolation(MalformedDocument):
    """The credential does not match the shape of its type; ``violations`` lists every failure,
    ``problem.path`` names the first (in path order)."""

    def __init__(self, violations: list[Violation]) -> None:
        if not violations:
            raise ValueError("ShapeViolation needs at least one violation")
        listed = "; ".join(f"{v.path}: {v.message}" for v in violations)
        super().__init__(
            f"credential does not match its battery passport shape: {listed}",
            path=violations[0].path,
        )
        self.violations = list(violations)


# --- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shapes:
    graph: Graph
    targets: frozenset[URIRef]  # the credential classes some shape targets


@cache
def _shapes() -> _Shapes:
    """The shapes graph, parsed once per process (parsing costs far more than one check)."""
    graph = Graph()
    text = resources.files("vocab").joinpath(SHAPES_FILE).read_text("utf-8")
    graph.parse(data=text, format="turtle")
    targets = frozenset(t for t in graph.objects(None, SH.targetClass) if isinstance(t, URIRef))
    return _Shapes(graph, targets)


# rdflib logs a warning with a traceback for every literal whose lexical form does not fit its
# datatype ("abc"^^xsd:decimal). Here that is the credential's error, reported as a violation,
# not the server's: the filter drops those records while this module parses and validates.
_parsing = ContextVar("_parsing", default=False)


class _IllTypedLiteralFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_parsing.get() and record.getMessage().startswith("Failed to convert"))


logging.getLogger("rdflib.term").addFilter(_IllTypedLiteralFilter())


@contextmanager
def _quiet_literal_warnings() -> Iterator[None]:
    token = _parsing.set(True)
    try:
        yield
    finally:
        _parsing.reset(token)


# The XSD lexical forms of the datatypes the shapes check. rdflib is lenient where XSD is not
# (it reads "1e5", "NaN" and "INF" as decimals and "2026-03-01" as a dateTime) and normalises
# literals, so the form a peer would reject is gone once parsed; pyshacl even fails comparing a
# NaN with a range. The form is therefore checked on the canonical N-Quads text, and a literal
# that is not in its datatype's lexical space gets a datatype of its own, which fails
# sh:datatype and is reported like any mistyped value.
_XSD = "http://www.w3.org/2001/XMLSchema#"
_LEXICAL = {
    _XSD + "decimal": re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"),
    _XSD + "integer": re.compile(r"[+-]?[0-9]+"),
    _XSD + "date": re.compile(r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})?"),
    _XSD + "dateTime": re.compile(
        r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
        r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
    ),
}
# One canonical N-Quads statement whose object is a typed literal: subject and predicate have
# no spaces, the literal's quotes and backslashes are escaped.
_TYPED_OBJECT = re.compile(r'^(\S+ <[^>]*> )"((?:[^"\\]|\\.)*)"\^\^<([^>]*)>( .*)$', re.MULTILINE)
_ILL_FORMED = "urn:x-battery-passport-connector:ill-formed-literal"


def _mark_ill_formed(match: re.Match[str]) -> str:
    head, lexical, datatype, tail = match.groups()
    grammar = _LEXICAL.get(datatype)
    if grammar is None or grammar.fullmatch(lexical):
        return match.group(0)
    return f'{head}"{lexical}"^^<{_ILL_FORMED}>{tail}'


def _data_graph(nquads: str) -> Graph:
    """The credential's triples as an rdflib graph, ready for pyshacl.

    The canonical N-Quads of a credential without its proof name no graph, so they are read as
    N-Triples (rdflib's N-Quads reader is slower and warns about its own deprecated API). A
    named graph (JSON-LD ``@graph``) is refused: passport credentials do not use them, and
    checking the union of graphs would mix claims made in different contexts.
    """
    graph = Graph()
    with _quiet_literal_warnings():
        try:
            graph.parse(data=_TYPED_OBJECT.sub(_mark_ill_formed, nquads), format="nt")
        except ParserError as exc:
            raise MalformedDocument(
                "the credential holds a named graph (JSON-LD @graph); passport credentials "
                "do not use named graphs"
            ) from exc
    return graph


# --- reporting ----------------------------------------------------------------------------------


def _name(iri: Any) -> str:
    """The JSON term of a predicate: our terms and the VC terms use the IRI's local name."""
    if iri == RDF.type:
        return "type"
    text = str(iri)
    return text.rsplit("#", 1)[-1] if "#" in text else text


def _show(value: Any) -> str:
    if isinstance(value, Literal):
        return repr(str(value))
    if isinstance(value, URIRef):
        text = str(value)
        return text.removeprefix(_BP) if text.startswith(_BP) else f"<{text}>"
    if isinstance(value, BNode):
        return "an object"
    return "no value"


# How JSON-LD writes a JSON number that has a fraction: as an xsd:double-style "9.15E1".
_JSON_NUMBER = re.compile(r"[+-]?[0-9]\.[0-9]*E[+-]?[0-9]+").fullmatch

_REASONS = {
    "MinCountConstraintComponent": lambda v: "missing",
    "MaxCountConstraintComponent": lambda v: "given more than once",
    "DatatypeConstraintComponent": lambda v: (
        f"{_show(v)} has the wrong type or form"
        + (" (a JSON number: write a decimal as a string)" if _JSON_NUMBER(str(v)) else "")
    ),
    "MinInclusiveConstraintComponent": lambda v: f"{_show(v)} is too small",
    "MinExclusiveConstraintComponent": lambda v: f"{_show(v)} is too small",
    "MaxInclusiveConstraintComponent": lambda v: f"{_show(v)} is too large",
    "MaxExclusiveConstraintComponent": lambda v: f"{_show(v)} is too large",
    "PatternConstraintComponent": lambda v: f"{_show(v)} does not have the expected form",
    "MinLengthConstraintComponent": lambda v: f"{_show(v)} is too short",
    "NodeKindConstraintComponent": lambda v: f"{_show(v)} is not a reference (an id)",
    "ClassConstraintComponent": lambda v: f"{_show(v)} has the wrong type",
    "InConstraintComponent": lambda v: f"{_show(v)} is not an allowed value",
    "HasValueConstraintComponent": lambda v: "does not have the required value",
    "LessThanConstraintComponent": lambda v: f"{_show(v)} is not below the related maximum",
    "LessThanOrEqualsConstraintComponent": lambda v: f"{_show(v)} exceeds the related value",
}

# A nested entry (an ElementMass of several, say) is easier to find by one of its fields.
_ENTRY_KEYS = tuple(URIRef(_BP + k) for k in ("element", "batch", "removedComponent"))


def _entry_hint(data: Graph, node: Any) -> str:
    if not isinstance(node, BNode):
        return ""
    for key in _ENTRY_KEYS:
        value = data.value(node, key)
        if value is not None:
            return f" (in the entry with {_name(key)} {_show(value)})"
    return ""


class _Leaf(NamedTuple):
    violation: Violation
    component: str
    value: Any


# A value of the wrong datatype also fails the range and pattern checks of its field; saying so
# would only bury the real problem.
_CONSEQUENCES_OF_DATATYPE = frozenset(
    {
        "MinInclusiveConstraintComponent",
        "MinExclusiveConstraintComponent",
        "MaxInclusiveConstraintComponent",
        "MaxExclusiveConstraintComponent",
        "LessThanConstraintComponent",
        "LessThanOrEqualsConstraintComponent",
        "PatternConstraintComponent",
        "MinLengthConstraintComponent",
    }
)


def _leaves(
    report: Graph, data: Graph, result: Any, prefix: str, parent_message: Any = None
) -> Iterator[_Leaf]:
    """Walk a result and its ``sh:detail`` results (sh:node failures) down to the failures
    that name a field; the path is the chain of result paths from the credential down.

    A failure without a path of its own comes from a shape about the value itself (the country
    code list): it is reported with the message of the field that referred to that shape.
    """
    step = report.value(result, SH.resultPath)
    path = ".".join(part for part in (prefix, _name(step) if step is not None else "") if part)
    own_message = report.value(result, SH.resultMessage)
    details = list(report.objects(result, SH.detail))
    if details:
        for detail in details:
            yield from _leaves(report, data, detail, path, own_message)
        return
    component = _name(report.value(result, SH.sourceConstraintComponent))
    value = report.value(result, SH.value)
    reason = _REASONS.get(component, lambda v: component)(value)
    hint = _entry_hint(data, report.value(result, SH.focusNode))
    shape_message = parent_message if step is None and parent_message else own_message
    message = f"{reason}{hint}. {shape_message}" if shape_message else f"{reason}{hint}"
    yield _Leaf(Violation(path, message), component, value)


def _report_violations(report: Graph, data: Graph) -> list[Violation]:
    leaves = [
        leaf
        for top in report.subjects(RDF.type, SH.ValidationReport)
        for result in report.objects(top, SH.result)
        for leaf in _leaves(report, data, result, "")
    ]
    mistyped = {
        (leaf.violation.path, leaf.value)
        for leaf in leaves
        if leaf.component == "DatatypeConstraintComponent"
    }
    return [
        leaf.violation
        for leaf in leaves
        if not (
            leaf.component in _CONSEQUENCES_OF_DATATYPE
            and (leaf.violation.path, leaf.value) in mistyped
        )
    ]


def _type_violations(data: Graph, targets: frozenset[URIRef]) -> list[Violation]:
    """A credential whose type no shape targets would pass SHACL vacuously: refuse it."""
    credentials = set(data.subjects(RDF.type, _VERIFIABLE_CREDENTIAL))
    if not credentials:
        return [
            Violation(
                "type",
                "the document is not a verifiable credential: its type "
                "must include VerifiableCredential",
            )
        ]
    known = ", ".join(sorted(_name(t) for t in targets))
    found = []
    for credential in credentials:
        types = set(data.objects(credential, RDF.type)) - {_VERIFIABLE_CREDENTIAL}
        if not types & targets:
            named = ", ".join(sorted(_show(t) for t in types)) or "only VerifiableCredential"
            message = (
                f"no battery passport shape for the credential type ({named}); "
                f"the type must be one of {known}"
            )
            found.append(Violation("type", message))
    return found


# --- API ------------------------------------------------------------------------------------------


def validate_shapes(credential: dict[str, Any]) -> list[Violation]:
    """Every violation of the battery passport shapes by ``credential``, in path order;
    empty when it conforms.

    The proof, if any, is left out: it is checked by the verifier, and the shapes are about the
    credential's data. JSON-LD errors (``UndefinedTerm``, ``RelativeIri``,
    ``DisallowedContext``, a ``MalformedDocument``) propagate unchanged: such a document has no
    RDF meaning to check.
    """
    if not isinstance(credential, dict):
        raise MalformedDocument("a credential must be a JSON object")
    document = {key: value for key, value in credential.items() if key != "proof"}
    data = _data_graph(canonize_rdfc(document))
    shapes = _shapes()
    violations = _type_violations(data, shapes.targets)
    with _quiet_literal_warnings():  # pyshacl copies the ill-typed literals into its report
        conforms, report, _ = shacl_validate(
            data,
            shacl_graph=shapes.graph,
            inference="none",
            advanced=False,
            allow_warnings=False,
        )
    if not conforms:
        if not isinstance(report, Graph):  # pyshacl reports a failure of its own as text
            raise MalformedDocument(f"the SHACL check failed: {report}")
        violations.extend(_report_violations(report, data))
    return sorted(set(violations))


def check_shapes(credential: dict[str, Any]) -> None:
    """Raise ``ShapeViolation`` (a ``MalformedDocument``) unless ``credential`` matches the
    shape of its type; the exception lists every violation."""
    violations = validate_shapes(credential)
    if violations:
        raise ShapeViolation(violations)


__all__ = ["ShapeViolation", "Violation", "check_shapes", "validate_shapes"]
