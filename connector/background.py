"""Periodic background work of a node, each as one aiohttp cleanup context.

The node's watches (agreements that ran out, processes without progress) share one shape: wake
every ``interval_s``, do one round, log what it changed, never let one failed round stop the
next, and stop before the resources they use are closed (cleanup contexts tear down in reverse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def periodic(name: str, interval_s: float,
             round_: Callable[[web.Application], Awaitable[int]], done: str) -> CleanupContext:
    """A cleanup context running ``round_(app)`` every ``interval_s``; ``done`` is the log
    message for a round that changed something (``%d``: what ``round_`` returned)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    changed = await round_(app)
                    if changed:
                        log.info(done, changed)
                except Exception:  # keep going; the next round retries
                    log.exception("%s round failed", name)

        task = asyncio.create_task(loop(), name=name)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx


__all__ = ["CleanupContext", "periodic"]
