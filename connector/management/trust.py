"""``/management/trust``: the node's trust registry as operators manage it (operator key).

- ``GET /management/trust`` → ``{"issuers": [...], "authorities": [...], "lists": [...]}``:
  every entry with its ``credentialType``, ``issuer``, ``source`` (``local`` or the id of the
  trust list it came from), whether it counts now (``active``) and whether the node's config
  names it (``fromConfig``); every imported list with its authority, validity and entries.
- ``POST /management/trust/issuers`` ``{"credentialType", "issuer"}``: trust an issuer for one
  type (``"*"``: every type, explicitly). 201 when added, 200 when it already was trusted.
  Types are kept by their short name (``cx:XCredential`` → ``XCredential``, as credentials name
  them); ``VerifiableCredential`` and ``TrustListCredential`` are refused (400).
- ``DELETE /management/trust/issuers`` with the same body (or the same query parameters):
  204, or 404 when there is no such local entry.
- ``POST /management/trust/authorities`` ``{"issuer", "credentialTypes": [...]}``: accept trust
  lists signed by ``issuer`` for those types (replacing its previous scope). 201 / 200.
- ``DELETE /management/trust/authorities`` ``{"issuer"}`` (or ``?issuer=``): 204 / 404.
- ``POST /management/trust/lists`` with a trust-list credential: the JSON credential itself,
  a VC-JOSE compact JWT sent as ``application/vc+jwt``, or either wrapped VC-API style as
  ``{"verifiableCredential": …}``: 201 with the imported list. A list the node does
  not accept is 422 ``trust-list-rejected`` with ``reasons`` (untrusted authority, bad
  signature, expired, revoked, types outside the authority's scope, …) and, when it got as far
  as verification, the typed ``problems``.
- ``DELETE /management/trust/lists/{source}`` (the list id, percent-encoded): 204 / 404.

Bodies refuse unknown fields and malformed DIDs (400 ``invalid-request`` naming the field); a
refused request changes nothing stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from connector.management.assets import not_found
from connector.management.auth import require_operator
from connector.node_client import path_segment
from connector.problems import (
    FieldError,
    ProblemDetails,
    ProblemError,
    invalid_request,
    malformed_json,
    parse_body,
    read_json_object,
)
from connector.trust_registry import (
    TRUST,
    NodeTrust,
    UnknownTrustList,
    check_credential_type,
    check_did,
    list_view,
)
from credentials.errors import CredentialsError
from credentials.trust import TrustListRejected

JWT_MEDIA_TYPES = frozenset({"application/vc+jwt", "application/jwt"})
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

Did = Annotated[str, Field(max_length=2048), AfterValidator(check_did)]
CredentialType = Annotated[str, Field(max_length=512), AfterValidator(check_credential_type)]


class _Body(BaseModel):
    """Only the documented JSON names: a typo (or a Python-style name) is a 400."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IssuerBody(_Body):
    credential_type: CredentialType = Field(alias="credentialType")
    issuer: Did


class AuthorityBody(_Body):
    issuer: Did
    credential_types: list[CredentialType] = Field(alias="credentialTypes", min_length=1,
                                                   max_length=200)


class AuthorityRef(_Body):
    issuer: Did


def _trust(request: web.Request) -> NodeTrust:
    return request.config_dict[TRUST]


async def _body_or_query(request: web.Request) -> dict[str, Any]:
    """A DELETE names what to remove in a JSON body or, equally, in query parameters."""
    if (await request.read()).strip():
        if request.query:
            raise invalid_request([FieldError(field="", message="send the entry in the body "
                                              "or in query parameters, not both")])
        return await read_json_object(request)
    return dict(request.query)


@require_operator
async def get_trust(request: web.Request) -> web.Response:
    return web.json_response(_trust(request).to_view())


