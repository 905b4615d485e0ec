"""Contract negotiation with I/O: the sans-IO machine (``negotiation.transition``) + store + outbox.

One rule shapes everything here (EDC's): an inbound message is authenticated, parsed, and then
in ONE store transaction its receipt is recorded (idempotency), the process is loaded for
update, the transition applied, the new state stored, our next outbound message enqueued and
the audit line appended — and only after the commit is the ACK returned. A crash at any point
leaves either nothing or everything, and a retried message is answered as the first time.

Outbound messages are *applied locally when enqueued* (``transition(direction=SENT)``), not when
the peer's ACK comes back. DSP peers act on a message the moment they ACK it, so the answer to
our message (e.g. the consumer's verification after our agreement) can arrive before our own
sender has seen the ACK; having already moved to AGREED in the transaction that queued the
agreement, the provider accepts that verification. If the message can never be delivered the
outbox gives up and terminates the process (reason ``transport``).

Who decides: the provider's ``NeedsDecision`` after a contract request is answered by a pluggable
``PolicyDecision`` (default ``offer_decision.GatedOffers``: the offer as published, for a
participant its policy allows now),
evaluated *before* the transaction (it may do I/O) and applied inside it: allowed → agreement,
refused → termination with a typed ``TerminationReason``. A consumer verifies an agreement that
names it as assignee, the provider as assigner and the requested target; otherwise it terminates.
A consumer that receives an offer stores OFFERED and waits (the management API decides later).

Where the agreement lives before FINALIZED: on the negotiation (``NegotiationRecord.agreement``,
from AGREED on); an ``AgreementRecord`` (immutable, what transfers and the data plane check) is
written only at FINALIZED.

Callback addresses (``callbackAddress`` of an initial request/offer) are only followed when they
belong to the calling participant: same origin (scheme, host, port) as the host of its did:web
(http only for loopback hosts on a local node), or an origin registered for that DID in
``DspSettings.callback_origins``; a did:key caller (no host) is accepted only from loopback
callbacks and only when ``DspSettings.allow_loopback_did_key_callbacks`` is set (test setups).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import web

from connector.app import CONFIG, HTTP_CLIENT, IDENTITY, STORE
from connector.dsp import negotiation as cn
from connector.dsp.client import join_url, origin_of
from connector.dsp.errors import Area, ErrorCode, ProtocolError
from connector.dsp.messages import (
    Agreement,
    ContractNegotiation,
    ContractOfferMessage,
    ContractRequestMessage,
    MessageOffer,
    NegotiationState,
)
from connector.dsp.negotiation import NegotiationInput, NegotiationMessage, NegotiationProcess
from connector.dsp.process import (
    Direction,
    MustSend,
    NeedsDecision,
    Role,
    TerminationKind,
    TerminationReason,
    Transition,
    fingerprint,
)
from connector.dsp.process_records import ProcessRecords
from connector.participant_auth import ReplayCache, ReplayGuard, VerifiedCaller
from connector.store import (
    AgreementEvidence,
    AgreementRecord,
    NegotiationRecord,
    OutboxMessage,
    Transaction,
    new_id,
)
from connector.store import Role as StoreRole
from credentials.did_web import DID_WEB_PREFIX, did_web_to_url, is_loopback_host
from credentials.errors import DIDError
from credentials.resolver import DIDResolver

log = logging.getLogger(__name__)

ACTOR = "dsp"
DECISION_AUDIT = "negotiation.decided"
"""Audit action of a provider's access decision on a contract request."""
TERMINAL = {NegotiationState.FINALIZED, NegotiationState.TERMINATED}
_WITH_AGREEMENT = {NegotiationState.AGREED, NegotiationState.VERIFIED, NegotiationState.FINALIZED}


# --- the provider's decision ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this consumer have this offer?"; a refusal says why, typed."""

    allowed: bool
    reason_kind: TerminationKind = TerminationKind.POLICY
    failed_constraint: str | None = None
    detail: str = ""
    #: What the decision relied on (``connector.dcp.context.evidence_of``: id, digest, types,
    #: issuer, status of each credential): audited, and kept with the agreement so a policy
    #: monitor can end it when one is revoked.
    evidence: tuple[dict[str, Any], ...] = ()


