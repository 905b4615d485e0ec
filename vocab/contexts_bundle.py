"""The bundled JSON-LD contexts, read once from the package's data files.

``contexts/index.json`` maps each context URL to its file, its origin and its licence; the
files are the exact JSON the upstream packages export (see ``contexts/ORIGIN.md``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
ED25519_2020_V1 = "https://w3id.org/security/suites/ed25519-2020/v1"
DID_V1 = "https://www.w3.org/ns/did/v1"

#: Our own namespace. ``w3id.org/battery-passport-connector`` is the stable prefix we document
#: for every term this project defines; the node never dereferences it (the loader serves it).
BATTERY_CONTEXT_V1 = "https://w3id.org/battery-passport-connector/battery/v1"
BATTERY_VOCAB = "https://w3id.org/battery-passport-connector/vocab#"
#: Catena-X role credentials (Membership, DataExchangeGovernance, Dismantler, BPN) in VCDM 2.0.
ROLES_CONTEXT_V1 = "https://w3id.org/battery-passport-connector/roles/v1"
#: Cell-level passport entries of the hub bridge (terms under ``BATTERY_VOCAB``). Its own URL
#: only because ``battery/v1`` is published and never edited; used after ``battery/v1``.
HUB_CONTEXT_V1 = "https://w3id.org/battery-passport-connector/hub/v1"
#: Shipment declarations (functionality tests, facility authorisations, agreement attestations);
#: terms under ``SHIPMENT_VOCAB``, used after ``battery/v1`` whose terms it reuses.
SHIPMENT_CONTEXT_V1 = "https://w3id.org/battery-passport-connector/shipment/v1"
SHIPMENT_VOCAB = "https://w3id.org/battery-passport-connector/shipment#"


@cache
def _index() -> MappingProxyType[str, dict[str, str]]:
    raw = resources.files("vocab").joinpath("contexts/index.json").read_text("utf-8")
    return MappingProxyType(json.loads(raw))


@cache
def _documents() -> MappingProxyType[str, Any]:
    folder = resources.files("vocab").joinpath("contexts")
    docs = {
        url: json.loads(folder.joinpath(entry["file"]).read_text("utf-8"))
        for url, entry in _index().items()
    }
    return MappingProxyType(docs)


def bundled_context(url: str) -> Any | None:
    """The parsed context document for ``url``, or None when we do not ship it."""
    return _documents().get(url)


@cache
def vocab_typed_terms() -> frozenset[str]:
    """Terms whose string values are themselves terms (``"@type": "@vocab"``), at any depth of
    any bundled context. Whether such a value is defined depends on the value, not its shape."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for name, definition in node.items():
                if isinstance(definition, dict):
                    if definition.get("@type") == "@vocab":
                        found.add(name)
                    visit(definition)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    for document in _documents().values():
        visit(document)
    return frozenset(found)


def known_context_urls() -> frozenset[str]:
    return frozenset(_index())


def context_origin(url: str) -> dict[str, str]:
    """Where a bundled context came from and under which licence."""
    return dict(_index()[url])
