"""The only JSON-LD document loader the connector uses.

pyld's default loader fetches any URL it meets; a credential could then redefine its own
terms from a server its author controls. This loader answers from the bundled contexts and
refuses everything else, so no network request is ever made while processing JSON-LD.
"""

from __future__ import annotations

import copy
from typing import Any

from vocab.contexts_bundle import bundled_context


class ContextNotAllowed(ValueError):
    """A document referenced a JSON-LD context that is not in the bundled allow-list."""

    def __init__(self, url: str) -> None:
        super().__init__(f"JSON-LD context {url!r} is not bundled with the connector; refusing it")
        self.url = url


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld document loader serving bundled contexts from memory.

    pyld caches processed contexts itself, but it may mutate what it is given, so each call
    returns a copy of the bundled document.
    """
    document = bundled_context(url)
    if document is None:
        raise ContextNotAllowed(url)
    return {
        "contextUrl": None,
        "documentUrl": url,
        "contentType": "application/ld+json",
        "document": copy.deepcopy(document),
    }
