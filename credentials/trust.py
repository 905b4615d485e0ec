"""Trust registry: which issuers this node believes, for which credential types, and why.

A valid proof only says *who* signed; whether that signer may vouch for *this kind* of fact
(a certified dismantler, a data-space member) is a separate, local decision. The registry
holds it per credential type, so trusting a certification body for ``DismantlerCredential``
does not make its ``MembershipCredential`` believable. A wildcard (any type) exists, but only
as its own explicit call.

Federation: an authority the node trusts *for trust lists* (with a scope of credential types)
can publish a signed ``TrustListCredential`` naming issuers per type. Importing one verifies
it, checks that every entry is inside the authority's scope, and merges the entries tagged
with the list's id as their source, so they can be listed, replaced by a newer list and
removed together. Imported entries stop counting when their list expires or when the
authority loses its scope, without anyone having to clean up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from credentials.errors import CredentialsError, MalformedDocument, Problem, ProblemType
from credentials.model import types_of
from credentials.timestamps import format_datetime, now_utc, parse_datetime
from credentials.verifier import VerificationResult, Verifier, VerifyOptions
from vocab import BATTERY_VOCAB, CREDENTIALS_V2

#: The explicit wildcard: an issuer trusted for every credential type (never for trust lists).
ANY_TYPE = "*"
#: The credential type of a federated trust list; registry entries for it are authorities.
TRUST_LIST_TYPE = "TrustListCredential"
TRUST_LIST_SUBJECT_TYPE = "TrustList"
#: The source of entries configured on this node (as opposed to imported from a trust list).
LOCAL_SOURCE = "local"
#: Types that say nothing about what a credential claims, so trust is never granted for them.
GENERIC_TYPES = frozenset({"VerifiableCredential"})

#: The trust list terms, inline because no bundled context defines them (yet): see ORIGIN.md.
#: Terms live in the project's namespace; ``credentialType`` values are plain strings, the
#: same short type names the registry is keyed by.
TRUST_LIST_CONTEXT: dict[str, Any] = {
    "@protected": True,
    TRUST_LIST_TYPE: f"{BATTERY_VOCAB}{TRUST_LIST_TYPE}",
    TRUST_LIST_SUBJECT_TYPE: f"{BATTERY_VOCAB}{TRUST_LIST_SUBJECT_TYPE}",
    "trustEntry": {"@id": f"{BATTERY_VOCAB}trustEntry", "@container": "@set"},
    "credentialType": f"{BATTERY_VOCAB}credentialType",
    "trustedIssuer": {"@id": f"{BATTERY_VOCAB}trustedIssuer", "@type": "@id",
                      "@container": "@set"},
}


class TrustCode(StrEnum):
    TRUSTED = "trusted"
    UNTRUSTED_ISSUER = "untrusted-issuer"
    #: The credential names no type beyond VerifiableCredential, so there is nothing to be
    #: trusted for (only an explicit any-type entry covers it).
    NO_SPECIFIC_TYPE = "no-specific-type"
    #: The credential did not verify: who issued it does not matter.
    NOT_VERIFIED = "not-verified"


@dataclass(frozen=True, slots=True)
class TrustDecision:
    trusted: bool
    code: TrustCode
    reason: str
    issuer: str | None
    credential_types: tuple[str, ...]
    #: Where the trust came from: ``local`` and/or the ids of imported trust lists.
    sources: tuple[str, ...] = ()

    def problem(self) -> Problem | None:
        """The refusal as a typed problem, for the node's verification responses."""
        return None if self.trusted else Problem(ProblemType.UNTRUSTED_ISSUER, self.reason)

    def to_json(self) -> dict[str, Any]:
        return {"trusted": self.trusted, "code": str(self.code), "reason": self.reason,
                "issuer": self.issuer, "credentialTypes": list(self.credential_types),
                "sources": list(self.sources)}


