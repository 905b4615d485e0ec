"""The hash-linked chain of custody of a battery passport (``vocab/PASSPORT.md``).

A passport is a list of credentials about one battery DID, each naming the digest of the one
before it in ``credentialSubject.previousCredential``. The digest covers the whole secured
credential, proof included, so an entry cannot be altered, dropped or reordered without
breaking the link of the entry after it; and custody (who may append) moves only by a
``CustodyTransferCredential`` issued by the current custodian.

This module reads only JSON fields (never the JSON-LD expansion), so it does not care which
context defined the terms. It checks structure, not signatures: ``Passport.append`` is a cheap,
synchronous guard for the party writing a passport, while ``credentials.passport.audit`` is
where a reader verifies every proof, validity period and link of a passport it was handed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from credentials.errors import CredentialsError, MalformedDocument
from credentials.jcs import canonical_json
from credentials.jose import credential_from_claims
from credentials.model import issuer_id, types_of
from credentials.passport.errors import (
    BrokenLink,
    CustodyViolation,
    InvalidRepurposing,
    MalformedEntry,
    PassportError,
    SubjectMismatch,
    UnknownCredentialType,
)
from credentials.passport.types import CREDENTIAL_TYPES, BatterySubject

#: Multihash header of a SHA2-256 digest: function code 0x12, length 0x20 (32 bytes).
_MULTIHASH_SHA256 = b"\x12\x20"
#: Every digest starts so: multibase ``u`` + the base64url of the multihash header's first 16
#: bits. (The fourth character also takes two bits of the hash, so it is ``A`` to ``D``, not
#: always the ``B`` of PASSPORT.md's "starts ``uEiB``", which holds for a quarter of digests.)
DIGEST_PREFIX = "uEi"

VERIFIABLE_CREDENTIAL = "VerifiableCredential"
CUSTODY_TRANSFER = "CustodyTransferCredential"
REPURPOSING = "RepurposingCredential"

#: Credential types whose subject is a battery: the only types a passport entry may have.
PASSPORT_ENTRY_TYPES: frozenset[str] = frozenset(
    name for name, model in CREDENTIAL_TYPES.items() if issubclass(model, BatterySubject)
)
#: Types PASSPORT.md defines for batches and participants: known, but not passport entries.
OTHER_KNOWN_TYPES: frozenset[str] = frozenset(CREDENTIAL_TYPES) - PASSPORT_ENTRY_TYPES
KNOWN_CREDENTIAL_TYPES: frozenset[str] = PASSPORT_ENTRY_TYPES | OTHER_KNOWN_TYPES

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

Secured = dict[str, Any] | str
"""A secured credential as stored: a JSON credential with its proof, or a compact JWT."""


# --- digests and reading --------------------------------------------------------------------


def _multihash_multibase(data: bytes) -> str:
    digest = _MULTIHASH_SHA256 + hashlib.sha256(data).digest()
    return "u" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def credential_digest(credential: Secured) -> str:
    """The PASSPORT.md digest (``uEiA…`` to ``uEiD…``) of a secured credential.

    JSON credentials are hashed in their RFC 8785 form, so the digest does not depend on key
    order or whitespace of whoever stored them; a JWT is hashed as the compact token it is
    (surrounding whitespace stripped, as the verifier does), since its signature pins the bytes.
    Raises ``MalformedDocument`` (or ``NumberOutOfRange``) for what has no canonical form.
    """
    if isinstance(credential, str):
        token = credential.strip()
        if not token.isascii():
            raise MalformedDocument("a compact JWT is ASCII")
        return _multihash_multibase(token.encode("ascii"))
    if not isinstance(credential, dict):
        raise MalformedDocument("a credential is a JSON object or a compact JWT")
    try:
        return _multihash_multibase(canonical_json(credential))
    except RecursionError as exc:
        raise MalformedDocument("the credential is nested too deeply to canonicalise") from exc


def credential_document(credential: Secured) -> dict[str, Any]:
    """The JSON credential: the object itself, or a JWT's claims read *without verifying*.

    Reading a JWT unverified is deliberate: the chain is built from what entries claim, and
    ``audit`` verifies every signature separately, reporting the two kinds of fault apart.
    """
    if isinstance(credential, dict):
        return credential
    if not isinstance(credential, str):
        raise MalformedEntry("a passport entry is a JSON credential or a compact JWT")
    token = credential.strip()
    if not _COMPACT_JWS.fullmatch(token):
        raise MalformedEntry("not a compact JWT (three base64url segments)")
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise MalformedEntry(f"the JWT payload is not JSON: {exc}") from exc
    if not isinstance(claims, dict):
        raise MalformedEntry("the JWT payload is not a JSON object")
    try:
        return credential_from_claims(claims)
    except CredentialsError as exc:
        raise MalformedEntry(str(exc), path=exc.problem.path) from exc


def _subject(document: dict[str, Any]) -> dict[str, Any]:
    subject = document.get("credentialSubject")
    if isinstance(subject, list) and len(subject) == 1:
        subject = subject[0]
    if not isinstance(subject, dict):
        raise MalformedEntry("a passport entry has exactly one credentialSubject object",
                             path="credentialSubject")
    return subject


def _optional_id(subject: dict[str, Any], name: str) -> str | None:
    """An ``@id``-typed field: a string, or a node object with an ``id`` (both compact forms)."""
    value = subject.get(name)
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedEntry(f"credentialSubject.{name} must name a DID",
                             path=f"credentialSubject.{name}")
    return value


def subject_id(credential: Secured) -> str:
    """The DID the entry is about: ``credentialSubject.id``."""
    value = _subject(credential_document(credential)).get("id")
    if not isinstance(value, str) or not value:
        raise MalformedEntry("credentialSubject has no id", path="credentialSubject.id")
    return value


def issuer_of(credential: Secured) -> str:
    """The issuer's id (``issuer`` or ``issuer.id``)."""
    try:
        return issuer_id(credential_document(credential))
    except MalformedEntry:
        raise
    except CredentialsError as exc:
        raise MalformedEntry(str(exc), path="issuer") from exc