class PolicyDecision(Protocol):
    """Pluggable provider decision (policy engine, credential checks, a human…).

    ``caller``: the verified request (its DCP access token lets the decision fetch the
    consumer's presentation); ``None`` when the decision is taken without one."""

    async def decide(self, offer: MessageOffer, consumer_did: str, *,
                     caller: VerifiedCaller | None = None) -> Decision: ...


def _default_policy(app: web.Application, state: DspState) -> PolicyDecision:
    """The published offer, unchanged, whose policy the node's ``PolicyGate`` allows."""
    from connector.dsp.offer_decision import GatedOffers
    from connector.policy_gate import POLICY_GATE, PolicyGate

    gate = app.get(POLICY_GATE) or PolicyGate()
    return GatedOffers(app[STORE], gate, state.settings.clock, app)


# --- settings and per-app state -------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DspSettings:
    """DSP negotiation settings not (yet) in ``NodeConfig`` (see the module docstring)."""

    policy: PolicyDecision | None = None
    callback_origins: Mapping[str, str] = field(default_factory=dict)
    allow_loopback_did_key_callbacks: bool = False
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    poll_interval_s: float = 5.0
    lease_s: float = 30.0
    clock: Callable[[], datetime] = _utcnow


class Waker(Protocol):
    """The outbox worker as the services see it (``outbox.OutboxWorker``)."""

    def wake(self) -> None: ...

    def claim(self, message: OutboxMessage) -> OutboxMessage: ...

    def deliver_now(self, message: OutboxMessage) -> None: ...


@dataclass(slots=True)
class DspState:
    """Mutable per-app holder (the app is frozen once started; these are built lazily)."""

    settings: DspSettings
    replay_cache: ReplayGuard = field(default_factory=ReplayCache)
    service: NegotiationService | None = None
    worker: Waker | None = None
    #: Who settles an outbox message, by the prefix of its kind ("Contract", "Transfer"):
    #: a factory so services are built lazily, once the app runs.
    outbox_handlers: dict[str, Callable[[], Any]] = field(default_factory=dict)


    async def enqueue(self, tx: Transaction, message: OutboxMessage) -> None:
        """Queue ``message`` in ``tx``; once it commits, this node's worker sends it at once.

        The message is stored already leased to the local worker, which gets it in memory on
        commit: no lease transaction (one fsync less per message) and no other replica picks
        it up meanwhile. If this process dies first, the lease runs out and any worker
        (this one after a restart) sends it from the store.
        """
        worker = self.worker
        if worker is None:
            await tx.enqueue(message)
            return
        claimed = worker.claim(message)
        await tx.enqueue(claimed)
        tx.on_commit(lambda: worker.deliver_now(claimed))


DSP_STATE = web.AppKey("dsp_state", DspState)


def dsp_state(app: web.Application) -> DspState:
    """The app's DSP state, created with default settings if ``add_routes`` did not."""
    state = app.get(DSP_STATE)
    if state is None:
        raise RuntimeError("call connector.dsp.routes_negotiation.add_routes(app) first")
    return state


def service_of(app: web.Application) -> NegotiationService:
    state = dsp_state(app)
    if state.service is None:
        state.service = NegotiationService(app, state)
    return state.service


# --- helpers --------------------------------------------------------------------------------


