"""The DSP 2025-1 catalog binding: ``POST /catalog/request`` and ``GET /catalog/datasets/{id}``.

Errors here are DSP ``CatalogError`` bodies (``application/json``), not problem JSON: the
caller is another connector that speaks DSP. An unknown dataset and one the caller may not see
are the same 404 (the binding's rule: do not leak existence).

Who is calling: ``connector.participant_auth`` (a self-issued token bound to the request),
checked by the same ``inbound.authenticate`` the negotiation endpoints use (resolver,
audience = our DID, replay cache, public base URL). A missing or invalid token is a 401 with a
``CatalogError`` body (code ``unauthorized``).

What the caller may see depends on the roles it proves: when its token carries a DCP access
token, the offers' credential types are fetched from its credential service
(``connector.dcp``) and the offers are evaluated against them and the node's trust registry.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from connector.dataplane.provider import battery_of
from connector.dcp.context import requester_context
from connector.dsp.catalog import (
    CatalogView,
    OfferedAsset,
    Restriction,
    build_catalog,
    build_dataset,
    offered_asset,
    offered_assets,
)
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.inbound import CALLER, authenticate, too_large
from connector.dsp.messages import CatalogError, CatalogRequestMessage, MessageError, parse_as
from connector.dsp.negotiation_service import service_of
from connector.participant_auth import ParticipantAuthError
from connector.plugins.manager import access_restriction
from connector.policy_gate import POLICY_GATE, PolicyGate


def _catalog_error(status: int, code: str, reasons: list[str]) -> web.Response:
    body = CatalogError(code=code, reason=reasons).to_json()
    return web.json_response(body, status=status)


def _unauthorized(exc: ParticipantAuthError) -> web.Response:
    """``exc.response()`` (401, its ``WWW-Authenticate``), with a ``CatalogError`` body: the
    catalog area's error type rather than the negotiation one ``participant_auth`` builds."""
    body = CatalogError(code="unauthorized", reason=[str(exc.failure), exc.detail]).to_json()
    return web.json_response(body, status=401, headers={
        "WWW-Authenticate": exc.response().headers["WWW-Authenticate"]})


def _view(request: web.Request) -> CatalogView:
    from connector.app import CONFIG, IDENTITY

    return CatalogView(
        participant_id=request.config_dict[IDENTITY].did,
        base_url=request.config_dict[CONFIG].public_base_url,
    )


def _offers(items: list[OfferedAsset]) -> list[dict[str, Any]]:
    return [offer for item in items for offer in item.offers]


def restriction_of(request: web.Request) -> Restriction:
    """Plugins' vetoes (``bpc_access_restriction``) for the assets this request shows."""
    return lambda asset: access_restriction(request.config_dict, battery_of(asset),
                                            asset.access_level)


def _now(request: web.Request) -> datetime:
    """The node's clock (the DSP settings'), which tests and the demo may shift."""
    return service_of(request.app).settings.clock()


async def catalog_request(request: web.Request) -> web.Response:
    """``POST /catalog/request``: the catalog as the calling participant may see it."""
    from connector.app import STORE

    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return _unauthorized(exc)
    except web.HTTPRequestEntityTooLarge:
        return too_large(request, Area.CATALOG)
    try:
        document: Any = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError) as exc:
        return _catalog_error(400, str(ErrorCode.INVALID_MESSAGE), [f"not JSON: {exc}"])
    try:
        message = parse_as(document, CatalogRequestMessage)
    except MessageError as exc:
        error = ProtocolError.from_message_error(exc, Area.CATALOG)
        return web.json_response(error.body().to_json(), status=error.status)
    if message.filter:
        return _catalog_error(400, "unsupported-filter",
                              ["this node supports no catalog filter; send none"])
    async with request.config_dict[STORE].read() as reader:
        items = await offered_assets(reader)
    # The role proof may query the caller's credential service: outside the read snapshot.
    context, _ = await requester_context(
        request.config_dict, request.get(CALLER), caller, _offers(items), _now(request))
    catalog = build_catalog(items, _view(request), context, request.config_dict[POLICY_GATE],
                            restriction_of(request))
    return web.json_response(catalog)


async def dataset_request(request: web.Request) -> web.Response:
    """``GET /catalog/datasets/{id}``: one dataset, 404 if unknown or not for this caller."""
    from connector.app import STORE

    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return _unauthorized(exc)
    dataset_id = request.match_info["id"]
    async with request.config_dict[STORE].read() as reader:
        item = await offered_asset(reader, dataset_id)
    context, _ = await requester_context(
        request.config_dict, request.get(CALLER), caller,
        _offers([item] if item is not None else []), _now(request))
    dataset = build_dataset(item, _view(request), context, request.config_dict[POLICY_GATE],
                            restriction_of(request))
    if dataset is None:
        return _catalog_error(404, "unknown-dataset", [f"no dataset {dataset_id!r}"])
    return web.json_response(dataset)


def add_routes(app: web.Application) -> None:
    """Register the two catalog endpoints (and the gate they filter with) on ``app``."""
    if POLICY_GATE not in app:
        app[POLICY_GATE] = PolicyGate()
    app.router.add_post("/catalog/request", catalog_request)
    app.router.add_get("/catalog/datasets/{id}", dataset_request)
