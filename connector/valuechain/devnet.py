"""``bpc devnet --compose FILE``: the compose topology as local processes, and the value chain
through it.

What changes against the containers, and nothing else: each node's ``public_base_url`` (a
loopback port; did:web allows plain http only there), its store (a fresh schema per node in the
local PostgreSQL, dropped afterwards unless ``--keep-running``), its data directory, and the
MQTT broker's address (the local Mosquitto). The OEM's hub therefore runs on MQTT as in the
compose file, not on the embedded simulated source of ``bpc demo``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
from rich.console import Console

from connector.bench_nodes import (
    broker_unreachable,
    drop_schemas,
    free_port,
    postgres_unreachable,
    schema_url,
)
from connector.valuechain.compose import ComposeError, devnet_specs, read_compose
from connector.valuechain.demo import nodes_table, print_inspect, summary_table
from connector.valuechain.nodes import NodeHandle, NodeStartError, local_nodes
from connector.valuechain.story import Outcome, StepFailed, ValueChain

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MQTT = "127.0.0.1:1883"


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--mqtt {text!r}: expected host:port")
    return host, int(port)


async def play_devnet(console: Console, compose: Path, root: Path, *, postgres: str,
                      mqtt: tuple[str, int], keep_running: bool = False,
                      ) -> tuple[Outcome, dict[str, NodeHandle], list[str]]:
    """Start the compose file's nodes locally and play the value chain; (outcome, nodes, the
    PostgreSQL schemas used)."""
    nodes = read_compose(compose)
    tag = uuid.uuid4().hex[:8]
    schemas = {n.service: f"devnet_{tag}_{n.service}" for n in nodes}
    ports = {n.service: free_port() for n in nodes}
    specs = devnet_specs(nodes, ports=ports,
                         stores={k: schema_url(postgres, v) for k, v in schemas.items()},
                         mqtt=mqtt)
    began = time.perf_counter()
    try:
        async with local_nodes(specs, root, keep_running=keep_running) as handles:
            console.print(nodes_table(handles))
            console.print(f"  {len(handles)} nodes up in {time.perf_counter() - began:.1f} s "
                          f"(PostgreSQL schemas devnet_{tag}_*, MQTT {mqtt[0]}:{mqtt[1]})")
            async with aiohttp.ClientSession() as session:
                outcome = await ValueChain(handles, session, console, hub_broker=mqtt).run()
    finally:
        if not keep_running:
            await drop_schemas(postgres, schemas.values())
    return outcome, handles, list(schemas.values())


def run_devnet(console: Console, compose: Path, root: Path, *, postgres: str = DEFAULT_POSTGRES,
               mqtt: str = DEFAULT_MQTT, keep_running: bool = False) -> int:
    """The command; 0 when the value chain completed, 1 when a step failed, 2 on bad input."""
    try:
        broker = _broker(mqtt)
        read_compose(compose)
    except (ValueError, ComposeError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    for problem in (postgres_unreachable(postgres), broker_unreachable(*broker)):
        if problem:
            console.print(f"[red]error:[/red] {problem}", soft_wrap=True)
            return 2
    console.rule(f"0. The topology of {compose} as local processes")
    began = time.perf_counter()
    try:
        outcome, nodes, _ = asyncio.run(play_devnet(console, compose, root, postgres=postgres,
                                                    mqtt=broker, keep_running=keep_running))
    except (StepFailed, NodeStartError, ComposeError) as exc:
        console.print(f"[red]devnet failed:[/red] {exc}", soft_wrap=True)
        return 1
    console.rule()
    console.print(summary_table(outcome, nodes))
    console.print(f"[green]value chain complete[/green] through {compose} in "
                  f"{time.perf_counter() - began:.1f} s")
    print_inspect(nodes, console, root, keep_running, outcome)
    return 0


__all__ = ["DEFAULT_MQTT", "DEFAULT_POSTGRES", "play_devnet", "run_devnet"]