@dataclass(frozen=True, slots=True)
class TrustEntry:
    """``issuer`` is trusted for ``credential_type`` (or ``ANY_TYPE``), according to
    ``source``. For ``TRUST_LIST_TYPE`` entries, ``scope`` is the set of credential types the
    authority may vouch for in its trust lists (``ANY_TYPE`` allowed, explicitly)."""

    credential_type: str
    issuer: str
    source: str = LOCAL_SOURCE
    scope: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"credentialType": self.credential_type, "issuer": self.issuer,
                               "source": self.source}
        if self.credential_type == TRUST_LIST_TYPE:
            out["scope"] = sorted(self.scope)
        return out

    @classmethod
    def from_json(cls, data: Any) -> TrustEntry:
        if not isinstance(data, dict):
            raise MalformedDocument("a trust entry must be a JSON object")
        kind, issuer, source = (data.get("credentialType"), data.get("issuer"),
                                data.get("source", LOCAL_SOURCE))
        scope = data.get("scope", [])
        if not all(isinstance(v, str) and v for v in (kind, issuer, source)) or not (
                isinstance(scope, list) and all(isinstance(s, str) for s in scope)):
            raise MalformedDocument(f"malformed trust entry: {data!r}")
        return cls(kind, issuer, source, frozenset(scope))


@dataclass(frozen=True, slots=True)
class TrustListSource:
    """An imported trust list: who signed it, when it is valid, and the list itself (kept so
    ``recheck_sources`` can verify it again, e.g. for revocation)."""

    source: str
    authority: str
    valid_from: datetime
    valid_until: datetime
    imported_at: datetime
    credential: dict[str, Any] | str = field(repr=False, compare=False)

    def live(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_until

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "authority": self.authority,
                "validFrom": format_datetime(self.valid_from),
                "validUntil": format_datetime(self.valid_until),
                "importedAt": format_datetime(self.imported_at),
                "credential": self.credential}

    @classmethod
    def from_json(cls, data: Any) -> TrustListSource:
        if not isinstance(data, dict):
            raise MalformedDocument("a trust list source must be a JSON object")
        source, authority, credential = (data.get("source"), data.get("authority"),
                                         data.get("credential"))
        if not isinstance(source, str) or not isinstance(authority, str) or not isinstance(
                credential, dict | str):
            raise MalformedDocument(f"malformed trust list source: {source!r}")
        return cls(source, authority, parse_datetime(data.get("validFrom"), path="validFrom"),
                   parse_datetime(data.get("validUntil"), path="validUntil"),
                   parse_datetime(data.get("importedAt"), path="importedAt"), credential)


