"""``/management/wallet/credentials``: the operator puts credentials issued to this node into
its wallet, lists them and removes them (operator key on every route).

- ``POST`` body = the credential (JSON-LD, Data Integrity proof) → 201 with its view and
  ``Location``. Refusals (``connector.dcp.wallet.admit``): 400 ``malformed-credential``,
  422 ``not-issued-to-this-node`` / ``credential-not-verified`` (typed ``problems``: bad
  signature, revoked, suspended, expired…), 409 ``already-exists`` for an id held (not
  removed). A removed credential may be added again.
- ``GET`` lists held credentials by id (paged; ``?includeRemoved=true`` for removed ones too);
  ``GET …/{id}`` one (404 once removed); ``DELETE …/{id}`` removes it (204; 404 unknown or
  already removed): it is never presented again.

Verification (network: DID documents, status lists) runs before the write transaction, which
only re-checks the id, so a refused request writes nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from urllib.parse import quote

from aiohttp import web

from connector.app import IDENTITY, STORE, VERIFIER
from connector.dcp.wallet import WalletError, admit, credential_view
from connector.dsp.negotiation_service import dsp_state
from connector.management.assets import not_found
from connector.management.auth import require_operator
from connector.management.paging import invalid_query, page, paging
from connector.problems import ProblemDetails, ProblemError, read_json_object
from connector.store import AlreadyExists

COLLECTION = "/management/wallet/credentials"


def _now(request: web.Request) -> datetime:
    """The node's clock (the DSP settings' one, injectable in tests and the demo)."""
    return dsp_state(request.app).settings.clock()


def _refused(exc: WalletError) -> ProblemError:
    extensions = {"problems": [p.to_json() for p in exc.problems]} if exc.problems else {}
    return ProblemError(ProblemDetails(exc.status, exc.slug, exc.title, exc.detail, extensions))


def _taken(credential_id: str) -> ProblemError:
    return ProblemError(ProblemDetails(
        409, "already-exists", "Already exists",
        f"the wallet already holds credential {credential_id!r}; remove it first to replace it",
        {"id": credential_id}))


@require_operator
async def add_credential(request: web.Request) -> web.Response:
    document = await read_json_object(request)
    app = request.config_dict
    now = _now(request)
    try:
        record = await admit(document, holder_did=app[IDENTITY].did, verifier=app[VERIFIER],
                             now=now)
    except WalletError as exc:
        raise _refused(exc) from None
    try:
        async with app[STORE].transaction() as tx:
            held = await tx.get_wallet_credential(record.id, for_update=True)
            if held is not None and held.removed_at is None:
                raise _taken(record.id)
            if held is not None:  # removed before: the same row comes back to life
                record = dataclasses.replace(record, version=held.version,
                                             created_at=held.created_at, updated_at=now)
            stored = await tx.put_wallet_credential(record)
            await tx.append_audit(actor="operator", action="wallet.credential.added",
                                  subject_id=record.id,
                                  details={"issuer": record.issuer, "types": list(record.types)})
    except AlreadyExists:
        raise _taken(record.id) from None
    return web.json_response(credential_view(stored), status=201,
                             headers={"Location": f"{COLLECTION}/{quote(record.id, safe=':@')}"})


@require_operator
async def list_credentials(request: web.Request) -> web.Response:
    limit, after = paging(request)
    flag = request.query.get("includeRemoved", "false").lower()
    if flag not in ("true", "false"):
        raise invalid_query("includeRemoved", "includeRemoved must be true or false")
    async with request.config_dict[STORE].read() as reader:
        rows = await reader.list_wallet_credentials(include_removed=flag == "true",
                                                    after=after, limit=limit)
    return page([credential_view(row) for row in rows], len(rows), limit,
                rows[-1].id if rows else None)


@require_operator
async def get_credential(request: web.Request) -> web.Response:
    credential_id = request.match_info["id"]
    async with request.config_dict[STORE].read() as reader:
        record = await reader.get_wallet_credential(credential_id)
    if record is None or record.removed_at is not None:
        raise not_found("wallet credential", credential_id)
    return web.json_response(credential_view(record))


@require_operator
async def remove_credential(request: web.Request) -> web.Response:
    credential_id = request.match_info["id"]
    now = _now(request)
    async with request.config_dict[STORE].transaction() as tx:
        record = await tx.get_wallet_credential(credential_id, for_update=True)
        if record is None or record.removed_at is not None:
            raise not_found("wallet credential", credential_id)
        await tx.put_wallet_credential(dataclasses.replace(record, removed_at=now,
                                                           updated_at=now))
        await tx.append_audit(actor="operator", action="wallet.credential.removed",
                              subject_id=credential_id)
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    # Credential ids are often URLs: ``{id:.+}`` takes one whose slashes arrive unencoded.
    app.router.add_post(COLLECTION, add_credential)
    app.router.add_get(COLLECTION, list_credentials)
    app.router.add_get(COLLECTION + "/{id:.+}", get_credential)
    app.router.add_delete(COLLECTION + "/{id:.+}", remove_credential)


__all__ = ["COLLECTION", "add_routes"]
