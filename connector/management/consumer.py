"""The consumer side of the node, driven by the operator: catalog, negotiations, agreements,
transfers (``/management/…``, operator key on every route).

A node is provider and consumer at once. The DSP services already run both roles; these
routes let an operator *start* the consumer's processes (and act on running ones) instead of
calling Python functions. The routes only translate: the negotiation and transfer services
keep the rule that a state change, its outbound message and its audit line commit together,
so everything here either calls one of their entry points or only reads.

Refusals (bad body, unknown ids, illegal transitions, an unreachable or refusing provider) are
problem JSON and are decided before anything is written: a refused request leaves the store
unchanged. Provider failures are 502 (``remote_catalog``); the operator's own mistakes 4xx.

- ``POST /management/catalog/request`` ``{counterPartyAddress, counterPartyId?}`` → the
  provider's catalog as it answered.
- ``POST /management/negotiations`` ``{counterPartyAddress, counterPartyId?, offerId | offer}``
  → 201 negotiation view; ``GET`` lists (``?role=&state=``), ``GET …/{id}``,
  ``POST …/{id}/terminate`` ``{reason?}``.
- ``GET /management/agreements`` (``?role=&assetId=``), ``GET …/{id}``.
- ``POST /management/transfers`` ``{agreementId, counterPartyAddress?, format?}`` → 201
  transfer view; ``GET`` lists (``?role=&state=&agreementId=``), ``GET …/{id}``,
  ``POST …/{id}/complete|suspend|resume|terminate`` (``{reason?}`` for suspend and terminate).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.app import IDENTITY, STORE
from connector.dsp.messages import MessageOffer
from connector.dsp.negotiation_service import TERMINAL as NEGOTIATION_TERMINAL
from connector.dsp.negotiation_service import service_of, start_negotiation
from connector.dsp.process import TerminationKind, TerminationReason
from connector.dsp.transfer_service import (
    complete_transfer,
    resume_transfer,
    start_transfer,
    suspend_transfer,
    terminate_transfer,
)
from connector.management.assets import Did, field_problem, not_found
from connector.management.auth import require_operator
from connector.management.paging import page, paging
from connector.management.process_views import (
    agreement_json,
    negotiation_json,
    negotiation_state_query,
    role_query,
    transfer_json,
    transfer_state_query,
)
from connector.management.remote_catalog import fetch_catalog, offer_from_catalog, provider_did_of
from connector.problems import (
    FieldError,
    ProblemDetails,
    ProblemError,
    field_errors,
    invalid_request,
    parse_body,
    read_json_object,
)
from connector.store import Role as StoreRole
from connector.store import Store, TransferRecord

#: The transfer format this node's data plane serves (pull over HTTP, as its catalog says).
PULL = "HttpData-PULL"


def _address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL (the provider's DSP base address)")
    if parts.fragment or parts.query:
        raise ValueError("must not carry a query or fragment (it is a base address)")
    return value


Address = Annotated[str, Field(max_length=2000), AfterValidator(_address)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class _Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CatalogRequest(_Body):
    counter_party_address: Address = Field(alias="counterPartyAddress")
    counter_party_id: Did | None = Field(None, alias="counterPartyId")


class NegotiationCreate(CatalogRequest):
    offer_id: str | None = Field(None, alias="offerId", min_length=1, max_length=2000)
    offer: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_offer(self) -> NegotiationCreate:
        if (self.offer_id is None) == (self.offer is None):
            raise ValueError("send exactly one of offerId (from the provider's catalog) and "
                             "offer (a DSP offer with @id and target)")
        return self


class ReasonBody(_Body):
    reason: Reason | None = None


class EmptyBody(_Body):
    """``complete`` and ``resume`` take no parameters; anything sent is a mistake."""


class TransferCreate(_Body):
    agreement_id: str = Field(alias="agreementId", min_length=1, max_length=2000)
    counter_party_address: Address | None = Field(None, alias="counterPartyAddress")
    format: Literal["HttpData-PULL"] = PULL


# --- helpers -----------------------------------------------------------------------------------


def _store(request: web.Request) -> Store:
    return request.config_dict[STORE]


def _own_did(request: web.Request) -> str:
    return request.config_dict[IDENTITY].did


async def _optional_object(request: web.Request) -> dict[str, Any]:
    """The JSON body, or ``{}`` when there is none (action endpoints need no body)."""
    if not (await request.read()).strip():
        return {}
    return await read_json_object(request)


def _inline_offer(data: dict[str, Any]) -> MessageOffer:
    """The operator's own offer JSON, validated as a contract request will carry it."""
    try:
        return MessageOffer.model_validate(data)
    except ValidationError as exc:
        errors = [FieldError(field=f"offer.{e['field']}" if e["field"] else "offer",
                             message=e["message"]) for e in field_errors(exc)]
        raise invalid_request(errors) from None


