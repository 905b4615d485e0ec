"""From a source's message stream to the bridge, in groups: group commit.

Why: storing a message's events is one store transaction, and on SQLite (WAL, synchronous =
FULL) a transaction's cost is mostly the flush to disk, whatever its size. When messages arrive
faster than the bridge stores them, the ones that queued up meanwhile are handled together —
verified one by one, their events stored in ONE transaction, then acknowledged in arrival order
(MQTT wants PUBACKs in the order the PUBLISHes came). At a trickle every message is a group of
one, so grouping adds no delay; it only takes effect when there is a queue.

Backpressure is unchanged: the pump holds at most ``max_group`` messages it has not handed on,
and nothing is acknowledged before it is stored, so an MQTT source stops receiving when its
in-flight window is full of unacknowledged messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from connector.plugins.hub.sources.base import SourceMessage

DEFAULT_GROUP = 16
"""Messages per group at most (~1,600 events of 100-event messages)."""

_END = object()


async def message_groups(messages: AsyncIterable[SourceMessage], max_group: int = DEFAULT_GROUP,
                         ) -> AsyncIterator[list[SourceMessage]]:
    """The messages in arrival order, grouped: each group is the first message waiting plus
    those already queued behind it (up to ``max_group``). A source's error is raised here."""
    if max_group < 1:
        raise ValueError("max_group must be at least 1")
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max_group)
    failure: list[BaseException] = []

    async def pump() -> None:
        try:
            async for message in messages:
                await queue.put(message)
        except Exception as exc:  # the consumer re-raises it, after what came before
            failure.append(exc)
        finally:
            await queue.put(_END)

    task = asyncio.create_task(pump(), name="hub-intake")
    try:
        while True:
            first = await queue.get()
            if first is _END:
                break
            group = [first]
            ended = False
            while len(group) < max_group and not queue.empty():
                item = queue.get_nowait()
                if item is _END:
                    ended = True
                    break
                group.append(item)
            yield group
            if ended:
                break
        if failure:
            raise failure[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def consume(bridge: Any, messages: AsyncIterable[SourceMessage], *,
                  max_group: int = DEFAULT_GROUP, on_error: Any = None) -> int:
    """Hand ``messages`` to ``bridge.handle_many`` in groups until the stream ends; the
    messages handled. A group that fails (a store outage) is reported to ``on_error`` and
    left unacknowledged, so the broker delivers it again."""
    handled = 0
    async for group in message_groups(messages, max_group):
        try:
            await bridge.handle_many(group)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(group, exc)
        handled += len(group)
    return handled


__all__ = ["DEFAULT_GROUP", "consume", "message_groups"]
