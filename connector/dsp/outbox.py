"""The outbox sender: delivers queued DSP messages, event-driven, with backoff and a give-up.

Messages are queued in the same transaction as the state change that caused them
(``NegotiationService``), and that transaction wakes this worker on commit
(``tx.on_commit(worker.wake)``), so a negotiation moves as fast as the peers answer — there is
no state-machine tick. A slow poll (``DspSettings.poll_interval_s``) remains as a safety net for
messages queued by another replica, leases that ran out after a crash, and retry times.

Per leased message: POST it with participant auth to the counterparty; 2xx → delivered (and
the ACK is handed back to the service, which learns the provider PID from an initial request's
ACK); no answer, 5xx, 408/425/429 → rescheduled with exponential backoff and ±50 % jitter, and
after ``max_attempts`` given up and the process terminated with reason ``transport``; any
other 4xx → given up at once (retrying cannot help) and recorded in the audit log, flagged when
the peer said the transition is illegal. Re-sending a message that was in fact delivered (a
crash between the POST and ``mark_delivered``, or a lease that ran out) is harmless: the peer
recognises the repeat and answers as the first time without moving again.

Messages of one process are sent in queue order and a failure holds back that process's later
messages. Known gap: a message queued *after* an earlier one was rescheduled into the future
is not held back by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from connector.app import CONFIG, HTTP_CLIENT, IDENTITY, STORE
from connector.config import NodeConfig
from connector.dsp.client import Delivery, DspClient
from connector.dsp.negotiation_service import (
    DSP_STATE,
    DspSettings,
    DspState,
)
from connector.dsp.process import TerminationKind, TerminationReason
from connector.participant_auth import RequestSigner
from connector.store import OutboxMessage, Store

log = logging.getLogger(__name__)


def backoff_s(attempts: int, settings: DspSettings, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, ±50 % jitter."""
    exponent = max(attempts - 1, 0)
    delay = min(settings.backoff_cap_s, settings.backoff_base_s * (2 ** min(exponent, 30)))
    return delay * (rng or random).uniform(0.5, 1.5)


class ProcessHandler(Protocol):
    """What a protocol (negotiation, transfer) tells the outbox about its processes."""

    async def counterparty_of(self, pid: str) -> str | None: ...

    async def on_delivered(self, outbox: OutboxMessage, body: Any) -> None: ...

    async def on_rejected(self, outbox: OutboxMessage, status: int, body: Any) -> None: ...

    async def terminate_locally(self, pid: str, reason: TerminationReason) -> bool: ...