class _Reject(Exception):
    """Raised inside a transaction to roll it back (receipt included) and answer ``error``."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(error.reason)
        self.error = error


@dataclass(frozen=True, slots=True)
class Answer:
    """What the binding answers: status and JSON body."""

    status: int
    body: dict[str, Any]


def error_answer(error: ProtocolError) -> Answer:
    return Answer(error.status, error.body().to_json())


def callback_allowed(
    did: str, callback: str, *, settings: DspSettings, allow_http_loopback: bool
) -> bool:
    """Whether ``callback`` belongs to participant ``did`` (rule: see the module docstring)."""
    origin = origin_of(callback)
    if origin is None:
        return False
    registered = settings.callback_origins.get(did)
    if registered is not None:
        return origin_of(registered) == origin
    if did.startswith(DID_WEB_PREFIX):
        try:
            did_url = did_web_to_url(did, allow_http=allow_http_loopback)
        except DIDError:
            return False
        return origin_of(did_url) == origin
    if did.startswith("did:key:") and settings.allow_loopback_did_key_callbacks:
        return is_loopback_host(urlsplit(callback).hostname or "")
    return False


def message_kind_name(message: NegotiationInput) -> str:
    kind = cn.message_kind(message)
    assert kind is not None
    return str(kind)


def outbound_path(message: NegotiationInput) -> str:
    """Path of ``message`` relative to the receiver's DSP base / callback address."""
    kind = cn.message_kind(message)
    ppid, cpid = message.provider_pid, message.consumer_pid
    paths = {
        NegotiationMessage.REQUEST: (
            "negotiations/request" if ppid is None else f"negotiations/{ppid}/request"),
        NegotiationMessage.ACCEPTED: f"negotiations/{ppid}/events",
        NegotiationMessage.VERIFICATION: f"negotiations/{ppid}/agreement/verification",
        NegotiationMessage.OFFER: (
            "negotiations/offers" if cpid is None else f"negotiations/{cpid}/offers"),
        NegotiationMessage.AGREEMENT: f"negotiations/{cpid}/agreement",
        NegotiationMessage.FINALIZED: f"negotiations/{cpid}/events",
    }
    if kind is NegotiationMessage.TERMINATION:
        # Sent by either side: to the provider's PID when we are the consumer, and vice versa.
        return "termination"  # resolved by the caller, which knows its role
    assert kind is not None
    return paths[kind]


def ack_body(process_or_record: NegotiationProcess | NegotiationRecord) -> dict[str, Any]:
    """``ContractNegotiation`` (+ ``code``/``reason`` of a termination, as extra members)."""
    if isinstance(process_or_record, NegotiationRecord):
        record = process_or_record
        own, peer = record.id, record.counterparty_pid or ""
        consumer, provider = (peer, own) if record.role is StoreRole.PROVIDER else (own, peer)
        extra: dict[str, Any] = {}
        if record.state == NegotiationState.TERMINATED and record.reason_kind:
            reason = TerminationReason(TerminationKind(record.reason_kind),
                                       record.failed_constraint, record.reason_detail or "")
            code, reasons = reason.to_wire()
            extra = {"code": code, "reason": reasons}
        ack = ContractNegotiation(consumer_pid=consumer, provider_pid=provider,
                                  state=NegotiationState(record.state), **extra)
        return ack.to_json()
    process = process_or_record
    extra = {}
    if isinstance(process, cn.Terminated) and process.reason is not None:
        code, reasons = process.reason.to_wire()
        extra = {"code": code, "reason": reasons}
    return ContractNegotiation(consumer_pid=process.consumer_pid,
                               provider_pid=process.provider_pid, state=process.state,
                               **extra).to_json()


_STATE_CLASSES: dict[NegotiationState, type[Any]] = {
    NegotiationState.REQUESTED: cn.Requested,
    NegotiationState.OFFERED: cn.Offered,
    NegotiationState.ACCEPTED: cn.Accepted,
    NegotiationState.AGREED: cn.Agreed,
    NegotiationState.VERIFIED: cn.Verified,
    NegotiationState.FINALIZED: cn.Finalized,
    NegotiationState.TERMINATED: cn.Terminated,
}


# --- the service ----------------------------------------------------------------------------


