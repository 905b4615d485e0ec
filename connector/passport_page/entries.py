"""The stored chain read once for the page: each entry's type, issuer, time and subject, with
its verification result, in chain order.

Everything the page derives (attributes, status, health, events) reads *verified* entries
only: a person scanning a battery must not be shown a state of health from an entry whose
signature fails. Entries that fail still appear in the custody timeline, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.store import CredentialRecord
from credentials.errors import CredentialsError
from credentials.passport.chain import credential_document
from credentials.passport.types import credential_type_of

from .verification import ChainVerification, EntryCheck


@dataclass(frozen=True, slots=True)
class PageEntry:
    """One stored entry as the page uses it."""

    position: int
    digest: str
    credential_type: str
    issuer: str
    issued_at: datetime | None
    subject: dict[str, Any]
    check: EntryCheck

    @property
    def verified(self) -> bool:
        return self.check.verified


def instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def read_entries(records: Sequence[CredentialRecord],
                 verification: ChainVerification) -> list[PageEntry]:
    """The entries in chain order (the audit's), then those outside the chain in storage
    order; an entry that cannot be read keeps its place with an empty subject."""
    order = list(verification.report.order)
    order += [i for i in range(len(records)) if i not in set(order)]
    entries: list[PageEntry] = []
    for index in order:
        record = records[index]
        try:
            document = credential_document(record.credential)
            kind = credential_type_of(document)
        except (CredentialsError, ValueError):
            document, kind = {}, "UnreadableEntry"
        subject = document.get("credentialSubject")
        if isinstance(subject, list) and len(subject) == 1:
            subject = subject[0]
        entries.append(PageEntry(
            position=record.position, digest=record.digest, credential_type=kind,
            issuer=record.issuer, issued_at=instant(document.get("validFrom")),
            subject=subject if isinstance(subject, dict) else {},
            check=verification.at(index)))
    return entries


def verified(entries: Sequence[PageEntry], *types: str) -> list[PageEntry]:
    """The verified entries of ``types`` (all types when none given), in chain order."""
    return [e for e in entries if e.verified and (not types or e.credential_type in types)]


__all__ = ["PageEntry", "instant", "read_entries", "verified"]
