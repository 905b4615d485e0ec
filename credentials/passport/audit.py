"""Auditing a battery passport someone handed us: every proof, every link, custody throughout.

``Passport.append`` keeps a passport well-formed while one party writes it; a reader cannot
assume that. Stored passports get reordered, truncated, forked or padded with garbage, and a
reader needs *all* of what is wrong, each fault typed and tied to the entry it concerns, not
the first exception. So ``audit`` never raises for bad input: everything becomes a finding.

Decisions:

- Storage order carries no meaning; the links are the order. ``audit`` rebuilds the chain from
  ``previousCredential`` and reports a stored order that differs only as a warning
  (``out-of-order``). ``AuditReport.order`` lists the entries in chain order.
- The chain starts at the entry without a link (or, for a repurposed passport audited with its
  ``original``, the one linking to the original's head). With several candidates, the one
  heading the most entries wins. Entries that do not descend from it are ``unreachable``; the
  entry where such a fragment breaks off gets ``broken-link`` (names a digest not in the
  passport) or ``missing-link`` (names none).
- A repurposed passport audited without ``original`` cannot have its first link checked, so
  that link is a ``broken-link``: ``ok`` means everything was checked.
- Custody moves only with a transfer that passed every check (signature, validity, subject,
  custody): a forged or expired transfer confers nothing, so entries by its beneficiary are
  custody violations too. Each branch of a fork is checked with the custody at the fork.
- Entries are verified one after the other: for did:key issuers the work is CPU-bound, so
  running them concurrently would only add scheduling, and a did:web issuer is fetched once
  and then served from the resolver's cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from credentials.errors import CredentialsError, ProblemType
from credentials.passport.chain import (
    BrokenLink,
    ChainEntry,
    CustodyViolation,
    InvalidRepurposing,
    MalformedEntry,
    Origin,
    Passport,
    PassportError,
    SubjectMismatch,
    UnknownCredentialType,
    credential_digest,
    custody_problem,
    next_custodian,
    repurposing_problem,
    subject_problem,
    type_problem,
)
from credentials.verifier import Verifier, VerifyOptions


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class FindingType(StrEnum):
    # The entry itself. The verifier's problems keep their ProblemType names.
    MALFORMED_ENTRY = "malformed-entry"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_PROOF_PURPOSE = "wrong-proof-purpose"
    CHALLENGE_MISMATCH = "challenge-mismatch"
    DOMAIN_MISMATCH = "domain-mismatch"
    UNDEFINED_TERM = "undefined-term"
    RELATIVE_IRI = "relative-iri"
    CONTEXT_NOT_ALLOWED = "context-not-allowed"
    NUMBER_OUT_OF_RANGE = "number-out-of-range"
    ISSUER_MISMATCH = "issuer-mismatch"
    UNSUPPORTED_PROOF = "unsupported-proof"
    MALFORMED_DOCUMENT = "malformed-document"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    STATUS_UNAVAILABLE = "status-unavailable"
    UNTRUSTED_ISSUER = "untrusted-issuer"
    #: A verification problem of a type this module does not know yet (or a verifier crash).
    VERIFICATION_FAILED = "verification-failed"
    UNKNOWN_TYPE = "unknown-type"
    STATUS_NOT_CHECKED = "status-not-checked"
    DUPLICATE_ENTRY = "duplicate-entry"
    # Links.
    BROKEN_LINK = "broken-link"
    MISSING_LINK = "missing-link"
    FORK = "fork"
    UNREACHABLE = "unreachable"
    OUT_OF_ORDER = "out-of-order"
    # Custody and subject.
    CUSTODY_VIOLATION = "custody-violation"
    SUBJECT_MISMATCH = "subject-mismatch"
    INVALID_REPURPOSING = "invalid-repurposing"


#: Findings that do not make a passport fail: nothing in them is wrong, or not yet checkable.
WARNINGS: frozenset[FindingType] = frozenset({
    FindingType.STATUS_NOT_CHECKED,
    FindingType.DUPLICATE_ENTRY,
    FindingType.OUT_OF_ORDER,
})

_FROM_ERROR: dict[type[PassportError], FindingType] = {
    MalformedEntry: FindingType.MALFORMED_ENTRY,
    BrokenLink: FindingType.BROKEN_LINK,
    SubjectMismatch: FindingType.SUBJECT_MISMATCH,
    CustodyViolation: FindingType.CUSTODY_VIOLATION,
    UnknownCredentialType: FindingType.UNKNOWN_TYPE,
    InvalidRepurposing: FindingType.INVALID_REPURPOSING,
}


def finding_type_of_problem(problem_type: ProblemType) -> FindingType:
    """The finding for a verifier problem: same name, or ``verification-failed`` for a
    problem type added to the verifier after this module."""
    try:
        return FindingType(str(problem_type))
    except ValueError:
        return FindingType.VERIFICATION_FAILED


@dataclass(frozen=True, slots=True)
class Finding:
    """One fault, tied to the entry it concerns (``index`` in the order given; None for the
    passport as a whole) and that entry's digest when it has one."""

    type: FindingType
    message: str
    index: int | None = None
    digest: str | None = None
    severity: Severity = Severity.ERROR
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": str(self.type), "severity": str(self.severity),
                               "index": self.index, "digest": self.digest,
                               "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        return out


