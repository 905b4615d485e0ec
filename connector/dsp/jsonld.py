"""Offline JSON-LD document loader for the two DSP 2025-1 contexts.

The hot path reads DSP messages as plain compact JSON and needs no JSON-LD processor. Expansion
is for the cases where meaning must be read as IRIs — a policy under a foreign context, or a
check that what we emit means what the spec's examples mean — and must never fetch: this loader
serves the bundled DSP context and ODRL profile and refuses every other URL.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

from connector.dsp.messages import DSP_CONTEXT, ODRL_PROFILE_CONTEXT
from connector.dsp.schemas import data_text

_FILES = {DSP_CONTEXT: "context.jsonld", ODRL_PROFILE_CONTEXT: "odrl-profile.jsonld"}


class ContextNotBundled(ValueError):
    """A document referenced a context other than the two DSP 2025-1 ones."""

    def __init__(self, url: str) -> None:
        super().__init__(f"JSON-LD context {url!r} is not bundled with connector.dsp; refusing it")
        self.url = url


@cache
def _context(url: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(data_text(_FILES[url]))
    return loaded


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader: bundled DSP contexts only (a copy each call; pyld may mutate it)."""
    if url not in _FILES:
        raise ContextNotBundled(url)
    return {
        "contextUrl": None,
        "documentUrl": url,
        "contentType": "application/ld+json",
        "document": copy.deepcopy(_context(url)),
    }
