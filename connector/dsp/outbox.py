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
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from connector.app import HTTP_CLIENT, IDENTITY, STORE
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
    """Leases and delivers outbox messages for one node, for every protocol: the handler is
    chosen by the prefix of the message kind (``Contract…``, ``Transfer…``)."""

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

    def wake(self) -> None:
        """Deliver now (called after a commit that queued something)."""
        self._event.set()

    async def run(self) -> None:
        """Loop until cancelled: deliver what is due, then sleep until woken or next due."""
        while True:
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox round failed; retrying after the poll interval")
                worked = 0
            if worked:
                continue  # more may be due (limit reached, or woken meanwhile)
            timeout = self._settings.poll_interval_s
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, self._next_due - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
            self._event.clear()
            if self._next_due is not None and self._next_due <= time.monotonic():
                self._next_due = None

    async def run_once(self) -> int:
        """One round: lease due messages and deliver them; how many were leased."""
        self._event.clear()
        leased = await self._store.lease_outbox(
            self.owner, lease_seconds=self._settings.lease_s, limit=20,
            now=self._settings.clock())
        by_process: dict[str, list[OutboxMessage]] = {}
        for message in leased:
            by_process.setdefault(message.process_id, []).append(message)
        await asyncio.gather(*(self._deliver_in_order(batch) for batch in by_process.values()))
        return len(leased)

    async def _deliver_in_order(self, batch: list[OutboxMessage]) -> None:
        for index, message in enumerate(batch):
            retry_at = await self._deliver(message)
            if retry_at is not None:
                for later in batch[index + 1:]:  # keep the process's order
                    await self._store.reschedule(later.id, self.owner,
                                                 next_attempt_at=retry_at,
                                                 attempts=later.attempts)
                return

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
        due = time.monotonic() + delay
        self._next_due = due if self._next_due is None else min(self._next_due, due)
        return retry_at


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context running the outbox worker; append it after ``create_app``'s own
    contexts (it needs the identity, the HTTP client and the store, and must stop first)."""
    state = app.get(DSP_STATE)
    if state is None:
        raise RuntimeError("call connector.dsp.routes_negotiation.add_routes(app) first")
    assert isinstance(state, DspState)
    identity = app[IDENTITY]
    client = DspClient(app[HTTP_CLIENT],
                       RequestSigner(identity.signing_key, state.settings.clock))
    worker = OutboxWorker(app[STORE], client, state.outbox_handlers, state.settings,
                          owner=f"{identity.did}/{uuid.uuid4()}")
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


__all__ = ["OutboxWorker", "ProcessHandler", "backoff_s", "outbox_ctx"]
