"""Two real nodes on loopback for ``bpc bench dsp``: a provider process and an in-process consumer.

Why the provider is a separate OS process (``python -m connector serve``, exactly what an
operator runs): the two nodes then use both cores, as two participants on two machines would,
instead of sharing one event loop and one GIL — that would measure our scheduler, not the
protocol. The consumer runs in the benchmark's process (``create_app`` + ``running_node``) so
the benchmark can drive it through the Python API and see its store.

Seeding goes through the provider's management API with the operator key written into its
config, like an operator would, so the benchmark does not depend on the store layout.

Waiting for a state without polling the store in a tight loop: ``StateWatch`` hooks the
consumer app's ``on_response_prepare`` signal, which fires after a DSP callback's handler has
returned, i.e. after the state change it carried has committed. A waiter wakes on that, reads
the state once, and goes back to sleep if it is not there yet. A slow poll remains as a safety
net for changes that arrive without a callback (an outbox giving up locally).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

import connector
from connector.app import STORE, create_app
from connector.config import NodeConfig
from connector.policy_gate import PARTICIPANT_DID
from connector.serve import RunningNode, running_node

#: The keystore passphrase variable both bench nodes read (a random value per run).
PASSPHRASE_ENV = "BPC_BENCH_KEYSTORE_PASSPHRASE"
#: How long a provider may take to come up (argon2id key derivation, migrations).
START_TIMEOUT_S = 60.0
#: Safety-net poll of ``StateWatch`` (callbacks wake waiters long before this).
SAFETY_POLL_S = 0.5


class NodeStartError(RuntimeError):
    """A bench node did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the node binds it moments later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _toml_value(value: object) -> str:
    # JSON strings and numbers are valid TOML basic strings / numbers.
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class ProviderNode:
    """A provider started as ``python -m connector serve``: where it is and who it is."""

    url: str
    did: str
    operator_key: str
    process: asyncio.subprocess.Process
    log_path: Path


def child_env(passphrase: str, *, passphrase_env: str = PASSPHRASE_ENV,
              extra: dict[str, str] | None = None) -> dict[str, str]:
    """A node process's environment: ours minus every ``BPC_*`` override (a user's
    ``BPC_STORE`` must not silently move the node elsewhere), plus the passphrase (in
    ``passphrase_env``), ``extra`` and an import path that finds this source tree even when it
    is not installed."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("BPC_")}
    env[passphrase_env] = passphrase
    env.update(extra or {})
    source_root = str(Path(connector.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (source_root, env.get("PYTHONPATH", "")) if part)
    return env


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a node's log, for error messages."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.asynccontextmanager
async def provider_process(
    workdir: Path, *, store: str, passphrase: str, session: aiohttp.ClientSession,
) -> AsyncIterator[ProviderNode]:
    """Start a provider node process on a free port; stop it (SIGTERM, then SIGKILL) on exit."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    operator_key = secrets.token_urlsafe(32)
    settings = {
        "public_base_url": url,
        "data_dir": str(workdir / "data"),
        "store": store,
        "keystore_passphrase_env": PASSPHRASE_ENV,
        "operator_api_key": operator_key,
        "log_level": "WARNING",
        "shutdown_timeout_s": 2.0,
    }
    config_path = workdir / "provider.toml"
    config_path.write_text(
        "".join(f"{name} = {_toml_value(value)}\n" for name, value in settings.items()), "utf-8")
    config_path.chmod(0o600)
    log_path = workdir / "provider.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "connector", "serve", "--config", str(config_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log,
            env=child_env(passphrase), cwd=workdir,
        )
    try:
        did = await wait_healthy(url, process, log_path, session)
        yield ProviderNode(url, did, operator_key, process, log_path)
    finally:
        await stop_process(process)


