"""The HTTPS binding of DSP 2025-1 contract negotiation, provider and consumer endpoints.

Every endpoint does the same three steps, in this order: authenticate the calling participant
(``connector.participant_auth``; 401 with a DSP error body), parse and validate the body
against the official schema and model (``parse_message``; 400 ``invalid-message``, also for
a message type the endpoint does not take), then hand it to ``NegotiationService.receive``,
which answers after its one transaction committed: the ``ContractNegotiation`` ACK (201 when
the message created the process, else 200) or the ``ProtocolError``'s status and body (400 for
an illegal transition, 404 for an unknown process or one that belongs to another participant).

Paths are the binding's, relative to the node's root (callback address = DSP base =
``public_base_url``). Provider and consumer share ``/negotiations/{pid}`` (GET),
``…/events`` and ``…/termination``: the stored process says which role we play in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from connector.app import STORE
from connector.dsp.errors import Area, ProtocolError
from connector.dsp.inbound import CALLER, answer_response, authenticate, read_inbound
from connector.dsp.messages import (
    ContractAgreementMessage,
    ContractAgreementVerificationMessage,
    ContractNegotiationEventMessage,
    ContractNegotiationTerminationMessage,
    ContractOfferMessage,
    ContractRequestMessage,
    UnexpectedTypeError,
)
from connector.dsp.negotiation import NegotiationInput, unknown_process
from connector.dsp.negotiation_service import (
    DSP_STATE,
    DspSettings,
    DspState,
    ack_body,
    error_answer,
    service_of,
)
from connector.dsp.process import Role
from connector.participant_auth import ParticipantAuthError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BOTH = frozenset({Role.PROVIDER, Role.CONSUMER})


def add_routes(app: web.Application, settings: DspSettings | None = None) -> None:
    """Register the negotiation endpoints (and the app's DSP state) on ``app``."""
    if DSP_STATE not in app:
        app[DSP_STATE] = DspState(settings or DspSettings())
    app[DSP_STATE].outbox_handlers["Contract"] = lambda: service_of(app)
    post = app.router.add_post
    # Provider endpoints (called by consumers).
    post("/negotiations/request", _endpoint((ContractRequestMessage,), {Role.PROVIDER}, True))
    app.router.add_get("/negotiations/{pid}", get_negotiation)
    post("/negotiations/{pid}/request", _endpoint((ContractRequestMessage,), {Role.PROVIDER}))
    post("/negotiations/{pid}/events", _endpoint((ContractNegotiationEventMessage,), BOTH))
    post("/negotiations/{pid}/agreement/verification",
         _endpoint((ContractAgreementVerificationMessage,), {Role.PROVIDER}))
    post("/negotiations/{pid}/termination",
         _endpoint((ContractNegotiationTerminationMessage,), BOTH))
    # Consumer callbacks (called by providers).
    post("/negotiations/offers", _endpoint((ContractOfferMessage,), {Role.CONSUMER}, True))
    post("/negotiations/{pid}/offers", _endpoint((ContractOfferMessage,), {Role.CONSUMER}))
    post("/negotiations/{pid}/agreement", _endpoint((ContractAgreementMessage,), {Role.CONSUMER}))


def _endpoint(
    accepts: tuple[type[NegotiationInput], ...], roles: set[Role] | frozenset[Role],
    creates: bool = False,
) -> Handler:
    """A handler for one endpoint: the message types it takes, the roles it serves, and
    whether it creates a process (no ``{pid}``; the message must be an initial one)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        inbound = await read_inbound(request, accepts, Area.NEGOTIATION)
        if isinstance(inbound, web.Response):
            return inbound
        caller, message = inbound
        pid = None if creates else request.match_info["pid"]
        if creates and not getattr(message, "is_initial", False):
            return answer_response(error_answer(ProtocolError.from_message_error(
                UnexpectedTypeError("this endpoint creates a negotiation: send the initial "
                                    "message (with callbackAddress, without the other PID)"),
                Area.NEGOTIATION)))
        answer = await service_of(request.app).receive(caller, pid, message, set(roles),
                                                  verified=request.get(CALLER))
        return answer_response(answer)

    return handler


async def get_negotiation(request: web.Request) -> web.StreamResponse:
    """``GET /negotiations/{pid}``: the state, only to the counterparty (404 to anyone else)."""
    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return exc.response()
    pid = request.match_info["pid"]
    async with request.config_dict[STORE].read() as reader:
        record = await reader.get_negotiation(pid)
    if record is None or record.counterparty_did != caller:
        return answer_response(error_answer(unknown_process(pid)))
    return web.json_response(ack_body(record))


__all__ = ["DspSettings", "add_routes", "authenticate", "get_negotiation"]
