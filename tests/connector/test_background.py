"""``connector.background.periodic``: rounds keep coming after a failed one, and stop cleanly."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from connector.background import periodic


async def test_rounds_run_survive_a_failure_and_stop_with_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[int] = []

    async def round_(app: web.Application) -> int:
        rounds.append(len(rounds))
        if len(rounds) == 2:
            raise RuntimeError("the store hiccuped")
        return 1

    app = web.Application()
    app.cleanup_ctx.append(periodic("test-watch", 0.01, round_, "changed %d"))
    runner = web.AppRunner(app)
    await runner.setup()
    while len(rounds) < 4:
        await asyncio.sleep(0.01)
    await runner.cleanup()
    seen = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == seen, "no round after the app stopped"
    assert "test-watch round failed" in caplog.text