def credential_types(credential: Secured) -> tuple[str, ...]:
    """The credential's ``type`` values as listed (``VerifiableCredential`` included)."""
    try:
        return tuple(types_of(credential_document(credential)))
    except MalformedEntry:
        raise
    except CredentialsError as exc:
        raise MalformedEntry(str(exc), path="type") from exc


def previous_credential(credential: Secured) -> str | None:
    """``credentialSubject.previousCredential``: the digest of the entry before, if any."""
    value = _subject(credential_document(credential)).get("previousCredential")
    if value is not None and not isinstance(value, str):
        raise MalformedEntry("previousCredential must be a digest string",
                             path="credentialSubject.previousCredential")
    return value


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One secured credential, read once: everything chain checks need, and its digest.

    Reading and hashing are the costly parts of handling an entry, so both happen here once
    and every check after works on these fields.
    """

    secured: Secured
    digest: str
    issuer: str
    subject: str
    types: tuple[str, ...]
    previous: str | None
    transferred_to: str | None
    original_battery: str | None
    has_status: bool

    @classmethod
    def read(cls, secured: Any) -> ChainEntry:
        """Read ``secured``; raises ``MalformedEntry`` for anything that is not an entry."""
        try:
            document = credential_document(secured)
            subject = _subject(document)
            types = tuple(types_of(document))
            issuer = issuer_id(document)
            digest = credential_digest(secured)
        except MalformedEntry:
            raise
        except CredentialsError as exc:
            raise MalformedEntry(str(exc), path=exc.problem.path) from exc
        subject_did = subject.get("id")
        if not isinstance(subject_did, str) or not subject_did:
            raise MalformedEntry("credentialSubject has no id", path="credentialSubject.id")
        previous = subject.get("previousCredential")
        if previous is not None and not isinstance(previous, str):
            raise MalformedEntry("previousCredential must be a digest string",
                                 path="credentialSubject.previousCredential")
        transferred_to = _optional_id(subject, "transferredTo")
        if CUSTODY_TRANSFER in types and transferred_to is None:
            raise MalformedEntry("a CustodyTransferCredential names transferredTo",
                                 path="credentialSubject.transferredTo")
        return cls(
            secured=secured,
            digest=digest,
            issuer=issuer,
            subject=subject_did,
            types=types,
            previous=previous,
            transferred_to=transferred_to,
            original_battery=_optional_id(subject, "originalBattery"),
            has_status="credentialStatus" in document,
        )

    @property
    def is_transfer(self) -> bool:
        return CUSTODY_TRANSFER in self.types

    @property
    def is_repurposing(self) -> bool:
        return REPURPOSING in self.types


# --- the rules, shared by Passport.append and audit -----------------------------------------


def type_problem(entry: ChainEntry) -> PassportError | None:
    """Unknown types, or none that makes a passport entry (batch, participant credentials)."""
    unknown = [t for t in entry.types
               if t != VERIFIABLE_CREDENTIAL and t not in KNOWN_CREDENTIAL_TYPES]
    if unknown:
        return UnknownCredentialType(
            f"credential type {', '.join(unknown)} is not defined by PASSPORT.md", path="type")
    if not PASSPORT_ENTRY_TYPES.intersection(entry.types):
        return UnknownCredentialType(
            f"{', '.join(entry.types)} is not a passport entry type (batch and participant "
            "credentials are not passport entries)", path="type")
    return None


def subject_problem(entry: ChainEntry, battery: str) -> PassportError | None:
    if entry.subject != battery:
        return SubjectMismatch(f"the entry is about {entry.subject}, not {battery}",
                               path="credentialSubject.id")
    return None


def custody_problem(entry: ChainEntry, custodian: str | None) -> PassportError | None:
    """None when ``custodian`` is unknown (nothing to check against) or is the issuer."""
    if custodian is not None and entry.issuer != custodian:
        return CustodyViolation(f"issued by {entry.issuer}, but {custodian} holds custody",
                                path="issuer")
    return None


def repurposing_problem(
    entry: ChainEntry, origin: Origin | None, *, first: bool
) -> PassportError | None:
    """A ``RepurposingCredential`` only ever starts a passport that continues ``origin``.

    Whether its link names the origin's head is a link check, made by the caller.
    """
    if not first:
        if entry.is_repurposing:
            return InvalidRepurposing("a RepurposingCredential starts a new passport; it cannot "
                                      "follow another entry", path="type")
        return None
    if origin is None:
        if entry.is_repurposing:
            return InvalidRepurposing("a RepurposingCredential continues an original passport: "
                                      "start it with Passport.repurposed_from", path="type")
        return None
    if not entry.is_repurposing:
        return InvalidRepurposing("the first entry of a repurposed passport must be a "
                                  "RepurposingCredential", path="type")
    if entry.original_battery != origin.battery:
        return InvalidRepurposing(f"originalBattery is {entry.original_battery}, the original "
                                  f"passport is about {origin.battery}",
                                  path="credentialSubject.originalBattery")
    if entry.subject == origin.battery:
        return InvalidRepurposing("a repurposed battery gets a new DID",
                                  path="credentialSubject.id")
    return None


def next_custodian(entry: ChainEntry, custodian: str | None) -> str | None:
    """Custody after ``entry`` (checked by the caller): moves only with a transfer."""
    if entry.is_transfer:
        return entry.transferred_to
    return entry.issuer if custodian is None else custodian


# --- the passport ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a repurposed passport continues from: what its first entry must link to.

    ``custodian`` is who held the original battery at that head; only they may repurpose it,
    because the repurposing credential extends the original chain as well as starting the new.
    """

    battery: str
    head: str
    custodian: str | None


