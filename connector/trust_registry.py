"""The node's trust registry: whom it believes, for which credential types, kept in its store.

``credentials.trust.TrustRegistry`` is the library; this module makes one node own one:

* **Stored, shared by replicas.** The registry lives in the store as ``TrustRegistryRecord``
  ``default`` (its ``to_json``). Every change runs in a write transaction that locks the stored
  row, re-reads it, applies the change to *that* copy and saves it with its version, so two
  replicas changing trust at the same moment never lose each other's change (a lost race on
  the version is retried). Only after the commit is the in-memory copy swapped, and only for a
  newer version than the one held, so concurrent requests cannot roll it back.
* **Cheap to read.** ``NodeTrust.current`` is the registry object itself, never mutated after it
  was swapped in: the policy engine (``EvaluationContext(trust=…)``) reads it per request.
* **Seeded from the config.** ``trusted_issuers`` (credential type → issuer DIDs, ``"*"`` for
  every type) and ``trust_authorities`` (authority DID → the types its trust lists may vouch
  for) are applied at every start; applying them again changes nothing. The config is
  authoritative for what it names: an entry removed over the API comes back at the next start
  unless it is removed from the config too.
* **Kept in step.** A watch (``config.watch_interval_s``) reloads the stored registry when
  another replica changed it, and re-verifies every imported trust list
  (``recheck_sources``): a list that expired, was revoked or suspended by its authority, or
  whose authority lost its scope is dropped from the store. The status of imported lists is
  fetched afresh each round (their cached status lists are forgotten first), so a revocation
  is seen within one interval. A list whose status or key merely *could not be fetched* (the
  authority's node is down) is kept: it still ends at its ``validUntil``, and dropping it for
  an outage would need an operator to import it again.

Importing a list verifies it (DID resolution, status fetch) *before* taking the write lock,
so no transaction waits on the network; inside the transaction it is merged into the stored
copy with the same verifier (its caches are warm by then) and the same clock, so the stored
registry decides (an authority removed meanwhile refuses the list).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from connector.background import periodic
from connector.store import Store
from connector.store.errors import Conflict
from connector.store.records import TrustRegistryRecord
from credentials import Verifier, VerifyOptions
from credentials.errors import ProblemType
from credentials.jose import credential_from_claims
from credentials.status_list import StatusChecker
from credentials.timestamps import now_utc
from credentials.trust import (
    ANY_TYPE,
    GENERIC_TYPES,
    LOCAL_SOURCE,
    TRUST_LIST_TYPE,
    TrustEntry,
    TrustListRejected,
    TrustListSource,
    TrustRegistry,
    credential_type_name,
)

if TYPE_CHECKING:
    from connector.config import NodeConfig

log = logging.getLogger(__name__)

REGISTRY_NAME = "default"
#: How often a change is retried after losing a race with another replica.
MAX_ATTEMPTS = 8
#: Verification problems that say "could not check now", not "this list is bad".
TRANSIENT_PROBLEMS = frozenset({ProblemType.STATUS_UNAVAILABLE, ProblemType.UNKNOWN_KEY})
#: A credential type's short name (``credential_type_name`` of an IRI); ``*`` is separate.
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,199}")
#: DID syntax (DID Core §3.1): method name, then method-specific id of idchars and ``:``.
_DID = re.compile(r"did:[a-z0-9]+:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})*"
                  r"(?::(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})*)*")
MAX_DID_CHARS = 2048

T = TypeVar("T")


class UnknownTrustList(LookupError):
    """``remove_list`` names a source that was never imported (or is already gone)."""


# --- checks shared by the config, the management API and the registry ------------------------


def check_did(value: str) -> str:
    """``value`` if it is a DID (DID Core syntax, no path, query or fragment); else ValueError."""
    if not isinstance(value, str) or len(value) > MAX_DID_CHARS or not _DID.fullmatch(value) \
            or value.endswith(":"):
        raise ValueError(f"{value!r} is not a DID (did:<method>:<id>)")
    return value


def check_credential_type(value: str, *, allow_any: bool = True) -> str:
    """The short name trust is kept under (IRIs such as ``cx:XCredential`` are shortened, as
    ``TrustRegistry.trusts`` looks them up), or ValueError for types trust cannot be granted
    for: ``VerifiableCredential`` says nothing, ``TrustListCredential`` is what authorities are
    for, and ``*`` only where the wildcard is meant."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a credential type is a non-empty string")
    if value == ANY_TYPE:
        if not allow_any:
            raise ValueError("'*' (every type) is not allowed here")
        return value
    name = credential_type_name(value.strip())
    if name in GENERIC_TYPES:
        raise ValueError(f"{name} is generic: trust is granted for a specific credential type")
    if name == TRUST_LIST_TYPE:
        raise ValueError(f"{TRUST_LIST_TYPE} is not an issuer type: add the issuer as a "
                         "trust-list authority instead")
    if not _TYPE_NAME.fullmatch(name):
        raise ValueError(f"{value!r} is not a credential type name")
    return name