async def wait_healthy(url: str, process: asyncio.subprocess.Process, log_path: Path,
                       session: aiohttp.ClientSession, *, name: str = "the provider") -> str:
    """The node's DID once ``/health`` answers; ``NodeStartError`` (with the tail of its log)
    if the process dies or the node does not answer within ``START_TIMEOUT_S``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise NodeStartError(f"{name} exited with {process.returncode}:\n"
                                 f"{log_tail(log_path)}")
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with session.get(f"{url}/health",
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                if response.status == 200:
                    return str((await response.json())["did"])
        if time.monotonic() > deadline:
            raise NodeStartError(f"{name} did not answer on {url} within "
                                 f"{START_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}")
        await asyncio.sleep(0.05)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# --- seeding the provider over its management API ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SeededAsset:
    """What the bench negotiates for: the asset and the offer made to the consumer."""

    asset_id: str
    offer_id: str
    data: dict[str, Any]


#: Dismantling data of one pack, the kind of restricted data a recycler negotiates for.
DISMANTLING_DATA: dict[str, Any] = {
    "chemistry": "NMC811",
    "electrolyteComposition": {"LiPF6": "1.2 M", "solvents": ["EC", "EMC", "DMC"],
                               "additives": ["VC", "FEC"]},
    "cellCount": 96,
    "moduleCount": 8,
    "massKg": 412.5,
    "nominalVoltageV": 355.2,
    "disassemblySteps": [
        "Discharge the pack to below 60 V through the service connector.",
        "Remove the service disconnect and verify zero voltage at the HV terminals.",
        "Unbolt the lid (24 x M6 Torx, 9 Nm); cut the adhesive seal along the flange.",
        "Disconnect the BMS harness and the cooling lines (drain 4.1 l of coolant first).",
        "Unbolt modules (4 x M8 per module) and lift with the module fixture.",
    ],
    "hazards": ["high voltage", "flammable electrolyte", "HF on thermal decomposition"],
    "extinguishingAgent": "water, large quantities; do not use CO2 alone",
}


async def seed_provider(
    session: aiohttp.ClientSession, provider: ProviderNode, consumer_did: str,
) -> SeededAsset:
    """Create an inline asset, a policy allowing ``consumer_did`` and the offer binding them,
    through the management API (``/management/assets``, ``/policies``, ``/offers``)."""
    headers = {"Authorization": f"Bearer {provider.operator_key}"}
    suffix = uuid.uuid4().hex[:8]

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with session.post(f"{provider.url}{path}", json=body, headers=headers) as answer:
            payload = await answer.json()
            if answer.status != 201:
                raise NodeStartError(f"seeding {path} failed: {answer.status} {payload}")
            return dict(payload)

    battery = f"did:key:z6Mk{'bench' + suffix}"  # a battery this provider does not hold
    asset = await post("/management/assets", {
        "id": f"urn:bench:asset:{suffix}", "batteryDid": battery,
        "accessLevel": "dismantling-safety", "title": "Dismantling data (bench)",
        "dataSource": {"kind": "inline", "data": DISMANTLING_DATA},
    })
    policy = await post("/management/policies", {
        "id": f"urn:bench:policy:{suffix}",
        "policy": {"@type": "Set", "permission": [{
            "action": "use",
            "constraint": [{"leftOperand": PARTICIPANT_DID, "operator": "isAnyOf",
                            "rightOperand": [consumer_did]}],
        }]},
    })
    offer = await post("/management/offers", {
        "id": f"urn:bench:offer:{suffix}", "assetId": asset["id"], "policyId": policy["id"],
    })
    return SeededAsset(asset["id"], offer["id"], DISMANTLING_DATA)


# --- the consumer -------------------------------------------------------------------------------


#: Consumer callback routes whose responses mean "this process's state may have changed".
_CALLBACKS = frozenset({
    "/negotiations/{pid}/agreement", "/negotiations/{pid}/events",
    "/negotiations/{pid}/termination", "/negotiations/{pid}/offers",
    "/transfers/{pid}/start", "/transfers/{pid}/completion",
    "/transfers/{pid}/termination", "/transfers/{pid}/suspension",
})


class ProcessFailed(RuntimeError):
    """A negotiation or transfer ended somewhere else than where the bench waited for it."""


@dataclass(slots=True)
class StateWatch:
    """Wakes whoever waits for a consumer process when a DSP callback for it was answered."""

    app: web.Application
    _events: dict[str, asyncio.Event] = field(default_factory=dict)

    def install(self) -> None:
        """Hook the app's response signal; call before the app starts (signals freeze)."""
        self.app.on_response_prepare.append(self._on_response)

    async def _on_response(self, request: web.Request, response: web.StreamResponse) -> None:
        info = request.match_info
        route = getattr(info, "route", None)
        resource = getattr(route, "resource", None)
        if resource is None or resource.canonical not in _CALLBACKS:
            return
        pid = info.get("pid")
        if pid:
            self._event(pid).set()

    def _event(self, pid: str) -> asyncio.Event:
        event = self._events.get(pid)
        if event is None:
            event = self._events[pid] = asyncio.Event()
        return event

    async def negotiation(self, pid: str, state: str, timeout: float) -> Any:
        """The consumer's negotiation record once it is in ``state``."""
        async def read() -> Any:
            async with self.app[STORE].read() as reader:
                return await reader.get_negotiation(pid)

        return await self._wait(pid, state, read, timeout)

    async def transfer(self, pid: str, state: str, timeout: float) -> Any:
        """The consumer's transfer record once it is in ``state``."""
        async def read() -> Any:
            async with self.app[STORE].read() as reader:
                return await reader.get_transfer(pid)

        return await self._wait(pid, state, read, timeout)

    async def _wait(self, pid: str, state: str, read: Any, timeout: float) -> Any:
        """Sleep until a callback for ``pid`` was answered (or the safety poll is due), then
        read the state once. The process was just started, so its target state needs at least
        one callback: no read before the first wake-up (the bench would otherwise add a store
        read per wait to the very load it measures)."""
        event = self._event(pid)
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), max(0.0, min(left, SAFETY_POLL_S)))
                event.clear()  # before reading: a change after the read sets it again
                record = await read()
                if record is not None and record.state == state:
                    return record
                if record is not None and record.state in ("TERMINATED", "COMPLETED"):
                    detail = getattr(record, "reason_detail", None) or ""
                    raise ProcessFailed(f"{pid} ended {record.state}, not {state}: {detail}")
                if time.monotonic() >= deadline:
                    raise ProcessFailed(f"{pid} is {record and record.state} after {timeout} s, "
                                        f"not {state}")
        finally:
            self._events.pop(pid, None)