class TrustListRejected(CredentialsError):
    """A trust list was refused; nothing of it was merged. ``reasons`` lists every finding,
    ``verification`` the verifier's result when the list got that far."""

    problem_type = ProblemType.UNTRUSTED_ISSUER

    def __init__(self, message: str, *, reasons: list[str] | None = None,
                 verification: VerificationResult | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or [message]
        self.verification = verification


def trust_list_credential(
    list_id: str,
    grants: Mapping[str, Iterable[str]],
    *,
    valid_from: datetime,
    valid_until: datetime,
    subject_id: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``TrustListCredential`` granting ``{credentialType: [issuer DIDs]}``.

    The authority signs it with ``issue_credential`` (which fills in ``issuer``). ``list_id``
    identifies the list across versions: importing a newer version replaces the older.
    """
    subject: dict[str, Any] = {
        "type": TRUST_LIST_SUBJECT_TYPE,
        "trustEntry": [{"credentialType": kind, "trustedIssuer": sorted(set(issuers))}
                       for kind, issuers in sorted(grants.items())],
    }
    if subject_id is not None:
        subject = {"id": subject_id, **subject}
    return {
        "@context": [CREDENTIALS_V2, TRUST_LIST_CONTEXT],
        "id": list_id,
        "type": ["VerifiableCredential", TRUST_LIST_TYPE],
        "validFrom": format_datetime(valid_from),
        "validUntil": format_datetime(valid_until),
        "credentialSubject": subject,
    }


def _types(credential_types: str | Iterable[str]) -> tuple[str, ...]:
    return (credential_types,) if isinstance(credential_types, str) else tuple(credential_types)


def credential_type_name(value: str) -> str:
    """A credential type's short name: ``https://w3id.org/catenax/credentials/XCredential`` and
    ``cx:XCredential`` both give ``XCredential`` (Tractus-X accepts both spellings too)."""
    for separator in ("#", "/", ":"):
        if separator in value:
            value = value.rsplit(separator, 1)[1]
    return value


class TrustRegistry:
    """Trusted issuers per credential type, from local configuration and imported lists."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], TrustEntry] = {}
        #: (type, issuer) → source → entry: the lookup ``is_trusted`` does per credential.
        self._by_pair: dict[tuple[str, str], dict[str, TrustEntry]] = {}
        self._sources: dict[str, TrustListSource] = {}

    # -- local configuration --

    def trust(self, credential_type: str, issuer: str) -> TrustEntry:
        """Trust ``issuer`` for one credential type."""
        if credential_type in (ANY_TYPE, TRUST_LIST_TYPE, *GENERIC_TYPES):
            raise ValueError(f"trust({credential_type!r}) is not allowed: use trust_any_type "
                             f"for the wildcard and trust_authority for trust lists")
        return self._add(TrustEntry(_non_empty(credential_type), _non_empty(issuer)))

    def trust_any_type(self, issuer: str) -> TrustEntry:
        """Trust ``issuer`` for every credential type: the explicit wildcard. It does not make
        the issuer an authority for trust lists."""
        return self._add(TrustEntry(ANY_TYPE, _non_empty(issuer)))

    def trust_authority(self, authority: str, scope: Iterable[str]) -> TrustEntry:
        """Accept trust lists signed by ``authority``, for the credential types in ``scope``
        (``ANY_TYPE`` for all). Replaces the authority's previous scope."""
        types = frozenset(_types(scope))
        if not types or TRUST_LIST_TYPE in types or types & GENERIC_TYPES:
            raise ValueError("an authority's scope is a non-empty set of specific credential "
                             "types (federation is one level deep: no TrustListCredential)")
        return self._add(TrustEntry(TRUST_LIST_TYPE, _non_empty(authority), scope=types))

    def distrust(self, credential_type: str, issuer: str) -> bool:
        """Remove a local entry (type, ``ANY_TYPE`` or ``TRUST_LIST_TYPE``); imported entries
        are removed per source with ``remove_source``."""
        return self._remove((credential_type, issuer, LOCAL_SOURCE))

    def _add(self, entry: TrustEntry) -> TrustEntry:
        self._entries[(entry.credential_type, entry.issuer, entry.source)] = entry
        self._by_pair.setdefault((entry.credential_type, entry.issuer), {})[entry.source] = entry
        return entry

    def _remove(self, key: tuple[str, str, str]) -> bool:
        if self._entries.pop(key, None) is None:
            return False
        kind, issuer, source = key
        by_source = self._by_pair.get((kind, issuer), {})
        by_source.pop(source, None)
        if not by_source:
            self._by_pair.pop((kind, issuer), None)
        return True

    # -- queries --

    def entries(self, source: str | None = None) -> list[TrustEntry]:
        return [e for e in self._entries.values() if source is None or e.source == source]

    def sources(self) -> list[TrustListSource]:
        return list(self._sources.values())

    def authority_scope(self, issuer: str) -> frozenset[str] | None:
        """The types ``issuer`` may vouch for in trust lists; None if it is no authority.
        Only local entries make an authority."""
        entry = self._entries.get((TRUST_LIST_TYPE, issuer, LOCAL_SOURCE))
        return entry.scope if entry is not None else None

    def _grants(self, entry: TrustEntry, credential_type: str, now: datetime) -> bool:
        if entry.source == LOCAL_SOURCE:
            return True
        record = self._sources.get(entry.source)
        if record is None or not record.live(now):
            return False
        scope = self.authority_scope(record.authority)
        return scope is not None and (credential_type in scope or ANY_TYPE in scope)

    def trusts(self, issuer: str, credential_type: str) -> bool:
        """``policies.IssuerTrust``: is ``issuer`` trusted for this one type, now?

        A type given as an IRI (``https://w3id.org/catenax/credentials/XCredential``, or
        ``cx:XCredential``) is looked up by its short name, as credentials name their types.
        """
        return self.is_trusted([credential_type_name(credential_type)], issuer).trusted

    def is_trusted(
        self,
        credential_types: str | Iterable[str],
        issuer: str | None,
        *,
        now: datetime | None = None,
    ) -> TrustDecision:
        """Whether ``issuer`` is trusted for *every* specific type the credential claims.

        All, not any: a credential typed both ``DismantlerCredential`` and
        ``MembershipCredential`` asserts both, and trust for one must not carry the other.
        """
        moment = now or now_utc()
        types = _types(credential_types)
        if not issuer:
            return TrustDecision(False, TrustCode.UNTRUSTED_ISSUER, "the credential names no "
                                 "issuer", issuer, types)
        specific = [t for t in types if t not in GENERIC_TYPES]
        wildcard = (ANY_TYPE, issuer, LOCAL_SOURCE) in self._entries
        if not specific:
            if wildcard:
                return TrustDecision(True, TrustCode.TRUSTED, f"{issuer} is trusted for any "
                                     f"type", issuer, types, (LOCAL_SOURCE,))
            return TrustDecision(False, TrustCode.NO_SPECIFIC_TYPE, "the credential has no "
                                 "type beyond VerifiableCredential to trust its issuer for",
                                 issuer, types)
        sources: set[str] = set()
        missing: list[str] = []
        for kind in specific:
            granted = [e.source for e in self._by_pair.get((kind, issuer), {}).values()
                       if self._grants(e, kind, moment)]
            if not granted and wildcard and kind != TRUST_LIST_TYPE:
                granted = [LOCAL_SOURCE]
            if granted:
                sources.update(granted)
            else:
                missing.append(kind)
        if missing:
            return TrustDecision(False, TrustCode.UNTRUSTED_ISSUER,
                                 f"{issuer} is not trusted to issue {', '.join(missing)}",
                                 issuer, types)
        return TrustDecision(True, TrustCode.TRUSTED,
                             f"{issuer} is trusted for {', '.join(specific)} "
                             f"(by {', '.join(sorted(sources))})", issuer, types,
                             tuple(sorted(sources)))

    # -- federation --

    async def import_trust_list(
        self,
        credential: dict[str, Any] | str,
        verifier: Verifier,
        *,
        now: datetime | None = None,
        allow_unchecked_status: bool = False,
    ) -> TrustListSource:
        """Verify a trust list and merge its entries, or raise ``TrustListRejected``.

        Accepted only when: the proof verifies and the list is inside its validity period (so
        expired lists are refused); its ``credentialStatus``, if any, was checked and is not
        revoked or suspended (a ``verifier`` without a status checker cannot tell, so such a
        list is refused unless ``allow_unchecked_status``); its issuer is a local trust-list
        authority; and *every* entry is inside that authority's scope. An out-of-scope entry
        refuses the whole list: a signed list overreaching its scope is not partly believed.
        A newer list with the same id replaces the older; an older one is refused (rollback).
        """
        moment = now or now_utc()
        record, grants = await self._accept(credential, verifier, moment,
                                            allow_unchecked_status)
        previous = self._sources.get(record.source)
        if previous is not None:
            if previous.authority != record.authority:
                raise TrustListRejected(f"trust list {record.source} was imported from "
                                        f"{previous.authority}, not {record.authority}")
            if record.valid_from < previous.valid_from:
                raise TrustListRejected(f"trust list {record.source} is older than the "
                                        f"version already imported (rollback refused)")
        self.remove_source(record.source)
        self._sources[record.source] = record
        for kind, issuer in grants:
            self._add(TrustEntry(kind, issuer, record.source))
        return record

    async def _accept(
        self,
        credential: dict[str, Any] | str,
        verifier: Verifier,
        moment: datetime,
        allow_unchecked_status: bool,
    ) -> tuple[TrustListSource, list[tuple[str, str]]]:
        result = await verifier.verify_credential(credential, VerifyOptions(now=moment))
        if not result.verified or result.document is None:
            reasons = [f"{p.type}: {p.message}" for p in result.problems]
            raise TrustListRejected("the trust list does not verify: " + "; ".join(reasons),
                                    reasons=reasons, verification=result)
        document = result.document
        if ("credentialStatus" in document and not result.status_checked
                and not allow_unchecked_status):
            raise TrustListRejected("the trust list has a credentialStatus that was not "
                                    "checked; use a verifier with a status checker",
                                    verification=result)
        if TRUST_LIST_TYPE not in types_of(document):
            raise TrustListRejected(f"not a {TRUST_LIST_TYPE}", verification=result)
        authority = str(result.issuer)
        scope = self.authority_scope(authority)
        if scope is None:
            raise TrustListRejected(f"{authority} is not trusted as an authority for trust "
                                    f"lists", verification=result)
        source = document.get("id")
        if not isinstance(source, str) or ":" not in source or source == LOCAL_SOURCE:
            raise TrustListRejected("a trust list needs an absolute id (it names its entries' "
                                    "source)", verification=result)
        if "validFrom" not in document or "validUntil" not in document:
            raise TrustListRejected("a trust list must state validFrom and validUntil",
                                    verification=result)
        grants = _parse_grants(document.get("credentialSubject"))
        outside = sorted({kind for kind, _ in grants
                          if kind in (ANY_TYPE, TRUST_LIST_TYPE) or kind in GENERIC_TYPES
                          or not (kind in scope or ANY_TYPE in scope)})
        if outside:
            reasons = [f"{authority} may not vouch for {kind}" for kind in outside]
            raise TrustListRejected(f"the trust list grants trust outside {authority}'s scope: "
                                    f"{', '.join(outside)}", reasons=reasons,
                                    verification=result)
        record = TrustListSource(
            source, authority, parse_datetime(document["validFrom"], path="validFrom"),
            parse_datetime(document["validUntil"], path="validUntil"), moment, credential)
        return record, grants

    def remove_source(self, source: str) -> int:
        """Forget an imported list and every entry it brought; the number of entries."""
        if source == LOCAL_SOURCE:
            raise ValueError("local entries are removed one by one with distrust()")
        self._sources.pop(source, None)
        doomed = [k for k, e in self._entries.items() if e.source == source]
        for key in doomed:
            self._remove(key)
        return len(doomed)

    async def recheck_sources(
        self, verifier: Verifier, *, now: datetime | None = None,
        allow_unchecked_status: bool = False,
    ) -> dict[str, str]:
        """Verify every imported list again (expiry, revocation, authority still trusted) and
        remove those that fail; returns ``{source: reason}`` for the removed ones."""
        moment = now or now_utc()
        removed: dict[str, str] = {}
        for record in list(self._sources.values()):
            try:
                await self._accept(record.credential, verifier, moment, allow_unchecked_status)
            except CredentialsError as exc:
                self.remove_source(record.source)
                removed[record.source] = str(exc)
        return removed

    # -- persistence --

    def to_json(self) -> dict[str, Any]:
        return {"version": 1,
                "entries": [e.to_json() for e in self._entries.values()],
                "sources": [s.to_json() for s in self._sources.values()]}

    @classmethod
    def from_json(cls, data: Any) -> TrustRegistry:
        """Restore ``to_json`` output. Imported entries must name a listed source, so a hand
        edit cannot add "imported" trust that no signed list backs."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise MalformedDocument("not a version-1 trust registry")
        registry = cls()
        for item in data.get("sources") or []:
            record = TrustListSource.from_json(item)
            registry._sources[record.source] = record
        for item in data.get("entries") or []:
            entry = TrustEntry.from_json(item)
            if entry.source != LOCAL_SOURCE and entry.source not in registry._sources:
                raise MalformedDocument(f"trust entry for {entry.issuer} names unknown source "
                                        f"{entry.source}")
            if entry.source != LOCAL_SOURCE and entry.credential_type in (
                    ANY_TYPE, TRUST_LIST_TYPE):
                raise MalformedDocument("imported entries cannot be wildcards or authorities")
            registry._add(entry)
        return registry


def _non_empty(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("credential types and issuers are non-empty strings")
    return value


def _parse_grants(subject: Any) -> list[tuple[str, str]]:
    if not isinstance(subject, dict):
        raise TrustListRejected("credentialSubject must be one TrustList object")
    kinds = subject.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or TRUST_LIST_SUBJECT_TYPE not in kinds:
        raise TrustListRejected(f"credentialSubject.type must be {TRUST_LIST_SUBJECT_TYPE}")
    items = subject.get("trustEntry", [])
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list):
        raise TrustListRejected("trustEntry must be a list")
    grants: list[tuple[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            raise TrustListRejected("each trustEntry must be an object")
        kind, issuers = item.get("credentialType"), item.get("trustedIssuer")
        issuers = [issuers] if isinstance(issuers, str) else issuers
        if not isinstance(kind, str) or not kind or not isinstance(issuers, list) or not all(
                isinstance(i, str) and i.startswith("did:") for i in issuers):
            raise TrustListRejected("each trustEntry needs a credentialType and trustedIssuer "
                                    "DIDs")
        grants.extend((kind, issuer) for issuer in issuers)
    return grants


@dataclass(frozen=True, slots=True)
class CredentialTrust:
    """One credential of a verification result: verified or not, trusted or not, and why."""

    index: int
    issuer: str | None
    credential_types: tuple[str, ...]
    verified: bool
    decision: TrustDecision

    @property
    def trusted(self) -> bool:
        return self.verified and self.decision.trusted

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "issuer": self.issuer,
                "credentialTypes": list(self.credential_types), "verified": self.verified,
                "trusted": self.trusted, "decision": self.decision.to_json()}


def check_presentation_trust(
    verification_result: VerificationResult,
    registry: TrustRegistry,
    *,
    now: datetime | None = None,
) -> list[CredentialTrust]:
    """Per credential of a verified presentation (or of a single credential result): is its
    issuer trusted for its types? A credential that did not verify is never trusted."""
    results = (verification_result.credentials if verification_result.kind == "presentation"
               else [verification_result])
    out: list[CredentialTrust] = []
    for index, result in enumerate(results):
        try:
            types = tuple(types_of(result.document)) if result.document is not None else ()
        except CredentialsError:
            types = ()
        if not result.verified:
            problems = ", ".join(sorted({str(p.type) for p in result.problems})) or "unknown"
            decision = TrustDecision(False, TrustCode.NOT_VERIFIED,
                                     f"the credential did not verify ({problems})",
                                     result.issuer, types)
        else:
            decision = registry.is_trusted(types, result.issuer, now=now)
        out.append(CredentialTrust(index, result.issuer, types, result.verified, decision))
    return out


__all__ = [
    "ANY_TYPE",
    "GENERIC_TYPES",
    "LOCAL_SOURCE",
    "TRUST_LIST_CONTEXT",
    "TRUST_LIST_SUBJECT_TYPE",
    "TRUST_LIST_TYPE",
    "CredentialTrust",
    "TrustCode",
    "TrustDecision",
    "TrustEntry",
    "TrustListRejected",
    "TrustListSource",
    "TrustRegistry",
    "check_presentation_trust",
    "credential_type_name",
    "trust_list_credential",
]