def check_trust_seeds(setting: str | None, value: Any) -> Any:
    """The ``trusted_issuers`` / ``trust_authorities`` settings, checked and normalised; a
    string (an environment variable) is read as JSON. Anything but an object of lists of
    strings is handed back unchanged for the settings' own type check to describe."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("expected a JSON object such as "
                             '{"DismantlerCredential": ["did:web:…"]}') from None
    if not isinstance(value, Mapping):
        return value
    out: dict[str, list[str]] = {}
    for key, items in value.items():
        if not isinstance(items, list) or not items or not all(
                isinstance(item, str) for item in items):
            raise ValueError(f"{key}: expected a non-empty list of strings")
        if setting == "trust_authorities":
            out[check_did(key)] = sorted({check_credential_type(t) for t in items})
        else:
            kind = check_credential_type(key)
            out.setdefault(kind, [])
            out[kind] = sorted({*out[kind], *(check_did(d) for d in items)})
    return out


@dataclass(frozen=True, slots=True)
class TrustSeeds:
    """What the node's config says it trusts (applied at every start)."""

    issuers: Mapping[str, list[str]] = field(default_factory=dict)
    authorities: Mapping[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: NodeConfig) -> TrustSeeds:
        return cls(dict(config.trusted_issuers), dict(config.trust_authorities))

    def apply(self, registry: TrustRegistry) -> None:
        for kind, issuers in self.issuers.items():
            for issuer in issuers:
                add_issuer_to(registry, kind, issuer)
        for authority, scope in self.authorities.items():
            registry.trust_authority(authority, scope)

    def names(self, credential_type: str, issuer: str) -> bool:
        """Whether this local entry comes from the config (listings say so)."""
        if credential_type == TRUST_LIST_TYPE:
            return issuer in self.authorities
        return issuer in self.issuers.get(credential_type, ())


def add_issuer_to(registry: TrustRegistry, credential_type: str, issuer: str) -> TrustEntry:
    """``trust`` or, for ``*``, the explicit ``trust_any_type``."""
    if credential_type == ANY_TYPE:
        return registry.trust_any_type(issuer)
    return registry.trust(credential_type, issuer)


def _copy(registry: TrustRegistry) -> TrustRegistry:
    return TrustRegistry.from_json(registry.to_json())


def _status_urls(credential: dict[str, Any] | str) -> list[str]:
    """The status list URLs a (Data Integrity or VC-JOSE) credential names, read without
    verifying it: only used to drop those lists from the status cache."""
    try:
        if isinstance(credential, str):
            payload = credential.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            credential = credential_from_claims(claims)
        raw = credential.get("credentialStatus")
        entries = raw if isinstance(raw, list) else [raw]
        return [e["statusListCredential"] for e in entries
                if isinstance(e, dict) and isinstance(e.get("statusListCredential"), str)]
    except Exception:  # not readable: the verifier will say why when it checks
        return []


