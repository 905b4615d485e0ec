"""Nodes as real OS processes (``python -m connector serve --config …``) for crash tests.

A ``NodeProcess`` is one node's settings (a TOML file in its own folder) plus, while it runs,
its process. It can be started again on the same port and data dir after it was killed, which
is what a crashed node that an orchestrator restarts looks like. Logs (stdout and stderr of
every run, appended) go to a file next to the config: pipes that nobody reads would block a
chatty node (aiohttp logs every request at INFO).

Every process is started in its own session and, on Linux, with ``PR_SET_PDEATHSIG`` so it dies
with the test runner even if the runner itself is killed; ``NodeProcesses`` (a context
manager) SIGKILLs whatever is still running when a test ends, passed or not.

``HttpProxy`` stands between a node and the network the way a failing link or load balancer
would: it forwards everything to the node except the requests a test chooses to refuse (503),
so a message can be kept in a sender's outbox deterministically, with no sleeps or races.

A plain module: the test files import it by name (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

PASSPHRASE_ENV = "BPC_TEST_NODE_PROCESS_PASSPHRASE"
PASSPHRASE = "correct horse battery staple (processes)"
OPERATOR_KEY = "test-operator-key-node-processes-0123456789"
BEARER = {"Authorization": f"Bearer {OPERATOR_KEY}"}
BATTERY = "did:web:oem.example:battery:wbx-2031-0042"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGKILL when the test runner dies (no orphan survives it)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def node_env() -> dict[str, str]:
    """The runner's environment without any ``BPC_*`` setting, plus the keystore passphrase."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPC_")}
    return {**env, PASSPHRASE_ENV: PASSPHRASE, "PYTHONUNBUFFERED": "1"}


@dataclass
class NodeProcess:
    """One node: its settings and, while it runs, its process.

    ``public_port`` is the port of ``public_base_url`` (the node's did:web and callback
    address); ``port`` is where it listens. They differ only for a node reached through a
    proxy, or for a replica listening next to the address it shares with its peers.
    """

    name: str
    home: Path
    port: int
    public_port: int
    data_dir: Path
    store: str | None = None
    process: subprocess.Popen[bytes] | None = None
    did: str | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """Where the node listens (management API, health)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_base_url(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def config_path(self) -> Path:
        return self.home / "node.toml"

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "node.db"

    def write_config(self) -> None:
        lines = {
            "public_base_url": self.public_base_url,
            "data_dir": str(self.data_dir),
            "keystore_passphrase_env": PASSPHRASE_ENV,
            "operator_api_key": OPERATOR_KEY,
            "shutdown_timeout_s": 1,
            "log_level": "INFO",
        }
        if self.port != self.public_port:
            lines["port"] = self.port
        if self.store is not None:
            lines["store"] = self.store
        # JSON strings are valid TOML basic strings (same escapes), numbers too.
        text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in lines.items())
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text, "utf-8")

    def start(self) -> None:
        """Start ``python -m connector serve --config …`` (after a kill: the same port/dir)."""
        assert not self.running, f"{self.name} is already running"
        self.write_config()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} of {self.name} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector", "serve", "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=node_env(), cwd=REPO, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    async def wait_healthy(self, timeout_s: float = 60) -> str:
        """Wait for ``GET /health``; the node's DID (also kept in ``did``)."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n"
                                         f"{self.log()[-4000:]}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with client.get(f"{self.url}/health",
                                          timeout=aiohttp.ClientTimeout(total=2)) as response:
                        if response.status == 200:
                            self.did = str((await response.json())["did"])
                            return self.did
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy after {timeout_s}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, exactly a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=30)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def terminate(self, timeout_s: float = 20) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout_s``); the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return self.process.returncode


