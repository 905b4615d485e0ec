"""Consumer side: keep what a transfer delivered until the agreement says to delete it, then
purge it and send the provider a signed deletion receipt.

``record_received`` runs when ``GET /management/transfers/{id}/data`` obtained data: it stores
the bytes as a ``ReceivedData`` row (keyed by the transfer; a re-fetch updates it) with
``purge_at`` = the due time of the agreement's ``delete`` duty (``duties.delete_due_at``;
``None``: no such duty, the data is kept) and the provider's protocol address.

``purge_round`` is one round of the purge watch (``connector.background.periodic``):

1. every row whose ``purge_at`` passed at the node's DSP clock is purged in its own write
   transaction — ``data`` dropped, ``purged_at`` set and the receipt signed and stored with
   it, so a purge is never recorded without its receipt nor the reverse;
2. every stored receipt the provider has not taken yet is sent, outside any transaction:
   ``POST <provider address>/usage/deletion-receipts`` with the node's participant token. On a
   2xx ``receipt_sent_at`` is set; anything else is logged and retried next round.

Where a receipt may go: only to the protocol address of the transfer's provider (recorded when
the data arrived), never to an address taken from the data or from a request.

A row that was purged stays purged: data fetched again under the same agreement after its
delete duty fell due is handed to the operator but not kept (the duty is already due).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from connector.app import HTTP_CLIENT, IDENTITY, STORE
from connector.dataplane.provider import AGREEMENT_ENDED
from connector.dsp.client import join_url, origin_of
from connector.dsp.negotiation_service import dsp_state
from connector.participant_auth import RequestSigner
from connector.store import Reader, ReceivedData, Store, new_id
from connector.usage.duties import delete_due_at
from connector.usage.receipts import deletion_receipt

log = logging.getLogger(__name__)

_FOREVER = timedelta(days=365 * 100)

RECEIPTS_PATH = "/usage/deletion-receipts"
SEND_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
#: Rows handled per round and kind (due, unsent); the next round takes the rest.
ROUND_BATCH = 100


def _clock(app: web.Application) -> datetime:
    return dsp_state(app).settings.clock()


def encode_data(body: bytes, content_type: str) -> dict[str, Any]:
    """What the row keeps: the JSON document as JSON, anything else as base64, with its type."""
    if content_type.endswith("json"):
        try:
            return {"contentType": content_type, "json": json.loads(body)}
        except ValueError:
            pass
    return {"contentType": content_type or "application/octet-stream",
            "base64": base64.b64encode(body).decode("ascii")}


def decode_data(data: dict[str, Any]) -> tuple[bytes, str]:
    """The bytes and content type ``encode_data`` kept."""
    content_type = str(data.get("contentType") or "application/octet-stream")
    if "json" in data:
        return json.dumps(data["json"], ensure_ascii=False).encode("utf-8"), content_type
    return base64.b64decode(str(data.get("base64", ""))), content_type


async def record_received(app: web.Application, transfer_id: str, body: bytes,
                          content_type: str) -> ReceivedData | None:
    """Keep data a consumer transfer just delivered; the stored row (``None`` when the row was
    already purged and stays so)."""
    identity = app[IDENTITY]
    now = _clock(app)
    async with app[STORE].transaction() as tx:
        transfer = await tx.get_transfer(transfer_id)
        if transfer is None:
            return None
        agreement = await tx.get_agreement(transfer.agreement_id)
        purge_at = None
        provider_did = transfer.counterparty_did
        if agreement is not None:
            provider_did = agreement.provider_did
            purge_at = delete_due_at(agreement.agreement, identity.did, agreement.signed_at, now)
        data = encode_data(body, content_type)
        current = await tx.get_received_data(transfer_id, for_update=True)
        if current is not None and current.purged_at is not None:
            log.warning("data of transfer %s fetched again after it was purged: not kept",
                        transfer_id)
            return None
        if current is None:
            record = ReceivedData(
                transfer_id=transfer_id, agreement_id=transfer.agreement_id,
                provider_did=provider_did, asset_id=transfer.asset_id, data=data,
                received_at=now, purge_at=purge_at,
                provider_address=transfer.counterparty_address)
        else:
            record = replace(current, data=data, received_at=now, purge_at=purge_at)
        stored = await tx.put_received_data(record)
        await tx.append_audit(actor=identity.did, action="usage.data-received",
                              subject_id=transfer_id,
                              details={"agreement_id": transfer.agreement_id,
                                       "purge_at": purge_at.isoformat() if purge_at else None})
    return stored


# --- the purge watch ---------------------------------------------------------------------------


async def purge_one(app: web.Application, transfer_id: str, now: datetime, *,
                    ended_early: bool = False) -> bool:
    """Purge one due row and sign its receipt, in one transaction; False if it was not due
    (any more) when locked. ``ended_early``: the agreement ended before its delete duty fell
    due (the provider terminated it), so the duty is due now."""
    identity = app[IDENTITY]
    async with app[STORE].transaction() as tx:
        row = await tx.get_received_data(transfer_id, for_update=True)
        if row is None or row.purged_at is not None or row.purge_at is None \
                or (row.purge_at > now and not ended_early):
            return False
        receipt = deletion_receipt(
            identity.signing_key, receipt_id=new_id(), provider_did=row.provider_did,
            agreement_id=row.agreement_id, transfer_id=row.transfer_id,
            assets=[row.asset_id], purged_at=now)
        await tx.put_received_data(replace(row, data=None, purged_at=now, receipt=receipt))
        await tx.append_audit(actor=identity.did, action="usage.data-purged",
                              subject_id=transfer_id,
                              details={"agreement_id": row.agreement_id,
                                       "receipt_id": receipt["id"]})
    return True


def receipt_url(provider_address: str | None) -> str | None:
    """Where the provider takes receipts: under its protocol address; ``None`` when there is
    no usable (http/https) address."""
    if not provider_address or origin_of(provider_address) is None:
        return None
    return join_url(provider_address, RECEIPTS_PATH)


async def send_receipt(app: web.Application, row: ReceivedData) -> bool:
    """Deliver a stored receipt to its provider; True once the provider took it (2xx)."""
    url = receipt_url(row.provider_address)
    if url is None or row.receipt is None:
        log.warning("deletion receipt of transfer %s: no provider address to send it to",
                    row.transfer_id)
        return False
    body = json.dumps(row.receipt, ensure_ascii=False).encode("utf-8")
    signer = RequestSigner(app[IDENTITY].signing_key, dsp_state(app).settings.clock)
    headers = {"Content-Type": "application/json",
               **signer.headers(audience=row.provider_did, method="POST", url=url, body=body)}
    try:
        async with app[HTTP_CLIENT].post(url, data=body, headers=headers, allow_redirects=False,
                                         timeout=SEND_TIMEOUT) as response:
            status = response.status
            answer = (await response.content.read(4096)).decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("deletion receipt of transfer %s not delivered to %s: %s: %s",
                    row.transfer_id, url, type(exc).__name__, exc)
        return False
    if not 200 <= status < 300:
        log.warning("deletion receipt of transfer %s refused by %s: HTTP %d %s",
                    row.transfer_id, url, status, answer[:300])
        return False
    async with app[STORE].transaction() as tx:
        current = await tx.get_received_data(row.transfer_id, for_update=True)
        if current is not None and current.receipt_sent_at is None:
            await tx.put_received_data(replace(current, receipt_sent_at=_clock(app)))
            await tx.append_audit(actor=app[IDENTITY].did, action="usage.receipt-sent",
                                  subject_id=row.transfer_id,
                                  details={"receipt_id": (row.receipt or {}).get("id"),
                                           "provider": row.provider_did})
    return True


async def _ended_early(reader: Reader, now: datetime) -> list[str]:
    """Transfers whose data awaits a delete duty but whose agreement the provider ended
    before it fell due (revoked certificate, termination): the agreement's end is now."""
    waiting = await reader.list_received_data(due_by=now + _FOREVER, limit=ROUND_BATCH)
    found = []
    for row in waiting:
        transfer = await reader.get_transfer(row.transfer_id)
        if (transfer is not None and transfer.state == "TERMINATED"
                and transfer.failed_constraint == AGREEMENT_ENDED):
            found.append(row.transfer_id)
    return found


