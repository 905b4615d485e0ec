"""The built-in simulated hub as a bridge source: signed messages of one pack, tick by tick.

Each tick is stamped with the node's clock (so a demo's shifted clock moves the pack too);
``pace_s`` is the wall time between ticks. Acks are
no-ops: a simulated stream has nothing to redeliver.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from connector.plugins.hub.simulator import SimulatedHub
from connector.plugins.hub.sources.base import SourceMessage


class SimulatedSource:
    def __init__(self, hub: SimulatedHub, clock: Callable[[], datetime], *,
                 pace_s: float = 1.0, ticks: int | None = None,
                 per_message: int = 100) -> None:
        self.hub = hub
        self._clock = clock
        self._pace_s = pace_s
        self._ticks = ticks
        self._per_message = per_message
        self._closed = False

    async def messages(self) -> AsyncIterator[SourceMessage]:
        topic = f"bpc/hubs/{self.hub.hub_id}/batch"
        tick = 0
        while not self._closed and (self._ticks is None or tick < self._ticks):
            at = self._clock()
            for raw in self.hub.messages(at, per_message=self._per_message):
                yield SourceMessage(topic=topic, payload=raw, received_at=at)
            tick += 1
            await asyncio.sleep(self._pace_s)

    async def close(self) -> None:
        self._closed = True


__all__ = ["SimulatedSource"]