@dataclass
class NodeProcesses:
    """The nodes of one test; ``with`` it so every process is killed however the test ends."""

    root: Path
    nodes: list[NodeProcess] = field(default_factory=list)

    def add(self, name: str, *, port: int | None = None, public_port: int | None = None,
            data_dir: Path | None = None, store: str | None = None) -> NodeProcess:
        home = self.root / name
        port = port or free_port()
        node = NodeProcess(name=name, home=home, port=port, public_port=public_port or port,
                           data_dir=data_dir or home / "data", store=store)
        self.nodes.append(node)
        return node

    def kill_all(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                if node.process is not None and node.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(node.process.pid, signal.SIGCONT)  # a paused one, too
                node.kill()

    def __enter__(self) -> NodeProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()

    def logs(self) -> str:
        return "\n".join(f"----- {n.name} -----\n{n.log()[-6000:]}" for n in self.nodes)


# --- talking to a node -------------------------------------------------------------------------


async def manage(session: aiohttp.ClientSession, node: NodeProcess, method: str, path: str,
                 body: Any = None) -> tuple[int, Any]:
    """A management API call with the operator key: ``(status, JSON or text)``."""
    async with session.request(method, node.url + path, json=body, headers=BEARER,
                               timeout=aiohttp.ClientTimeout(total=30)) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def manage_ok(session: aiohttp.ClientSession, node: NodeProcess, method: str, path: str,
                    body: Any = None, *, status: int = 200) -> Any:
    got, answer = await manage(session, node, method, path, body)
    assert got == status, f"{method} {path} on {node.name}: {got} {answer}"
    return answer


async def start_both(provider: NodeProcess, consumer: NodeProcess) -> str:
    """Start a provider and a consumer process; the consumer's DID once both are healthy."""
    provider.start()
    consumer.start()
    await provider.wait_healthy()
    return await consumer.wait_healthy()


async def request_negotiation(session: aiohttp.ClientSession, consumer: NodeProcess,
                              address: str, offer_id: str) -> str:
    """The consumer asks the provider at ``address`` for ``offer_id``; the consumer's PID."""
    created = await manage_ok(session, consumer, "POST", "/management/negotiations",
                              {"counterPartyAddress": address, "offerId": offer_id}, status=201)
    return str(created["id"])


async def publish_restricted(session: aiohttp.ClientSession, provider: NodeProcess,
                             consumer_did: str) -> tuple[str, str]:
    """A restricted asset for ``consumer_did`` only: ``(asset id, default offer id)``."""
    body = {"batteryDid": BATTERY, "accessLevel": "dismantling-safety",
            "title": "Dismantling and safety data", "allowedParticipants": [consumer_did],
            "dataSource": {"kind": "inline", "data": {"extinguishingAgent": "water"}}}
    asset = await manage_ok(session, provider, "POST", "/management/assets", body, status=201)
    assert asset["defaultOffer"] is not None, asset
    return str(asset["id"]), str(asset["defaultOffer"]["id"])


def offer_from_catalog(catalog: dict[str, Any], offer_id: str) -> dict[str, Any]:
    """The catalog's offer as a management ``offer`` body (the dataset as ``target``)."""
    datasets = catalog.get("dataset")
    for dataset in datasets if isinstance(datasets, list) else [datasets]:
        policies = dataset.get("hasPolicy")
        for offer in policies if isinstance(policies, list) else [policies]:
            if offer.get("@id") == offer_id:
                wire = {k: v for k, v in offer.items() if k not in ("@context", "target")}
                return {**wire, "target": dataset["@id"]}
    raise AssertionError(f"offer {offer_id} is not in the catalog: {catalog}")


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout_s: float, what: str,
                     interval_s: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the time."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what}: not within {timeout_s}s (last: {last!r})")


# --- a node's SQLite file, read directly (works while the node is paused or dead) -----------


