"""Management routes around the data plane: fetch a transfer's data, end an agreement early.

- ``GET /management/transfers/{id}/data``: as consumer, pull the data of a STARTED transfer
  through the provider's data plane (refreshing the token when it expired) and answer with the
  provider's bytes and content type. What ``bpc fetch`` calls, so the CLI never holds tokens.
- ``POST /management/agreements/{id}/terminate`` ``{"reason"?: str}``: as provider, end an
  agreement before its window closes: recorded permanently, tokens revoked, live transfers
  TERMINATED (the consumer is told), refreshes refused from then on.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from connector.dataplane.pull import PullRefused, pull
from connector.dataplane.routes import data_plane_of
from connector.management.assets import _Body, not_found
from connector.management.auth import require_operator
from connector.problems import ProblemDetails, ProblemError, parse_body, read_json_object
from connector.store import AlreadyExists
from connector.usage.consumer import record_received


class AgreementTerminate(_Body):
    reason: str = Field("", max_length=2000)


@require_operator
async def transfer_data(request: web.Request) -> web.Response:
    transfer_id = request.match_info["id"]
    try:
        pulled = await pull(request.app, transfer_id)
    except PullRefused as refused:
        titles = {403: "Access refused", 404: "No such transfer", 409: "Transfer not started"}
        raise ProblemError(ProblemDetails(
            refused.status, refused.code, titles.get(refused.status, "Provider error"),
            refused.detail, {"transferId": transfer_id})) from None
    # Kept until the agreement's delete duty falls due (connector.usage).
    await record_received(request.app, transfer_id, pulled.body, pulled.content_type)
    headers = {"X-Bpc-Token-Refreshed": "true"} if pulled.refreshed else None
    return web.Response(body=pulled.body, content_type=pulled.content_type or
                        "application/octet-stream", headers=headers)


@require_operator
async def terminate_agreement(request: web.Request) -> web.Response:
    agreement_id = request.match_info["id"]
    data: dict[str, Any] = await read_json_object(request) if request.can_read_body else {}
    body = parse_body(AgreementTerminate, data)
    plane = data_plane_of(request.app)
    try:
        ended = await plane.terminate_agreement(agreement_id, actor="operator",
                                                reason=body.reason)
    except LookupError:
        raise not_found("agreement with this node as provider", agreement_id) from None
    except AlreadyExists:
        raise ProblemError(ProblemDetails(
            409, "already-terminated", "Agreement already terminated",
            f"agreement {agreement_id!r} was terminated before")) from None
    return web.json_response({"agreementId": agreement_id, "terminated": True,
                              "terminatedTransfers": ended})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/management/transfers/{id}/data", transfer_data)
    app.router.add_post("/management/agreements/{id}/terminate", terminate_agreement)


__all__ = ["add_routes"]
