"""Transfer process with I/O: the sans-IO machine (``transfer.transition``) + store + outbox.

Same rule as ``negotiation_service``: an inbound message is authenticated and parsed, then in
ONE store transaction its receipt is recorded (``record_inbound``: a repeat is answered as the
first time and changes nothing), the process is loaded for update, the pure transition applied,
the new state stored, our next message enqueued on the outbox and the audit line appended; the
ACK is returned only after the commit. Outbound messages are applied locally when enqueued.

Provider: a ``TransferRequestMessage`` is accepted only for an agreement this node stored as
provider (``AgreementRecord``, written at FINALIZED) whose assignee is the caller. An unknown
agreement and someone else's agreement get the same 404 ``unknown-agreement`` (a participant
must not learn which agreements exist); an agreement whose negotiation is no longer FINALIZED or
that has ended (``agreements.why_agreement_ended``: terminated by the provider, ``not_after``
passed, usage window closed) gets 400 ``agreement-not-valid``. A refused request creates nothing.
An accepted one moves to STARTED at once and queues the ``TransferStartMessage``, with the
``dataAddress`` of a fresh data plane grant (``connector.dataplane``: an access token bound to
this transfer, stored in the same transaction), or whatever
``TransferSettings.data_address(agreement, consumer_did)`` returns when an embedder sets it.

The callback address of a request must belong to the caller (``callback_allowed``).

Delivery: the node's one ``OutboxWorker`` hands ``Transfer*`` messages to this service
(``routes_transfer.add_routes`` registers it as their handler), as it does ``Contract*`` ones
to the negotiation service.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aiohttp import web

from connector.app import CONFIG, IDENTITY
from connector.dsp import transfer as tp
from connector.dsp.agreements import why_agreement_ended
from connector.dsp.client import join_url
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import (
    DataAddress,
    TransferError,
    TransferProcess,
    TransferRequestMessage,
    TransferState,
)
from connector.dsp.negotiation_service import (
    Answer,
    DspState,
    callback_allowed,
    dsp_state,
    error_answer,
)
from connector.dsp.process import (
    Direction,
    NeedsDecision,
    Role,
    TerminationKind,
    TerminationReason,
    fingerprint,
)
from connector.dsp.process_records import ProcessRecords
from connector.dsp.transfer import TransferInput, TransferMessage, TransferProcessState
from connector.store import (
    AgreementRecord,
    OutboxMessage,
    TokenRecord,
    Transaction,
    TransferRecord,
    new_id,
)
from connector.store import Role as StoreRole

log = logging.getLogger(__name__)

TERMINAL = {TransferState.COMPLETED, TransferState.TERMINATED}
UNKNOWN_AGREEMENT = "unknown-agreement"
AGREEMENT_NOT_VALID = "agreement-not-valid"

DataAddressHook = Callable[
    [AgreementRecord, str], dict[str, Any] | Awaitable[dict[str, Any] | None] | None
]


@dataclass(slots=True)
class TransferSettings:
    """Transfer settings not (yet) in ``NodeConfig``.

    ``data_address(agreement, consumer_did)``: the ``DataAddress`` JSON (or ``None``) the
    provider puts in its ``TransferStartMessage``, may be sync or async; ``None`` (the
    default) uses the node's own data plane.
    """

    data_address: DataAddressHook | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the pre-check of a new request computed outside the transaction."""

    local_pid: str
    data_address: DataAddress | None = None
    token: TokenRecord | None = None


@dataclass(slots=True)
class TransferNodeState:
    settings: TransferSettings
    service: TransferService | None = None


TRANSFER_STATE = web.AppKey("dsp_transfer_state", TransferNodeState)


def transfer_service_of(app: web.Application) -> TransferService:
    state = app.get(TRANSFER_STATE)
    if state is None:
        raise RuntimeError("call connector.dsp.routes_transfer.add_routes(app) first")
    if state.service is None:
        state.service = TransferService(app, dsp_state(app), state.settings)
    return state.service


