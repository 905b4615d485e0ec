"""The data plane's HTTP side: ``GET /dataplane/assets/{id}`` and ``POST /dataplane/token``.

Asset endpoint: public data is open; restricted data needs the access token from the
transfer's ``DataAddress``, sent as ``Authorization: Bearer <token>`` (the bare token, as EDC
consumers send the ``authorization`` property, is accepted too). Refusals are problem+json
with a typed ``code`` (``provider.RefusalCode``); 401 answers carry ``WWW-Authenticate``.

Refresh endpoint (Tractus-X refresh profile, shared/notes/dataspace-protocol.md §3.4):
``POST /dataplane/token`` with ``grant_type=refresh_token`` and ``refresh_token=…`` as query
parameters or a form body. The request must be signed by the consumer's DID key with this
node's participant scheme (``participant_auth``: a self-issued JWT bound to method, URL and
body; ``aud`` = the provider DID, which the ``DataAddress`` gives as ``refreshAudience``).
Answers follow OAuth 2.0 (RFC 6749 §5): ``{"access_token", "refresh_token", "token_type",
"expires_in"}`` (and Tractus-X's ``expires``), or ``{"error", "error_description"}`` with 400
(``invalid_request``, ``unsupported_grant_type``, ``invalid_grant``) or 401
(``invalid_client``: the signature did not establish the caller).

The data plane's state (``DATA_PLANE``) is built lazily from the app's identity, store, config
and DSP clock; a periodic watch (``connector.background``) ends transfers whose agreement ran
out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from connector.app import CONFIG, IDENTITY, STORE
from connector.background import periodic
from connector.dataplane.grants import ASSETS_PATH, TOKEN_PATH, DataPlaneUrls
from connector.dataplane.provider import DataPlane, Refreshed, Refusal
from connector.dataplane.tokens import RefreshRefusal
from connector.dsp.inbound import authenticate
from connector.dsp.negotiation_service import dsp_state
from connector.participant_auth import ParticipantAuthError
from connector.problems import ProblemDetails

#: How often live transfers are checked against their agreements (seconds).
DEFAULT_WATCH_INTERVAL_S = 60.0


@dataclass(slots=True)
class DataPlaneState:
    plane: DataPlane | None = field(default=None)


DATA_PLANE = web.AppKey("data_plane", DataPlaneState)


def data_plane_of(app: web.Application) -> DataPlane:
    """The app's data plane (built on first use, once the identity and store are up)."""
    state = app.get(DATA_PLANE)
    if state is None:
        raise RuntimeError("call connector.dataplane.routes.add_routes(app) first")
    if state.plane is None:
        config = app[CONFIG]
        state.plane = DataPlane(
            app, store=app[STORE], signer=app[IDENTITY].signing_key,
            urls=DataPlaneUrls(config.public_base_url), clock=dsp_state(app).settings.clock,
            lifetime_s=config.access_token_lifetime_s)
    return state.plane


def _token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else header


def _refusal_response(refusal: Refusal) -> web.Response:
    problem = ProblemDetails(refusal.status, str(refusal.code), "Access refused",
                             refusal.detail, {"code": str(refusal.code)})
    headers = ({"WWW-Authenticate": f'Bearer error="invalid_token", '
                                    f'error_description="{refusal.code}"'}
               if refusal.status == 401 else None)
    return problem.response(headers)


async def get_asset(request: web.Request) -> web.Response:
    plane = data_plane_of(request.app)
    asset_id = request.match_info["asset_id"]
    try:
        document = await plane.serve(asset_id, _token_of(request))
    except Refusal as refusal:
        return _refusal_response(refusal)
    return web.json_response(document, headers={"Cache-Control": "no-store"})


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description},
                             status=status, headers={"Cache-Control": "no-store"})


async def _refresh_params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    body = await request.read()
    if body and request.content_type == "application/x-www-form-urlencoded":
        try:
            params.update(parse_qsl(body.decode("utf-8"), strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("the form body is not valid application/x-www-form-urlencoded")\
                from None
    elif body:
        raise ValueError("send the parameters as a query string or a form body")
    return params


async def post_token(request: web.Request) -> web.Response:
    plane = data_plane_of(request.app)
    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return _oauth_error(401, "invalid_client", f"{exc.failure}: {exc.detail}")
    try:
        params = await _refresh_params(request)
    except ValueError as exc:
        return _oauth_error(400, "invalid_request", str(exc))
    if params.get("grant_type") != "refresh_token":
        return _oauth_error(400, "unsupported_grant_type", "grant_type must be refresh_token")
    presented = params.get("refresh_token", "")
    if not presented:
        return _oauth_error(400, "invalid_request", "refresh_token is required")
    result = await plane.refresh(caller, presented)
    if isinstance(result, RefreshRefusal):
        return _oauth_error(400, "invalid_grant", f"{result.kind}: {result.detail}")
    assert isinstance(result, Refreshed)
    access = result.access
    body: dict[str, Any] = {
        "access_token": access.token, "refresh_token": access.refresh_token,
        "token_type": "Bearer", "expires_in": access.expires_in,
        "expires": access.expires_in,
    }
    return web.Response(text=json.dumps(body), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


async def _end_expired_transfers(app: web.Application) -> int:
    return await data_plane_of(app).end_expired_transfers()


def add_routes(app: web.Application, *,
               watch_interval_s: float = DEFAULT_WATCH_INTERVAL_S) -> None:
    app[DATA_PLANE] = DataPlaneState()
    app.router.add_get(ASSETS_PATH + "/{asset_id}", get_asset)
    app.router.add_post(TOKEN_PATH, post_token)
    # Ends transfers whose agreement ran out even when nobody fetches to notice.
    app.cleanup_ctx.append(periodic("dataplane-agreement-watch", watch_interval_s,
                                    _end_expired_transfers,
                                    "ended %d transfers whose agreement ran out"))


__all__ = ["DATA_PLANE", "DataPlaneState", "add_routes", "data_plane_of"]
