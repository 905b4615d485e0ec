"""TEST-ONLY: what the Eclipse DSP compatibility kit (TCK) needs from a connector under test.

Installed only when ``NodeConfig.tck_triggers`` is on (``BPC_TCK_TRIGGERS=1``); never on by
default, never on a node that serves real partners. It adds, as EDC's TCK extension does
(``connector/interop/TCK.md`` has the whole contract):

1. **Trigger endpoints** (the kit's ``dataspacetck.dsp.connector.negotiation.initiate.url`` and
   ``…transfer.initiate.url``): ``POST /tck/negotiations/requests``
   ``{"datasetId","offerId","providerId","connectorAddress"}`` makes this node, as consumer,
   request that offer from the provider at ``connectorAddress`` (whose DID is ``providerId``);
   ``POST /tck/transfers/requests`` ``{"agreementId","format","providerId","connectorAddress"}``
   makes it request a transfer. Both answer 200 ``{"consumerPid"}``; a bad body is a 400
   problem. They are unauthenticated, as the kit calls them — hence test-only.
2. **Seed data**: public datasets ``CAT0101``/``CAT0102`` (written at start when missing), and
   the kit's pre-existing FINALIZED agreements (``ATP0101…ATP0306`` with this node as provider,
   ``ATPC0101…ATPC0306`` as consumer), created on first use and bound to the participant that
   first uses them (the kit's one participant).
3. **Scripted reactions** by seed id (``ACN…``/``ACNC…`` datasets, ``ATP…``/``ATPC…``
   agreements): the kit expects this node to offer, counter, accept, terminate, suspend or hold
   at given points (``PROVIDER_NEGOTIATION`` … ``CONSUMER_TRANSFER`` below). They are
   subclasses of the negotiation and transfer services that replace the defaults at start;
   every other dataset and agreement keeps the normal behaviour.
4. Callbacks of ``did:key`` participants on loopback addresses are accepted (the interop
   harness is such a participant).

Which reaction happened is in the audit log like any other message. The in-memory count of
reactions per process is lost on restart (a test node).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.app import CONFIG, IDENTITY, STORE
from connector.dsp import negotiation as cn
from connector.dsp import transfer as tp
from connector.dsp.messages import MessageOffer, TransferState
from connector.dsp.negotiation_service import (
    DSP_STATE,
    NegotiationService,
    service_of,
    start_negotiation,
)
from connector.dsp.process import TerminationKind, TerminationReason
from connector.dsp.tck_identity import TCK_IDENTITY, TckIdentity
from connector.dsp.transfer_service import (
    TRANSFER_STATE,
    TransferService,
    start_transfer,
    transfer_service_of,
)
from connector.store import AgreementRecord, AssetRecord, new_id
from connector.store import Role as StoreRole

log = logging.getLogger(__name__)

NEGOTIATION_TRIGGER = "/tck/negotiations/requests"
TRANSFER_TRIGGER = "/tck/transfers/requests"
SEED_DATASETS = ("CAT0101", "CAT0102")
SEED_ASSET = "CAT0101"
"""The dataset seeded agreements are about (the kit only needs their ids)."""
_REASON = TerminationReason(TerminationKind.INTERNAL, None, "scripted by the TCK seed id")

# --- the scripts, by seed id ------------------------------------------------------------------
# Negotiations: (state after the received message, n-th time in it) -> what we do. "offer":
# offer the requested offer back; "agree"; "terminate"; "hold": nothing; "accept"; "counter":
# counter-request; "offer+terminate": both, in order. Missing entries keep the default.

PROVIDER_NEGOTIATION: dict[str, dict[tuple[str, int], str]] = {
    "ACN0101": {("REQUESTED", 1): "offer"},
    "ACN0102": {("REQUESTED", 1): "offer", ("REQUESTED", 2): "terminate"},
    "ACN0103": {("REQUESTED", 1): "offer", ("ACCEPTED", 1): "agree"},
    "ACN0104": {("REQUESTED", 1): "agree"},
    "ACN0201": {("REQUESTED", 1): "terminate"},
    "ACN0202": {("REQUESTED", 1): "hold"},
    "ACN0203": {("REQUESTED", 1): "agree"},
    "ACN0204": {("REQUESTED", 1): "offer"},
    "ACN0205": {("REQUESTED", 1): "offer+terminate"},
    "ACN0206": {("REQUESTED", 1): "offer", ("ACCEPTED", 1): "terminate"},
    "ACN0207": {("REQUESTED", 1): "agree", ("VERIFIED", 1): "terminate"},
    "ACN0301": {("REQUESTED", 1): "agree"},
    "ACN0302": {("REQUESTED", 1): "offer"},
    "ACN0303": {("REQUESTED", 1): "offer", ("ACCEPTED", 1): "hold"},
    "ACN0304": {("REQUESTED", 1): "offer", ("REQUESTED", 2): "hold"},
}
CONSUMER_NEGOTIATION: dict[str, dict[tuple[str, int], str]] = {
    "ACNC0101": {("OFFERED", 1): "accept"},
    "ACNC0102": {("OFFERED", 1): "counter"},
    "ACNC0103": {("OFFERED", 1): "terminate"},
    "ACNC0104": {},
    "ACNC0201": {},
    "ACNC0202": {},  # terminates once the provider answered (TERMINATE_AFTER_ACK)
    "ACNC0203": {("AGREED", 1): "terminate"},
    "ACNC0204": {("OFFERED", 1): "hold"},
    "ACNC0205": {("OFFERED", 1): "accept"},
    "ACNC0206": {},
    "ACNC0301": {},
    "ACNC0302": {("OFFERED", 1): "hold"},
    "ACNC0303": {("OFFERED", 1): "hold"},
    "ACNC0304": {("OFFERED", 1): "accept"},
    "ACNC0305": {("OFFERED", 1): "accept"},
    "ACNC0306": {("OFFERED", 1): "accept", ("AGREED", 1): "hold"},
}
# Transfers: the messages we send, in order, when the process gets going ("start" replaced by
# these on the provider; after the first TransferStartMessage on the consumer).
PROVIDER_TRANSFER: dict[str, tuple[str, ...]] = {
    "ATP0101": ("start", "terminate"),
    "ATP0102": ("start", "complete"),
    "ATP0103": ("start", "suspend", "terminate"),
    "ATP0104": ("start", "suspend", "start", "complete"),
    "ATP0105": ("terminate",),
    **{f"ATP020{n}": ("start",) for n in range(1, 5)},
    "ATP0205": (),
    "ATP0301": (),
    "ATP0302": (),
    **{f"ATP030{n}": ("start",) for n in range(3, 7)},
}
CONSUMER_TRANSFER: dict[str, tuple[str, ...]] = {
    **{f"ATPC010{n}": () for n in range(1, 6)},
    "ATPC0201": ("terminate",),
    "ATPC0202": ("complete",),
    "ATPC0203": ("suspend", "terminate"),
    "ATPC0204": ("suspend", "start", "complete"),
    "ATPC0205": (),  # terminates once the provider answered (TERMINATE_AFTER_ACK)
    **{f"ATPC030{n}": () for n in range(1, 7)},
}
TERMINATE_AFTER_ACK = frozenset({"ACNC0202", "ATPC0205"})


def seeded_agreement(agreement_id: str, *, provider: str, consumer: str,
                     now: datetime) -> AgreementRecord:
    """One of the kit's pre-existing FINALIZED agreements (use, no constraint)."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"@id": agreement_id, "@type": "Agreement", "target": SEED_ASSET,
                "assigner": provider, "assignee": consumer, "timestamp": stamp,
                "permission": [{"action": "use"}]}
    return AgreementRecord(id=agreement_id, asset_id=SEED_ASSET, provider_did=provider,
                           consumer_did=consumer, agreement=document, signed_at=now)


