"""The outbox worker alone, against a real SQLite store and a real HTTP peer on loopback."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from connector.dsp.client import DspClient
from connector.dsp.negotiation_service import DspSettings
from connector.dsp.outbox import OutboxWorker
from connector.dsp.process import TerminationReason
from connector.participant_auth import RequestSigner
from connector.store import OutboxMessage, open_store
from credentials.did_key import key_from_seed


class Recorder:
    """The protocol side of the worker: every process exists and belongs to one peer."""

    def __init__(self) -> None:
        self.delivered: list[str] = []

    async def counterparty_of(self, pid: str) -> str | None:
        return "did:web:peer.example"

    async def on_delivered(self, outbox: OutboxMessage, body: Any) -> None:
        self.delivered.append(outbox.id)

    async def on_rejected(self, outbox: OutboxMessage, status: int, body: Any) -> None:
        raise AssertionError(f"{outbox.id} rejected")

    async def terminate_locally(self, pid: str, reason: TerminationReason) -> bool:
        return False


async def test_steady_local_traffic_does_not_starve_messages_left_in_the_store(
    tmp_path: Path,
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    peer = web.Application()
    peer.router.add_post("/{tail:.*}", ok)
    runner = web.AppRunner(peer)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    store = await open_store(None, data_dir=tmp_path)
    settings = DspSettings(poll_interval_s=0.2)
    recorder = Recorder()
    def url(n: int) -> str:
        return f"http://127.0.0.1:{port}/m/{n}"

    left = OutboxMessage(process_id="urn:uuid:left", kind="ContractRequestMessage",
                         target_url=url(0), body={"n": 0},
                         next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    async with store.transaction() as tx:
        await tx.enqueue(left)  # queued by another replica (or a crashed run), not leased
    async with aiohttp.ClientSession() as session:
        worker = OutboxWorker(store, DspClient(session, RequestSigner(key_from_seed(bytes(32)))),
                              {"Contract": lambda: recorder}, settings, owner="this-node")
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.05)  # the first round leases what is there
        recorder.delivered.clear()
        async with store.transaction() as tx:  # another one appears while traffic flows
            later = OutboxMessage(process_id="urn:uuid:later", kind="ContractRequestMessage",
                                  target_url=url(1), body={"n": 1},
                                  next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            await tx.enqueue(later)
        try:
            for n in range(2, 40):  # a hand-over every 25 ms: the event is always set
                message = worker.claim(OutboxMessage(
                    process_id=f"urn:uuid:p{n}", kind="ContractRequestMessage",
                    target_url=url(n), body={"n": n}))
                async with store.transaction() as tx:
                    await tx.enqueue(message)
                worker.deliver_now(message)
                await asyncio.sleep(0.025)
                if later.id in recorder.delivered:
                    break
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await store.close()
    await runner.cleanup()
    assert later.id in recorder.delivered, "the stored message waited for a quiet moment"