class OutboxWorker:
    """Delivers outbox messages for one node, for every protocol: the handler is chosen by
    the prefix of the message kind (``Contract…``, ``Transfer…``).

    Two ways in: ``deliver_now`` hands over a message this node just queued (already leased to
    this worker in the same transaction, see ``DspState.enqueue``): it is sent at once, with no
    store round trip before the POST. The store is leased from on start, on the poll interval
    and when a retry falls due: messages left by a crash, by another replica, or rescheduled.

    Each process has one delivery chain: its messages go out one after another in the order
    they were queued, and a message waits for the one before it; a failed one holds back the
    later ones (they are rescheduled with it). Different processes never wait for each other.
    """

    def __init__(self, store: Store, client: DspClient,
                 handlers: Mapping[str, Callable[[], ProcessHandler]],
                 settings: DspSettings, owner: str) -> None:
        self._store = store
        self._client = client
        self._handlers = handlers
        self._settings = settings
        self.owner = owner
        self._event = asyncio.Event()
        self._next_due: float | None = None
        self._lease_store = True  # first round: whatever a previous run left behind
        self._last_store_lease = time.monotonic()
        self._ready: list[OutboxMessage] = []
        self._chains: dict[str, asyncio.Task[datetime | None]] = {}
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[datetime | None]] = set()

    def wake(self) -> None:
        """Lease from the store now (start-up, tests, an operator nudging retries)."""
        self._lease_store = True
        self._event.set()

    def claim(self, message: OutboxMessage) -> OutboxMessage:
        """``message`` leased to this worker, to be stored so (see ``DspState.enqueue``)."""
        until = self._settings.clock() + timedelta(seconds=self._settings.lease_s)
        return replace(message, lease_owner=self.owner, lease_until=until)

    def deliver_now(self, message: OutboxMessage) -> None:
        """Send a committed message this worker holds the lease of."""
        self._ready.append(message)
        self._event.set()

    async def run(self) -> None:
        """Loop until cancelled: start deliveries as messages arrive or fall due."""
        try:
            while True:
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox round failed; retrying after the poll interval")
                await self._wait_for_work()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _wait_for_work(self) -> None:
        """Sleep until a hand-over, a retry falling due or the poll interval; decide whether
        the next round also leases from the store. Under steady traffic the event is always
        set, so the store is leased by elapsed time too, or retries and messages left by
        others would wait for a quiet moment."""
        poll = self._settings.poll_interval_s
        now = time.monotonic()
        timeout = max(0.0, poll - (now - self._last_store_lease))
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, self._next_due - now))
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        now = time.monotonic()
        if self._next_due is not None and self._next_due <= now:
            self._lease_store = True  # a retry is due
            self._next_due = None
        if now - self._last_store_lease >= poll:
            self._lease_store = True  # the poll interval passed

    async def run_once(self) -> int:
        """Start delivering what was handed over (and, when due, what the store holds);
        returns how many messages were started. Deliveries run on as tasks."""
        self._event.clear()
        ready, self._ready = self._ready, []
        if self._lease_store:
            self._lease_store = False
            self._last_store_lease = time.monotonic()
            leased = await self._store.lease_outbox(
                self.owner, lease_seconds=self._settings.lease_s, limit=50,
                now=self._settings.clock())
            waiting = self._in_flight | {m.id for m in ready}
            ready += [m for m in leased if m.id not in waiting]
            if len(leased) == 50:
                self.wake()  # more may be due
        for message in ready:
            self._start(message)
        return len(ready)

    async def drain(self) -> None:
        """Wait until every delivery started so far has settled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start(self, message: OutboxMessage) -> None:
        previous = self._chains.get(message.process_id)
        self._in_flight.add(message.id)
        task = asyncio.create_task(self._after(previous, message),
                                   name=f"outbox-{message.kind}")
        self._chains[message.process_id] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._settled(message, done))

    def _settled(self, message: OutboxMessage, task: asyncio.Task[datetime | None]) -> None:
        self._tasks.discard(task)
        self._in_flight.discard(message.id)
        if self._chains.get(message.process_id) is task:
            del self._chains[message.process_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivering %s failed", message.id, exc_info=task.exception())
            self._schedule_poll(self._settings.poll_interval_s)

    async def _after(self, previous: asyncio.Task[datetime | None] | None,
                     message: OutboxMessage) -> datetime | None:
        """Deliver ``message`` once the process's earlier message settled; if that one is to
        be retried later, so is this one (order within a process is kept)."""
        retry_at: datetime | None = None
        if previous is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                retry_at = await asyncio.shield(previous)
        if retry_at is not None:
            await self._store.reschedule(message.id, self.owner, next_attempt_at=retry_at,
                                         attempts=message.attempts)
            return retry_at
        return await self._deliver(message)

    def _schedule_poll(self, delay: float) -> None:
        due = time.monotonic() + delay
        self._next_due = due if self._next_due is None else min(self._next_due, due)
        self._event.set()  # let the loop recompute its timeout

    def _handler_for(self, message: OutboxMessage) -> ProcessHandler | None:
        for prefix, handler in self._handlers.items():
            if message.kind.startswith(prefix):
                return handler()
        return None

    async def _deliver(self, message: OutboxMessage) -> datetime | None:
        handler = self._handler_for(message)
        counterparty = None if handler is None else await handler.counterparty_of(
            message.process_id)
        if handler is None or counterparty is None:
            await self._store.give_up(message.id, self.owner, error="no such process")
            return None
        result = await self._client.post(message.target_url, message.body,
                                         audience=counterparty)
        if result.ok:
            await self._store.mark_delivered(message.id, self.owner, now=self._settings.clock())
            await handler.on_delivered(message, result.body)
            return None
        if result.transient:
            return await self._retry_or_give_up(message, result, handler)
        await self._store.give_up(message.id, self.owner, error=result.error or "rejected",
                                  now=self._settings.clock())
        log.warning("peer refused %s %s: %s", message.kind, message.id, result.error)
        await handler.on_rejected(message, result.status, result.body)
        return None

    async def _retry_or_give_up(
        self, message: OutboxMessage, result: Delivery, handler: ProcessHandler
    ) -> datetime | None:
        attempts = message.attempts + 1
        error = result.error or f"HTTP {result.status}"
        if attempts >= self._settings.max_attempts:
            await self._store.give_up(message.id, self.owner, error=error,
                                      now=self._settings.clock())
            log.warning("giving up on %s after %d attempts: %s", message.id, attempts, error)
            reason = TerminationReason(
                TerminationKind.TRANSPORT, None,
                f"{message.kind} could not be delivered after {attempts} attempts: {error}")
            await handler.terminate_locally(message.process_id, reason)
            return None
        delay = backoff_s(attempts, self._settings)
        retry_at = self._settings.clock() + timedelta(seconds=delay)
        await self._store.reschedule(message.id, self.owner, next_attempt_at=retry_at,
                                     attempts=attempts, error=error)
        self._schedule_poll(delay)
        return retry_at


INSTANCE_FILE = "instance-id"


def instance_name(config: NodeConfig, did: str) -> str:
    """This node instance's name as an outbox leaser: stable across restarts (an id kept in
    its data directory), distinct between replicas of one participant (each has its own data
    directory and host), whatever their addresses."""
    path = config.data_dir / INSTANCE_FILE
    try:
        instance = path.read_text("utf-8").strip()
    except FileNotFoundError:
        instance = ""
    if not instance:
        instance = str(uuid.uuid4())
        path.write_text(instance + "\n", "utf-8")
    return f"{did}/{socket.gethostname()}/{instance}"


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context running the outbox worker; append it after ``create_app``'s own
    contexts (it needs the identity, the HTTP client and the store, and must stop first)."""
    state = app.get(DSP_STATE)
    if state is None:
        raise RuntimeError("call connector.dsp.routes_negotiation.add_routes(app) first")
    assert isinstance(state, DspState)
    identity = app[IDENTITY]
    from connector.dcp.access_tokens import ACCESS_TOKENS

    # DCP: every message carries the access token to this node's credential service that
    # its receiver (the verifier) may use to ask for this node's role credentials.
    tokens = app.get(ACCESS_TOKENS)
    client = DspClient(app[HTTP_CLIENT],
                       RequestSigner(identity.signing_key, state.settings.clock,
                                     access_tokens=tokens.for_verifier if tokens else None))
    worker = OutboxWorker(app[STORE], client, state.outbox_handlers, state.settings,
                          owner=await asyncio.to_thread(instance_name, app[CONFIG],
                                                        identity.did))
    # Messages this instance leased before it stopped (or was killed) go out now, not when
    # their leases run out.
    await app[STORE].release_outbox_leases(worker.owner)
    state.worker = worker
    task = asyncio.create_task(worker.run(), name="dsp-outbox")
    worker.wake()  # deliver whatever a previous run left behind
    try:
        yield
    finally:
        state.worker = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["OutboxWorker", "ProcessHandler", "backoff_s", "instance_name", "outbox_ctx"]
