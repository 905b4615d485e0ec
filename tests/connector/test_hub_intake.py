"""Group commit (``connector/plugins/hub/intake.py`` and ``HubBridge.handle_many``): messages
that queued up are handled together — one store transaction, acknowledged in arrival order,
refused ones included — and a trickle is never held back waiting for company."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.app import IDENTITY, STORE
from connector.plugins.hub.bridge import HubBridge
from connector.plugins.hub.intake import consume, message_groups
from connector.plugins.hub.simulator import SimulatedHub
from connector.plugins.hub.sources.base import SourceMessage
from connector.serve import RunningNode
from tests.connector import test_hub_bridge as bridge_tests
from tests.connector.test_hub_bridge import CELLS, Clock, a_pack, messages_of

oem = bridge_tests.oem
passphrase = bridge_tests.passphrase


class CountingBridge(HubBridge):
    """The bridge, noting how often it stores (one call = one store transaction)."""

    stores = 0

    async def store_events(self, *args: Any, **kwargs: Any) -> Any:
        self.stores += 1
        return await super().store_events(*args, **kwargs)


def _message(n: int, acks: list[int] | None = None) -> SourceMessage:
    async def ack() -> None:
        if acks is not None:
            acks.append(n)

    return SourceMessage(topic=f"t/{n}", payload=str(n).encode(), received_at=datetime.now(UTC),
                         _ack=ack)


async def _queued(count: int) -> AsyncIterator[SourceMessage]:
    for n in range(count):
        yield _message(n)


async def test_what_queued_up_is_grouped_in_order_and_bounded() -> None:
    groups = [[int(m.payload) for m in g] async for g in message_groups(_queued(40), 16)]
    assert [n for g in groups for n in g] == list(range(40))
    assert max(len(g) for g in groups) == 16 and len(groups) >= 3


async def test_a_trickle_is_handed_on_at_once() -> None:
    arrivals: asyncio.Queue[int] = asyncio.Queue()

    async def trickle() -> AsyncIterator[SourceMessage]:
        for n in range(3):
            yield _message(n)
            await arrivals.get()  # the next one comes only after the last was handled

    seen: list[list[int]] = []
    async for group in message_groups(trickle(), 16):
        seen.append([int(m.payload) for m in group])
        await arrivals.put(0)
    assert seen == [[0], [1], [2]]


async def test_a_source_error_is_raised_after_what_came_before_it() -> None:
    async def broken() -> AsyncIterator[SourceMessage]:
        yield _message(0)
        raise ConnectionError("broker gone")

    got: list[int] = []
    with pytest.raises(ConnectionError, match="broker gone"):
        async for group in message_groups(broken(), 4):
            got.extend(int(m.payload) for m in group)
    assert got == [0]
    with pytest.raises(ValueError):
        async for _ in message_groups(_queued(1), 0):
            pass


async def test_a_group_is_stored_once_and_acked_in_arrival_order(oem: RunningNode) -> None:
    pack = await a_pack(oem)
    hub = SimulatedHub(pack, CELLS, seed=12).overheat(1, from_tick=0)
    clock = Clock()
    bridge = CountingBridge(oem.app, store=oem.app[STORE], key=oem.app[IDENTITY].signing_key,
                            clock=clock)
    await bridge.register_pack(hub.hub_id, pack, hub.registered_cells())
    acks: list[int] = []
    good = messages_of(hub, 25)  # the overheating cell crosses the threshold on the way
    clock.offset = good[-1].received_at - datetime.now(UTC)
    group = [_message(0, acks)]  # not a JWS: refused, and still acknowledged in its turn
    for n, message in enumerate(good, start=1):
        group.append(SourceMessage(topic=message.topic, payload=message.payload,
                                   received_at=message.received_at,
                                   _ack=_message(n, acks)._ack))
    fresh = await bridge.handle_many(group)
    assert fresh > 0 and bridge.stats.events_stored == fresh
    assert bridge.stores == 1 and len(good) > 1
    assert acks == list(range(len(group)))
    assert bridge.stats.rejected == {"malformed": 1}
    # the same group again (a redelivery after a lost ack) adds nothing
    assert await bridge.handle_many(group) == 0


async def test_consume_leaves_a_failed_group_unacked_and_goes_on() -> None:
    failures: list[int] = []

    class Flaky:
        calls = 0

        async def handle_many(self, group: list[SourceMessage]) -> int:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("store down")
            for message in group:
                await message.ack()
            return len(group)

    messages = [_message(n) for n in range(3)]

    async def one_by_one() -> AsyncIterator[SourceMessage]:
        for message in messages:
            yield message
            await asyncio.sleep(0.01)

    handled = await consume(Flaky(), one_by_one(),
                            on_error=lambda group, exc: failures.extend(
                                int(m.payload) for m in group))
    assert handled == 3 and failures == [0]
    assert [m.acked for m in messages] == [False, True, True]