class NegotiationService(ProcessRecords):
    """Both roles of contract negotiation for one node (app)."""

    REQUEST_KIND = NegotiationMessage.REQUEST
    ACK_TYPE = ContractNegotiation
    AUDIT_PREFIX = "negotiation"

    def __init__(self, app: web.Application, state: DspState) -> None:
        self._app = app
        self._state = state
        self.settings = state.settings
        self.policy: PolicyDecision = state.settings.policy or _default_policy(app, state)
        identity = app[IDENTITY]
        config = app[CONFIG]
        self.did = identity.did
        self.public_base_url = config.public_base_url
        self.allow_http_loopback = config.is_local
        self.resolver = _resolver_of(app)

    async def _get_record(self, session: Any, pid: str, *,
                          for_update: bool = False) -> NegotiationRecord | None:
        if for_update:
            return await session.get_negotiation(pid, for_update=True)
        return await session.get_negotiation(pid)

    async def _put_record(self, tx: Any, record: NegotiationRecord) -> NegotiationRecord:
        return await tx.put_negotiation(record)

    # --- inbound ----------------------------------------------------------------------------

    async def receive(
        self, caller: str, pid: str | None, message: NegotiationInput, roles: set[Role],
        *, verified: VerifiedCaller | None = None,
    ) -> Answer:
        """Apply an authenticated, parsed message; the ACK or the DSP error to answer with.

        ``pid``: our process id from the URL (``None`` for the creating endpoints).
        ``roles``: the roles this endpoint serves (a provider path does not reach a consumer
        process: 404, as for any process the caller may not see).
        """
        if pid is None:
            assert isinstance(message, ContractRequestMessage | ContractOfferMessage)
            if message.callback_address is None or not callback_allowed(
                caller, message.callback_address, settings=self.settings,
                allow_http_loopback=self.allow_http_loopback,
            ):
                return error_answer(ProtocolError(
                    area=Area.NEGOTIATION, status=400, code=ErrorCode.INVALID_MESSAGE,
                    reason="callbackAddress is not an address of the calling participant",
                    consumer_pid=message.consumer_pid, provider_pid=message.provider_pid))
        decision: Decision | None = None
        if Role.PROVIDER in roles and isinstance(message, ContractRequestMessage):
            decision = await self.policy.decide(message.offer, caller, caller=verified)
        try:
            async with self.store.transaction() as tx:
                return await self._receive_in(tx, caller, pid, message, roles, decision)
        except _Reject as reject:
            return error_answer(reject.error)

    async def _receive_in(
        self, tx: Transaction, caller: str, pid: str | None, message: NegotiationInput,
        roles: set[Role], decision: Decision | None,
    ) -> Answer:
        print_ = fingerprint(message, Direction.RECEIVED)
        if pid is None:
            role = next(iter(roles))
            peer_pid = message.consumer_pid if role is Role.PROVIDER else message.provider_pid
            existing = await tx.list_negotiations(
                role=StoreRole(role.value), counterparty_did=caller, counterparty_pid=peer_pid,
                limit=1)
            if existing:
                record = existing[0]
                if not await tx.record_inbound(record.id, print_):
                    return await self._repeat(tx, record, print_)
                raise _Reject(ProtocolError(
                    area=Area.NEGOTIATION, status=400, code=ErrorCode.PROCESS_ID_MISMATCH,
                    reason=f"{peer_pid!r} already names another negotiation",
                    consumer_pid=message.consumer_pid, provider_pid=message.provider_pid))
            local_pid = new_id()
            await tx.record_inbound(local_pid, print_)
            result = cn.transition(None, message, role=role, local_pid=local_pid)
            previous: NegotiationRecord | None = None
        else:
            previous = await tx.get_negotiation(pid, for_update=True)
            if (previous is None or previous.counterparty_did != caller
                    or Role(previous.role.value) not in roles):
                raise _Reject(cn.unknown_process(pid))
            role = Role(previous.role.value)
            if (not await tx.record_inbound(previous.id, print_)
                    and await self._is_retry(tx, previous.id, print_)):
                return await self._repeat(tx, previous, print_)
            process = await self._load(tx, previous, adopt_from=message)
            result = cn.transition(process, message, role=role)
        if isinstance(result, ProtocolError):
            raise _Reject(result)

        answer = Answer(result.status, ack_body(result.process))
        record = await self._store_process(tx, previous, result.process, role=role,
                                           counterparty_did=caller)
        await tx.append_audit(
            actor=caller, action="negotiation.received", subject_id=record.id,
            details={"message": message_kind_name(message), "fingerprint": print_,
                     "state": record.state, "status": answer.status, "ack": answer.body})
        await self._react(tx, record, result, caller, decision)
        return answer

    async def _repeat(self, tx: Transaction, record: NegotiationRecord, print_: str) -> Answer:
        """A message we already processed: answer exactly as the first time, change nothing."""
        first = await self._first_answer(tx, record.id, print_)
        return Answer(*first) if first else Answer(200, ack_body(record))

    async def _react(
        self, tx: Transaction, record: NegotiationRecord, result: Transition[NegotiationProcess],
        caller: str, decision: Decision | None,
    ) -> None:
        """Perform the effects of a received message: decide, or send what must be sent."""
        process = result.process
        role = Role(record.role.value)
        for effect in result.effects:
            if isinstance(effect, NeedsDecision) and role is Role.PROVIDER:
                if isinstance(process, cn.Accepted):
                    decision = Decision(True)  # the consumer accepted our own offer
                if decision is None:
                    continue
                await self._audit_decision(tx, record, process, caller, decision)
                if decision.allowed:
                    agreement = cn.agreement_from_offer(
                        process.offer, agreement_id=new_id(), assigner=self.did,
                        assignee=caller, timestamp=self.settings.clock())
                    record = await self._send(tx, record, process, cn.agree(process, agreement))
                else:
                    reason = TerminationReason(decision.reason_kind, decision.failed_constraint,
                                               decision.detail or "refused by policy")
                    await self._send(tx, record, process, cn.terminate(process, reason))
            elif isinstance(effect, MustSend) and effect.message == NegotiationMessage.FINALIZED:
                record = await self._send(tx, record, process, cn.finalize(process))
            elif (isinstance(effect, MustSend)
                  and effect.message == NegotiationMessage.VERIFICATION):
                assert isinstance(process, cn.Agreed)
                problem = self._agreement_problem(process, caller)
                if problem is None:
                    record = await self._send(tx, record, process, cn.verify(process))
                else:
                    reason = TerminationReason(TerminationKind.POLICY, None, problem)
                    record = await self._send(tx, record, process, cn.terminate(process, reason))
        if record.state == NegotiationState.FINALIZED:
            await self._store_agreement(tx, record)

    async def _audit_decision(self, tx: Transaction, record: NegotiationRecord,
                              process: NegotiationProcess, caller: str,
                              decision: Decision) -> None:
        """Every access decision, allow or deny, with the offer, its evidence and reason."""
        await tx.append_audit(
            actor=self.did, action=DECISION_AUDIT, subject_id=record.id,
            details={"consumer": caller, "offer": process.offer.id,
                     "target": process.offer.target, "allowed": decision.allowed,
                     "failedConstraint": decision.failed_constraint,
                     "reason": decision.detail, "evidence": list(decision.evidence)})

    def _agreement_problem(self, process: cn.Agreed, provider_did: str) -> str | None:
        """Why a consumer must not verify this agreement (``None``: it may)."""
        agreement = process.agreement
        if agreement.assignee != self.did:
            return f"the agreement's assignee is {agreement.assignee}, not {self.did}"
        if agreement.assigner != provider_did:
            return f"the agreement's assigner is {agreement.assigner}, not {provider_did}"
        if agreement.target != process.offer.target:
            return f"the agreement is for {agreement.target}, not {process.offer.target}"
        return None

    # --- outbound ---------------------------------------------------------------------------

    async def _send(
        self, tx: Transaction, record: NegotiationRecord, process: NegotiationProcess,
        message: NegotiationInput,
    ) -> NegotiationRecord:
        """Apply ``message`` as sent, store the new state and queue it for the outbox."""
        role = Role(record.role.value)
        result = cn.transition(process, message, role=role, direction=Direction.SENT)
        if isinstance(result, ProtocolError):
            raise RuntimeError(f"we may not send {message.type} now: {result.reason}")
        record = await self._store_process(tx, record, result.process, role=role,
                                           counterparty_did=record.counterparty_did)
        await self._enqueue(tx, record, message)
        return record

    async def _enqueue(
        self, tx: Transaction, record: NegotiationRecord, message: NegotiationInput
    ) -> None:
        path = outbound_path(message)
        if path == "termination":
            peer_pid = (message.provider_pid if record.role is StoreRole.CONSUMER
                        else message.consumer_pid)
            path = f"negotiations/{peer_pid}/termination"
        await self._state.enqueue(tx, OutboxMessage(
            process_id=record.id, kind=message_kind_name(message),
            target_url=join_url(record.counterparty_address, path), body=message.to_json()))
        await tx.append_audit(actor=self.did, action="negotiation.sent", subject_id=record.id,
                              details={"message": message_kind_name(message),
                                       "state": record.state})

    async def start_negotiation(
        self, provider_url: str, offer: MessageOffer, *, provider_did: str | None = None
    ) -> str:
        """Consumer: request ``offer`` from the provider at ``provider_url``; our PID.

        The record (REQUESTED, provider PID unknown) and the request are stored together; the
        outbox sends it at once and fills in the provider PID from the 201 ACK (or from the
        provider's first message, whichever comes first).
        """
        if provider_did is None:
            from credentials.did_web import did_web_from_url

            provider_did = did_web_from_url(provider_url)
        consumer_pid = new_id()
        message = cn.initial_request(consumer_pid=consumer_pid, offer=offer,
                                     callback_address=self.public_base_url)
        record = NegotiationRecord(
            id=consumer_pid, role=StoreRole.CONSUMER, state=NegotiationState.REQUESTED,
            counterparty_did=provider_did, counterparty_address=provider_url,
            asset_id=offer.target, offer_id=offer.id, offer=offer.to_json())
        async with self.store.transaction() as tx:
            record = await tx.put_negotiation(record)
            await self._enqueue(tx, record, message)
        return consumer_pid

    async def on_rejected(self, outbox: OutboxMessage, status: int, body: Any) -> None:
        """The peer refused ``outbox`` with a 4xx: record it (an illegal transition above all:
        our state and the peer's disagree, which an operator must see)."""
        code = body.get("code") if isinstance(body, dict) else None
        async with self.store.transaction() as tx:
            await tx.append_audit(
                actor=self.did, action="negotiation.rejected-by-peer",
                subject_id=outbox.process_id,
                details={"message": outbox.kind, "status": status, "code": code,
                         "illegal_transition": code == ErrorCode.ILLEGAL_TRANSITION,
                         "body": body if isinstance(body, dict) else None})

    async def terminate_locally(self, pid: str, reason: TerminationReason, *,
                                idle_since: datetime | None = None) -> bool:
        """End a process from our side (e.g. the peer stayed unreachable); ``False`` if it had
        already ended (or, with ``idle_since``, changed since then). The termination is queued
        for the peer when it knows the process."""
        async with self.store.transaction() as tx:
            record = await tx.get_negotiation(pid, for_update=True)
            if record is None or NegotiationState(record.state) in TERMINAL:
                return False
            if idle_since is not None and record.updated_at >= idle_since:
                return False
            process = await self._load(tx, record)
            message = cn.terminate(process, reason)
            if record.counterparty_pid is not None:
                await self._send(tx, record, process, message)
            else:
                # The peer has not answered our request yet: it must not receive it later and
                # agree to a negotiation we already ended.
                await tx.cancel_outbox(pid, error=f"terminated locally: {reason.detail}")
                ended = cn.Terminated(
                    consumer_pid=process.consumer_pid, provider_pid=process.provider_pid,
                    offer=process.offer, reason=reason)
                await self._store_process(tx, record, ended, role=Role(record.role.value),
                                          counterparty_did=record.counterparty_did)
            await tx.append_audit(actor=self.did, action="negotiation.terminated-locally",
                                  subject_id=pid, details={"kind": str(reason.kind),
                                                           "detail": reason.detail})
            return True

    # --- record <-> process -----------------------------------------------------------------

    async def _load(
        self, tx: Transaction, record: NegotiationRecord,
        adopt_from: NegotiationInput | None = None,
    ) -> NegotiationProcess:
        """The machine's view of a stored negotiation.

        A consumer that has not yet seen the ACK of its initial request does not know the
        provider PID; the provider's first message (authenticated as the provider) names it.
        """
        own, peer = record.id, record.counterparty_pid
        if peer is None and adopt_from is not None:
            peer = (adopt_from.provider_pid if record.role is StoreRole.CONSUMER
                    else adopt_from.consumer_pid)
        consumer, provider = ((peer or "", own) if record.role is StoreRole.PROVIDER
                              else (own, peer or ""))
        state = NegotiationState(record.state)
        values: dict[str, Any] = {
            "consumer_pid": consumer, "provider_pid": provider,
            "offer": MessageOffer.model_validate(record.offer),
            "peer_callback_address": record.counterparty_address,
        }
        agreement = await self._agreement_of(tx, record)
        if state in _WITH_AGREEMENT:
            if agreement is None:
                raise RuntimeError(f"negotiation {record.id} in {state} has no agreement")
            values["agreement"] = agreement
        if state is NegotiationState.TERMINATED:
            values["agreement"] = agreement
            values["reason"] = (TerminationReason(TerminationKind(record.reason_kind),
                                                  record.failed_constraint,
                                                  record.reason_detail or "")
                                if record.reason_kind else None)
        process: NegotiationProcess = _STATE_CLASSES[state](**values)
        return process

    async def _agreement_of(self, tx: Transaction, record: NegotiationRecord) -> Agreement | None:
        if record.agreement is None:
            return None
        return Agreement.model_validate(record.agreement)

    async def _store_process(
        self, tx: Transaction, previous: NegotiationRecord | None, process: NegotiationProcess,
        *, role: Role, counterparty_did: str,
    ) -> NegotiationRecord:
        own = process.provider_pid if role is Role.PROVIDER else process.consumer_pid
        peer = process.consumer_pid if role is Role.PROVIDER else process.provider_pid
        values: dict[str, Any] = {
            "state": str(process.state),
            "counterparty_pid": peer or None,
            "asset_id": process.offer.target,
            "offer_id": process.offer.id,
            "offer": process.offer.to_json(),
        }
        agreement = getattr(process, "agreement", None)
        if agreement is not None:
            values["agreement_id"] = agreement.id
            values["agreement"] = agreement.to_json()
        if isinstance(process, cn.Terminated) and process.reason is not None:
            values["reason_kind"] = str(process.reason.kind)
            values["failed_constraint"] = process.reason.constraint
            values["reason_detail"] = process.reason.detail
        if previous is None:
            address = process.peer_callback_address
            assert address is not None  # initial messages carry it
            record = NegotiationRecord(id=own, role=StoreRole(role.value),
                                       counterparty_did=counterparty_did,
                                       counterparty_address=address, **values)
        else:
            record = replace(previous, **values)
        return await tx.put_negotiation(record)

    async def _store_agreement(self, tx: Transaction, record: NegotiationRecord) -> None:
        agreement = await self._agreement_of(tx, record)
        if agreement is None or await tx.get_agreement(agreement.id) is not None:
            return
        provider, consumer = ((self.did, record.counterparty_did)
                              if record.role is StoreRole.PROVIDER
                              else (record.counterparty_did, self.did))
        signed = (datetime.fromisoformat(agreement.timestamp.replace("Z", "+00:00"))
                  if agreement.timestamp else self.settings.clock())
        await tx.add_agreement(AgreementRecord(
            id=agreement.id, asset_id=agreement.target, provider_did=provider,
            consumer_did=consumer, agreement=agreement.to_json(), signed_at=signed,
            negotiation_id=record.id))
        await tx.append_audit(actor=self.did, action="agreement.stored", subject_id=record.id,
                              details={"agreement_id": agreement.id})
        if record.role is StoreRole.PROVIDER:
            await self._keep_evidence(tx, record, agreement.id, consumer)

    async def _keep_evidence(self, tx: Transaction, record: NegotiationRecord,
                             agreement_id: str, consumer: str) -> None:
        """The credentials the (last, allowing) decision relied on, kept with the agreement."""
        for event in reversed(await tx.list_audit(subject_id=record.id, limit=1000)):
            if event.action == DECISION_AUDIT and event.details.get("allowed"):
                evidence = event.details.get("evidence") or []
                if evidence:
                    await tx.put_agreement_evidence(AgreementEvidence(
                        agreement_id=agreement_id, consumer_did=consumer,
                        evidence={"credentials": evidence}))
                return


def _resolver_of(app: web.Application) -> DIDResolver:
    """A resolver that knows our own document and fetches others' over the node's session."""
    from connector.identity import _OwnDocumentFetcher
    from credentials.resolver import HttpDIDFetcher

    fetcher = HttpDIDFetcher(app[HTTP_CLIENT], allow_http_loopback=app[CONFIG].is_local)
    return DIDResolver(web_fetcher=_OwnDocumentFetcher(app[IDENTITY], fetcher))


async def start_negotiation(
    app: web.Application, provider_url: str, offer: MessageOffer,
    *, provider_did: str | None = None,
) -> str:
    """Consumer side start (for the management API): returns our ``consumerPid``.

    ``provider_url`` is the provider's DSP base URL; its DID defaults to the did:web of that
    URL (pass ``provider_did`` for did:key providers).
    """
    return await service_of(app).start_negotiation(provider_url, offer, provider_did=provider_did)


__all__ = [
    "DSP_STATE",
    "Answer",
    "Decision",
    "DspSettings",
    "DspState",
    "NegotiationService",
    "PolicyDecision",
    "callback_allowed",
    "service_of",
    "start_negotiation",
]
