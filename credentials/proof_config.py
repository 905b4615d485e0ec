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
_templates: dict[str, str] = {}


def _placeholder(name: str) -> str:
    if name == "verificationMethod":
        return "urn:bpc-placeholder:verification-method"
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
    shape = {k: (v if k not in _FILLED_KEYS else None) for k, v in config.items()}
    key = json.dumps(shape, sort_keys=True)
    template = _templates.get(key)
    if template is None:
        skeleton = {k: (_placeholder(k) if k in _FILLED_KEYS else v) for k, v in config.items()}
        template = canonize_rdfc(skeleton)
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:  # inline contexts could vary without end
            _templates.clear()
        _templates[key] = template
    out = template
    for name in _FILLED_KEYS:
        if name in config:
            out = out.replace(_placeholder(name), config[name])
    return out
