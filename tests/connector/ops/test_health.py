"""``/health`` and ``/ready`` of a real node on loopback: liveness never touches the store,
readiness says 503 naming the store when it does not answer (closed, or a PostgreSQL server
that went away behind a TCP link) and 200 again once it does."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from connector.app import IDENTITY, STORE
from connector.serve import RunningNode, running_node
from tests.connector.test_node import assert_problem, node_config, passphrase  # noqa: F401


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_ready(client: aiohttp.ClientSession, node: RunningNode) -> tuple[int, dict]:
    async with client.get(f"{node.url}/ready") as response:
        return response.status, await response.json(content_type=None)


async def test_health_and_ready_answer_without_a_key(tmp_path: Path,
                                                     client: aiohttp.ClientSession) -> None:
    async with running_node(node_config(tmp_path / "data")) as node:
        async with client.get(f"{node.url}/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "did": node.app[IDENTITY].did}
        assert await get_ready(client, node) == (
            200, {"status": "ready", "checks": {"identity": "ok", "store": "ok"}})


async def test_ready_is_503_naming_the_store_when_it_is_closed(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with running_node(node_config(tmp_path / "data")) as node:
        await node.app[STORE].close()
        async with client.get(f"{node.url}/ready") as response:
            problem = await assert_problem(response, 503, "not-ready")
            assert response.headers["Retry-After"]
        assert problem["failing"] == ["store"]
        assert problem["checks"]["identity"] == "ok"
        assert problem["checks"]["store"].startswith("failed (")
        assert "store" in problem["detail"]
        # Liveness does not depend on the store: an orchestrator must not kill the process.
        async with client.get(f"{node.url}/health") as response:
            assert response.status == 200


class TcpLink:
    """``127.0.0.1:<port>`` forwarded to ``upstream``; ``cut()`` drops every connection and
    refuses new ones (the database host is gone), ``mend()`` accepts them again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()

    async def mend(self) -> None:
        await self.start()  # the same port again


@pytest.mark.slow
async def test_ready_follows_a_postgresql_server_that_goes_away_and_comes_back(
        tmp_path: Path, client: aiohttp.ClientSession, postgres_store_url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(postgres_store_url)
    link = TcpLink((parts.hostname or "127.0.0.1", parts.port or 5432))
    await link.start()
    through_link = postgres_store_url.replace(parts.netloc, f"127.0.0.1:{link.port}", 1)
    config = node_config(tmp_path / "data", store=through_link)
    async with running_node(config) as node:
        assert (await get_ready(client, node))[0] == 200
        await link.cut()
        status, problem = await get_ready(client, node)
        assert status == 503, problem
        assert problem["failing"] == ["store"]
        await link.mend()

        async def ready_again() -> bool:
            return (await get_ready(client, node))[0] == 200

        deadline = asyncio.get_running_loop().time() + 20
        while not await ready_again():
            assert asyncio.get_running_loop().time() < deadline, "never ready again"
            await asyncio.sleep(0.2)
    await link.cut()
