"""Usage-control HTTP routes, and ``install`` that adds them and the purge watch to a node.

Management API (operator key, problem JSON, keyset paging):

- ``GET /management/received-data`` (``?agreementId=``): what this node received as consumer —
  metadata only (transfer, agreement, asset, provider, receivedAt, purgeAt, purgedAt,
  receiptId, receiptSentAt), never the data itself.
- ``GET /management/received-data/{transfer_id}``: the data as it arrived (its bytes and
  content type) while kept; 410 ``purged`` once deleted, 404 for an unknown transfer.
- ``GET /management/deletion-receipts`` (``?agreementId=``): receipts consumers sent us.
- ``GET /management/deletion-receipts/overdue``: provider-side agreements whose ``delete``
  duty fell due more than ``deletion_receipt_grace_s`` ago without a receipt:
  ``{agreementId, consumerDid, assetId, dueAt, overdueBy}`` (``overdueBy`` in seconds since
  ``dueAt``). Pages over the agreements (``next`` may be set with few items).

Participant API:

- ``POST /usage/deletion-receipts`` — body: the receipt credential; the caller authenticates
  with its participant token (as on the protocol endpoints; 401 with the DSP error body).
  201 recorded, 200 already recorded; refusals are problem JSON with ``code``
  ``malformed-receipt`` (400), ``bad-signature`` (400), ``not-your-agreement`` (403),
  ``unknown-agreement`` (404), ``receipt-id-taken`` (409). Nothing is stored on a refusal.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connector.app import CONFIG, IDENTITY, STORE
from connector.background import periodic
from connector.dsp.inbound import authenticate
from connector.dsp.negotiation_service import dsp_state
from connector.management.assets import not_found
from connector.management.auth import require_operator
from connector.management.paging import page, paging
from connector.participant_auth import ParticipantAuthError
from connector.problems import ProblemDetails, ProblemError
from connector.store import DeletionReceipt, ReceivedData
from connector.usage.consumer import RECEIPTS_PATH, decode_data, purge_round
from connector.usage.provider import ReceiptRefused, accept_receipt, overdue_receipts


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def received_json(row: ReceivedData) -> dict[str, Any]:
    """The operator's view of received data: everything but the data."""
    return {
        "transferId": row.transfer_id,
        "agreementId": row.agreement_id,
        "assetId": row.asset_id,
        "providerId": row.provider_did,
        "receivedAt": _time(row.received_at),
        "purgeAt": _time(row.purge_at),
        "purgedAt": _time(row.purged_at),
        "receiptId": (row.receipt or {}).get("id"),
        "receiptSentAt": _time(row.receipt_sent_at),
    }


def receipt_json(record: DeletionReceipt) -> dict[str, Any]:
    subject = record.receipt.get("credentialSubject")
    subject = subject if isinstance(subject, dict) else {}
    return {
        "id": record.id,
        "agreementId": record.agreement_id,
        "consumerId": record.consumer_did,
        "transferId": subject.get("transferId"),
        "assets": subject.get("assets"),
        "purgedAt": subject.get("purgedAt"),
        "receivedAt": _time(record.received_at),
        "receipt": record.receipt,
    }


# --- consumer: received data -------------------------------------------------------------------


@require_operator
async def list_received(request: web.Request) -> web.Response:
    limit, after = paging(request)
    async with request.config_dict[STORE].read() as reader:
        rows = await reader.list_received_data(
            agreement_id=request.query.get("agreementId") or None, after=after, limit=limit)
    return page([received_json(r) for r in rows], len(rows), limit,
                rows[-1].transfer_id if rows else None)


@require_operator
async def get_received(request: web.Request) -> web.Response:
    transfer_id = request.match_info["transfer_id"]
    async with request.config_dict[STORE].read() as reader:
        row = await reader.get_received_data(transfer_id)
    if row is None:
        raise not_found("received data of transfer", transfer_id)
    if row.purged_at is not None or row.data is None:
        view = received_json(row)
        raise ProblemError(ProblemDetails(
            410, "purged", "Data purged",
            f"the data of transfer {transfer_id!r} was deleted at {view['purgedAt']} as its "
            "agreement required", {"purgedAt": view["purgedAt"], "receiptId": view["receiptId"]}))
    body, content_type = decode_data(row.data)
    return web.Response(body=body, content_type=content_type.split(";")[0].strip(),
                        headers={"Cache-Control": "no-store"})


# --- provider: receipts ------------------------------------------------------------------------


def _refusal(status: int, code: str, title: str, detail: str) -> web.Response:
    return ProblemDetails(status, code, title, detail, {"code": code}).response()


async def post_receipt(request: web.Request) -> web.Response:
    """A consumer files its deletion receipt (participant token, not the operator key)."""
    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return exc.response()
    try:
        document = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError) as exc:
        return _refusal(400, "malformed-receipt", "Receipt refused",
                        f"the body is not JSON: {exc}")
    try:
        accepted = await accept_receipt(request.app, caller, document)
    except ReceiptRefused as refused:
        return _refusal(refused.status, refused.code, "Receipt refused", refused.detail)
    body = {"id": accepted.receipt.id, "agreementId": accepted.receipt.agreement_id,
            "recorded": True, "duplicate": accepted.duplicate}
    return web.json_response(body, status=200 if accepted.duplicate else 201)


@require_operator
async def list_receipts(request: web.Request) -> web.Response:
    limit, after = paging(request)
    async with request.config_dict[STORE].read() as reader:
        rows = await reader.list_deletion_receipts(
            agreement_id=request.query.get("agreementId") or None, after=after, limit=limit)
    return page([receipt_json(r) for r in rows], len(rows), limit,
                rows[-1].id if rows else None)


@require_operator
async def list_overdue(request: web.Request) -> web.Response:
    limit, after = paging(request)
    now = dsp_state(request.app).settings.clock()
    grace = timedelta(seconds=request.config_dict[CONFIG].deletion_receipt_grace_s)
    async with request.config_dict[STORE].read() as reader:
        found, cursor = await overdue_receipts(reader, request.config_dict[IDENTITY].did, now,
                                               grace, after=after, limit=limit)
    items = [{"agreementId": o.agreement.id, "consumerDid": o.agreement.consumer_did,
              "assetId": o.agreement.asset_id, "dueAt": _time(o.due_at),
              "overdueBy": int(o.overdue_by.total_seconds())} for o in found]
    return web.json_response({"items": items, "next": cursor})


def install(app: web.Application) -> None:
    """The routes above, and the purge watch at the node's ``watch_interval_s``."""
    app.router.add_get("/management/received-data", list_received)
    app.router.add_get("/management/received-data/{transfer_id}", get_received)
    app.router.add_get("/management/deletion-receipts", list_receipts)
    app.router.add_get("/management/deletion-receipts/overdue", list_overdue)
    app.router.add_post(RECEIPTS_PATH, post_receipt)
    app.cleanup_ctx.append(periodic("usage-purge-watch", app[CONFIG].watch_interval_s,
                                    purge_round,
                                    "usage watch: %d received data sets purged or receipts sent"))


__all__ = ["install", "receipt_json", "received_json"]
