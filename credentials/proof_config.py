"""Canonical N-Quads of a Data Integrity proof configuration, without re-running JSON-LD.

An eddsa-rdfc-2022 proof canonicalises two documents: the credential and the proof's own
configuration. The configuration is a handful of fixed keys whose meaning comes from the
credential's (protected) contexts; only its values change from proof to proof. So we run
pyld once per *shape* (contexts, keys, type, cryptosuite, purpose) on a configuration whose
values are placeholders, keep the canonical N-Quads as a template, and fill in the values.
Every predicate of the proof node is distinct, so the canonical line order does not depend on
the values. Anything unusual (non-string values, characters N-Quads would escape, a relative
verification method) takes the full pyld path. Tests check the template against pyld.
"""

from __future__ import annotations

import json
import re
from typing import Any

from credentials.jsonld import canonize_rdfc

_FILLED_KEYS = ("created", "verificationMethod", "challenge", "domain", "expires", "nonce")
_SHAPE_KEYS = frozenset({"type", "cryptosuite", "proofPurpose", "@context", *_FILLED_KEYS})
_SAFE_LITERAL = re.compile(r"[\x20-\x7e]*\Z")
_UNSAFE_CHARS = frozenset('"\\<>{}|^`')
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*\Z")

_TEMPLATE_CACHE_SIZE = 256
_templates: dict[str, tuple[str, re.Pattern[str]] | None] = {}


def _placeholder(name: str, config: dict[str, Any]) -> str:
    if name == "verificationMethod":
        # Same scheme as the real value, so a scheme that a context defines as a prefix
        # (a compact IRI such as ``bp:key-1``) shows up as a placeholder that did not survive.
        scheme = str(config[name]).split(":", 1)[0]
        return f"{scheme}:bpc-placeholder-verification-method"
    return f"bpc-placeholder-{name}"


def _fits_template(config: dict[str, Any]) -> bool:
    if not set(config) <= _SHAPE_KEYS:
        return False
    for name in _FILLED_KEYS:
        value = config.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not _SAFE_LITERAL.match(value):
            return False
        if _UNSAFE_CHARS.intersection(value):
            return False
    vm = config.get("verificationMethod")
    if vm is not None and not _ABSOLUTE_IRI.match(vm):
        return False
    return all(isinstance(config.get(k, ""), str) for k in ("type", "cryptosuite", "proofPurpose"))


def canonize_proof_config(config: dict[str, Any]) -> str:
    """RDFC-1.0 canonical N-Quads of a proof configuration (templated when safe)."""
    if not _fits_template(config):
        return canonize_rdfc(config)
    placeholders = {_placeholder(k, config): k for k in _FILLED_KEYS if k in config}
    shape = {k: (v if k not in _FILLED_KEYS else None) for k, v in config.items()}
    shape["verificationMethod"] = next(
        (p for p, k in placeholders.items() if k == "verificationMethod"), None
    )
    key = json.dumps(shape, sort_keys=True)
    cached = _templates.get(key, ())
    if cached == ():
        skeleton = {k: (v if k not in _FILLED_KEYS else _placeholder(k, config))
                    for k, v in config.items()}
        canonical = canonize_rdfc(skeleton)
        # Each value must appear exactly once, verbatim; if JSON-LD rewrote one (a prefix,
        # a datatype), this shape always takes the full path.
        usable = all(canonical.count(p) == 1 for p in placeholders)
        pattern = re.compile("|".join(re.escape(p) for p in placeholders))
        cached = (canonical, pattern) if usable else None
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:  # inline contexts could vary without end
            _templates.clear()
        _templates[key] = cached
    if cached is None:
        return canonize_rdfc(config)
    template, pattern = cached
    # One pass: a value that happens to look like another placeholder is never re-replaced.
    return pattern.sub(lambda m: str(config[placeholders[m.group(0)]]), template)
