"""JSON Canonicalization Scheme (RFC 8785) for eddsa-jcs-2022.

rfc8785 is the reference; it is pure Python and was most of the cost of a JCS proof. For
documents without floating-point numbers RFC 8785 output is exactly what the C-accelerated
``json.dumps`` produces with sorted keys, compact separators and raw UTF-8 (strings are
escaped the same way, integers print the same), provided keys sort the same by code point as
by UTF-16 code unit, which holds unless a key has characters from U+D800 upwards. So those
documents take the fast path; every other one (floats, exotic keys) goes through rfc8785.
Tests compare both on generated documents.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from credentials.errors import MalformedDocument, NumberOutOfRange
from credentials.jsonld import DocumentScan, scan_document

_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
).encode
# The same encoder's C core, made once: ``JSONEncoder.encode`` builds it anew on every call,
# which cost more than the encoding itself on a 600-byte hub event (3.6 µs against 8.9).
# No ``markers`` (circular check): every document here was walked by ``scan_document`` or
# the hub's details check first, which a cycle would not have passed.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    _iterencode = _c_make_encoder(None, None, json.encoder.c_encode_basestring, None, ":",
                                  ",", True, False, False)

    def _encode(document: Any) -> str:  # the faster one, where there is C
        return "".join(_iterencode(document, 0))


def canonical_json(document: Any, scan: DocumentScan | None = None) -> bytes:
    """RFC 8785 bytes; pass the document's scan when one was already made."""
    if (scan or scan_document(document)).jcs_plain:
        try:
            return _encode(document).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: rfc8785 reports them properly
            pass
    try:
        return rfc8785.dumps(document)
    except rfc8785.IntegerDomainError as exc:
        raise NumberOutOfRange(f"number outside the I-JSON range: {exc}") from exc
    except rfc8785.FloatDomainError as exc:
        raise NumberOutOfRange(f"number not representable in JSON: {exc}") from exc
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:
        raise MalformedDocument(f"cannot canonicalise the document as JSON: {exc}") from exc