class Passport:
    """A battery DID and its entries in chain order, each linking to the one before.

    ``append`` refuses (raising a ``PassportError``, changing nothing) any entry that does not
    name the head, is about another DID or is not issued by the custodian. It does not verify
    signatures — that needs key resolution and is ``audit``'s job — so a passport built here is
    well-linked, not yet trusted. Entries are held as given: mutating one after appending it
    breaks its signature and its digest, which ``audit`` recomputes.
    """

    __slots__ = ("_battery", "_custodian", "_entries", "_origin")

    def __init__(self, battery: str, *, origin: Origin | None = None) -> None:
        if not isinstance(battery, str) or not battery:
            raise MalformedEntry("a passport needs its battery DID")
        self._battery = battery
        self._origin = origin
        self._entries: list[ChainEntry] = []
        self._custodian: str | None = origin.custodian if origin else None

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[Secured],
        *,
        battery: str | None = None,
        origin: Origin | None = None,
    ) -> Passport:
        """A passport of ``entries`` in chain order; the battery defaults to the first
        entry's subject. Raises at the first entry that does not fit."""
        items = list(entries)
        if battery is None:
            if not items:
                raise MalformedEntry("cannot tell the battery of an empty passport")
            battery = ChainEntry.read(items[0]).subject
        passport = cls(battery, origin=origin)
        for item in items:
            passport.append(item)
        return passport

    @classmethod
    def repurposed_from(cls, original: Passport, first_entry: Secured) -> Passport:
        """The new passport a ``RepurposingCredential`` starts, linked to ``original``'s head.

        The new battery DID is the entry's subject; the entry must name ``original``'s battery
        in ``originalBattery`` and be issued by ``original``'s custodian.
        """
        origin = original.origin_for_repurposing()
        entry = ChainEntry.read(first_entry)
        passport = cls(entry.subject, origin=origin)
        passport.append(first_entry)
        return passport

    def origin_for_repurposing(self) -> Origin:
        """What a passport repurposing this battery links to: its head and custodian now."""
        head = self.head
        if head is None:
            raise BrokenLink("an empty passport has no head to repurpose from")
        return Origin(self._battery, head, self._custodian)

    @property
    def battery(self) -> str:
        return self._battery

    @property
    def origin(self) -> Origin | None:
        return self._origin

    @property
    def entries(self) -> tuple[Secured, ...]:
        return tuple(e.secured for e in self._entries)

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(e.digest for e in self._entries)

    @property
    def chain_entries(self) -> tuple[ChainEntry, ...]:
        return tuple(self._entries)

    @property
    def head(self) -> str | None:
        """The digest of the last entry (None while empty)."""
        return self._entries[-1].digest if self._entries else None

    @property
    def custodian(self) -> str | None:
        """Who may append next: the first issuer, then each ``transferredTo`` in turn."""
        return self._custodian

    def link_for_next(self) -> str | None:
        """The ``previousCredential`` the next entry must carry (None: the first must have
        none; a repurposed passport's first entry names the original's head)."""
        if self._entries:
            return self._entries[-1].digest
        return self._origin.head if self._origin else None

    def check(self, secured: Secured) -> ChainEntry:
        """The entry read, if ``append`` would accept it; else the ``PassportError``."""
        entry = ChainEntry.read(secured)
        first = not self._entries
        problem = (type_problem(entry) or subject_problem(entry, self._battery)
                   or self._link_problem(entry)
                   or repurposing_problem(entry, self._origin, first=first)
                   or custody_problem(entry, self._custodian))
        if problem is not None:
            raise problem
        return entry

    def append(self, secured: Secured) -> str:
        """Add ``secured`` as the new head and return its digest; refuse what does not fit."""
        entry = self.check(secured)
        self._entries.append(entry)
        self._custodian = next_custodian(entry, self._custodian)
        return entry.digest

    def _link_problem(self, entry: ChainEntry) -> PassportError | None:
        wanted = self.link_for_next()
        if entry.previous == wanted:
            return None
        path = "credentialSubject.previousCredential"
        if wanted is None:
            return BrokenLink("the first entry of a passport has no previousCredential",
                              path=path)
        if entry.previous is None:
            return BrokenLink(f"previousCredential is missing; the head is {wanted}", path=path)
        return BrokenLink(f"previousCredential is {entry.previous}, the head is {wanted}",
                          path=path)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Secured]:
        return (e.secured for e in self._entries)

    def __repr__(self) -> str:
        return f"Passport({self._battery!r}, entries={len(self._entries)}, head={self.head!r})"


__all__ = [
    "CUSTODY_TRANSFER",
    "DIGEST_PREFIX",
    "KNOWN_CREDENTIAL_TYPES",
    "OTHER_KNOWN_TYPES",
    "PASSPORT_ENTRY_TYPES",
    "REPURPOSING",
    "BrokenLink",
    "ChainEntry",
    "CustodyViolation",
    "InvalidRepurposing",
    "MalformedEntry",
    "Origin",
    "Passport",
    "PassportError",
    "Secured",
    "SubjectMismatch",
    "UnknownCredentialType",
    "credential_digest",
    "credential_document",
    "credential_types",
    "custody_problem",
    "issuer_of",
    "next_custodian",
    "previous_credential",
    "repurposing_problem",
    "subject_problem",
    "type_problem",
]
