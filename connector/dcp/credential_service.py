"""The node's DCP credential service: ``POST /dcp/presentations/query`` (DCP 1.0 §5.4).

A verifier that received a protocol request from this node, with an access token in its
self-issued token's ``token`` claim (``access_tokens``), resolves this node's DID, finds the
``CredentialService`` entry (``<public_base_url>/dcp``) and asks here for the credentials its
policy needs. The request is authenticated like every protocol request
(``connector.dsp.inbound.authenticate``: a self-issued token addressed to this node, bound to
method, URL and body, never replayed), and its own ``token`` claim must carry an access token
this node minted *for that caller*. Every refusal is 401 problem JSON with a ``reason`` code
and ``WWW-Authenticate: Bearer``.

The body is a ``PresentationQueryMessage``. The rules the DCP TCK checks: ``scope`` together
with ``presentationDefinition`` is 400; ``presentationDefinition`` alone is 501 (this node
answers scopes only); no or an empty ``scope`` is 400, and so is a scope it cannot parse
(named in the answer). Scope forms:

- ``org.eclipse.dspace.dcp.vc.type:<Type>`` (DCP's alias; ``*`` for every type; an EDC-style
  ``:read``/``:all`` suffix is accepted);
- ``org.eclipse.tractusx.vc.type:<Type>:read`` (Tractus-X; ``:all``/``:*`` too, ``:write`` is
  not a query);
- ``org.eclipse.dspace.dcp.vc.id:<credential id>``.

Types compare by short name, case-insensitively (``cx:MembershipCredential`` = the IRI = the
bare name), as the trust registry and the policies compare them.

The answer is a ``PresentationResponseMessage`` with one presentation holding every presentable
wallet credential (not removed, within its validity period) that a scope asks for and the
access token's own ``scope`` grants; none matches → ``"presentation": []``. The presentation
is signed with the node key (``eddsa-jcs-2022``, purpose ``authentication``), with the
``jti`` of the verifier's request token as ``challenge`` and the verifier's DID as ``domain``:
bound to this one query, it is worthless to anybody else and worthless twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiohttp import web

from connector.app import IDENTITY, STORE
from connector.dcp import DCP_CONTEXT
from connector.dcp.access_tokens import AccessTokenError, access_tokens_ctx, verify_access_token
from connector.dcp.wallet import presentable_credentials
from connector.dsp.inbound import CALLER, authenticate
from connector.dsp.negotiation_service import dsp_state
from connector.identity import NodeIdentity
from connector.participant_auth import ParticipantAuthError
from connector.problems import ProblemDetails, ProblemError
from connector.store import WalletCredential
from credentials.data_integrity import JCS
from credentials.holder import create_presentation, sign_presentation
from credentials.trust import credential_type_name

logger = logging.getLogger(__name__)

BASE_PATH = "/dcp"
QUERY_PATH = BASE_PATH + "/presentations/query"
QUERY_TYPE = "PresentationQueryMessage"
RESPONSE_TYPE = "PresentationResponseMessage"

TYPE_ALIAS = "org.eclipse.dspace.dcp.vc.type:"
ID_ALIAS = "org.eclipse.dspace.dcp.vc.id:"
TRACTUSX_TYPE_ALIAS = "org.eclipse.tractusx.vc.type:"
#: Scope operations that read (EDC/Tractus-X spell them after the type).
READ_OPERATIONS = ("read", "all", "*")
ANY_TYPE = "*"


# --- scopes -----------------------------------------------------------------------------------


class ScopeError(ValueError):
    """A scope string this node cannot parse (the query is refused naming it)."""

    def __init__(self, scope: str, detail: str) -> None:
        super().__init__(detail)
        self.scope = scope


@dataclass(frozen=True, slots=True)
class Scope:
    """One requested (or granted) scope: every credential of a type, or one by id."""

    kind: Literal["type", "id"]
    value: str

    def matches(self, record: WalletCredential) -> bool:
        if self.kind == "id":
            return record.id == self.value
        if self.value == ANY_TYPE:
            return True
        wanted = credential_type_name(self.value).casefold()
        return any(name.casefold() == wanted for name in record.types)


def _type_scope(scope: str, text: str, *, operation_required: bool) -> Scope:
    name, operation = text, None
    head, sep, tail = text.rpartition(":")
    if sep and tail in (*READ_OPERATIONS, "write"):
        name, operation = head, tail
    if operation_required and operation is None:
        raise ScopeError(scope, f"scope {scope!r}: Tractus-X scopes end in :read")
    if operation == "write":
        raise ScopeError(scope, f"scope {scope!r} asks to write; a presentation query only reads")
    if not name.strip():
        raise ScopeError(scope, f"scope {scope!r} names no credential type")
    return Scope("type", name)


def parse_scope(scope: str) -> Scope:
    """The ``Scope`` a scope string stands for; ``ScopeError`` for any other form."""
    if scope.startswith(TYPE_ALIAS):
        return _type_scope(scope, scope[len(TYPE_ALIAS):], operation_required=False)
    if scope.startswith(TRACTUSX_TYPE_ALIAS):
        return _type_scope(scope, scope[len(TRACTUSX_TYPE_ALIAS):], operation_required=True)
    if scope.startswith(ID_ALIAS) and scope[len(ID_ALIAS):].strip():
        return Scope("id", scope[len(ID_ALIAS):])
    raise ScopeError(scope, f"unknown scope {scope!r}: use {TYPE_ALIAS}<Type>, "
                            f"{TRACTUSX_TYPE_ALIAS}<Type>:read or {ID_ALIAS}<id>")


def granted_scopes(claims: dict[str, Any]) -> list[Scope]:
    """What a (verified) access token grants: its space-separated ``scope`` claim."""
    raw = claims.get("scope")
    granted: list[Scope] = []
    for item in raw.split() if isinstance(raw, str) else []:
        try:
            granted.append(parse_scope(item))
        except ScopeError:
            continue  # a grant we do not understand grants nothing
    return granted


# --- the query message ------------------------------------------------------------------------


def _bad_query(detail: str, reason: str = "invalid-query", **extensions: Any) -> ProblemError:
    return ProblemError(ProblemDetails(400, "invalid-presentation-query",
                                       "Invalid presentation query", detail,
                                       {"reason": reason, **extensions}))


def parse_query(raw: bytes) -> list[Scope]:
    """The scopes a ``PresentationQueryMessage`` asks for (400/501 problems otherwise)."""
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_query(f"the body is not JSON: {exc}", "malformed-json") from None
    if not isinstance(message, dict):
        raise _bad_query("the body must be a JSON object", "malformed-json")
    if message.get("type") != QUERY_TYPE:
        raise _bad_query(f"type must be {QUERY_TYPE}, not {message.get('type')!r}",
                         "wrong-type")
    context = message.get("@context")
    if not isinstance(context, list) or DCP_CONTEXT not in context:
        raise _bad_query(f"@context must be an array holding {DCP_CONTEXT}", "invalid-context")
    has_scope, has_definition = "scope" in message, "presentationDefinition" in message
    if has_scope and has_definition:
        raise _bad_query("send scope or presentationDefinition, not both", "scope-and-definition")
    if has_definition:
        raise ProblemError(ProblemDetails(
            501, "presentation-definition-not-supported", "Not implemented",
            "this credential service answers scope queries only, not presentationDefinition",
            {"reason": "presentation-definition-not-supported"}))
    scopes = message.get("scope")
    if not isinstance(scopes, list) or not scopes:
        raise _bad_query("scope must be a non-empty array of scope strings", "missing-scope")
    if not all(isinstance(item, str) and item for item in scopes):
        raise _bad_query("every scope must be a non-empty string", "invalid-scope")
    try:
        return [parse_scope(item) for item in scopes]
    except ScopeError as exc:
        raise _bad_query(str(exc), "unknown-scope", scope=exc.scope) from None


# --- the route --------------------------------------------------------------------------------


def _unauthorized(reason: str, detail: str) -> web.Response:
    problem = ProblemDetails(401, "unauthorized", "Unauthorized", detail, {"reason": reason})
    return problem.response({"WWW-Authenticate": f'Bearer error="invalid_token", '
                                                 f'error_description="{reason}"'})


def choose(records: list[WalletCredential], wanted: list[Scope],
           granted: list[Scope]) -> list[WalletCredential]:
    """The credentials a query asks for and its access token allows, each once."""
    return [record for record in records
            if any(scope.matches(record) for scope in wanted)
            and any(scope.matches(record) for scope in granted)]


def presentation_for(records: list[WalletCredential], *, identity: NodeIdentity, challenge: str,
                     domain: str, now: datetime) -> dict[str, Any]:
    """One presentation of ``records``, signed for this query (``challenge``, ``domain``)."""
    presentation = create_presentation([record.document for record in records],
                                       identity.did, presentation_id=f"urn:uuid:{uuid.uuid4()}")
    return sign_presentation(presentation, identity.signing_key, challenge=challenge,
                             domain=domain, suite=JCS, now=now)


async def query_presentations(request: web.Request) -> web.Response:
    app = request.config_dict
    try:
        await authenticate(request)
    except ParticipantAuthError as exc:
        return _unauthorized(str(exc.failure), exc.detail)
    caller = request[CALLER]
    identity = app[IDENTITY]
    now = dsp_state(request.app).settings.clock()
    if caller.access_token is None:
        return _unauthorized("missing-access-token",
                             "the request token carries no token claim (the access token this "
                             "node gave you with its protocol request)")
    try:
        grant = verify_access_token(caller.access_token, holder_key=identity.signing_key,
                                    verifier_did=caller.did, now=now)
    except AccessTokenError as exc:
        return _unauthorized(f"access-token-{exc.reason}", exc.detail)
    wanted = parse_query(await request.read())
    records = choose(await presentable_credentials(app[STORE], now), wanted,
                     granted_scopes(grant))
    presentations = []
    if records:
        presentations.append(presentation_for(records, identity=identity, challenge=caller.jti,
                                              domain=caller.did, now=now))
    logger.info("presented %d credential(s) to %s", len(records), caller.did)
    return web.json_response({"@context": [DCP_CONTEXT], "type": RESPONSE_TYPE,
                              "presentation": presentations})


def add_routes(app: web.Application) -> None:
    """The holder side of DCP: the access tokens (a cleanup context: add this before the
    outbox's, whose request signer sends them), the credential service and the wallet's
    management routes."""
    from connector.management import wallet as wallet_routes

    app.cleanup_ctx.append(access_tokens_ctx)
    app.router.add_post(QUERY_PATH, query_presentations)
    wallet_routes.add_routes(app)


__all__ = ["DCP_CONTEXT", "QUERY_PATH", "Scope", "ScopeError", "add_routes", "choose",
           "granted_scopes", "parse_query", "parse_scope", "presentation_for"]
