"""Strict JSON-LD processing: canonicalisation for eddsa-rdfc-2022 and the term check.

pyld is lenient where a verifier must not be: it silently drops undefined terms (so a field
added after signing would not change the signature), resolves relative IRIs against its
made-up default base ``http://example.org/base/``, and fetches any context it meets. Every
call here runs pyld with the offline loader, turns a dropped property into ``UndefinedTerm``
and a default-base IRI into ``RelativeIri``, and always uses URDNA2015 (RDFC-1.0), never
pyld's default URGNA2012.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pyld import jsonld
from pyld.jsonld import DEFAULT_BASE_IRI, JsonLdError, JsonLdProcessor

from credentials.errors import (
    CredentialsError,
    DisallowedContext,
    MalformedDocument,
    RelativeIri,
    UndefinedTerm,
)
from credentials.numbers import MAX_SAFE_INTEGER, check_numbers
from vocab import ContextNotAllowed, document_loader, known_context_urls
from vocab.contexts_bundle import vocab_typed_terms

_RDFC_OPTIONS: dict[str, Any] = {
    "algorithm": "URDNA2015",
    "format": "application/n-quads",
    "documentLoader": document_loader,
    "base": "",
}
_EXPAND_OPTIONS: dict[str, Any] = {"documentLoader": document_loader, "base": ""}


def _raise_dropped(expanded_property: Any) -> None:
    raise UndefinedTerm(
        f"term {expanded_property!r} is not defined by the document's contexts",
        path=str(expanded_property),
    )


_PROCESSOR = JsonLdProcessor(on_property_dropped=_raise_dropped)


def _translate(exc: JsonLdError) -> CredentialsError:
    """Find the first of our own errors in pyld's chain of wrapped causes."""
    seen: Exception | None = exc
    while seen is not None:
        if isinstance(seen, CredentialsError):
            return seen
        if isinstance(seen, ContextNotAllowed):
            return DisallowedContext(str(seen), path=seen.url)
        nxt = getattr(seen, "cause", None) or seen.__cause__
        seen = nxt if isinstance(nxt, Exception) else None
    return MalformedDocument(f"JSON-LD processing failed: {exc}")


def check_contexts_allowed(document: dict[str, Any]) -> None:
    """Cheap pre-check: every remote context the document names must be bundled.

    The loader would refuse them anyway; checking first gives a clear error without running
    the JSON-LD machinery.
    """
    allowed = known_context_urls()
    contexts = document.get("@context")
    if contexts is None:
        raise MalformedDocument("document has no @context", path="@context")
    for ctx in contexts if isinstance(contexts, list) else [contexts]:
        if isinstance(ctx, str) and ctx not in allowed:
            raise DisallowedContext(
                f"JSON-LD context {ctx!r} is not bundled with the connector", path="@context"
            )


def canonize_rdfc(document: dict[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of a JSON-LD document, strict about terms and IRIs."""
    check_contexts_allowed(document)
    try:
        nquads: str = _PROCESSOR.normalize(document, dict(_RDFC_OPTIONS))
    except JsonLdError as exc:
        raise _translate(exc) from exc
    if DEFAULT_BASE_IRI in nquads:
        raise RelativeIri(
            "the document holds a relative IRI (an undefined type or a relative id); "
            "IRIs must be absolute"
        )
    return nquads


def expand_strict(document: dict[str, Any]) -> list[Any]:
    check_contexts_allowed(document)
    try:
        expanded: list[Any] = _PROCESSOR.expand(document, dict(_EXPAND_OPTIONS))
    except JsonLdError as exc:
        raise _translate(exc) from exc
    if DEFAULT_BASE_IRI in json.dumps(expanded):
        raise RelativeIri("the document holds a relative IRI; IRIs must be absolute")
    return expanded


# --- term check for the JSON (JCS / JOSE) paths -------------------------------------------
#
# Whether JSON-LD expansion drops a property, or resolves a value against the default base,
# depends only on the document's *shape*: its keys, its contexts, its type values and the
# values of other terms typed ``@vocab`` in the bundled contexts, and whether each other
# string value is an absolute IRI. A document with an inline context is keyed by its content.
# Two credentials of one shape get the same verdict, so the (expensive) strict expansion runs
# once per shape and the JSON fast paths stay fast without giving up the check.

_SHAPE_CACHE_SIZE = 1024
_shape_verdicts: OrderedDict[Any, CredentialsError | None] = OrderedDict()


_is_absolute_iri_like = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:").match


@dataclass(frozen=True, slots=True)
class DocumentScan:
    """One walk over a JSON document, serving every JSON-path check at once.

    ``shape`` keys the term-check cache; ``jcs_plain`` says the stdlib encoder produces its
    RFC 8785 form (no floats, no keys that sort differently in UTF-16).
    """

    shape: Any
    jcs_plain: bool


def scan_document(document: Any) -> DocumentScan:
    """Walk ``document`` once: number policy (raises ``NumberOutOfRange``), shape, JCS form."""
    plain = True
    numbers_ok = True
    inline_context = False
    literal_keys = vocab_typed_terms()

    def walk(node: Any, key: str | None) -> Any:
        nonlocal plain, numbers_ok, inline_context
        if isinstance(node, str):
            if key is not None and (key[:1] == "@" or key == "type" or key in literal_keys):
                return node
            return "I" if _is_absolute_iri_like(node) else "S"
        if isinstance(node, dict):
            out = []
            for k, v in node.items():
                if not isinstance(k, str):
                    raise MalformedDocument("object keys must be strings")
                if not k.isascii() and max(k) >= "\ud800":
                    plain = False
                if k == "@context" and not (isinstance(v, str) or (
                        isinstance(v, list) and all(isinstance(c, str) for c in v))):
                    inline_context = True
                out.append((k, walk(v, k)))
            return tuple(out)
        if isinstance(node, list):
            return (list, *(walk(v, key) for v in node))
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, float):
            plain = False
            numbers_ok = numbers_ok and math.isfinite(node)
        elif isinstance(node, int):
            numbers_ok = numbers_ok and -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER
        else:
            raise MalformedDocument(f"not a JSON value: {type(node).__name__}")
        return 0

    shape = walk(document, None)
    if not numbers_ok or not plain:
        check_numbers(document)  # the precise check, naming the offending path
    if inline_context:
        # An inline context can give any term any type: only the whole document is a safe key.
        shape = json.dumps(document, sort_keys=True)
    return DocumentScan(shape, plain)


def check_terms(document: dict[str, Any], scan: DocumentScan | None = None) -> None:
    """Raise if JSON-LD expansion would drop a term or invent a base IRI for this document."""
    key = (scan or scan_document(document)).shape
    try:
        verdict = _shape_verdicts[key]
        _shape_verdicts.move_to_end(key)
    except KeyError:
        try:
            expand_strict(document)
            verdict = None
        except CredentialsError as exc:
            verdict = exc
        _shape_verdicts[key] = verdict
        if len(_shape_verdicts) > _SHAPE_CACHE_SIZE:
            _shape_verdicts.popitem(last=False)
    if verdict is not None:
        raise type(verdict)(str(verdict), path=verdict.problem.path)


__all__ = [
    "DocumentScan",
    "canonize_rdfc",
    "check_contexts_allowed",
    "check_terms",
    "expand_strict",
    "jsonld",
    "scan_document",
]
