"""Provider side: accept a consumer's deletion receipt, and list the receipts that are overdue.

A receipt is recorded only when all of this holds, checked cheapest first so a stranger cannot
make the node resolve DIDs or verify signatures for nothing:

1. it reads as a ``DataDeletionReceipt`` (``malformed-receipt``), addressed to this node
   (``credentialSubject.id``);
2. its issuer is the authenticated caller (``not-your-agreement``: nobody files receipts in
   another participant's name);
3. the agreement exists here (``unknown-agreement``) with this node as provider and the caller
   as consumer (``not-your-agreement``);
4. the node's verifier accepts it at the node's clock (``bad-signature``).

Then it is stored with an audit line in one transaction. The same receipt again is a success
without a second row (the consumer retries when it did not see the answer).

Overdue: a provider-side agreement whose ``delete`` duty fell due more than the grace period
ago (``deletion_receipt_grace_s``) and for which no receipt was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connector.app import IDENTITY, STORE, VERIFIER
from connector.dsp.negotiation_service import dsp_state
from connector.store import AgreementRecord, DeletionReceipt, Reader
from connector.usage.duties import delete_due_at
from connector.usage.receipts import MalformedReceipt, read_receipt
from credentials import CredentialsError, VerifyOptions


class ReceiptRefused(Exception):
    """Not recorded: the HTTP ``status``, a stable ``code`` and a ``detail`` for people."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Accepted:
    """A recorded receipt; ``duplicate`` when it had been recorded before."""

    receipt: DeletionReceipt
    duplicate: bool


def _malformed(detail: str) -> ReceiptRefused:
    return ReceiptRefused(400, "malformed-receipt", detail)


async def accept_receipt(app: web.Application, caller_did: str, document: Any) -> Accepted:
    """Check and record ``document`` sent by ``caller_did``; ``ReceiptRefused`` otherwise."""
    own_did = app[IDENTITY].did
    try:
        claims = read_receipt(document)
    except MalformedReceipt as exc:
        raise _malformed(f"{exc.path}: {exc}" if exc.path else str(exc)) from None
    if claims.subject != own_did:
        raise _malformed(f"credentialSubject.id must be this node's DID {own_did}, not "
                         f"{claims.subject}")
    if claims.issuer != caller_did:
        raise ReceiptRefused(403, "not-your-agreement",
                             f"the receipt is issued by {claims.issuer}, but {caller_did} "
                             "sent it: a participant files only its own receipts")
    async with app[STORE].read() as reader:
        agreement = await reader.get_agreement(claims.agreement_id)
    if agreement is None:
        raise ReceiptRefused(404, "unknown-agreement",
                             f"no agreement {claims.agreement_id!r} on this node")
    if agreement.provider_did != own_did or agreement.consumer_did != caller_did:
        raise ReceiptRefused(403, "not-your-agreement",
                             f"agreement {claims.agreement_id!r} is not one between this node "
                             f"as provider and {caller_did} as consumer")
    now = dsp_state(app).settings.clock()
    try:
        result = await app[VERIFIER].verify_credential(document, VerifyOptions(now=now))
    except CredentialsError as exc:  # the verifier reports most problems; some it raises
        raise ReceiptRefused(400, "bad-signature", f"the receipt does not verify: {exc}") \
            from None
    if not result.verified:
        problems = "; ".join(f"{p.type}: {p.message}" for p in result.problems)
        raise ReceiptRefused(400, "bad-signature",
                             f"the receipt does not verify: {problems or 'unknown problem'}")
    record = DeletionReceipt(id=claims.id, agreement_id=claims.agreement_id,
                             consumer_did=caller_did, receipt=document, received_at=now)
    async with app[STORE].transaction() as tx:
        added = await tx.add_deletion_receipt(record)
        if added:
            await tx.append_audit(actor=caller_did, action="usage.receipt-received",
                                  subject_id=claims.agreement_id,
                                  details={"receipt_id": claims.id,
                                           "transfer_id": claims.transfer_id,
                                           "assets": list(claims.assets),
                                           "purged_at": claims.purged_at.isoformat()})
    if added:
        return Accepted(record, duplicate=False)
    stored = await find_receipt(app, claims.agreement_id, claims.id)
    if stored is None or stored.consumer_did != caller_did:
        raise ReceiptRefused(409, "receipt-id-taken",
                             f"a different receipt with id {claims.id!r} is already recorded")
    return Accepted(stored, duplicate=True)


async def find_receipt(app: web.Application, agreement_id: str,
                       receipt_id: str) -> DeletionReceipt | None:
    """The recorded receipt ``receipt_id`` of an agreement (the store lists them by agreement)."""
    after: str | None = None
    async with app[STORE].read() as reader:
        while True:
            rows = await reader.list_deletion_receipts(agreement_id=agreement_id, after=after,
                                                       limit=500)
            for row in rows:
                if row.id == receipt_id:
                    return row
            if len(rows) < 500:
                return None
            after = rows[-1].id


# --- overdue -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Overdue:
    """A provider-side agreement whose consumer owes a deletion receipt."""

    agreement: AgreementRecord
    due_at: datetime
    overdue_by: timedelta


async def overdue_receipts(reader: Reader, own_did: str, now: datetime, grace: timedelta, *,
                           after: str | None = None, limit: int = 100,
                           ) -> tuple[list[Overdue], str | None]:
    """Overdue agreements among one page of this node's provider-side agreements (by id), and
    the cursor of the next page (``None``: no more)."""
    agreements = await reader.list_agreements(provider_did=own_did, after=after, limit=limit)
    found = []
    for agreement in agreements:
        due_at = delete_due_at(agreement.agreement, agreement.consumer_did, agreement.signed_at)
        if due_at is None or now - due_at <= grace:
            continue
        if await reader.list_deletion_receipts(agreement_id=agreement.id, limit=1):
            continue
        found.append(Overdue(agreement, due_at, now - due_at))
    cursor = agreements[-1].id if len(agreements) == limit else None
    return found, cursor


__all__ = ["Accepted", "Overdue", "ReceiptRefused", "accept_receipt", "find_receipt",
           "overdue_receipts"]
