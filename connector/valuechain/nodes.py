"""The value chain's nodes as local processes: one ``bpc serve`` per participant.

Why processes and not five apps in one event loop: that is how participants run (each its own
keys, store and clock), a node that crashes or hangs cannot take the others with it, and what
the demo leaves behind — a data directory and a config file per node — is exactly what a user
restarts and inspects. Each node's config is written as TOML beside its data; its operator key
(throw-away, demo only) and the keystore passphrase go into files readable by the owner only,
so ``--keep-running`` leaves something a user can talk to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from connector.bench_nodes import (
    NodeStartError,
    child_env,
    free_port,
    stop_process,
    wait_healthy,
)

PASSPHRASE_ENV = "BPC_DEMO_KEYSTORE_PASSPHRASE"


@dataclass(frozen=True)
class NodeSpec:
    """One participant's node: its name, what it does, and the settings beyond the defaults."""

    name: str
    title: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    port: int | None = None


@dataclass
class NodeHandle:
    """A running node as its operator sees it: where, who, and the key to its API."""

    spec: NodeSpec
    url: str
    did: str
    api_key: str
    directory: Path
    config_path: Path
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def _toml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)  # JSON strings, numbers and arrays of them are TOML too


def toml_text(settings: Mapping[str, Any], prefix: str = "") -> str:
    """TOML for a node config: scalars and arrays first, then one table per nested mapping."""
    lines = [f"{key} = {_toml_scalar(value)}" for key, value in settings.items()
             if not isinstance(value, Mapping)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in settings.items():
        if isinstance(value, Mapping):
            name = f"{prefix}.{key}" if prefix else key
            text += f"\n[{name}]\n" + toml_text(value, name)
    return text


def write_config(spec: NodeSpec, directory: Path, url: str, *,
                 overrides: Mapping[str, Any] | None = None) -> Path:
    """The node's TOML config in ``directory`` (created 0700); the path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "public_base_url": url, "port": int(url.rsplit(":", 1)[1]),
        "data_dir": str(directory / "data"), "keystore_passphrase_env": PASSPHRASE_ENV,
        "log_level": "WARNING", "shutdown_timeout_s": 2.0, **spec.settings, **(overrides or {})}
    path = directory / "node.toml"
    path.write_text(f"# {spec.title} — written by bpc\n" + toml_text(settings), "utf-8")
    path.chmod(0o600)
    return path


def _secret_file(path: Path, value: str) -> None:
    path.write_text(value + "\n", "utf-8")
    path.chmod(0o600)


async def _start(spec: NodeSpec, root: Path, passphrase: str, session: aiohttp.ClientSession,
                 overrides: Mapping[str, Any] | None) -> NodeHandle:
    directory = root / spec.name
    url = f"http://127.0.0.1:{spec.port or free_port()}"
    config_path = write_config(spec, directory, url, overrides=overrides)
    key_path = directory / "api-key"
    api_key = (key_path.read_text("utf-8").strip() if key_path.exists()
               else secrets.token_urlsafe(32))
    _secret_file(key_path, api_key)
    handle = NodeHandle(spec, url, "", api_key, directory, config_path, directory / "node.log")
    with handle.log_path.open("ab") as log:
        handle.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "connector", "serve", "--config", str(config_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            env=child_env(passphrase, passphrase_env=PASSPHRASE_ENV,
                          extra={"BPC_OPERATOR_API_KEY": api_key}),
            cwd=directory, start_new_session=True)
    handle.did = await wait_healthy(handle.url, handle.process, handle.log_path, session,
                                    name=f"node {handle.name}")
    return handle


async def stop_node(handle: NodeHandle) -> None:
    if handle.process is not None:
        await stop_process(handle.process)


def demo_passphrase(root: Path) -> str:
    """The keystores' passphrase, kept beside the nodes (a demo's throw-away secret) so a
    restart of the same directory opens the same keys."""
    path = root / "keystore-passphrase"
    if path.exists():
        return path.read_text("utf-8").strip()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    _secret_file(path, value)
    return value


@contextlib.asynccontextmanager
async def local_nodes(specs: Sequence[NodeSpec], root: Path, *, keep_running: bool = False,
                      overrides: Mapping[str, Mapping[str, Any]] | None = None,
                      ) -> AsyncIterator[dict[str, NodeHandle]]:
    """Start every node at once; stop them on exit unless ``keep_running``."""
    root = root.resolve()  # each node runs in its own directory: relative paths would break
    passphrase = demo_passphrase(root)
    handles: dict[str, NodeHandle] = {}
    async with aiohttp.ClientSession() as session:
        started = await asyncio.gather(
            *(_start(s, root, passphrase, session, (overrides or {}).get(s.name))
              for s in specs), return_exceptions=True)
    failures = [s for s in started if isinstance(s, BaseException)]
    handles = {h.name: h for h in started if isinstance(h, NodeHandle)}
    try:
        if failures:
            raise failures[0]
        yield handles
    finally:
        if failures or not keep_running:
            await asyncio.gather(*(stop_node(h) for h in handles.values()))


__all__ = ["PASSPHRASE_ENV", "NodeHandle", "NodeSpec", "NodeStartError",
           "demo_passphrase", "local_nodes", "stop_node", "toml_text", "write_config"]