@dataclass(slots=True)
class AuditReport:
    """What ``audit`` found. ``ok`` is True only when no finding is an error."""

    battery: str | None
    entry_count: int
    findings: list[Finding] = field(default_factory=list)
    #: Storage indices of the entries reachable from the chain's start, in chain order
    #: (depth first, branches in storage order when the chain forks).
    order: list[int] = field(default_factory=list)
    #: Each entry's digest by storage index (None where the entry could not be read).
    digests: list[str | None] = field(default_factory=list)
    #: The last entry's digest and the custodian after it, when the chain does not fork.
    head: str | None = None
    custodian: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def at(self, index: int | None) -> list[Finding]:
        """The findings about the entry at storage ``index`` (None: the passport as a whole)."""
        return [f for f in self.findings if f.index == index]

    def types_at(self, index: int | None) -> set[FindingType]:
        return {f.type for f in self.findings if f.index == index}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "battery": self.battery,
            "entries": self.entry_count,
            "head": self.head,
            "custodian": self.custodian,
            "order": list(self.order),
            "digests": list(self.digests),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.to_json() for f in self.findings],
        }


#: Findings about an entry's place in the chain rather than about the entry itself: they do
#: not stop a valid custody transfer from handing custody on within its own branch.
_PLACEMENT = frozenset({
    FindingType.BROKEN_LINK,
    FindingType.MISSING_LINK,
    FindingType.FORK,
    FindingType.UNREACHABLE,
})
_LINK_PATH = "credentialSubject.previousCredential"