# --- the scripted services --------------------------------------------------------------------


class ScriptedNegotiations(NegotiationService):
    """The negotiation service, with the kit's scripted reactions for its seed datasets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._visits: Counter[tuple[str, str]] = Counter()

    def _action(self, record: Any) -> str | None:
        table = (PROVIDER_NEGOTIATION if record.role is StoreRole.PROVIDER
                 else CONSUMER_NEGOTIATION).get(record.asset_id)
        if table is None:
            return None
        self._visits[(record.id, record.state)] += 1
        return table.get((record.state, self._visits[(record.id, record.state)]))

    async def _react(self, tx: Any, record: Any, result: Any, caller: str,
                     decision: Any) -> None:
        action = self._action(record)
        if action is None:
            await super()._react(tx, record, result, caller, decision)
            return
        process = result.process
        for step in action.split("+"):
            if step == "hold":
                continue
            message: Any
            if step == "offer":
                message = cn.counter_offer(process, process.offer)
            elif step == "counter":
                message = cn.counter_request(process, process.offer)
            elif step == "accept":
                message = cn.accept(process)
            elif step == "terminate":
                message = cn.terminate(process, _REASON)
            else:  # agree
                agreement = cn.agreement_from_offer(
                    process.offer, agreement_id=new_id(), assigner=self.did, assignee=caller,
                    timestamp=self.settings.clock())
                message = cn.agree(process, agreement)
            record = await self._send(tx, record, process, message)
            process = await self._load(tx, record)


class ScriptedTransfers(TransferService):
    """The transfer service, with the kit's scripted reactions for its seed agreements."""

    async def receive(self, caller: str, pid: str | None, message: Any) -> Any:
        agreement_id = getattr(message, "agreement_id", None)
        if pid is None and agreement_id in PROVIDER_TRANSFER:
            await ensure_agreement(self.store, agreement_id, provider=self.did, consumer=caller,
                                   now=self.dsp_settings.clock())
        return await super().receive(caller, pid, message)

    async def _send(self, tx: Any, record: Any, process: Any, message: Any) -> Any:
        script = PROVIDER_TRANSFER.get(record.agreement_id)
        if (script is None or record.role is not StoreRole.PROVIDER
                or not isinstance(process, tp.Requested)
                or tp.message_kind(message) is not tp.TransferMessage.START):
            return await super()._send(tx, record, process, message)
        for step in script:
            outgoing = message if step == "start" and isinstance(process, tp.Requested) else (
                _transfer_message(step, process))
            record = await super()._send(tx, record, process, outgoing)
            process = self._load(record)
        return record

    async def _message_in(self, tx: Any, caller: str, pid: str, message: Any) -> Any:
        before = await tx.get_transfer(pid)
        answer = await super()._message_in(tx, caller, pid, message)
        script = CONSUMER_TRANSFER.get(before.agreement_id) if before is not None else None
        if (script and before is not None and before.role is StoreRole.CONSUMER
                and before.state == TransferState.REQUESTED and answer.status == 200):
            record = await tx.get_transfer(pid, for_update=True)
            if record is not None and record.state == TransferState.STARTED:
                for step in script:
                    process = self._load(record)
                    record = await super()._send(tx, record, process,
                                                 _transfer_message(step, process))
        return answer


