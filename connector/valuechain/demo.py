"""``bpc demo``: five nodes as local processes play one battery's life, on the embedded default
(SQLite each, the simulated hub inside the OEM's node, no broker).

The nodes' directories stay in ``--dir`` (``./bpc-demo`` by default) afterwards: each holds the
node's ``node.toml``, ``data/`` (store and encrypted keystore), ``node.log`` and its demo operator
key (``api-key``); ``--keep-running`` leaves the processes up for ``bpc`` commands against them.
A second run in the same directory starts the nodes again on their stored keys and plays a new
battery.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from connector.valuechain.nodes import NodeHandle, NodeSpec, NodeStartError, local_nodes
from connector.valuechain.story import Outcome, StepFailed, ValueChain

DEFAULT_DIR = Path("bpc-demo")
#: Protocol retries and watches in fractions of a second, so the demo shows in seconds what a
#: production node does on its defaults.
_BRISK = {"outbox_poll_interval_s": 0.2, "outbox_backoff_base_s": 0.05,
          "outbox_backoff_cap_s": 1.0, "watch_interval_s": 1.0}
HUB = {"enabled": True, "source": "simulated", "summary_period_s": 2.0,
       "batch_max_age_s": 0.5, "tick_s": 0.1}

NODES = (
    NodeSpec("mine", "mine & refiner (also makes the cathode material)", _BRISK),
    NodeSpec("cellmaker", "cell maker", _BRISK),
    NodeSpec("oem", "OEM, with the pack's simulated cell-monitoring hub",
             {**_BRISK, "plugins": {"hub": HUB}}),
    NodeSpec("fleet", "fleet operator", _BRISK),
    NodeSpec("recycler", "certified recycler", _BRISK),
)


def nodes_table(nodes: dict[str, NodeHandle]) -> Table:
    table = Table(title="the nodes", title_justify="left")
    for column in ("node", "role", "URL", "DID"):
        table.add_column(column, overflow="fold")
    for handle in nodes.values():
        table.add_row(handle.name, handle.spec.title, handle.url, handle.did)
    return table


def summary_table(outcome: Outcome, nodes: dict[str, NodeHandle]) -> Table:
    table = Table(title="what happened", title_justify="left")
    table.add_column("fact")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("battery", outcome.battery),
        ("its passport", " → ".join(t.removesuffix("Credential") for t in outcome.chain_types)),
        ("entries held per node", ", ".join(f"{k} {v}" for k, v in outcome.held_by.items())),
        ("custodian now", next((n.name for n in nodes.values() if n.did == outcome.custodian),
                               outcome.custodian)),
        ("hub events stored", outcome.hub_events),
        ("thermal event proven offline", outcome.thermal_proven),
        ("swapped cell locked / cleared", f"{outcome.tamper_locked} / "
                                          f"{outcome.tamper_cleared}"),
        ("dismantling agreement", f"{outcome.agreement_id} until {outcome.agreement_not_after}"),
        ("new battery", outcome.second_battery),
        ("its recycled content (%)", ", ".join(f"{k} {v}" for k, v in
                                                outcome.recycled_content.items())),
    ]
    for fact, value in rows:
        table.add_row(fact, str(value))
    return table


def print_inspect(nodes: dict[str, NodeHandle], console: Console, root: Path,
                  running: bool, outcome: Outcome | None = None) -> None:
    console.print(f"\nThe nodes' directories are in {root}/ (config, data, log, demo API key).")
    if outcome is not None and outcome.battery:
        from connector.passport_page.identifiers import page_url

        holder = nodes["recycler"]  # the battery's last custodian holds its whole passport
        when = "open it in a browser" if running else "with --keep-running, open it"
        console.print(f"The battery's passport page ({when}; its QR code is on the page):")
        console.print(f"  {page_url(holder.url, outcome.battery)}", soft_wrap=True)
    if running:
        console.print("They keep running; inspect one with, e.g.:")
        for handle in nodes.values():
            console.print(f"  BPC_NODE_URL={handle.url} BPC_API_KEY=$(cat "
                          f"{handle.directory}/api-key) bpc negotiations", soft_wrap=True)
        console.print("Stop them with: pkill -f 'connector serve --config "
                      f"{root.resolve()}'", soft_wrap=True)
    else:
        oem = nodes["oem"]
        console.print("Start one again and look around, e.g. the OEM:")
        console.print(f"  BPC_DEMO_KEYSTORE_PASSPHRASE=$(cat {root}/keystore-passphrase) "
                      f"BPC_OPERATOR_API_KEY=$(cat {oem.directory}/api-key) "
                      f"bpc serve --config {oem.config_path}", soft_wrap=True)
        console.print("or run the demo with --keep-running.")


async def play(console: Console, root: Path, *, keep_running: bool = False
               ) -> tuple[Outcome, dict[str, NodeHandle]]:
    """Start the nodes, play the story; the outcome (``StepFailed``/``NodeStartError`` raise)."""
    began = time.perf_counter()
    async with local_nodes(NODES, root, keep_running=keep_running) as nodes:
        console.print(nodes_table(nodes))
        console.print(f"  five nodes up in {time.perf_counter() - began:.1f} s")
        async with aiohttp.ClientSession() as session:
            outcome = await ValueChain(nodes, session, console).run()
    return outcome, nodes


def run_value_chain_demo(console: Console, root: Path = DEFAULT_DIR, *,
                         keep_running: bool = False) -> int:
    console.rule("0. Five nodes start, each its own process, keys and SQLite store")
    began = time.perf_counter()
    try:
        outcome, nodes = asyncio.run(play(console, root, keep_running=keep_running))
    except (StepFailed, NodeStartError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}", soft_wrap=True)
        return 1
    console.rule()
    console.print(summary_table(outcome, nodes))
    console.print(f"[green]value chain complete[/green] in {time.perf_counter() - began:.1f} s")
    print_inspect(nodes, console, root, keep_running, outcome)
    return 0


__all__ = ["DEFAULT_DIR", "NODES", "play", "run_value_chain_demo"]