class _Audit:
    """The state of one audit: entries read once, findings collected in one list."""

    def __init__(self, items: list[Any], battery: str | None, origin: Origin | None) -> None:
        self.items = items
        self.battery = battery
        self.origin = origin
        #: The distinct, readable entries by storage index (None: unreadable or a duplicate).
        self.entries: list[ChainEntry | None] = [None] * len(items)
        self.digests: list[str | None] = [None] * len(items)
        self.findings: list[Finding] = []
        #: Entries with an error about themselves: such an entry cannot hand on custody.
        self.untrusted: set[int] = set()

    def add(self, kind: FindingType, message: str, index: int | None,
            path: str | None = None) -> None:
        severity = Severity.WARNING if kind in WARNINGS else Severity.ERROR
        digest = self.digests[index] if index is not None else None
        self.findings.append(Finding(kind, message, index, digest, severity, path))
        if index is not None and severity is Severity.ERROR and kind not in _PLACEMENT:
            self.untrusted.add(index)

    def add_error(self, index: int, error: CredentialsError) -> None:
        kind = (_FROM_ERROR.get(type(error), FindingType.MALFORMED_ENTRY)
                if isinstance(error, PassportError) else FindingType.MALFORMED_ENTRY)
        self.add(kind, str(error), index, error.problem.path)

    # -- the entries one by one ----------------------------------------------------------------

    def read(self) -> dict[str, int]:
        """Read and hash every entry once; the digest → index map of the distinct ones."""
        by_digest: dict[str, int] = {}
        for index, item in enumerate(self.items):
            try:
                entry = ChainEntry.read(item)
            except (CredentialsError, ValueError, TypeError, RecursionError) as exc:
                with contextlib.suppress(CredentialsError):
                    # Not an entry, but maybe a credential: name it by its digest if it has one.
                    self.digests[index] = credential_digest(item)
                if isinstance(exc, CredentialsError):
                    self.add_error(index, exc)
                else:  # garbage nobody foresaw
                    self.add(FindingType.MALFORMED_ENTRY, f"unreadable entry: {exc}", index)
                continue
            self.digests[index] = entry.digest
            first = by_digest.setdefault(entry.digest, index)
            if first != index:
                self.add(FindingType.DUPLICATE_ENTRY, f"the same credential as entry {first}; "
                         "counted once, there", index)
                continue
            self.entries[index] = entry
            problem = type_problem(entry)
            if problem is not None:
                self.add_error(index, problem)
        return by_digest

    async def verify(self, verifier: Verifier, options: VerifyOptions) -> None:
        """Each distinct entry once: proof, issuer binding, validity period, terms."""
        for index, entry in enumerate(self.entries):
            if entry is None:
                continue
            try:
                result = await verifier.verify_credential(entry.secured, options)
            except Exception as exc:  # a verifier bug must not hide every other finding
                self.add(FindingType.VERIFICATION_FAILED,
                         f"the verifier failed on this entry: {exc!r}", index)
                continue
            for problem in result.problems:
                self.add(finding_type_of_problem(problem.type), problem.message, index,
                         problem.path)
            if entry.has_status and not result.status_checked and not result.problems:
                self.add(FindingType.STATUS_NOT_CHECKED, "credentialStatus is present, but "
                         "this audit's verifier has no status checker", index,
                         "credentialStatus")

    # -- the chain -----------------------------------------------------------------------------

    def chain(self, by_digest: dict[str, int], report: AuditReport) -> None:
        """Rebuild the order from the links; check links, forks, subject and custody."""
        entries = self.entries
        children: dict[str, list[int]] = {}
        starts: list[int] = []
        for index, entry in enumerate(entries):
            if entry is None:
                continue
            if entry.previous is not None:
                children.setdefault(entry.previous, []).append(index)
            if entry.previous is None or entry.previous not in by_digest:
                starts.append(index)
        for previous, kids in children.items():
            if len(kids) > 1:
                named = ", ".join(str(k) for k in kids[:5]) + (", ..." if len(kids) > 5 else "")
                for kid in kids:
                    self.add(FindingType.FORK, f"{len(kids)} entries ({named}) follow "
                             f"{previous}", kid, _LINK_PATH)

        # Every entry has one predecessor, so the entries form a forest: each lies in the
        # tree of at most one start, and sizing all trees is linear.
        sizes = {start: len(self._descendants(start, children)) for start in starts}
        legit = {start for start in starts if self._is_legit_start(start)}
        root = max(starts, key=lambda s: (s in legit, sizes[s], -s), default=None)
        if root is None:
            mains: list[int] = []
        elif root in legit and self.origin is not None:
            mains = sorted(legit)  # several repurposings of one head: a fork at the origin
        else:
            mains = [root]
        if self.battery is None and root is not None:
            self.battery = self._entry(root).subject
        report.battery = self.battery

        main_starts = set(mains)
        reached: set[int] = set()
        forked = len(mains) > 1
        for start in mains:
            self._check_start(start, is_root=True)
            order, custodian, tree_forked = self._walk(start, children, main=True)
            report.order.extend(order)
            reached.update(order)
            forked = forked or tree_forked
            report.custodian = custodian
        for start in starts:
            if start in main_starts:
                continue
            self._check_start(start, is_root=False)
            order, _, _ = self._walk(start, children, main=False)
            reached.update(order)
            for index in order[1:]:
                self.add(FindingType.UNREACHABLE, "not reachable from the first entry: it "
                         f"descends from entry {start}, which does not link into the chain",
                         index)
        for index, entry in enumerate(entries):
            if entry is not None and index not in reached:  # only a digest cycle gets here
                self.add(FindingType.UNREACHABLE, "not reachable from the first entry", index)

        if forked or not report.order:
            report.custodian = None
        else:
            report.head = self.digests[report.order[-1]]
        if any(a > b for a, b in zip(report.order, report.order[1:], strict=False)):
            self.add(FindingType.OUT_OF_ORDER, "the stored order differs from the order of "
                     "the links; the links decide (see order)", None)

    def _entry(self, index: int) -> ChainEntry:
        entry = self.entries[index]
        if entry is None:  # the chain only ever indexes entries that were read
            raise AssertionError(f"entry {index} was not read")
        return entry

    def _is_legit_start(self, index: int) -> bool:
        """Whether the entry may begin this passport's chain, link-wise."""
        entry = self._entry(index)
        if self.origin is None:
            return entry.previous is None and not entry.is_repurposing
        return entry.previous == self.origin.head

    def _descendants(self, start: int, children: dict[str, list[int]]) -> list[int]:
        found: list[int] = []
        stack = [start]
        seen: set[int] = set()
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            found.append(index)
            stack.extend(children.get(self._entry(index).digest, ()))
        return found

    def _check_start(self, index: int, *, is_root: bool) -> None:
        """Findings about the link of an entry that begins a chain or a fragment of one."""
        entry = self._entry(index)
        origin = self.origin
        if is_root and self._is_legit_start(index):
            return
        if entry.previous is None:
            if is_root and origin is None:
                return  # a RepurposingCredential without a link: _walk says so
            self.add(FindingType.MISSING_LINK, "the first entry of a repurposed passport must "
                     "link to the original passport's head" if is_root else "no "
                     "previousCredential, but another entry starts this passport", index,
                     _LINK_PATH)
        elif is_root and origin is None and entry.is_repurposing:
            self.add(FindingType.BROKEN_LINK, f"links to {entry.previous}, which is not in this "
                     "passport; pass original= to check a repurposing link", index, _LINK_PATH)
        elif is_root and origin is not None:
            self.add(FindingType.BROKEN_LINK, f"links to {entry.previous}, but the original "
                     f"passport's head is {origin.head}", index, _LINK_PATH)
        else:
            self.add(FindingType.BROKEN_LINK, f"links to {entry.previous}, which is not in "
                     "this passport (an entry was removed or altered)", index, _LINK_PATH)

    def _walk(
        self, start: int, children: dict[str, list[int]], *, main: bool
    ) -> tuple[list[int], str | None, bool]:
        """Depth first from ``start``: subject, custody and repurposing checks of each entry,
        against the custody of its own branch. Returns the entries in order, the custodian
        after the last one, and whether the tree forks."""
        origin = self.origin if main else None
        # The first custodian is the first issuer; a repurposing start must be issued by
        # whoever held the original. A fragment is checked from its own first issuer.
        stack: list[tuple[int, str | None]] = [
            (start, origin.custodian if origin is not None else None)]
        order: list[int] = []
        seen: set[int] = set()
        forked = False
        custodian_after: str | None = None
        while stack:
            index, custodian = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            order.append(index)
            entry = self._entry(index)
            if self.battery is not None:
                self._report(index, subject_problem(entry, self.battery))
            if index != start:
                self._report(index, repurposing_problem(entry, None, first=False))
            elif main and (origin is not None or entry.previous is None):
                self._report(index, repurposing_problem(entry, origin, first=True))
            self._report(index, custody_problem(entry, custodian))
            if index in self.untrusted:  # a forged or invalid transfer hands nothing on
                after = custodian if custodian is not None else entry.issuer
            else:
                after = next_custodian(entry, custodian)
            custodian_after = after
            kids = children.get(entry.digest, ())
            forked = forked or len(kids) > 1
            stack.extend((kid, after) for kid in reversed(kids))
        return order, custodian_after, forked

    def _report(self, index: int, problem: PassportError | None) -> None:
        if problem is not None:
            self.add_error(index, problem)


