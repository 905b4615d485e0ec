"""Verifying a stored passport for its page: every entry through the node's verifier, once
per chain head.

The page shows, entry by entry, whether the signature, validity period, link and custody step
hold (``credentials.passport.audit``). Verifying a long chain costs milliseconds per entry, and
a QR code in a recycling yard gets scanned again and again, so the report is kept per chain
head (battery, head digest, length, original head): a new entry makes a new key. Validity
periods and revocation change with time alone, so a report is also forgotten after
``max_age_s`` (the node's ``status_max_age_s``).

Reasons shown to a person are fixed texts per finding type plus the JSON path, never the
verifier's message: a message may quote the value that failed a check (``not 'WVW…'``), and a
restricted value must not reach an anonymous viewer through an error.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from credentials import VerificationResult, Verifier, VerifyOptions
from credentials.errors import CredentialsError
from credentials.passport.audit import AuditReport, FindingType, Severity, audit
from credentials.passport.chain import Passport, Secured, credential_digest

#: What each finding means, for someone holding the battery rather than the code.
REASONS: dict[FindingType, str] = {
    FindingType.MALFORMED_ENTRY: "the entry cannot be read as a passport credential",
    FindingType.BAD_SIGNATURE: "the signature does not match the content: the entry was "
                               "altered after it was signed, or signed by another key",
    FindingType.UNKNOWN_KEY: "the key that signed the entry cannot be found",
    FindingType.EXPIRED: "the credential's validity period has ended",
    FindingType.NOT_YET_VALID: "the credential is not valid yet",
    FindingType.WRONG_PROOF_PURPOSE: "the proof was not made for issuing credentials",
    FindingType.CHALLENGE_MISMATCH: "the proof was made for another exchange",
    FindingType.DOMAIN_MISMATCH: "the proof was made for another domain",
    FindingType.UNDEFINED_TERM: "the credential uses a term no context defines",
    FindingType.RELATIVE_IRI: "the credential uses a relative IRI",
    FindingType.CONTEXT_NOT_ALLOWED: "the credential uses a context this node does not accept",
    FindingType.NUMBER_OUT_OF_RANGE: "a number cannot be represented exactly",
    FindingType.ISSUER_MISMATCH: "the signing key does not belong to the named issuer",
    FindingType.UNSUPPORTED_PROOF: "the proof type is not supported",
    FindingType.MALFORMED_DOCUMENT: "the credential does not follow the passport data model",
    FindingType.REVOKED: "the issuer has revoked the credential",
    FindingType.SUSPENDED: "the issuer has suspended the credential",
    FindingType.STATUS_UNAVAILABLE: "the issuer's revocation list could not be checked",
    FindingType.UNTRUSTED_ISSUER: "the issuer is not on this node's trust list",
    FindingType.VERIFICATION_FAILED: "the entry could not be verified",
    FindingType.UNKNOWN_TYPE: "the credential type is not a passport entry type",
    FindingType.STATUS_NOT_CHECKED: "the revocation status was not checked",
    FindingType.DUPLICATE_ENTRY: "the same entry is stored twice",
    FindingType.BROKEN_LINK: "the entry does not link to the entry before it (an entry was "
                             "removed, replaced or altered)",
    FindingType.MISSING_LINK: "the entry names no entry before it",
    FindingType.FORK: "two entries claim to follow the same entry",
    FindingType.UNREACHABLE: "the entry is not part of the unbroken chain",
    FindingType.OUT_OF_ORDER: "the entry was stored out of chain order",
    FindingType.CUSTODY_VIOLATION: "the issuer did not hold custody of the battery",
    FindingType.SUBJECT_MISMATCH: "the entry is about another battery",
    FindingType.INVALID_REPURPOSING: "the repurposing entry does not continue the original "
                                     "passport",
}
_SAFE_PATH = re.compile(r"[A-Za-z0-9_.@\[\]-]{1,120}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason an entry is not verified: a stable code, a fixed text, the field."""

    type: str
    reason: str
    path: str | None
    error: bool


@dataclass(frozen=True, slots=True)
class EntryCheck:
    verified: bool
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """The audit of one chain head, entry by entry (storage order)."""

    report: AuditReport

    def at(self, index: int) -> EntryCheck:
        problems = tuple(_problem(f.type, f.path, f.severity is Severity.ERROR)
                         for f in self.report.at(index))
        return EntryCheck(not any(p.error for p in problems), problems)

    @property
    def passport_problems(self) -> tuple[Problem, ...]:
        """Findings about the passport as a whole (no entry to tie them to)."""
        return tuple(_problem(f.type, f.path, f.severity is Severity.ERROR)
                     for f in self.report.at(None))

    @property
    def ok(self) -> bool:
        return self.report.ok


def _problem(kind: FindingType, path: str | None, error: bool) -> Problem:
    safe = path if path is not None and _SAFE_PATH.fullmatch(path) else None
    return Problem(str(kind), REASONS.get(kind, "the entry could not be verified"), safe, error)


CacheKey = tuple[str, str | None, int, str | None]


class _RememberingVerifier(Verifier):
    """The node's verifier, remembering each entry's result by digest for ``max_age_s``.

    A passport the hub bridge appends to every few seconds has a new head at almost every
    scan; without this each scan would verify every signature of the chain again. Link and
    custody checks (cheap, pure) still run over the whole chain each time.
    """

    def __init__(self, inner: Verifier, max_age_s: float, size: int,
                 clock: Callable[[], float]) -> None:
        super().__init__(inner.resolver, status_checker=inner.status_checker)
        self._inner = inner
        self._max_age_s = max_age_s
        self._size = size
        self._clock = clock
        self._results: OrderedDict[str, tuple[float, VerificationResult]] = OrderedDict()

    async def verify_credential(self, credential: dict[str, Any] | str,
                                options: VerifyOptions | None = None) -> VerificationResult:
        try:
            digest = credential_digest(credential)
        except CredentialsError:
            return await self._inner.verify_credential(credential, options)
        now = self._clock()
        cached = self._results.get(digest)
        if cached is not None and now - cached[0] < self._max_age_s:
            self._results.move_to_end(digest)
            return cached[1]
        result = await self._inner.verify_credential(credential, options)
        self._results[digest] = (now, result)
        while len(self._results) > self._size:
            self._results.popitem(last=False)
        return result


class VerificationCache:
    """Audit reports per chain head, at most ``size`` of them, each for ``max_age_s``."""

    def __init__(self, verifier: Verifier, *, max_age_s: float = 300.0, size: int = 512,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._verifier = _RememberingVerifier(verifier, max_age_s, size * 64, clock)
        self._max_age_s = max_age_s
        self._size = size
        self._clock = clock
        self._reports: OrderedDict[CacheKey, tuple[float, ChainVerification]] = OrderedDict()
        self.audits = 0  # how many audits ran (tests check the cache is used)

    async def verify(self, battery: str, head: str | None, entries: Sequence[Secured],
                     original: Passport | None) -> ChainVerification:
        key: CacheKey = (battery, head, len(entries), original.head if original else None)
        now = self._clock()
        cached = self._reports.get(key)
        if cached is not None and now - cached[0] < self._max_age_s:
            self._reports.move_to_end(key)
            return cached[1]
        self.audits += 1
        report = await audit(list(entries), verifier=self._verifier, original=original)
        result = ChainVerification(report)
        self._reports[key] = (now, result)
        self._reports.move_to_end(key)
        while len(self._reports) > self._size:
            self._reports.popitem(last=False)
        return result


__all__ = ["REASONS", "ChainVerification", "EntryCheck", "Problem", "VerificationCache"]