@dataclass(frozen=True, slots=True)
class ConsumerNode:
    node: RunningNode
    watch: StateWatch

    @property
    def app(self) -> web.Application:
        return self.node.app


@contextlib.asynccontextmanager
async def consumer_node(workdir: Path, *, store: str) -> AsyncIterator[ConsumerNode]:
    """Run a consumer node in this process (did:web on a free loopback port, default DSP
    settings), with a ``StateWatch`` on its callbacks. ``PASSPHRASE_ENV`` must be set."""
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=workdir / "data",
                        store=store, keystore_passphrase_env=PASSPHRASE_ENV,
                        shutdown_timeout_s=2.0, log_level="WARNING")
    app = create_app(config)
    watch = StateWatch(app)
    watch.install()
    async with running_node(config, app) as node:
        yield ConsumerNode(node, watch)


# --- PostgreSQL schemas -------------------------------------------------------------------------


def postgres_unreachable(url: str, timeout: float = 2.0) -> str | None:
    """Why the server of ``url`` takes no TCP connection (``None`` when it does)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable at {host}:{port} ({exc or type(exc).__name__})"


def broker_unreachable(host: str, port: int, timeout: float = 2.0) -> str | None:
    """Why the MQTT broker at ``host:port`` takes no TCP connection (``None`` when it does)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"the MQTT broker is not reachable at {host}:{port} ({exc or type(exc).__name__})"


async def drop_schemas(url: str, schemas: Iterable[str]) -> None:
    """Drop the PostgreSQL ``schemas`` (and everything in them) of the server at ``url``."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        for schema in schemas:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def schema_url(url: str, schema: str) -> str:
    """``url`` with ``?schema=`` added (the store creates the schema when it opens)."""
    return f"{url}{'&' if urlsplit(url).query else '?'}schema={schema}"


@contextlib.asynccontextmanager
async def fresh_schemas(url: str, *names: str) -> AsyncIterator[list[str]]:
    """Store URLs of new, uniquely named schemas, one per name; dropped on exit."""
    tag = uuid.uuid4().hex[:10]
    schemas = [f"bpc_bench_{tag}_{name}" for name in names]
    try:
        yield [schema_url(url, schema) for schema in schemas]
    finally:
        await drop_schemas(url, schemas)


__all__ = [
    "PASSPHRASE_ENV",
    "ConsumerNode",
    "NodeStartError",
    "ProcessFailed",
    "ProviderNode",
    "SeededAsset",
    "StateWatch",
    "broker_unreachable",
    "child_env",
    "consumer_node",
    "drop_schemas",
    "free_port",
    "fresh_schemas",
    "log_tail",
    "postgres_unreachable",
    "provider_process",
    "schema_url",
    "seed_provider",
    "stop_process",
    "wait_healthy",
]