def _created(view: dict[str, Any], location: str) -> web.Response:
    return web.json_response(view, status=201, headers={"Location": location})


# --- catalog -----------------------------------------------------------------------------------


@require_operator
async def request_catalog(request: web.Request) -> web.Response:
    """Ask a provider for its catalog as this participant (it is filtered per caller)."""
    body = parse_body(CatalogRequest, await read_json_object(request))
    address = body.counter_party_address
    catalog = await fetch_catalog(request.app, address,
                                  provider_did_of(address, body.counter_party_id))
    return web.json_response(catalog)


# --- negotiations ------------------------------------------------------------------------------


@require_operator
async def post_negotiation(request: web.Request) -> web.Response:
    """Start a negotiation for an offer of the provider's catalog (or one given inline)."""
    body = parse_body(NegotiationCreate, await read_json_object(request))
    address = body.counter_party_address
    provider_did = provider_did_of(address, body.counter_party_id)
    if body.offer is not None:
        offer = _inline_offer(body.offer)
    else:
        assert body.offer_id is not None  # the model requires exactly one
        catalog = await fetch_catalog(request.app, address, provider_did)
        offer = offer_from_catalog(catalog, body.offer_id, address)
    pid = await start_negotiation(request.app, address, offer, provider_did=provider_did)
    async with _store(request).read() as reader:
        record = await reader.get_negotiation(pid)
    assert record is not None  # stored by start_negotiation's committed transaction
    return _created(negotiation_json(record), f"/management/negotiations/{pid}")


@require_operator
async def list_negotiations(request: web.Request) -> web.Response:
    limit, after = paging(request)
    role, state = role_query(request), negotiation_state_query(request)
    async with _store(request).read() as reader:
        rows = await reader.list_negotiations(state=state, role=role, after=after, limit=limit)
    return page([negotiation_json(r) for r in rows], len(rows), limit,
                rows[-1].id if rows else None)


@require_operator
async def get_negotiation(request: web.Request) -> web.Response:
    pid = request.match_info["id"]
    async with _store(request).read() as reader:
        record = await reader.get_negotiation(pid)
    if record is None:
        raise not_found("negotiation", pid)
    return web.json_response(negotiation_json(record))


def _already_terminal(kind: str, pid: str, state: str) -> ProblemError:
    return ProblemError(ProblemDetails(
        409, "already-terminal", "The process has already ended",
        f"{kind} {pid!r} is {state}; nothing can change it any more", {"state": state},
    ))


@require_operator
async def terminate_negotiation(request: web.Request) -> web.Response:
    """End a negotiation from our side; the provider is told when it knows the process."""
    pid = request.match_info["id"]
    body = parse_body(ReasonBody, await _optional_object(request))
    async with _store(request).read() as reader:
        record = await reader.get_negotiation(pid)
    if record is None:
        raise not_found("negotiation", pid)
    if record.state in NEGOTIATION_TERMINAL:
        raise _already_terminal("negotiation", pid, record.state)
    reason = TerminationReason(TerminationKind.INTERNAL, None,
                               body.reason or "terminated by the operator")
    if not await service_of(request.app).terminate_locally(pid, reason):
        # Ended between our read and the service's locked read (the peer was faster).
        async with _store(request).read() as reader:
            ended = await reader.get_negotiation(pid)
        raise _already_terminal("negotiation", pid, ended.state if ended else "TERMINATED")
    async with _store(request).read() as reader:
        record = await reader.get_negotiation(pid)
    assert record is not None
    return web.json_response(negotiation_json(record))


# --- agreements --------------------------------------------------------------------------------


@require_operator
async def list_agreements(request: web.Request) -> web.Response:
    """Agreements of both roles; ``?role=`` is computed as ``provider_did == own DID``."""
    limit, after = paging(request)
    role, own = role_query(request), _own_did(request)
    async with _store(request).read() as reader:
        rows = await reader.list_agreements(
            asset_id=request.query.get("assetId") or None,
            provider_did=own if role is StoreRole.PROVIDER else None,
            consumer_did=own if role is StoreRole.CONSUMER else None,
            after=after, limit=limit)
    return page([agreement_json(r, own) for r in rows], len(rows), limit,
                rows[-1].id if rows else None)


@require_operator
async def get_agreement(request: web.Request) -> web.Response:
    agreement_id = request.match_info["id"]
    async with _store(request).read() as reader:
        record = await reader.get_agreement(agreement_id)
    if record is None:
        raise not_found("agreement", agreement_id)
    return web.json_response(agreement_json(record, _own_did(request)))


# --- transfers ---------------------------------------------------------------------------------


def _no_consumer_agreement(agreement_id: str) -> ProblemError:
    return ProblemError(ProblemDetails(
        404, "not-found", "No such agreement",
        f"no agreement {agreement_id!r} with this node as consumer",
    ))