class _Reject(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(str(answer.body))
        self.answer = answer


def _error(status: int, code: str, reason: str, *, consumer_pid: str | None = None,
           provider_pid: str | None = None) -> Answer:
    body = TransferError(consumer_pid=consumer_pid or "", provider_pid=provider_pid or "",
                         code=code, reason=[reason])
    return Answer(status, body.to_json())


def _perror(error: ProtocolError) -> Answer:
    return error_answer(error)


def kind_name(message: TransferInput) -> str:
    kind = tp.message_kind(message)
    assert kind is not None
    return str(kind)


_SUFFIX = {
    TransferMessage.START: "start",
    TransferMessage.COMPLETION: "completion",
    TransferMessage.TERMINATION: "termination",
    TransferMessage.SUSPENSION: "suspension",
}


def ack_body(record: TransferRecord) -> dict[str, Any]:
    """``TransferProcess`` for a stored transfer."""
    own, peer = record.id, record.counterparty_pid or ""
    consumer, provider = (peer, own) if record.role is StoreRole.PROVIDER else (own, peer)
    return TransferProcess(consumer_pid=consumer, provider_pid=provider,
                           state=TransferState(record.state)).to_json()


_STATE_CLASSES: dict[TransferState, type[Any]] = {
    TransferState.REQUESTED: tp.Requested,
    TransferState.STARTED: tp.Started,
    TransferState.SUSPENDED: tp.Suspended,
    TransferState.COMPLETED: tp.Completed,
    TransferState.TERMINATED: tp.Terminated,
}


class TransferService(ProcessRecords):
    """Both roles of the transfer process for one node (app)."""

    REQUEST_KIND = TransferMessage.REQUEST
    ACK_TYPE = TransferProcess
    AUDIT_PREFIX = "transfer"

    def __init__(self, app: web.Application, state: DspState, settings: TransferSettings) -> None:
        self._app = app
        self._state = state
        self.settings = settings
        self.dsp_settings = state.settings
        self.did = app[IDENTITY].did
        self.public_base_url = app[CONFIG].public_base_url
        self.allow_http_loopback = app[CONFIG].is_local

    async def _get_record(self, session: Any, pid: str, *,
                          for_update: bool = False) -> TransferRecord | None:
        if for_update:
            return await session.get_transfer(pid, for_update=True)
        return await session.get_transfer(pid)

    async def _put_record(self, tx: Any, record: TransferRecord) -> TransferRecord:
        return await tx.put_transfer(record)

    # --- inbound ----------------------------------------------------------------------------

    async def receive(self, caller: str, pid: str | None, message: TransferInput) -> Answer:
        """Apply an authenticated, parsed message; the ACK or the DSP error to answer with."""
        prepared = _Prepared(local_pid=new_id())
        if pid is None:
            assert isinstance(message, TransferRequestMessage)
            precheck = await self._precheck_request(caller, message, prepared.local_pid)
            if isinstance(precheck, Answer):
                return precheck
            prepared = precheck or prepared
        try:
            async with self.store.transaction() as tx:
                if pid is None:
                    assert isinstance(message, TransferRequestMessage)
                    answer = await self._request_in(tx, caller, message, prepared)
                else:
                    answer = await self._message_in(tx, caller, pid, message)
                return answer
        except _Reject as reject:
            return reject.answer

    async def _precheck_request(
        self, caller: str, message: TransferRequestMessage, local_pid: str
    ) -> Answer | _Prepared | None:
        """Callback and agreement checks before the transaction; then the data address."""
        if not callback_allowed(caller, message.callback_address, settings=self.dsp_settings,
                                allow_http_loopback=self.allow_http_loopback):
            return _perror(ProtocolError(
                area=Area.TRANSFER, status=400, code=ErrorCode.INVALID_MESSAGE,
                reason="callbackAddress is not an address of the calling participant",
                consumer_pid=message.consumer_pid))
        async with self.store.read() as reader:
            problem = await self._agreement_problem(reader, caller, message)
            if isinstance(problem, Answer):
                return problem
            existing = await self._existing(reader, caller, message.consumer_pid)
        if existing is not None:
            return None  # a repeat (or a clash): answered in the transaction, no new address
        if self.settings.data_address is None:
            from connector.dataplane.routes import data_plane_of

            grant = data_plane_of(self._app).grant(problem, caller, local_pid)
            return _Prepared(local_pid, DataAddress.model_validate(grant.data_address),
                             grant.token)
        raw = self.settings.data_address(problem, caller)
        if inspect.isawaitable(raw):
            raw = await raw
        return _Prepared(local_pid, None if raw is None else DataAddress.model_validate(raw))

    async def _agreement_problem(
        self, reader: Any, caller: str, message: TransferRequestMessage
    ) -> Answer | AgreementRecord:
        agreement: AgreementRecord | None = await reader.get_agreement(message.agreement_id)
        if (agreement is None or agreement.provider_did != self.did
                or agreement.consumer_did != caller
                or agreement.agreement.get("assignee") != caller):
            return _error(404, UNKNOWN_AGREEMENT,
                          f"no agreement {message.agreement_id!r} for this participant",
                          consumer_pid=message.consumer_pid)
        if agreement.negotiation_id is not None:
            negotiation = await reader.get_negotiation(agreement.negotiation_id)
            if negotiation is None or negotiation.state != "FINALIZED":
                return _error(400, AGREEMENT_NOT_VALID,
                              f"agreement {agreement.id!r} is not FINALIZED",
                              consumer_pid=message.consumer_pid)
        ended = await why_agreement_ended(reader, agreement, self.dsp_settings.clock())
        if ended is not None:
            return _error(400, AGREEMENT_NOT_VALID, f"agreement {agreement.id!r}: {ended}",
                          consumer_pid=message.consumer_pid)
        return agreement

    async def _existing(self, reader: Any, caller: str, consumer_pid: str) -> TransferRecord | None:
        records: list[TransferRecord] = await reader.list_transfers(
            role=StoreRole.PROVIDER, counterparty_pid=consumer_pid, limit=100)
        for record in records:
            if record.counterparty_did == caller:
                return record
        return None

    async def _request_in(
        self, tx: Transaction, caller: str, message: TransferRequestMessage,
        prepared: _Prepared,
    ) -> Answer:
        print_ = fingerprint(message, Direction.RECEIVED)
        existing = await self._existing(tx, caller, message.consumer_pid)
        if existing is not None:
            if not await tx.record_inbound(existing.id, print_):
                return await self._repeat(tx, existing, print_)
            raise _Reject(_perror(ProtocolError(
                area=Area.TRANSFER, status=400, code=ErrorCode.PROCESS_ID_MISMATCH,
                reason=f"{message.consumer_pid!r} already names another transfer",
                consumer_pid=message.consumer_pid)))
        agreement = await self._agreement_problem(tx, caller, message)
        if isinstance(agreement, Answer):  # changed since the pre-check
            raise _Reject(agreement)
        local_pid = prepared.local_pid
        await tx.record_inbound(local_pid, print_)
        result = tp.transition(None, message, role=Role.PROVIDER, local_pid=local_pid)
        if isinstance(result, ProtocolError):
            raise _Reject(_perror(result))
        record = await self._store_process(tx, None, result.process, role=Role.PROVIDER,
                                           counterparty_did=caller, asset_id=agreement.asset_id)
        answer = Answer(201, ack_body(record))
        await self._audit_received(tx, caller, record, message, print_, answer)
        if any(isinstance(effect, NeedsDecision) for effect in result.effects):
            if prepared.token is not None:
                await tx.put_token(prepared.token)
            await self._send(tx, record, result.process,
                             tp.start(result.process, prepared.data_address))
        return answer

    async def _message_in(
        self, tx: Transaction, caller: str, pid: str, message: TransferInput
    ) -> Answer:
        print_ = fingerprint(message, Direction.RECEIVED)
        previous = await tx.get_transfer(pid, for_update=True)
        if previous is None or previous.counterparty_did != caller:
            raise _Reject(_perror(tp.unknown_process(pid)))
        if (not await tx.record_inbound(previous.id, print_)
                and await self._is_retry(tx, previous.id, print_)):
            return await self._repeat(tx, previous, print_)
        role = Role(previous.role.value)
        process = self._load(previous, adopt_from=message)
        result = tp.transition(process, message, role=role)
        if isinstance(result, ProtocolError):
            raise _Reject(_perror(result))
        record = await self._store_process(tx, previous, result.process, role=role,
                                           counterparty_did=caller, asset_id=previous.asset_id)
        answer = Answer(200, ack_body(record))
        await self._audit_received(tx, caller, record, message, print_, answer)
        return answer

    async def _audit_received(
        self, tx: Transaction, caller: str, record: TransferRecord, message: TransferInput,
        print_: str, answer: Answer,
    ) -> None:
        await tx.append_audit(
            actor=caller, action="transfer.received", subject_id=record.id,
            details={"message": kind_name(message), "fingerprint": print_,
                     "state": record.state, "status": answer.status, "ack": answer.body})

    async def _repeat(self, tx: Transaction, record: TransferRecord, print_: str) -> Answer:
        """A message we already processed: answer exactly as the first time, change nothing."""
        first = await self._first_answer(tx, record.id, print_)
        return Answer(*first) if first else Answer(200, ack_body(record))

    # --- outbound ---------------------------------------------------------------------------

    async def _send(
        self, tx: Transaction, record: TransferRecord, process: TransferProcessState,
        message: TransferInput,
    ) -> TransferRecord:
        """Apply ``message`` as sent, store the new state and queue it for the outbox."""
        role = Role(record.role.value)
        result = tp.transition(process, message, role=role, direction=Direction.SENT)
        if isinstance(result, ProtocolError):
            raise _Reject(_perror(result))
        record = await self._store_process(tx, record, result.process, role=role,
                                           counterparty_did=record.counterparty_did,
                                           asset_id=record.asset_id)
        await self._enqueue(tx, record, message)
        return record

    async def _enqueue(self, tx: Transaction, record: TransferRecord,
                       message: TransferInput) -> None:
        kind = tp.message_kind(message)
        if kind is TransferMessage.REQUEST:
            path = "transfers/request"
        else:
            assert kind is not None and record.counterparty_pid is not None
            path = f"transfers/{record.counterparty_pid}/{_SUFFIX[kind]}"
        await self._state.enqueue(tx, OutboxMessage(
            process_id=record.id, kind=kind_name(message),
            target_url=join_url(record.counterparty_address, path), body=message.to_json()))
        await tx.append_audit(actor=self.did, action="transfer.sent", subject_id=record.id,
                              details={"message": kind_name(message), "state": record.state})

    async def start_transfer(
        self, provider_url: str, agreement_id: str, *, format: str = "HttpData-PULL"
    ) -> str:
        """Consumer: request a transfer under ``agreement_id`` (ours, as assignee); our PID."""
        async with self.store.read() as reader:
            agreement = await reader.get_agreement(agreement_id)
        if agreement is None or agreement.consumer_did != self.did:
            raise ValueError(f"no agreement {agreement_id!r} with this node as consumer")
        consumer_pid = new_id()
        message = tp.request(consumer_pid=consumer_pid, agreement_id=agreement_id,
                             format=format, callback_address=self.public_base_url)
        record = TransferRecord(
            id=consumer_pid, role=StoreRole.CONSUMER, state=str(TransferState.REQUESTED),
            agreement_id=agreement_id, asset_id=agreement.asset_id,
            counterparty_did=agreement.provider_did, counterparty_address=provider_url,
            format=format)
        async with self.store.transaction() as tx:
            record = await tx.put_transfer(record)
            await self._enqueue(tx, record, message)
        return consumer_pid

    async def act(
        self, pid: str, build: Callable[[TransferProcessState], TransferInput]
    ) -> TransferRecord:
        """Send a message from our side (complete, suspend, terminate, resume) on ``pid``.

        Raises ``ValueError`` when the process is unknown, its peer PID not yet known, or the
        message is illegal in its state.
        """
        try:
            async with self.store.transaction() as tx:
                record = await tx.get_transfer(pid, for_update=True)
                if record is None or record.counterparty_pid is None:
                    raise ValueError(f"no transfer {pid!r} (or its peer PID is not known yet)")
                process = self._load(record)
                return await self._send(tx, record, process, build(process))
        except _Reject as reject:
            raise ValueError(str(reject.answer.body.get("reason"))) from None

    async def on_rejected(self, outbox: OutboxMessage, status: int, body: Any) -> None:
        """The peer refused ``outbox`` with a 4xx: audit it; a refused request terminates."""
        code = body.get("code") if isinstance(body, dict) else None
        async with self.store.transaction() as tx:
            await tx.append_audit(
                actor=self.did, action="transfer.rejected-by-peer",
                subject_id=outbox.process_id,
                details={"message": outbox.kind, "status": status, "code": code,
                         "body": body if isinstance(body, dict) else None})
            record = await tx.get_transfer(outbox.process_id, for_update=True)
            if (outbox.kind == TransferMessage.REQUEST and record is not None
                    and record.state == TransferState.REQUESTED):
                await tx.put_transfer(replace(
                    record, state=str(TransferState.TERMINATED),
                    reason_kind=str(TerminationKind.POLICY),
                    reason_detail=f"provider refused the request: {code}"))

    async def terminate_locally(self, pid: str, reason: TerminationReason, *,
                                idle_since: datetime | None = None) -> bool:
        """The peer stayed unreachable: end the process here (nothing more is sent, and what
        was still queued is withdrawn). ``False`` if it had already ended (or, with
        ``idle_since``, changed since then)."""
        async with self.store.transaction() as tx:
            record = await tx.get_transfer(pid, for_update=True)
            if record is None or TransferState(record.state) in TERMINAL:
                return False
            if idle_since is not None and record.updated_at >= idle_since:
                return False
            await tx.cancel_outbox(pid, error=f"terminated locally: {reason.detail}")
            await tx.put_transfer(replace(
                record, state=str(TransferState.TERMINATED), reason_kind=str(reason.kind),
                failed_constraint=reason.constraint, reason_detail=reason.detail))
            await tx.append_audit(actor=self.did, action="transfer.terminated-locally",
                                  subject_id=pid, details={"kind": str(reason.kind),
                                                           "detail": reason.detail})
            return True

    # --- record <-> process -----------------------------------------------------------------

    def _load(self, record: TransferRecord,
              adopt_from: TransferInput | None = None) -> TransferProcessState:
        own, peer = record.id, record.counterparty_pid
        if peer is None and adopt_from is not None and record.role is StoreRole.CONSUMER:
            peer = getattr(adopt_from, "provider_pid", None)
        consumer, provider = ((peer or "", own) if record.role is StoreRole.PROVIDER
                              else (own, peer or ""))
        state = TransferState(record.state)
        values: dict[str, Any] = {
            "consumer_pid": consumer, "provider_pid": provider,
            "agreement_id": record.agreement_id, "format": record.format,
            "data_address": (DataAddress.model_validate(record.data_address)
                             if record.data_address else None),
            "peer_callback_address": record.counterparty_address,
        }
        if state in (TransferState.SUSPENDED, TransferState.TERMINATED):
            values["reason"] = (TerminationReason(TerminationKind(record.reason_kind),
                                                  record.failed_constraint,
                                                  record.reason_detail or "")
                                if record.reason_kind else None)
        process: TransferProcessState = _STATE_CLASSES[state](**values)
        return process

    async def _store_process(
        self, tx: Transaction, previous: TransferRecord | None, process: TransferProcessState,
        *, role: Role, counterparty_did: str, asset_id: str,
    ) -> TransferRecord:
        own = process.provider_pid if role is Role.PROVIDER else process.consumer_pid
        peer = process.consumer_pid if role is Role.PROVIDER else process.provider_pid
        values: dict[str, Any] = {
            "state": str(process.state),
            "counterparty_pid": peer or None,
            "data_address": (process.data_address.to_json()
                             if process.data_address is not None else None),
        }
        reason = getattr(process, "reason", None)
        if isinstance(reason, TerminationReason):
            values.update(reason_kind=str(reason.kind), failed_constraint=reason.constraint,
                          reason_detail=reason.detail)
        elif process.state is TransferState.STARTED:  # resumed: the suspension is over
            values.update(reason_kind=None, failed_constraint=None, reason_detail=None)
        if previous is None:
            address = process.peer_callback_address
            assert address is not None  # the request carries it
            record = TransferRecord(
                id=own, role=StoreRole(role.value), agreement_id=process.agreement_id,
                asset_id=asset_id, counterparty_did=counterparty_did,
                counterparty_address=address, format=process.format, **values)
        else:
            record = replace(previous, **values)
        return await tx.put_transfer(record)


# --- delivery -----------------------------------------------------------------------------------


# --- public API (management side) ---------------------------------------------------------------


async def start_transfer(
    app: web.Application, provider_url: str, agreement_id: str, *, format: str = "HttpData-PULL"
) -> str:
    """Consumer side start: request a transfer under a FINALIZED agreement; our ``consumerPid``."""
    return await transfer_service_of(app).start_transfer(provider_url, agreement_id,
                                                         format=format)


async def complete_transfer(app: web.Application, pid: str) -> TransferRecord:
    return await transfer_service_of(app).act(pid, tp.complete)


async def terminate_transfer(app: web.Application, pid: str,
                             reason: TerminationReason) -> TransferRecord:
    return await transfer_service_of(app).act(pid, lambda p: tp.terminate(p, reason))


async def suspend_transfer(app: web.Application, pid: str,
                           reason: TerminationReason) -> TransferRecord:
    return await transfer_service_of(app).act(pid, lambda p: tp.suspend(p, reason))


async def resume_transfer(app: web.Application, pid: str) -> TransferRecord:
    return await transfer_service_of(app).act(pid, tp.start)


__all__ = [
    "AGREEMENT_NOT_VALID",
    "TRANSFER_STATE",
    "UNKNOWN_AGREEMENT",
    "TransferNodeState",
    "TransferService",
    "TransferSettings",
    "ack_body",
    "complete_transfer",
    "resume_transfer",
    "start_transfer",
    "suspend_transfer",
    "terminate_transfer",
    "transfer_service_of",
]
