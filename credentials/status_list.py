"""Bitstring Status List v1.0: revoking and suspending credentials, and checking that status.

Issuer side: a ``StatusList`` is one published bitstring (one bit per credential, at least
131,072 entries so that one index says little about who holds it). Credentials get an entry at
a random, never reused index; revoking or suspending sets that bit; the list is published as a
signed ``BitstringStatusListCredential``. The allocation state serialises to JSON so the node
can persist it; nothing here touches storage or the network.

Verifier side: ``StatusChecker`` fetches a list credential through an injected fetcher,
verifies it like any other credential (proof, issuer, validity period, purpose), caches the
decoded bits per URL and reads the credential's bit. A list that cannot be fetched or trusted
makes the status *unknown*, which fails verification unless the checker is told to allow it.

Spec: https://www.w3.org/TR/vc-bitstring-status-list/ (W3C Recommendation, 15 May 2025).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import random
import secrets
import time
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from credentials.data_integrity import RDFC
from credentials.errors import CredentialsError, MalformedDocument, Problem, ProblemType
from credentials.issuer import JWT, issue_credential, issue_jwt_credential
from credentials.keys import Ed25519Key
from credentials.model import contexts_of, data_model, issuer_id, types_of
from credentials.resolver import DIDResolver
from credentials.timestamps import format_datetime, now_utc, parse_datetime
from credentials.verifier import VerificationResult, Verifier, VerifyOptions
from vocab import CREDENTIALS_V2

#: The context that defines the status terms for VCDM 1.1 credentials (VCDM 2.0 has them in
#: the credentials/v2 context). Bundled in vocab/contexts.
STATUS_CONTEXT_V1 = "https://www.w3.org/ns/credentials/status/v1"

STATUS_LIST_ENTRY = "BitstringStatusListEntry"
STATUS_LIST_CREDENTIAL = "BitstringStatusListCredential"
STATUS_LIST = "BitstringStatusList"

REVOCATION = "revocation"
SUSPENSION = "suspension"
#: The purposes that make a credential invalid when their bit is set. ``refresh`` and
#: ``message`` entries do not, so the checker does not fetch their lists.
ENFORCED_PURPOSES = (REVOCATION, SUSPENSION)

#: The spec's minimum for herd privacy: 16 KB of bits.
MIN_STATUS_LIST_ENTRIES = 131_072
#: Upper bound on a decompressed list the checker accepts (gzip bombs): 128 x the minimum.
MAX_BITSTRING_BYTES = 2 * 1024 * 1024
#: Upper bound on ``encodedList`` itself, checked before decoding anything.
MAX_ENCODED_LIST_CHARS = 4 * 1024 * 1024

StatusListFetcher = Callable[[str], Awaitable[dict[str, Any] | str]]
"""URL of a status list credential → the credential (a JSON object, or a VC-JWT string)."""


class StatusListError(CredentialsError, ValueError):
    """A status list or entry is malformed, or an operation on it makes no sense (clearing a
    revocation, touching an index that was never handed out)."""

    problem_type = ProblemType.MALFORMED


class StatusListFull(StatusListError):
    """Every index of the list is taken. Raised, never papered over: a credential issued
    without a status entry could never be revoked."""


# --- the bitstring ----------------------------------------------------------------------------


def encode_bitstring(bits: bytes) -> str:
    """``encodedList``: multibase base64url (``u``, no padding) of the GZIP of ``bits``.

    ``mtime=0`` keeps the output a function of the bits alone, so republishing an unchanged
    list gives an identical credential body; with zlib's default level an empty 16 KB list
    encodes to exactly the spec's example value (the tests pin it).
    """
    compressed = gzip.compress(bytes(bits), compresslevel=6, mtime=0)
    return "u" + base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_bitstring(encoded: str, *, max_bytes: int = MAX_BITSTRING_BYTES) -> bytes:
    """The bits behind an ``encodedList``; refuses anything but one bounded GZIP member.

    The size bound is enforced while inflating: a few KB of GZIP can expand to gigabytes.
    """
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListError("encodedList must be multibase base64url (prefix 'u')",
                              path="credentialSubject.encodedList")
    if len(encoded) > MAX_ENCODED_LIST_CHARS:
        raise StatusListError("encodedList is too long", path="credentialSubject.encodedList")
    body = encoded[1:]
    if "=" in body or "+" in body or "/" in body:
        raise StatusListError("encodedList must be base64url without padding",
                              path="credentialSubject.encodedList")
    try:
        compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise StatusListError(f"encodedList is not base64url: {exc}",
                              path="credentialSubject.encodedList") from exc
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # GZIP container only
    try:
        bits = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise StatusListError(f"encodedList is not GZIP data: {exc}",
                              path="credentialSubject.encodedList") from exc
    if len(bits) > max_bytes:
        raise StatusListError(f"the status list expands beyond {max_bytes} bytes",
                              path="credentialSubject.encodedList")
    if not inflater.eof or inflater.unused_data:
        raise StatusListError("encodedList must hold exactly one complete GZIP member",
                              path="credentialSubject.encodedList")
    return bits


def read_status(bits: bytes, index: int, size: int = 1) -> int:
    """The ``size``-bit status at ``index``; bit 0 is the most significant bit of byte 0."""
    if index < 0 or size < 1 or (index + 1) * size > len(bits) * 8:
        raise StatusListError(f"status index {index} (size {size}) is outside the list of "
                              f"{len(bits) * 8} bits")
    value = 0
    for position in range(index * size, (index + 1) * size):
        value = (value << 1) | ((bits[position >> 3] >> (7 - (position & 7))) & 1)
    return value


def _bit(bits: bytes | bytearray, position: int) -> bool:
    return bool((bits[position >> 3] >> (7 - (position & 7))) & 1)


def _set_bit(bits: bytearray, position: int, value: bool) -> None:
    mask = 1 << (7 - (position & 7))
    if value:
        bits[position >> 3] |= mask
    else:
        bits[position >> 3] &= ~mask & 0xFF


# --- issuing ----------------------------------------------------------------------------------


class StatusList:
    """One status list: its URL and purpose, the status bits and which indices are taken.

    Indices are drawn at random (by default from ``secrets``) so that an index reveals
    neither when a credential was issued nor how many were; an index is never handed out
    twice, even after its credential is revoked. Only statusSize 1 lists with purpose
    ``revocation`` or ``suspension`` are issued here.
    """

    def __init__(
        self,
        url: str,
        purpose: str,
        *,
        length: int = MIN_STATUS_LIST_ENTRIES,
        rng: random.Random | None = None,
    ) -> None:
        if purpose not in ENFORCED_PURPOSES:
            raise StatusListError(f"status purpose must be one of {ENFORCED_PURPOSES}, "
                                  f"not {purpose!r}")
        if not isinstance(url, str) or ":" not in url or "#" in url:
            raise StatusListError(f"the status list URL must be an absolute URL without a "
                                  f"fragment: {url!r}")
        if length < MIN_STATUS_LIST_ENTRIES or length % 8:
            raise StatusListError(f"a status list has at least {MIN_STATUS_LIST_ENTRIES} "
                                  f"entries, in whole bytes; {length} is not allowed")
        self.url = url
        self.purpose = purpose
        self.length = length
        self.revision = 0
        self._rng = rng or secrets.SystemRandom()
        self._bits = bytearray(length // 8)
        self._taken = bytearray(length // 8)
        self._taken_count = 0
        # The free indices, built once the list is three quarters full (never persisted).
        self._free_pool: list[int] | None = None

    # -- allocation --

    @property
    def allocated_count(self) -> int:
        return self._taken_count

    @property
    def free_count(self) -> int:
        return self.length - self._taken_count

    def is_allocated(self, index: int) -> bool:
        self._check_index(index)
        return _bit(self._taken, index)

    def allocate(self) -> int:
        """A random index never handed out before; ``StatusListFull`` when none is left."""
        free = self.free_count
        if free == 0:
            raise StatusListFull(f"status list {self.url} has no free index left "
                                 f"({self.length} allocated); start a new list")
        if free * 4 >= self.length:
            # At least a quarter free: a few random probes (at most 4 expected) find one.
            while True:
                index = self._rng.randrange(self.length)
                if not _bit(self._taken, index):
                    break
        else:
            # Nearly full: draw uniformly from the remaining free indices instead of probing
            # ever longer; swap-remove keeps each draw O(1).
            pool = self._free_pool
            if pool is None or len(pool) != free:
                pool = self._free_pool = [i for i in range(self.length)
                                          if not _bit(self._taken, i)]
            slot = self._rng.randrange(len(pool))
            pool[slot], pool[-1] = pool[-1], pool[slot]
            index = pool.pop()
        _set_bit(self._taken, index, True)
        self._taken_count += 1
        self.revision += 1
        return index

    def entry(self, index: int) -> dict[str, Any]:
        """The ``credentialStatus`` entry for ``index`` (which must have been allocated)."""
        if not self.is_allocated(index):
            raise StatusListError(f"index {index} of {self.url} was never allocated")
        return {
            "id": f"{self.url}#{index}",
            "type": STATUS_LIST_ENTRY,
            "statusPurpose": self.purpose,
            "statusListIndex": str(index),
            "statusListCredential": self.url,
        }

    def allocate_entry(self) -> dict[str, Any]:
        return self.entry(self.allocate())

    # -- status --

    def status(self, index: int) -> bool:
        """True when the bit is set (revoked, or currently suspended)."""
        self._check_index(index)
        return _bit(self._bits, index)

    def set_status(self, index: int, value: bool) -> None:
        """Set or clear the bit of an allocated index.

        Clearing a revocation bit is refused: the spec makes revocation permanent, and a
        verifier that cached the revoked state would disagree with one that did not.
        """
        if not self.is_allocated(index):
            raise StatusListError(f"index {index} of {self.url} was never allocated")
        if not value and self.purpose == REVOCATION and _bit(self._bits, index):
            raise StatusListError(f"index {index} of {self.url} is revoked; revocation is "
                                  f"permanent")
        if _bit(self._bits, index) != value:
            _set_bit(self._bits, index, value)
            self.revision += 1

    def revoke(self, index: int) -> None:
        self._require_purpose(REVOCATION, "revoke")
        self.set_status(index, True)

    def suspend(self, index: int) -> None:
        self._require_purpose(SUSPENSION, "suspend")
        self.set_status(index, True)

    def resume(self, index: int) -> None:
        self._require_purpose(SUSPENSION, "resume")
        self.set_status(index, False)

    def _require_purpose(self, purpose: str, action: str) -> None:
        if self.purpose != purpose:
            raise StatusListError(f"cannot {action} on {self.url}: it is a {self.purpose} list")

    def _check_index(self, index: int) -> None:
        if isinstance(index, bool) or not isinstance(index, int) or not (
                0 <= index < self.length):
            raise StatusListError(f"index {index!r} is outside {self.url} "
                                  f"(0..{self.length - 1})")

    # -- publishing --

    def encoded_list(self) -> str:
        return encode_bitstring(self._bits)

    def unsigned_credential(
        self,
        issuer: str,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        ttl_ms: int | None = None,
    ) -> dict[str, Any]:
        """The ``BitstringStatusListCredential`` (VCDM 2.0) to sign and publish at ``url``."""
        subject: dict[str, Any] = {
            "id": f"{self.url}#list",
            "type": STATUS_LIST,
            "statusPurpose": self.purpose,
            "encodedList": self.encoded_list(),
        }
        if ttl_ms is not None:
            if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int) or ttl_ms < 0:
                raise StatusListError("ttl is a whole number of milliseconds")
            subject["ttl"] = ttl_ms
        credential: dict[str, Any] = {
            "@context": [CREDENTIALS_V2],
            "id": self.url,
            "type": ["VerifiableCredential", STATUS_LIST_CREDENTIAL],
            "issuer": issuer,
            "validFrom": format_datetime(valid_from or now_utc()),
            "credentialSubject": subject,
        }
        if valid_until is not None:
            credential["validUntil"] = format_datetime(valid_until)
        return credential

    # -- persistence --

    def to_json(self) -> dict[str, Any]:
        """Everything needed to continue the list elsewhere: bits and allocation bitmap."""
        return {
            "version": 1,
            "url": self.url,
            "statusPurpose": self.purpose,
            "length": self.length,
            "revision": self.revision,
            "allocatedCount": self._taken_count,
            "encodedList": encode_bitstring(self._bits),
            "allocated": encode_bitstring(self._taken),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, rng: random.Random | None = None) -> StatusList:
        """Restore ``to_json`` output; refuses state that does not add up (a corrupted file
        must not silently hand out an index twice)."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise StatusListError("not a version-1 status list state")
        length = data.get("length")
        if isinstance(length, bool) or not isinstance(length, int):
            raise StatusListError("status list state has no integer length")
        restored = cls(str(data.get("url")), str(data.get("statusPurpose")), length=length,
                       rng=rng)
        bits = decode_bitstring(str(data.get("encodedList")))
        taken = decode_bitstring(str(data.get("allocated")))
        if len(bits) != length // 8 or len(taken) != length // 8:
            raise StatusListError("status list state: bitstrings do not match the length")
        count = sum(byte.bit_count() for byte in taken)
        if data.get("allocatedCount") != count:
            raise StatusListError("status list state: allocatedCount does not match")
        if any(b & ~t for b, t in zip(bits, taken, strict=True)):
            raise StatusListError("status list state: a status bit is set on a free index")
        revision = data.get("revision", 0)
        restored._bits = bytearray(bits)
        restored._taken = bytearray(taken)
        restored._taken_count = count
        restored.revision = revision if isinstance(revision, int) else 0
        return restored


