"""The steps every DSP protocol endpoint takes before its service sees a message.

Authenticate the calling participant (401 with a DSP error body), then parse and validate the
body against the official schema and model (400 ``invalid-message``, also for a message type
the endpoint does not take). Negotiation, transfer and catalog endpoints share this, so a rule
about what reaches a state machine is written once.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connector.app import CONFIG, IDENTITY
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import MessageError, UnexpectedTypeError, parse_json
from connector.dsp.negotiation_service import Answer, dsp_state, error_answer, service_of
from connector.dsp.tck_identity import TCK_IDENTITY
from connector.participant_auth import ParticipantAuthError, VerifiedCaller, verify_caller

CALLER = web.RequestKey("caller", VerifiedCaller)
"""The authenticated caller of a protocol request (its DCP access token, for role proofs)."""


async def authenticate(request: web.Request) -> str:
    """The caller's DID (``ParticipantAuthError`` when it cannot be established); the verified
    caller stays on the request under ``CALLER``."""
    app = request.config_dict
    service = service_of(request.app)
    stub = app.get(TCK_IDENTITY)
    if stub is not None and stub.matches(request):  # test-only (tck_triggers.py)
        caller = stub.caller()
        request[CALLER] = caller
        return caller.did
    caller = await verify_caller(
        request, resolver=service.resolver, audience=app[IDENTITY].did,
        now=service.settings.clock(), public_base_url=app[CONFIG].public_base_url,
        replay_cache=dsp_state(request.app).replay_cache,
    )
    request[CALLER] = caller
    return caller.did


def too_large(request: web.Request, area: Area) -> web.Response:
    """413 as the protocol's own error message (not problem JSON) on a protocol endpoint."""
    error = ProtocolError(
        area=area, status=413, code=ErrorCode.PAYLOAD_TOO_LARGE,
        reason=f"the body is over this node's limit of {request.client_max_size} bytes")
    return answer_response(error_answer(error))


def answer_response(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status)


async def read_inbound(
    request: web.Request, accepts: tuple[type[Any], ...], area: Area
) -> tuple[str, Any] | web.Response:
    """``(caller DID, message)``, or the error response to send instead."""
    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return exc.response()
    except web.HTTPRequestEntityTooLarge:
        return too_large(request, area)
    try:
        message = parse_json(await request.read())
        if not isinstance(message, accepts):
            names = ", ".join(cls.model_fields["type"].default for cls in accepts)
            raise UnexpectedTypeError(f"expected {names}, got {message.type}")
    except MessageError as exc:
        return answer_response(error_answer(ProtocolError.from_message_error(exc, area)))
    return caller, message


__all__ = ["CALLER", "answer_response", "authenticate", "read_inbound", "too_large"]