async def audit(
    passport_or_entries: Passport | Iterable[Any],
    *,
    verifier: Verifier | None = None,
    original: Passport | Origin | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Everything wrong with a passport: proofs, validity, links, forks, custody, subjects.

    ``passport_or_entries`` is a ``Passport`` or its stored entries in any order. ``original``
    is the passport a repurposed one continues (or its ``Origin``); a ``Passport`` built with
    ``Passport.repurposed_from`` carries its origin already. ``now`` is when validity periods
    are judged. Never raises for bad input: each fault is a ``Finding``.
    """
    battery: str | None = None
    origin: Origin | None = None
    origin_error: PassportError | None = None
    if isinstance(original, Passport):
        try:
            origin = original.origin_for_repurposing()
        except PassportError as exc:  # an empty original: nothing to link to
            origin_error = exc
    elif isinstance(original, Origin) or original is None:
        origin = original
    else:
        raise TypeError(f"original must be a Passport or an Origin, not {type(original)}")
    items: list[Any]
    if isinstance(passport_or_entries, Passport):
        battery = passport_or_entries.battery
        origin = origin or passport_or_entries.origin
        items = list(passport_or_entries.entries)
    elif isinstance(passport_or_entries, dict | str | bytes) or not isinstance(
            passport_or_entries, Iterable):
        report = AuditReport(None, 0)
        report.findings.append(Finding(FindingType.MALFORMED_ENTRY, "expected a Passport or a "
                                       "list of entries, not a "
                                       f"{type(passport_or_entries).__name__}"))
        return report
    else:
        items = list(passport_or_entries)

    state = _Audit(items, battery, origin)
    if origin_error is not None:
        state.add(FindingType.BROKEN_LINK, str(origin_error), None)
    report = AuditReport(battery, len(items))
    by_digest = state.read()
    await state.verify(verifier or Verifier(), VerifyOptions(now=now))
    state.chain(by_digest, report)
    report.digests = state.digests
    report.findings = sorted(state.findings, key=lambda f: (
        -1 if f.index is None else f.index))
    return report


__all__ = [
    "WARNINGS",
    "AuditReport",
    "Finding",
    "FindingType",
    "Severity",
    "audit",
    "finding_type_of_problem",
]