def attach_status(
    credential: dict[str, Any], entries: dict[str, Any] | Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """A copy of an unsigned ``credential`` with ``credentialStatus`` set to ``entries``.

    Adds the status context to VCDM 1.1 credentials, whose base context does not define the
    BitstringStatusList terms (signing would otherwise fail on undefined terms).
    """
    if not isinstance(credential, dict):
        raise MalformedDocument("a credential must be a JSON object")
    if "proof" in credential:
        raise MalformedDocument("credentialStatus must be attached before signing",
                                path="proof")
    if "credentialStatus" in credential:
        raise MalformedDocument("the credential already has a credentialStatus",
                                path="credentialStatus")
    listed = [entries] if isinstance(entries, dict) else list(entries)
    if not listed:
        raise StatusListError("no status entry to attach")
    doc = json.loads(json.dumps(credential))
    contexts = contexts_of(doc)
    if data_model(doc) == "1.1" and STATUS_CONTEXT_V1 not in contexts:
        doc["@context"] = [*contexts, STATUS_CONTEXT_V1]
    doc["credentialStatus"] = listed[0] if len(listed) == 1 else listed
    return doc


def issue_status_list_credential(
    status_list: StatusList,
    key: Ed25519Key,
    *,
    suite: str = RDFC,
    now: datetime | None = None,
    valid_until: datetime | None = None,
    ttl_ms: int | None = None,
) -> dict[str, Any] | str:
    """Sign the list credential with ``key`` (its controller is the issuer): a Data Integrity
    proof (``suite`` eddsa-rdfc-2022 or eddsa-jcs-2022), or a VC-JWT string for ``"jwt"``."""
    moment = now or now_utc()
    unsigned = status_list.unsigned_credential(key.controller, valid_from=moment,
                                               valid_until=valid_until, ttl_ms=ttl_ms)
    if suite == JWT:
        return issue_jwt_credential(unsigned, key, now=moment)
    return issue_credential(unsigned, key, suite=suite, now=moment)


class StatusListIssuer:
    """The status lists one issuer key publishes, and the revoke/suspend/resume operations
    addressed by the credential (or entry) instead of by list URL and index."""

    def __init__(self, key: Ed25519Key, *, suite: str = RDFC,
                 rng: random.Random | None = None) -> None:
        self.key = key
        self.suite = suite
        self._rng = rng
        self.lists: dict[str, StatusList] = {}

    def create_list(self, url: str, purpose: str, *,
                    length: int = MIN_STATUS_LIST_ENTRIES) -> StatusList:
        if url in self.lists:
            raise StatusListError(f"there is already a status list at {url}")
        self.lists[url] = StatusList(url, purpose, length=length, rng=self._rng)
        return self.lists[url]

    def allocate_entries(self, *purposes: str) -> list[dict[str, Any]]:
        """One entry per purpose (default: revocation), each from the first list of that
        purpose with room. Raises ``StatusListFull`` rather than creating lists on its own:
        where a new list is published is the node's decision."""
        entries = []
        for purpose in purposes or (REVOCATION,):
            candidates = [s for s in self.lists.values() if s.purpose == purpose]
            if not candidates:
                raise StatusListError(f"no {purpose} status list; create one first")
            open_lists = [s for s in candidates if s.free_count]
            if not open_lists:
                raise StatusListFull(f"every {purpose} status list is full; create a new one")
            entries.append(open_lists[0].allocate_entry())
        return entries

    def revoke(self, credential_or_entry: dict[str, Any]) -> None:
        self._apply(credential_or_entry, REVOCATION, True)

    def suspend(self, credential_or_entry: dict[str, Any]) -> None:
        self._apply(credential_or_entry, SUSPENSION, True)

    def resume(self, credential_or_entry: dict[str, Any]) -> None:
        self._apply(credential_or_entry, SUSPENSION, False)

    def status(self, credential_or_entry: dict[str, Any], purpose: str) -> bool:
        status_list, index = self._locate(credential_or_entry, purpose)
        return status_list.status(index)

    def list_credential(
        self,
        url: str,
        *,
        now: datetime | None = None,
        valid_until: datetime | None = None,
        ttl_ms: int | None = None,
    ) -> dict[str, Any] | str:
        """The signed list credential to publish at ``url`` (sign again after each change)."""
        if url not in self.lists:
            raise StatusListError(f"no status list at {url}")
        return issue_status_list_credential(self.lists[url], self.key, suite=self.suite,
                                            now=now, valid_until=valid_until, ttl_ms=ttl_ms)

    def _apply(self, credential_or_entry: dict[str, Any], purpose: str, value: bool) -> None:
        status_list, index = self._locate(credential_or_entry, purpose)
        status_list.set_status(index, value)

    def _locate(self, credential_or_entry: dict[str, Any], purpose: str) -> tuple[StatusList, int]:
        if not isinstance(credential_or_entry, dict):
            raise StatusListError("expected a credential or a credentialStatus entry")
        raw = credential_or_entry.get("credentialStatus", credential_or_entry)
        for entry in raw if isinstance(raw, list) else [raw]:
            if not isinstance(entry, dict) or entry.get("statusPurpose") != purpose:
                continue
            status_list = self.lists.get(str(entry.get("statusListCredential")))
            if status_list is None or status_list.purpose != purpose:
                continue
            parsed = parse_entry(entry)
            return status_list, parsed.index
        raise StatusListError(f"no {purpose} entry of this issuer's status lists found")

    def to_json(self) -> dict[str, Any]:
        """The lists' state (not the key: keys live in the keystore)."""
        return {"version": 1, "suite": self.suite,
                "lists": [s.to_json() for s in self.lists.values()]}

    @classmethod
    def from_json(cls, data: dict[str, Any], key: Ed25519Key, *,
                  rng: random.Random | None = None) -> StatusListIssuer:
        if not isinstance(data, dict) or data.get("version") != 1:
            raise StatusListError("not a version-1 status list issuer state")
        issuer = cls(key, suite=str(data.get("suite", RDFC)), rng=rng)
        for item in data.get("lists") or []:
            restored = StatusList.from_json(item, rng=rng)
            if restored.url in issuer.lists:
                raise StatusListError(f"status list {restored.url} appears twice")
            issuer.lists[restored.url] = restored
        return issuer


# --- checking ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """A parsed ``BitstringStatusListEntry``."""

    purpose: str
    index: int
    list_url: str
    size: int = 1
    id: str | None = None


def parse_entry(entry: Any, path: str = "credentialStatus") -> StatusEntry:
    """Validate one entry as the spec requires (MALFORMED_VALUE_ERROR otherwise)."""
    if not isinstance(entry, dict):
        raise StatusListError("a credentialStatus entry must be a JSON object", path=path)
    kinds = entry.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or STATUS_LIST_ENTRY not in kinds:
        raise StatusListError(f"not a {STATUS_LIST_ENTRY}", path=f"{path}.type")
    purpose = entry.get("statusPurpose")
    if not isinstance(purpose, str) or not purpose:
        raise StatusListError("statusPurpose must be a string", path=f"{path}.statusPurpose")
    index = entry.get("statusListIndex")
    if not isinstance(index, str) or not index.isascii() or not index.isdigit():
        raise StatusListError("statusListIndex must be a base-10 integer in a string",
                              path=f"{path}.statusListIndex")
    url = entry.get("statusListCredential")
    if not isinstance(url, str) or ":" not in url:
        raise StatusListError("statusListCredential must be a URL",
                              path=f"{path}.statusListCredential")
    size = entry.get("statusSize", 1)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 8:
        raise StatusListError("statusSize must be an integer from 1 to 8",
                              path=f"{path}.statusSize")
    if size > 1 and not isinstance(entry.get("statusMessage"), list):
        raise StatusListError("statusMessage is required when statusSize > 1",
                              path=f"{path}.statusMessage")
    entry_id = entry.get("id")
    if entry_id is not None and (not isinstance(entry_id, str) or entry_id == url):
        raise StatusListError("the entry id must be a URL other than the list's",
                              path=f"{path}.id")
    return StatusEntry(purpose, int(index), url, size, entry_id)


@dataclass(frozen=True, slots=True)
class EntryStatus:
    """What the checker found for one entry: the status value, or why it is unknown."""

    purpose: str
    list_url: str | None
    index: int | None
    value: int | None = None
    problem: Problem | None = None

    @property
    def is_set(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class _CachedList:
    issuer: str
    purposes: frozenset[str]
    bits: bytes
    valid_from: datetime | None
    valid_until: datetime | None
    fresh_until: float


class _Unavailable(Exception):
    """The list cannot be used; the message says why (becomes STATUS_UNAVAILABLE)."""


class StatusChecker:
    """Checks ``credentialStatus`` entries against their (verified, cached) status lists.

    ``fetcher`` maps a list URL to the list credential; the node supplies an HTTP one with its
    own rules about which URLs may be fetched. By default a status that cannot be established
    fails the credential (``on_unavailable="fail"``); ``"warn"`` accepts it with a
    ``status-unavailable`` warning instead, for verifiers that prefer availability.

    ``list_issuer_allowed(credential_issuer, list_issuer)`` decides who may publish status for
    whom; by default only the credential's own issuer. ``clock`` (seconds, monotonic) drives
    the cache and is injectable for tests.
    """

    def __init__(
        self,
        fetcher: StatusListFetcher,
        *,
        max_age_s: float = 300.0,
        on_unavailable: Literal["fail", "warn"] = "fail",
        list_issuer_allowed: Callable[[str, str], bool] | None = None,
        min_entries: int = MIN_STATUS_LIST_ENTRIES,
        retry_after_failure_s: float = 30.0,
        max_cached_lists: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        resolver: DIDResolver | None = None,
    ) -> None:
        if on_unavailable not in ("fail", "warn"):
            raise ValueError("on_unavailable is 'fail' or 'warn'")
        self._fetcher = fetcher
        self.max_age_s = max_age_s
        self.on_unavailable = on_unavailable
        self._issuer_allowed = list_issuer_allowed or (lambda issuer, lister: issuer == lister)
        self.min_entries = min_entries
        self.retry_after_failure_s = retry_after_failure_s
        self._max_cached = max_cached_lists
        self._clock = clock
        self._resolver = resolver
        self._cache: OrderedDict[str, _CachedList] = OrderedDict()
        self._failures: dict[str, tuple[float, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def clear_cache(self) -> None:
        self._cache.clear()
        self._failures.clear()

    def forget(self, url: str) -> None:
        """Drop one list from the cache (its publisher knows it changed: the node's own)."""
        self._cache.pop(url, None)
        self._failures.pop(url, None)

    # -- the verifier hook --

    async def check_status(
        self,
        credential: dict[str, Any],
        result: VerificationResult,
        options: VerifyOptions,
        *,
        verifier: Verifier,
    ) -> None:
        """``Verifier`` hook: revoked/suspended are problems; unknown per ``on_unavailable``."""
        statuses = await self.entry_statuses(credential, issuer=result.issuer,
                                             now=options.now, resolver=verifier.resolver)
        checked = True
        for status in statuses:
            if status.problem is not None:
                unknown = status.problem.type == ProblemType.STATUS_UNAVAILABLE
                checked = checked and not unknown
                if unknown and self.on_unavailable == "warn":
                    result.warnings.append(status.problem)
                else:
                    result.problems.append(status.problem)
            elif status.is_set:
                revoked = status.purpose == REVOCATION
                result.add(ProblemType.REVOKED if revoked else ProblemType.SUSPENDED,
                           f"the credential is {'revoked' if revoked else 'suspended'} "
                           f"(index {status.index} of {status.list_url})", "credentialStatus")
        result.status_checked = checked

    # -- the check itself --

    async def entry_statuses(
        self,
        credential: dict[str, Any],
        *,
        issuer: str | None = None,
        now: datetime | None = None,
        resolver: DIDResolver | None = None,
    ) -> list[EntryStatus]:
        """The status of every revocation/suspension entry of ``credential``.

        Never raises for bad input: a malformed entry is a MALFORMED problem (the issuer
        signed it that way), a list that cannot be used a STATUS_UNAVAILABLE one. Entries of
        other purposes (refresh, message) are skipped: they do not invalidate anything.
        """
        moment = now or now_utc()
        raw = credential.get("credentialStatus") if isinstance(credential, dict) else None
        entries = raw if isinstance(raw, list) else [] if raw is None else [raw]
        if issuer is None:
            try:
                issuer = issuer_id(credential)
            except CredentialsError as exc:
                return [EntryStatus("", None, None, problem=exc.problem)]
        out: list[EntryStatus] = []
        for position, item in enumerate(entries):
            path = "credentialStatus" if not isinstance(raw, list) else (
                f"credentialStatus[{position}]")
            kinds = item.get("type") if isinstance(item, dict) else None
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if isinstance(kinds, list) and STATUS_LIST_ENTRY not in kinds:
                # Some other status mechanism (StatusList2021Entry, ...): we cannot read it.
                out.append(EntryStatus(str(item.get("statusPurpose", "")), None, None,
                                       problem=Problem(ProblemType.STATUS_UNAVAILABLE,
                                                       f"unsupported credentialStatus type "
                                                       f"{kinds!r}", path)))
                continue
            try:
                entry = parse_entry(item, path)
            except CredentialsError as exc:
                out.append(EntryStatus("", None, None, problem=exc.problem))
                continue
            if entry.purpose not in ENFORCED_PURPOSES:
                continue
            out.append(await self._entry_status(entry, issuer, moment, path, resolver))
        return out

    async def _entry_status(
        self, entry: StatusEntry, issuer: str, now: datetime, path: str,
        resolver: DIDResolver | None,
    ) -> EntryStatus:
        def unknown(message: str) -> EntryStatus:
            return EntryStatus(entry.purpose, entry.list_url, entry.index,
                               problem=Problem(ProblemType.STATUS_UNAVAILABLE,
                                               f"{entry.list_url}: {message}", path))

        try:
            listed = await self._get_list(entry.list_url, now, resolver)
        except _Unavailable as exc:
            return unknown(str(exc))
        if not self._issuer_allowed(issuer, listed.issuer):
            return unknown(f"the list is issued by {listed.issuer}, which may not publish "
                           f"status for {issuer}")
        if entry.purpose not in listed.purposes:
            return unknown(f"the list's statusPurpose {sorted(listed.purposes)} does not "
                           f"include {entry.purpose!r}")
        if listed.valid_until is not None and listed.valid_until <= now:
            return unknown("the status list credential has expired")
        if listed.valid_from is not None and listed.valid_from > now:
            return unknown("the status list credential is not valid yet")
        if len(listed.bits) * 8 // entry.size < self.min_entries:
            return unknown(f"the list holds fewer than {self.min_entries} entries "
                           f"(STATUS_LIST_LENGTH_ERROR)")
        try:
            value = read_status(listed.bits, entry.index, entry.size)
        except StatusListError as exc:
            return unknown(f"{exc} (RANGE_ERROR)")
        return EntryStatus(entry.purpose, entry.list_url, entry.index, value)

    async def _get_list(
        self, url: str, now: datetime, resolver: DIDResolver | None
    ) -> _CachedList:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # one fetch per URL at a time; waiters then hit the cache
            moment = self._clock()
            cached = self._cache.get(url)
            if cached is not None and cached.fresh_until > moment:
                self._cache.move_to_end(url)
                return cached
            failed = self._failures.get(url)
            if failed is not None and failed[0] > moment:
                raise _Unavailable(f"{failed[1]} (not retried yet)")
            try:
                fresh = await self._fetch_and_verify(url, now, resolver, moment)
            except _Unavailable as exc:
                self._cache.pop(url, None)
                self._failures[url] = (moment + self.retry_after_failure_s, str(exc))
                if len(self._failures) > self._max_cached:  # forget failures that expired
                    for stale in [u for u, (t, _) in self._failures.items() if t <= moment]:
                        del self._failures[stale]
                        if stale not in self._cache:
                            self._locks.pop(stale, None)
                raise
            self._failures.pop(url, None)
            self._cache[url] = fresh
            self._cache.move_to_end(url)
            while len(self._cache) > self._max_cached:
                evicted, _ = self._cache.popitem(last=False)
                self._locks.pop(evicted, None)
            return fresh

    async def _fetch_and_verify(
        self, url: str, now: datetime, resolver: DIDResolver | None, moment: float
    ) -> _CachedList:
        try:
            document = await self._fetcher(url)
        except Exception as exc:  # any fetch failure is STATUS_RETRIEVAL_ERROR
            raise _Unavailable(f"cannot fetch the status list: {exc}") from exc
        if not isinstance(document, dict | str):
            raise _Unavailable("the fetcher returned neither a credential nor a VC-JWT")
        # A fresh Verifier without a status checker: a list's own status is not looked up
        # (that could recurse), and the list must always be signed by its issuer's key.
        verifier = Verifier(resolver or self._resolver or DIDResolver())
        result = await verifier.verify_credential(document, VerifyOptions(now=now))
        if not result.verified or result.document is None or result.issuer is None:
            problems = "; ".join(f"{p.type}: {p.message}" for p in result.problems)
            raise _Unavailable(f"the status list credential does not verify "
                               f"(STATUS_VERIFICATION_ERROR): {problems}")
        return self._decode_list(url, result.document, result.issuer, now, moment)

    def _decode_list(
        self, url: str, credential: dict[str, Any], issuer: str, now: datetime, moment: float
    ) -> _CachedList:
        try:
            kinds = types_of(credential)
        except CredentialsError as exc:
            raise _Unavailable(str(exc)) from exc
        if STATUS_LIST_CREDENTIAL not in kinds:
            raise _Unavailable(f"the document is not a {STATUS_LIST_CREDENTIAL}")
        if "id" in credential and credential["id"] != url:
            raise _Unavailable(f"the list credential is {credential['id']!r}, not the URL "
                               f"it was fetched from")
        subject = credential.get("credentialSubject")
        if not isinstance(subject, dict):
            raise _Unavailable("credentialSubject must be one BitstringStatusList object")
        subject_types = subject.get("type")
        subject_types = [subject_types] if isinstance(subject_types, str) else subject_types
        if not isinstance(subject_types, list) or STATUS_LIST not in subject_types:
            raise _Unavailable(f"credentialSubject.type must be {STATUS_LIST}")
        purposes = subject.get("statusPurpose")
        purposes = [purposes] if isinstance(purposes, str) else purposes
        if not isinstance(purposes, list) or not purposes or not all(
                isinstance(p, str) for p in purposes):
            raise _Unavailable("credentialSubject.statusPurpose must be one or more strings")
        encoded = subject.get("encodedList")
        if not isinstance(encoded, str):
            raise _Unavailable("credentialSubject.encodedList must be a string")
        try:
            bits = decode_bitstring(encoded)
            valid_from = (parse_datetime(credential["validFrom"], path="validFrom")
                          if "validFrom" in credential else None)
            valid_until = (parse_datetime(credential["validUntil"], path="validUntil")
                           if "validUntil" in credential else None)
        except CredentialsError as exc:
            raise _Unavailable(str(exc)) from exc
        lifetime = self.max_age_s
        ttl = subject.get("ttl")
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
                raise _Unavailable("credentialSubject.ttl must be a number of milliseconds")
            lifetime = min(lifetime, ttl / 1000)
        if valid_until is not None:
            lifetime = min(lifetime, max(0.0, (valid_until - now).total_seconds()))
        return _CachedList(issuer, frozenset(purposes), bits, valid_from, valid_until,
                           moment + lifetime)


__all__ = [
    "ENFORCED_PURPOSES",
    "MIN_STATUS_LIST_ENTRIES",
    "REVOCATION",
    "STATUS_CONTEXT_V1",
    "STATUS_LIST",
    "STATUS_LIST_CREDENTIAL",
    "STATUS_LIST_ENTRY",
    "SUSPENSION",
    "EntryStatus",
    "StatusChecker",
    "StatusEntry",
    "StatusList",
    "StatusListError",
    "StatusListFetcher",
    "StatusListFull",
    "StatusListIssuer",
    "attach_status",
    "decode_bitstring",
    "encode_bitstring",
    "issue_status_list_credential",
    "parse_entry",
    "read_status",
]