@contextlib.contextmanager
def sqlite_reader(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection: never takes the write lock a paused node may hold."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def outbox_rows(path: Path) -> list[dict[str, Any]]:
    with sqlite_reader(path) as conn:
        rows = conn.execute("SELECT id, process_id, kind, attempts, next_attempt_at, "
                            "lease_owner, lease_until, delivered_at, failed_at, last_error "
                            "FROM outbox ORDER BY created_at, id").fetchall()
    return [dict(row) for row in rows]


def negotiation_rows(path: Path) -> list[dict[str, Any]]:
    with sqlite_reader(path) as conn:
        rows = conn.execute("SELECT id, role, state, counterparty_pid, agreement_id "
                            "FROM negotiations ORDER BY created_at, id").fetchall()
    return [dict(row) for row in rows]


def leased_now(row: dict[str, Any]) -> bool:
    return row["lease_until"] is not None and row["lease_until"] > now_us()


async def kill_while_not_sending(node: NodeProcess, kind: str, *, timeout_s: float = 20) -> \
        dict[str, Any]:
    """SIGKILL ``node`` at a moment its pending ``kind`` message is queued but not leased.

    The node is paused (SIGSTOP) before its outbox is read, so what we see is what the crash
    leaves behind; while a send is under way (the message is leased) it is let go on and the
    check repeated. So resuming does not depend on a dead sender's lease (``DspSettings.lease_s``,
    30 s, which ``bpc serve`` has no setting for) running out or being taken back by the
    restarted node. Returns the message's row as the crash left it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        node.pause()
        pending = [row for row in outbox_rows(node.sqlite_path)
                   if row["kind"] == kind and row["delivered_at"] is None
                   and row["failed_at"] is None]
        if len(pending) == 1 and pending[0]["attempts"] >= 1 and not leased_now(pending[0]):
            node.kill()
            return pending[0]
        node.resume()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{node.name} never had its {kind} queued and unleased: "
                         f"{outbox_rows(node.sqlite_path)}")


# --- a proxy the test controls -----------------------------------------------------------------


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length"}


class HttpProxy:
    """Forwards ``127.0.0.1:<port>`` to one of ``upstreams``: a link or a load balancer.

    ``refuse`` says which requests get a 503 instead (a link that fails for them); ``hold``
    which ones are forwarded but whose answer never comes back (the link fails after the
    upstream acted: the sender cannot know whether it did); ``choose`` picks the upstream of
    a request (default: round robin over all requests).
    Runs in the test's event loop (it is the network, not a node).
    """

    def __init__(self, port: int, *upstreams: str) -> None:
        assert upstreams
        self.port = port
        self.upstreams = upstreams
        self.refuse: Callable[[web.Request], bool] = lambda request: False
        self.hold: Callable[[web.Request], bool] = lambda request: False
        self.choose: Callable[[web.Request], int] = self._round_robin
        self.refused: list[str] = []
        self.held: list[str] = []
        self._release = asyncio.Event()
        #: ``(upstream index, "METHOD /path", status)`` of every forwarded request.
        self.forwarded: list[tuple[int, str, int]] = []
        self._turn = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _round_robin(self, request: web.Request) -> int:
        self._turn += 1
        return (self._turn - 1) % len(self.upstreams)

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        line = f"{request.method} {request.path}"
        if self.refuse(request):
            self.refused.append(line)
            return web.Response(status=503, text="refused by the test proxy")
        assert self._session is not None
        held = self.hold(request)
        index = self.choose(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        try:
            async with self._session.request(
                request.method, self.upstreams[index] + request.path_qs, headers=headers,
                data=body, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=30),
            ) as answer:
                payload = await answer.read()
                out_headers = {k: v for k, v in answer.headers.items()
                               if k.lower() not in _HOP_BY_HOP}
                status = answer.status
                self.forwarded.append((index, line, answer.status))
            if held:
                self.held.append(line)
                await self._release.wait()  # until the proxy closes: the caller waits in vain
                return web.Response(status=502, text="the answer was lost")
            return web.Response(status=status, body=payload, headers=out_headers)
        except (aiohttp.ClientError, OSError):
            self.forwarded.append((index, line, 502))
            return web.Response(status=502, text="upstream unreachable")