# --- the node's registry ----------------------------------------------------------------------


class NodeTrust:
    """The node's current trust registry, its stored copy and the changes operators make."""

    def __init__(self, store: Store, verifier: Verifier, *,
                 seeds: TrustSeeds | None = None) -> None:
        self._store = store
        self._verifier = verifier
        self.seeds = seeds or TrustSeeds()
        self._registry = TrustRegistry()
        self._version = 0

    @property
    def current(self) -> TrustRegistry:
        """The registry to decide with now. Never changed in place: a change swaps in a new
        object, so a caller holding one sees a consistent snapshot."""
        return self._registry

    @property
    def version(self) -> int:
        """The stored version ``current`` was read from (0: nothing stored yet)."""
        return self._version

    def _swap(self, registry: TrustRegistry, version: int) -> bool:
        if version <= self._version:
            return False
        self._registry, self._version = registry, version
        return True

    # -- loading --

    async def load(self) -> None:
        """At start: read the stored registry and apply the config's seeds (a write only when
        they add or change something)."""
        await self.reload()
        if self.seeds.issuers or self.seeds.authorities:
            await self._change(self.seeds.apply, actor="config", action="trust.config",
                               subject=REGISTRY_NAME)

    async def reload(self) -> bool:
        """Take the stored registry if another replica changed it; True if it did."""
        async with self._store.read() as reader:
            record = await reader.get_trust_registry(REGISTRY_NAME)
        if record is None or record.version <= self._version:
            return False
        return self._swap(TrustRegistry.from_json(record.document), record.version)

    # -- changes --

    async def _change(self, apply: Callable[[TrustRegistry], T | Awaitable[T]], *,
                      actor: str, action: str, subject: str,
                      details: dict[str, Any] | None = None) -> tuple[T, bool]:
        """Apply ``apply`` to the stored registry in a write transaction and save it if it
        changed anything; ``(what apply returned, whether it changed something)``.

        An exception from ``apply`` rolls the transaction back: a refused change stores
        nothing. A lost race with another writer is retried on the then stored copy."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with self._store.transaction() as tx:
                    record = await tx.get_trust_registry(REGISTRY_NAME, for_update=True)
                    registry = (TrustRegistry.from_json(record.document) if record is not None
                                else TrustRegistry())
                    before = registry.to_json()
                    result = apply(registry)
                    if inspect.isawaitable(result):
                        result = await result
                    after = registry.to_json()
                    changed = after != before
                    version = record.version if record is not None else 0
                    if changed:
                        saved = await tx.put_trust_registry(TrustRegistryRecord(
                            name=REGISTRY_NAME, document=after, version=version,
                            **({"created_at": record.created_at} if record else {})))
                        version = saved.version
                        await tx.append_audit(actor=actor, action=action, subject_id=subject,
                                              details=details)
            except Conflict:
                if attempt == MAX_ATTEMPTS:
                    raise
                continue
            self._swap(registry, version)
            return result, changed
        raise AssertionError("unreachable")

    async def add_issuer(self, credential_type: str, issuer: str) -> bool:
        """Trust ``issuer`` for ``credential_type`` (``*``: every type); False if it already
        was (nothing written). ValueError for types or issuers trust cannot be given to."""
        kind, did = check_credential_type(credential_type), check_did(issuer)
        _, changed = await self._change(
            lambda registry: add_issuer_to(registry, kind, did), actor="operator",
            action="trust.issuer.add", subject=did, details={"credentialType": kind})
        return changed

    async def remove_issuer(self, credential_type: str, issuer: str) -> bool:
        """Stop trusting a local entry; False if there was none (imported entries go with
        their list, ``remove_list``)."""
        kind = credential_type if credential_type == ANY_TYPE else credential_type_name(
            credential_type)
        if kind == TRUST_LIST_TYPE:
            return False
        removed, _ = await self._change(
            lambda registry: registry.distrust(kind, issuer), actor="operator",
            action="trust.issuer.remove", subject=issuer, details={"credentialType": kind})
        return removed

    async def add_authority(self, authority: str, scope: Iterable[str]) -> bool:
        """Accept trust lists signed by ``authority`` for the types in ``scope`` (``*``: all),
        replacing its previous scope; True if it was not an authority before."""
        did = check_did(authority)
        types = sorted({check_credential_type(t) for t in scope})
        if not types:
            raise ValueError("an authority needs at least one credential type")

        def apply(registry: TrustRegistry) -> bool:
            new = registry.authority_scope(did) is None
            registry.trust_authority(did, types)
            return new

        new, _ = await self._change(apply, actor="operator", action="trust.authority.set",
                                    subject=did, details={"credentialTypes": types})
        return new

    async def remove_authority(self, authority: str) -> bool:
        """Stop accepting ``authority``'s lists; its imported entries stop counting at once
        (and the next recheck drops the lists). False if it was no authority."""
        removed, _ = await self._change(
            lambda registry: registry.distrust(TRUST_LIST_TYPE, authority), actor="operator",
            action="trust.authority.remove", subject=authority)
        return removed

    async def import_list(self, credential: dict[str, Any] | str, *,
                          now: datetime | None = None) -> TrustListSource:
        """Verify a trust list and merge it, or raise ``TrustListRejected`` (nothing stored).

        Checked first against the stored registry outside any transaction (the network
        part), then merged into the locked stored copy (see the module docstring)."""
        moment = now or now_utc()
        async with self._store.read() as reader:
            record = await reader.get_trust_registry(REGISTRY_NAME)
        trial = TrustRegistry.from_json(record.document) if record else TrustRegistry()
        await trial.import_trust_list(credential, self._verifier, now=moment)

        async def apply(registry: TrustRegistry) -> TrustListSource:
            return await registry.import_trust_list(credential, self._verifier, now=moment)

        source, _ = await self._change(apply, actor="operator", action="trust.list.import",
                                       subject=_source_id(credential, trial))
        return source

    async def remove_list(self, source: str) -> int:
        """Forget an imported list and its entries; how many entries went. ``UnknownTrustList``
        if no list ``source`` is imported."""

        def apply(registry: TrustRegistry) -> int:
            if source == LOCAL_SOURCE or source not in {s.source for s in registry.sources()}:
                raise UnknownTrustList(source)
            return registry.remove_source(source)

        count, _ = await self._change(apply, actor="operator", action="trust.list.remove",
                                      subject=source)
        return count

    # -- the watch --

    async def recheck(self, *, now: datetime | None = None) -> dict[str, str]:
        """Verify every imported list again and drop (in the store) those that fail for good;
        ``{source: reason}`` of the dropped ones."""
        current = self.current
        if not current.sources():
            return {}
        moment = now or now_utc()
        checker = self._verifier.status_checker
        if isinstance(checker, StatusChecker):
            for record in current.sources():
                for url in _status_urls(record.credential):
                    checker.forget(url)
        trial = _copy(current)
        failed = await trial.recheck_sources(self._verifier, now=moment)
        doomed: dict[str, tuple[TrustListSource, str]] = {}
        for record in current.sources():
            if record.source not in failed:
                continue
            if await self._transient(record, moment):
                log.warning("trust list %s could not be checked (%s); kept until it can be",
                            record.source, failed[record.source])
                continue
            doomed[record.source] = (record, failed[record.source])
        if not doomed:
            return {}

        def apply(registry: TrustRegistry) -> dict[str, str]:
            dropped: dict[str, str] = {}
            for stored in registry.sources():
                checked = doomed.get(stored.source)
                # Only the version that failed: a newer import since then is left alone.
                if checked is not None and stored.valid_from == checked[0].valid_from:
                    registry.remove_source(stored.source)
                    dropped[stored.source] = checked[1]
            return dropped

        dropped, _ = await self._change(
            apply, actor="trust-watch", action="trust.list.drop", subject=REGISTRY_NAME,
            details={"dropped": {s: r for s, (_, r) in doomed.items()}})
        for source, reason in dropped.items():
            log.info("trust list %s dropped: %s", source, reason)
        return dropped

    async def _transient(self, record: TrustListSource, moment: datetime) -> bool:
        """Whether the list failed only because its status or its authority's key could not
        be fetched (rather than being expired, revoked, forged or out of scope)."""
        if not record.live(moment):
            return False
        result = await self._verifier.verify_credential(record.credential,
                                                        VerifyOptions(now=moment))
        problems = {p.type for p in result.problems}
        return not result.verified and bool(problems) and problems <= TRANSIENT_PROBLEMS

    async def watch_round(self) -> int:
        """One round of the watch: reload, then recheck; how many things changed."""
        changed = int(await self.reload())
        return changed + len(await self.recheck())

    # -- views --

    def to_view(self, *, now: datetime | None = None) -> dict[str, Any]:
        """``GET /management/trust``: issuers, authorities and imported lists."""
        moment = now or now_utc()
        registry = self.current
        sources = {s.source: s for s in registry.sources()}
        issuers, authorities = [], []
        for entry in sorted(registry.entries(),
                            key=lambda e: (e.credential_type, e.issuer, e.source)):
            if entry.credential_type == TRUST_LIST_TYPE:
                authorities.append({
                    "issuer": entry.issuer, "credentialTypes": sorted(entry.scope),
                    "source": entry.source,
                    "fromConfig": self.seeds.names(entry.credential_type, entry.issuer)})
                continue
            view = entry.to_json()
            if entry.source == LOCAL_SOURCE:
                view["active"] = True
                view["fromConfig"] = self.seeds.names(entry.credential_type, entry.issuer)
            else:
                record = sources.get(entry.source)
                scope = registry.authority_scope(record.authority) if record else None
                view["active"] = bool(record and record.live(moment) and scope is not None
                                      and (entry.credential_type in scope or ANY_TYPE in scope))
            issuers.append(view)
        lists = [list_view(registry, record, moment) for record in sources.values()]
        return {"issuers": issuers, "authorities": authorities, "lists": lists}


def list_view(registry: TrustRegistry, record: TrustListSource,
              now: datetime | None = None) -> dict[str, Any]:
    """An imported list without its credential: who, when, whether it counts, what it grants."""
    moment = now or now_utc()
    view = record.to_json()
    del view["credential"]
    view["active"] = record.live(moment) and registry.authority_scope(record.authority) \
        is not None
    view["entries"] = [{"credentialType": e.credential_type, "issuer": e.issuer}
                       for e in sorted(registry.entries(record.source),
                                       key=lambda e: (e.credential_type, e.issuer))]
    return view


def _source_id(credential: dict[str, Any] | str, trial: TrustRegistry) -> str:
    if isinstance(credential, dict) and isinstance(credential.get("id"), str):
        return str(credential["id"])
    return next((s.source for s in trial.sources()), "unknown")


# --- the app resource -------------------------------------------------------------------------


TRUST = web.AppKey("trust", NodeTrust)


async def trust_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the registry (after the store and the verifier) and watch it while the node runs."""
    from connector.app import CONFIG, STORE, VERIFIER  # app.py imports this module lazily

    config = app[CONFIG]
    trust = NodeTrust(app[STORE], app[VERIFIER], seeds=TrustSeeds.from_config(config))
    await trust.load()
    app[TRUST] = trust

    async def round_(app: web.Application) -> int:
        return await app[TRUST].watch_round()

    watch = periodic("trust-watch", config.watch_interval_s, round_,
                     "trust registry: %d reload(s) or dropped list(s)")
    async with contextlib.asynccontextmanager(watch)(app):
        yield


__all__ = [
    "TRUST",
    "NodeTrust",
    "TrustListRejected",
    "TrustSeeds",
    "UnknownTrustList",
    "check_credential_type",
    "check_did",
    "check_trust_seeds",
    "list_view",
    "trust_ctx",
]
