"""Negotiations and transfer requests that make no progress end (``dsp.timeouts``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector.app import STORE
from connector.dsp.negotiation_service import start_negotiation
from connector.dsp.timeouts import end_stale_processes
from connector.serve import RunningNode
from tests.connector.test_dataplane_http import Clock, node
from tests.connector.test_dsp_negotiation_http import OFFER, PASSPHRASE_ENV, free_port

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def consumer(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, Clock]]:
    clock = Clock()
    async with node(tmp_path / "c", clock) as running:
        yield running, clock


async def test_a_negotiation_nobody_answers_ends_after_the_timeout(
    consumer: tuple[RunningNode, Clock],
) -> None:
    app, clock = consumer[0].app, consumer[1]
    absent = f"http://127.0.0.1:{free_port()}"
    pid = await start_negotiation(app, absent, OFFER)
    assert await end_stale_processes(app, DAY, clock()) == 0, "not stale yet"
    clock.advance(timedelta(days=1, seconds=1))
    assert await end_stale_processes(app, DAY, clock()) == 1
    async with app[STORE].read() as reader:
        record = await reader.get_negotiation(pid)
        pending = await reader.list_outbox(process_id=pid, pending_only=True)
    assert record is not None and record.state == "TERMINATED"
    assert record.reason_kind == "transport" and "no progress" in (record.reason_detail or "")
    assert pending == [], "the queued request is withdrawn, not sent later"
    assert await end_stale_processes(app, DAY, clock()) == 0, "ended once"


async def test_a_process_that_moved_meanwhile_is_left_alone(
    consumer: tuple[RunningNode, Clock],
) -> None:
    from connector.dsp.negotiation_service import service_of
    from connector.dsp.process import TerminationKind, TerminationReason

    app = consumer[0].app
    pid = await start_negotiation(app, f"http://127.0.0.1:{free_port()}", OFFER)
    async with app[STORE].read() as reader:
        record = await reader.get_negotiation(pid)
    assert record is not None
    reason = TerminationReason(TerminationKind.TRANSPORT, None, "stale")
    moved_before = record.updated_at - timedelta(seconds=1)  # it changed after this cutoff
    assert not await service_of(app).terminate_locally(pid, reason, idle_since=moved_before)
    async with app[STORE].read() as reader:
        still = await reader.get_negotiation(pid)
    assert still is not None and still.state == "REQUESTED"
