"""Checking a declaration's signatures and statuses, online or from an offline cache.

``check_signatures`` runs the presentation through a ``credentials.Verifier`` (the shipper's
proof with ``challenge`` = the declaration id and ``domain`` = the consignee named in it, then
every embedded credential: proof, issuer binding, validity window, revocation and suspension);
``rules.classify`` then decides. Where DID documents and status lists come from is the
verifier's business:

* **online** (a node): the node's own verifier (DID resolution over HTTP, cached; status lists
  with ``status_max_age_s`` and ``status_unavailable`` from the node's config) and its trust
  registry;
* **recording** (``POST /shipments/cache``): like online, but every DID document and status
  list used is kept, so an officer can take them offline;
* **offline** (``OfflineCache``): a directory with the trust registry, the DID documents and
  the status lists; nothing else is ever fetched (no HTTP session exists in this mode), and a
  DID or list missing from the cache makes the credential fail with ``unknown-key`` /
  ``status-unavailable``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connector.shipments.rules import (
    DEFAULT_RULES,
    ShipmentRules,
    ShipmentVerdict,
    classify,
)
from credentials import Verifier, VerifyOptions
from credentials.errors import DIDResolutionError
from credentials.resolver import DIDResolver
from credentials.status_list import StatusChecker
from credentials.timestamps import format_datetime, parse_datetime
from credentials.trust import TrustRegistry
from credentials.verifier import VerificationResult

TRUST_FILE = "trust-registry.json"
DIDS_FILE = "did-documents.json"
STATUS_FILE = "status-lists.json"
META_FILE = "cache.json"
#: Past this age the cached status lists no longer count as knowing a credential's status.
DEFAULT_MAX_CACHE_AGE = timedelta(days=7)


def _declared_consignee(declaration: dict[str, Any]) -> str | None:
    embedded = declaration.get("verifiableCredential")
    for item in embedded if isinstance(embedded, list) else []:
        if isinstance(item, dict) and "ShipmentDeclarationCredential" in (item.get("type") or []):
            subject = item.get("credentialSubject")
            consignee = subject.get("consignee") if isinstance(subject, dict) else None
            return consignee if isinstance(consignee, str) else None
    return None


async def check_signatures(declaration: Any, verifier: Verifier, now: datetime,
                           ) -> VerificationResult | None:
    """The presentation's verification result (None when it is not a JSON object)."""
    if not isinstance(declaration, dict):
        return None
    declaration_id = declaration.get("id")
    options = VerifyOptions(
        challenge=declaration_id if isinstance(declaration_id, str) else "",
        domain=_declared_consignee(declaration) or "", now=now)
    return await verifier.verify_presentation(declaration, options)


async def verify_declaration(declaration: Any, verifier: Verifier, trust: TrustRegistry,
                             now: datetime, rules: ShipmentRules = DEFAULT_RULES,
                             ) -> ShipmentVerdict:
    """Signatures and statuses through ``verifier``, then the classification."""
    checks = await check_signatures(declaration, verifier, now)
    return classify(declaration, checks, trust, now, rules)


# --- recording what online verification used ---------------------------------------------------


class RecordingResolver(DIDResolver):
    """Resolves through ``inner`` and keeps every did:web document it returned."""

    def __init__(self, inner: DIDResolver) -> None:
        super().__init__()
        self._inner = inner
        self.documents: dict[str, dict[str, Any]] = {}

    async def resolve(self, did: str) -> dict[str, Any]:
        document = await self._inner.resolve(did)
        if did.startswith("did:web:"):
            self.documents[did] = document
        return document


@dataclass
class RecordingFetcher:
    """A status list fetcher that keeps every list it fetched."""

    inner: Any
    lists: dict[str, Any] = field(default_factory=dict)

    async def __call__(self, url: str) -> dict[str, Any] | str:
        document: dict[str, Any] | str = await self.inner(url)
        self.lists[url] = document
        return document


# --- the offline cache ----------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None


def _write(path: Path, data: Any) -> None:
    """Atomically: a verification never reads a half-written cache file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1, sort_keys=True)
    os.replace(temporary, path)


class OfflineCacheError(Exception):
    """The cache directory is missing or unreadable."""


@dataclass
class OfflineCache:
    """Trust registry, DID documents and status lists in a directory (see module docstring)."""

    directory: Path

    def store(self, bundle: dict[str, Any], *, node: str | None = None) -> dict[str, int]:
        """Merge a ``POST /shipments/cache`` answer into the directory; counts written."""
        trust = bundle.get("trustRegistry")
        TrustRegistry.from_json(trust)  # refuse a registry we could not read back
        dids = {**(_read(self.directory / DIDS_FILE) or {}), **(bundle.get("didDocuments") or {})}
        lists = {**(_read(self.directory / STATUS_FILE) or {}),
                 **(bundle.get("statusLists") or {})}
        _write(self.directory / TRUST_FILE, trust)
        _write(self.directory / DIDS_FILE, dids)
        _write(self.directory / STATUS_FILE, lists)
        _write(self.directory / META_FILE, {"node": node, "filledAt": bundle.get("filledAt")})
        return {"didDocuments": len(dids), "statusLists": len(lists)}

    def _load(self, name: str) -> Any:
        try:
            return _read(self.directory / name)
        except (OSError, ValueError) as exc:
            raise OfflineCacheError(f"cannot read {self.directory / name}: {exc}") from exc

    def trust(self) -> TrustRegistry:
        data = self._load(TRUST_FILE)
        if data is None:
            raise OfflineCacheError(f"{self.directory} holds no {TRUST_FILE}: fill it with "
                                    "`bpc shipment cache --node URL DIR` first")
        return TrustRegistry.from_json(data)

    def filled_at(self) -> datetime | None:
        meta = self._load(META_FILE) or {}
        value = meta.get("filledAt")
        return parse_datetime(value, path="filledAt") if isinstance(value, str) else None

    def verifier(self, now: datetime, max_age: timedelta = DEFAULT_MAX_CACHE_AGE) -> Verifier:
        """A verifier that reads only this directory."""
        dids: dict[str, Any] = self._load(DIDS_FILE) or {}
        lists: dict[str, Any] = self._load(STATUS_FILE) or {}
        filled = self.filled_at()
        stale = filled is None or now - filled > max_age

        async def did_document(did: str) -> dict[str, Any]:
            document = dids.get(did)
            if not isinstance(document, dict):
                raise DIDResolutionError(f"{did} is not in the offline cache")
            return document

        async def status_list(url: str) -> dict[str, Any] | str:
            if stale:
                raise LookupError(f"the offline cache was filled at "
                                  f"{format_datetime(filled) if filled else 'an unknown time'}"
                                  f", more than {max_age} ago: status unknown")
            document = lists.get(url)
            if document is None:
                raise LookupError(f"{url} is not in the offline cache")
            return document  # type: ignore[no-any-return]

        resolver = DIDResolver(web_fetcher=did_document, cache_ttl_s=math.inf)
        checker = StatusChecker(status_list, resolver=resolver, max_age_s=math.inf,
                                on_unavailable="fail")
        return Verifier(resolver, status_checker=checker)

    def sources(self) -> dict[str, Any]:
        filled = self.filled_at()
        return {"mode": "offline", "cache": str(self.directory),
                "filledAt": format_datetime(filled) if filled else None}


__all__ = ["DEFAULT_MAX_CACHE_AGE", "OfflineCache", "OfflineCacheError", "RecordingFetcher",
           "RecordingResolver", "check_signatures", "verify_declaration"]