@require_operator
async def post_transfer(request: web.Request) -> web.Response:
    """Request a transfer under one of our agreements (as consumer) from its provider."""
    body = parse_body(TransferCreate, await read_json_object(request))
    async with _store(request).read() as reader:
        agreement = await reader.get_agreement(body.agreement_id)
        if agreement is None or agreement.consumer_did != _own_did(request):
            raise _no_consumer_agreement(body.agreement_id)
        address = body.counter_party_address
        if address is None and agreement.negotiation_id is not None:
            negotiation = await reader.get_negotiation(agreement.negotiation_id)
            address = negotiation.counterparty_address if negotiation else None
    if address is None:
        raise field_problem("counterPartyAddress", "required: this node does not know the "
                            f"negotiation of agreement {body.agreement_id!r}, so not where "
                            "its provider is")
    try:
        pid = await start_transfer(request.app, address, body.agreement_id, format=body.format)
    except ValueError:
        raise _no_consumer_agreement(body.agreement_id) from None
    async with _store(request).read() as reader:
        record = await reader.get_transfer(pid)
    assert record is not None
    return _created(transfer_json(record), f"/management/transfers/{pid}")


@require_operator
async def list_transfers(request: web.Request) -> web.Response:
    limit, after = paging(request)
    role, state = role_query(request), transfer_state_query(request)
    async with _store(request).read() as reader:
        rows = await reader.list_transfers(
            state=state, role=role, agreement_id=request.query.get("agreementId") or None,
            after=after, limit=limit)
    return page([transfer_json(r) for r in rows], len(rows), limit,
                rows[-1].id if rows else None)


@require_operator
async def get_transfer(request: web.Request) -> web.Response:
    pid = request.match_info["id"]
    async with _store(request).read() as reader:
        record = await reader.get_transfer(pid)
    if record is None:
        raise not_found("transfer", pid)
    return web.json_response(transfer_json(record))


Action = Callable[[web.Application, str, ReasonBody], Awaitable[TransferRecord]]


def _reason(body: ReasonBody, default: str) -> TerminationReason:
    return TerminationReason(TerminationKind.INTERNAL, None, body.reason or default)


_ACTIONS: dict[str, tuple[type[_Body], Action]] = {
    "complete": (EmptyBody, lambda app, pid, _: complete_transfer(app, pid)),
    "resume": (EmptyBody, lambda app, pid, _: resume_transfer(app, pid)),
    "suspend": (ReasonBody, lambda app, pid, body: suspend_transfer(
        app, pid, _reason(body, "suspended by the operator"))),
    "terminate": (ReasonBody, lambda app, pid, body: terminate_transfer(
        app, pid, _reason(body, "terminated by the operator"))),
}


@require_operator
async def act_on_transfer(request: web.Request) -> web.Response:
    """Complete, suspend, resume or terminate a transfer; the peer is told by the outbox.

    Whether the message is legal is the state machine's decision (a consumer may complete or
    suspend a STARTED transfer, resume a SUSPENDED one it suspended, terminate any running
    one); an illegal one is a 409 naming the state, and nothing is written.
    """
    pid, action = request.match_info["id"], request.match_info["action"]
    model, perform = _ACTIONS[action]
    body = parse_body(model, await _optional_object(request))
    async with _store(request).read() as reader:
        record = await reader.get_transfer(pid)
    if record is None:
        raise not_found("transfer", pid)
    try:
        record = await perform(request.app, pid,
                               body if isinstance(body, ReasonBody) else ReasonBody())
    except ValueError as exc:
        async with _store(request).read() as reader:
            current = await reader.get_transfer(pid)
        state = current.state if current else record.state
        raise ProblemError(ProblemDetails(
            409, "illegal-transition", "Not possible in this state",
            f"cannot {action} transfer {pid!r} in state {state}: {exc}",
            {"state": state, "action": action},
        )) from None
    return web.json_response(transfer_json(record))


def add_routes(app: web.Application) -> None:
    """Register the consumer-side management routes (every one checks the operator key)."""
    router = app.router
    router.add_post("/management/catalog/request", request_catalog)
    router.add_post("/management/negotiations", post_negotiation)
    router.add_get("/management/negotiations", list_negotiations)
    router.add_get("/management/negotiations/{id}", get_negotiation)
    router.add_post("/management/negotiations/{id}/terminate", terminate_negotiation)
    router.add_get("/management/agreements", list_agreements)
    router.add_get("/management/agreements/{id}", get_agreement)
    router.add_post("/management/transfers", post_transfer)
    router.add_get("/management/transfers", list_transfers)
    router.add_get("/management/transfers/{id}", get_transfer)
    router.add_post("/management/transfers/{id}/{action:complete|suspend|resume|terminate}",
                    act_on_transfer)
