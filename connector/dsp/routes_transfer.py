"""The HTTPS binding of the DSP 2025-1 transfer process, provider and consumer endpoints.

Same three steps as ``routes_negotiation``: authenticate the caller (401), parse the body
(400 ``invalid-message``, also for a message type the endpoint does not take), then
``TransferService.receive`` answers after its one transaction committed.

Provider: ``POST /transfers/request`` (201), ``GET /transfers/{pid}`` (only to the consumer of
that transfer; 404 to anyone else and for consumer-side processes: the binding has no consumer
GET). Provider and consumer callbacks share ``POST /transfers/{pid}/start|completion|
termination|suspension`` (callback address = DSP base): the stored process says our role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from connector.app import STORE
from connector.dsp.errors import Area
from connector.dsp.inbound import answer_response, authenticate, read_inbound
from connector.dsp.messages import (
    TransferCompletionMessage,
    TransferRequestMessage,
    TransferStartMessage,
    TransferSuspensionMessage,
    TransferTerminationMessage,
)
from connector.dsp.negotiation_service import dsp_state, error_answer
from connector.dsp.transfer import unknown_process
from connector.dsp.transfer_service import (
    TRANSFER_STATE,
    TransferNodeState,
    TransferSettings,
    ack_body,
    transfer_service_of,
)
from connector.participant_auth import ParticipantAuthError
from connector.store import Role as StoreRole

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, settings: TransferSettings | None = None) -> None:
    """Register the transfer endpoints on ``app`` (after ``routes_negotiation.add_routes``),
    and the transfer service as the outbox's handler for ``Transfer*`` messages."""
    if TRANSFER_STATE not in app:
        app[TRANSFER_STATE] = TransferNodeState(settings or TransferSettings())
    dsp_state(app).outbox_handlers["Transfer"] = lambda: transfer_service_of(app)
    post = app.router.add_post
    post("/transfers/request", _endpoint((TransferRequestMessage,), creates=True))
    app.router.add_get("/transfers/{pid}", get_transfer)
    post("/transfers/{pid}/start", _endpoint((TransferStartMessage,)))
    post("/transfers/{pid}/completion", _endpoint((TransferCompletionMessage,)))
    post("/transfers/{pid}/termination", _endpoint((TransferTerminationMessage,)))
    post("/transfers/{pid}/suspension", _endpoint((TransferSuspensionMessage,)))


def _endpoint(accepts: tuple[type[Any], ...], *, creates: bool = False) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        inbound = await read_inbound(request, accepts, Area.TRANSFER)
        if isinstance(inbound, web.Response):
            return inbound
        caller, message = inbound
        pid = None if creates else request.match_info["pid"]
        return answer_response(await transfer_service_of(request.app).receive(
            caller, pid, message))

    return handler


async def get_transfer(request: web.Request) -> web.StreamResponse:
    """``GET /transfers/{pid}``: provider-side state, only to the consumer (404 otherwise)."""
    try:
        caller = await authenticate(request)
    except ParticipantAuthError as exc:
        return exc.response()
    pid = request.match_info["pid"]
    async with request.config_dict[STORE].read() as reader:
        record = await reader.get_transfer(pid)
    if (record is None or record.counterparty_did != caller
            or record.role is not StoreRole.PROVIDER):
        return answer_response(error_answer(unknown_process(pid)))
    return web.json_response(ack_body(record))


__all__ = ["TransferSettings", "add_routes", "get_transfer"]