async def purge_round(app: web.Application) -> int:
    """One round of the watch: purge what is due, send what is unsent; how many changed."""
    store: Store = app[STORE]
    now = _clock(app)
    changed = 0
    async with store.read() as reader:
        due = await reader.list_received_data(due_by=now, limit=ROUND_BATCH)
        ended_early = await _ended_early(reader, now)
    for transfer_id in ended_early:
        try:
            changed += await purge_one(app, transfer_id, now, ended_early=True)
        except Exception:
            log.exception("purging the data of transfer %s failed", transfer_id)
    for row in due:
        try:
            changed += await purge_one(app, row.transfer_id, now)
        except Exception:  # one bad row must not keep the others from being purged
            log.exception("purging the data of transfer %s failed", row.transfer_id)
    async with store.read() as reader:
        unsent = await reader.list_received_data(receipt_unsent=True, limit=ROUND_BATCH)
    for row in unsent:
        try:
            changed += await send_receipt(app, row)
        except Exception:
            log.exception("sending the deletion receipt of transfer %s failed", row.transfer_id)
    return changed


__all__ = [
    "RECEIPTS_PATH",
    "decode_data",
    "encode_data",
    "purge_one",
    "purge_round",
    "receipt_url",
    "record_received",
    "send_receipt",
]