def _transfer_message(step: str, process: Any) -> Any:
    if step == "start":
        return tp.start(process, None)
    if step == "complete":
        return tp.complete(process)
    if step == "suspend":
        return tp.suspend(process, _REASON)
    return tp.terminate(process, _REASON)


async def ensure_agreement(store: Any, agreement_id: str, *, provider: str, consumer: str,
                           now: datetime) -> None:
    """Write a seeded agreement unless one with that id exists (whoever it binds)."""
    async with store.transaction() as tx:
        if await tx.get_agreement(agreement_id) is None:
            await tx.add_agreement(seeded_agreement(agreement_id, provider=provider,
                                                    consumer=consumer, now=now))
            await tx.append_audit(actor="tck", action="agreement.seeded",
                                  subject_id=agreement_id,
                                  details={"provider": provider, "consumer": consumer})


async def seed_datasets(store: Any) -> None:
    """The kit's catalog datasets, as public assets (every participant sees them)."""
    async with store.transaction() as tx:
        for dataset in SEED_DATASETS:
            if await tx.get_asset(dataset) is None:
                await tx.put_asset(AssetRecord(
                    id=dataset, access_level="public", properties={
                        "title": f"TCK dataset {dataset}", "public": True,
                        "dataSource": {"kind": "inline", "data": {"tck": dataset}}}))


# --- trigger endpoints ------------------------------------------------------------------------