@require_operator
async def post_issuer(request: web.Request) -> web.Response:
    body = parse_body(IssuerBody, await read_json_object(request))
    added = await _trust(request).add_issuer(body.credential_type, body.issuer)
    return web.json_response({"credentialType": body.credential_type, "issuer": body.issuer,
                              "source": "local"}, status=201 if added else 200)


@require_operator
async def delete_issuer(request: web.Request) -> web.Response:
    body = parse_body(IssuerBody, await _body_or_query(request))
    if not await _trust(request).remove_issuer(body.credential_type, body.issuer):
        raise not_found("trusted issuer", f"{body.issuer} for {body.credential_type}")
    return web.Response(status=204)


@require_operator
async def post_authority(request: web.Request) -> web.Response:
    body = parse_body(AuthorityBody, await read_json_object(request))
    added = await _trust(request).add_authority(body.issuer, body.credential_types)
    return web.json_response({"issuer": body.issuer,
                              "credentialTypes": sorted(set(body.credential_types)),
                              "source": "local"}, status=201 if added else 200)


@require_operator
async def delete_authority(request: web.Request) -> web.Response:
    body = parse_body(AuthorityRef, await _body_or_query(request))
    if not await _trust(request).remove_authority(body.issuer):
        raise not_found("trust-list authority", body.issuer)
    return web.Response(status=204)


async def _trust_list_body(request: web.Request) -> dict[str, Any] | str:
    if request.content_type in JWT_MEDIA_TYPES:
        raw = await request.read()
        try:
            token = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise malformed_json("a vc+jwt body is an ASCII compact JWT") from None
        if not _COMPACT_JWS.fullmatch(token):
            raise malformed_json("the body is not a compact JWT (header.payload.signature)")
        return token
    body = await read_json_object(request)
    if set(body) == {"verifiableCredential"}:  # the VC-API envelope; a credential has @context
        wrapped = body["verifiableCredential"]
        if isinstance(wrapped, str) and _COMPACT_JWS.fullmatch(wrapped.strip()):
            return wrapped.strip()
        if not isinstance(wrapped, dict):
            raise invalid_request([FieldError(field="verifiableCredential", message="a "
                                              "credential object or a compact JWT")])
        return wrapped
    return body


def _rejected(exc: CredentialsError) -> ProblemError:
    if isinstance(exc, TrustListRejected):
        extensions: dict[str, Any] = {"reasons": list(exc.reasons)}
    else:  # e.g. an unreadable validFrom: the list is refused all the same
        extensions = {"reasons": [str(exc)]}
    if isinstance(exc, TrustListRejected) and exc.verification is not None:
        extensions["problems"] = [p.to_json() for p in exc.verification.problems]
    return ProblemError(ProblemDetails(422, "trust-list-rejected", "Trust list not accepted",
                                       str(exc), extensions))


@require_operator
async def post_list(request: web.Request) -> web.Response:
    credential = await _trust_list_body(request)
    trust = _trust(request)
    try:
        record = await trust.import_list(credential)
    except CredentialsError as exc:
        raise _rejected(exc) from None
    return web.json_response(
        list_view(trust.current, record), status=201,
        headers={"Location": f"/management/trust/lists/{path_segment(record.source)}"})


@require_operator
async def delete_list(request: web.Request) -> web.Response:
    source = request.match_info["source"]
    try:
        await _trust(request).remove_list(source)
    except UnknownTrustList:
        raise not_found("imported trust list", source) from None
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    """Register the trust routes (the registry itself is ``trust_registry.trust_ctx``)."""
    app.router.add_get("/management/trust", get_trust)
    app.router.add_post("/management/trust/issuers", post_issuer)
    app.router.add_delete("/management/trust/issuers", delete_issuer)
    app.router.add_post("/management/trust/authorities", post_authority)
    app.router.add_delete("/management/trust/authorities", delete_authority)
    app.router.add_post("/management/trust/lists", post_list)
    app.router.add_delete("/management/trust/lists/{source:.+}", delete_list)


__all__ = ["add_routes"]
