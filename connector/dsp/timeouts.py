"""Processes that wait forever end: negotiations and transfer requests time out.

The protocol has no timeouts of its own. A provider left in AGREED by a consumer that vanished,
or a consumer whose request the provider acknowledged and then forgot, would wait for good and
keep an operator guessing. So a negotiation not yet FINALIZED or TERMINATED, and a transfer
still REQUESTED, that has not changed for ``timeout`` is terminated here with reason
``transport`` ("no progress for …"); the peer is told when it knows the process. STARTED and
SUSPENDED transfers are left alone: they live as long as their agreement (the data plane's
watch ends those).

Safe with several replicas: each termination re-reads the process under its row lock and does
nothing if it has moved or ended meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from connector.background import CleanupContext, periodic
from connector.dsp.messages import NegotiationState, TransferState
from connector.dsp.process import TerminationKind, TerminationReason
from connector.store import Reader

WAITING_NEGOTIATIONS = tuple(state for state in NegotiationState
                             if state not in (NegotiationState.FINALIZED,
                                              NegotiationState.TERMINATED))
WAITING_TRANSFERS = (TransferState.REQUESTED,)
PAGE = 500


async def _stale(list_page: Callable[..., Any], states: tuple[Any, ...],
                 cutoff: datetime) -> list[str]:
    found: list[str] = []
    for state in states:
        after = None
        while True:
            page = await list_page(state=str(state), after=after, limit=PAGE)
            found += [record.id for record in page if record.updated_at < cutoff]
            if len(page) < PAGE:
                break
            after = page[-1].id
    return found


async def end_stale_processes(app: web.Application, timeout: timedelta,
                              now: datetime) -> int:
    """Terminate the processes idle for longer than ``timeout`` at ``now``; how many."""
    from connector.app import STORE
    from connector.dsp.negotiation_service import service_of
    from connector.dsp.transfer_service import transfer_service_of

    cutoff = now - timeout
    reader: Reader
    async with app[STORE].read() as reader:
        negotiations = await _stale(reader.list_negotiations, WAITING_NEGOTIATIONS, cutoff)
        transfers = await _stale(reader.list_transfers, WAITING_TRANSFERS, cutoff)
    reason = TerminationReason(TerminationKind.TRANSPORT, None,
                               f"no progress for {timeout}; the peer stopped answering")
    ended = 0
    for pid in negotiations:
        ended += await service_of(app).terminate_locally(pid, reason, idle_since=cutoff)
    for pid in transfers:
        ended += await transfer_service_of(app).terminate_locally(pid, reason,
                                                                  idle_since=cutoff)
    return ended




def timeouts_ctx(timeout: timedelta, interval_s: float) -> CleanupContext:
    """A cleanup context ending stale processes every ``interval_s`` at the node's DSP clock."""

    async def round_(app: web.Application) -> int:
        from connector.dsp.negotiation_service import dsp_state

        return await end_stale_processes(app, timeout, dsp_state(app).settings.clock())

    return periodic("dsp-process-timeouts", interval_s, round_,
                    f"ended %d processes without progress for {timeout}")


__all__ = ["WAITING_NEGOTIATIONS", "WAITING_TRANSFERS", "end_stale_processes", "timeouts_ctx"]