class _Trigger(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    provider_id: str = Field(alias="providerId", min_length=1, max_length=2000)
    connector_address: str = Field(alias="connectorAddress", min_length=1, max_length=2000,
                                   pattern=r"^https?://")


class NegotiationTrigger(_Trigger):
    dataset_id: str = Field(alias="datasetId", min_length=1, max_length=2000)
    offer_id: str = Field(alias="offerId", min_length=1, max_length=2000)


class TransferTrigger(_Trigger):
    agreement_id: str = Field(alias="agreementId", min_length=1, max_length=2000)
    format: str = Field("HttpData-PULL", min_length=1, max_length=200)


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        problem = {"type": "about:blank", "title": "Invalid trigger", "status": 400,
                   "detail": str(exc)[:1000]}
        raise web.HTTPBadRequest(text=json.dumps(problem),
                                 content_type="application/problem+json") from None


async def negotiation_trigger(request: web.Request) -> web.Response:
    """The kit asks this node (consumer) to start a negotiation with it (provider)."""
    body: NegotiationTrigger = await _body(request, NegotiationTrigger)
    offer = MessageOffer.model_validate({"@type": "Offer", "@id": body.offer_id,
                                         "target": body.dataset_id,
                                         "permission": [{"action": "use"}]})
    pid = await start_negotiation(request.app, body.connector_address, offer,
                                  provider_did=body.provider_id)
    if body.dataset_id in TERMINATE_AFTER_ACK:
        _later(request.app, _terminate_negotiation_after_ack(request.app, pid))
    return web.json_response({"consumerPid": pid})


async def transfer_trigger(request: web.Request) -> web.Response:
    """The kit asks this node (consumer) to request a transfer from it (provider)."""
    body: TransferTrigger = await _body(request, TransferTrigger)
    app = request.app
    if body.agreement_id in CONSUMER_TRANSFER:
        await ensure_agreement(app[STORE], body.agreement_id, provider=body.provider_id,
                               consumer=app[IDENTITY].did,
                               now=service_of(app).settings.clock())
    try:
        pid = await start_transfer(app, body.connector_address, body.agreement_id,
                                   format=body.format)
    except ValueError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    if body.agreement_id in TERMINATE_AFTER_ACK:
        _later(app, _terminate_transfer_after_ack(app, pid))
    return web.json_response({"consumerPid": pid})


_TASKS = web.AppKey("tck_tasks", set)


def _later(app: web.Application, work: Any) -> None:
    tasks: set[asyncio.Task[None]] = app[_TASKS]
    task = asyncio.get_running_loop().create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _peer_known(app: web.Application, read: Any, timeout_s: float = 30.0) -> Any:
    """The record once the provider's ACK named its PID (``None`` on timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        async with app[STORE].read() as reader:
            record = await read(reader)
        if record is not None and record.counterparty_pid is not None:
            return record
        await asyncio.sleep(0.02)
    return None


async def _terminate_negotiation_after_ack(app: web.Application, pid: str) -> None:
    if await _peer_known(app, lambda reader: reader.get_negotiation(pid)) is not None:
        await service_of(app).terminate_locally(pid, _REASON)


async def _terminate_transfer_after_ack(app: web.Application, pid: str) -> None:
    if await _peer_known(app, lambda reader: reader.get_transfer(pid)) is not None:
        await transfer_service_of(app).act(pid, lambda process: tp.terminate(process, _REASON))


# --- wiring -----------------------------------------------------------------------------------


async def _tck_ctx(app: web.Application) -> AsyncIterator[None]:
    log.warning("TCK triggers are ON (tck_triggers): test-only endpoints %s and %s, seeded "
                "datasets and scripted reactions; never run a real node like this",
                NEGOTIATION_TRIGGER, TRANSFER_TRIGGER)
    await seed_datasets(app[STORE])
    state = app[DSP_STATE]
    state.service = ScriptedNegotiations(app, state)
    transfers = app[TRANSFER_STATE]
    transfers.service = ScriptedTransfers(app, state, transfers.settings)
    yield
    for task in list(app[_TASKS]):
        task.cancel()


def install(app: web.Application) -> None:
    """Add the kit's triggers, seeds and scripts when ``tck_triggers`` is on; else nothing."""
    if not app[CONFIG].tck_triggers:
        return
    app[DSP_STATE].settings = replace(app[DSP_STATE].settings,
                                      allow_loopback_did_key_callbacks=True)
    config = app[CONFIG]
    if config.tck_authorization is not None:
        app[TCK_IDENTITY] = TckIdentity(config.tck_authorization.get_secret_value(),
                                        config.tck_participant_did)
    app[_TASKS] = set()
    app.cleanup_ctx.append(_tck_ctx)
    app.router.add_post(NEGOTIATION_TRIGGER, negotiation_trigger)
    app.router.add_post(TRANSFER_TRIGGER, transfer_trigger)


__all__ = [
    "CONSUMER_NEGOTIATION",
    "CONSUMER_TRANSFER",
    "NEGOTIATION_TRIGGER",
    "PROVIDER_NEGOTIATION",
    "PROVIDER_TRANSFER",
    "SEED_DATASETS",
    "TRANSFER_TRIGGER",
    "install",
    "seeded_agreement",
]
