"""``bpc hub``: the bridge's status and event proofs from a running node, and an offline check.

- ``bpc hub status``: hubs, counters, unverified cells (the node's management API);
- ``bpc hub prove EVENT_ID``: the event, its inclusion proof and the batch credential, and
  whether they check out — recomputed here, offline, from what the node returned (``-o``
  saves the bundle; ``bpc hub verify FILE`` checks a saved one with no node at all);

Exit codes: 0 ok; 1 a proof that does not verify; 2 the node or broker could not be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from connector.consumer_cli import (
    ApiKeyOption,
    JsonOption,
    NodeOption,
    consoles,
    node_errors,
    operator_client,
    print_json,
)
from connector.node_client import DEFAULT_NODE_URL, path_segment

hub_app = typer.Typer(help="The hub bridge: cell-level events from a pack's monitoring hub.",
                      no_args_is_help=True)

EXIT_UNPROVEN = 1
EXIT_ERROR = 2


def check_bundle(bundle: dict[str, Any]) -> tuple[bool, str]:
    """Whether a proof bundle (``prove``'s answer) holds: the event is a leaf of the root the
    batch credential carries, at the tree size it states; the reason when not."""
    from connector.plugins.hub.batching import verify_event_inclusion

    credential = bundle.get("credential")
    if not isinstance(credential, dict):
        return False, "the event is not in a batch credential yet"
    subject = credential.get("credentialSubject") or {}
    root, size = subject.get("merkleRoot"), subject.get("treeSize")
    if not isinstance(root, str) or not isinstance(size, int):
        return False, "the batch credential carries no merkleRoot and treeSize"
    event, proof = bundle.get("event"), bundle.get("proof")
    if not isinstance(event, dict) or not isinstance(proof, dict):
        return False, "the bundle lacks the event or its proof"
    if not verify_event_inclusion(event, proof, root, size=size):
        return False, "the event is not a leaf of the batch credential's Merkle root"
    return True, f"leaf {proof.get('leafIndex')} of {size} under root {root}"


@hub_app.command("status")
def status(node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
           as_json: JsonOption = False) -> None:
    """The bridge's hubs, counters and unverified cells."""
    out, _ = consoles()
    with node_errors(node):
        data = operator_client(node, api_key).get("/management/hub/status")
    if as_json:
        print_json(data)
        return
    stats = data.get("stats", {})
    for hub in data.get("hubs", []):
        out.print(f"hub {escape(hub['hub'])} → pack {escape(hub['battery'])}", soft_wrap=True)
    out.print(f"messages {stats.get('messages')}, events {stats.get('eventsStored')}, duplicates "
              f"{stats.get('duplicates')}, batches {stats.get('batches')}, credentials "
              f"{stats.get('credentials')}, refused {stats.get('rejected') or {}}")
    for cell in data.get("unverifiedCells", []):
        out.print(f"[red]unverified cell configuration[/red]: pack {escape(cell['battery'])} "
                  f"position {cell['position']} (expected {escape(str(cell['expectedCellUid']))}, "
                  f"seen {escape(str(cell['observedCellUid']))})", soft_wrap=True)


def _report(bundle: dict[str, Any], as_json: bool) -> None:
    out, err = consoles()
    ok, why = check_bundle(bundle)
    if as_json:
        print_json({**bundle, "verified": ok, "reason": why})
    else:
        out.print_json(json.dumps(bundle.get("event")))
        out.print(f"proof: {escape(json.dumps(bundle.get('proof')))}", soft_wrap=True)
        credential = bundle.get("credential") or {}
        out.print(f"batch credential: {escape(str(credential.get('id')))} issued by "
                  f"{escape(str(credential.get('issuer')))}", soft_wrap=True)
        (out if ok else err).print(("[green]verified:[/green] " if ok else
                                    "[red]not proven:[/red] ") + escape(why), soft_wrap=True)
    if not ok:
        raise typer.Exit(EXIT_UNPROVEN)


@hub_app.command("prove")
def prove(event_id: Annotated[str, typer.Argument(help="The event's id (urn:uuid:…).")],
          output: Annotated[Path | None, typer.Option("-o", "--output",
                                                      help="Save the proof bundle.")] = None,
          node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
          as_json: JsonOption = False) -> None:
    """Print an event, its inclusion proof and its batch credential, checked offline."""
    with node_errors(node):
        bundle = operator_client(node, api_key).get(
            f"/management/hub/events/{path_segment(event_id)}/proof")
    if output is not None:
        output.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    _report(bundle, as_json)


@hub_app.command("verify")
def verify(bundle_file: Annotated[Path, typer.Argument(help="A bundle saved by prove -o.")],
           as_json: JsonOption = False) -> None:
    """Check a saved proof bundle with no node (the credential's signature: ``bpc vc verify``)."""
    try:
        bundle = json.loads(bundle_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        consoles()[1].print(f"[red]error:[/red] cannot read {escape(str(bundle_file))}: "
                             f"{escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from None
    if not isinstance(bundle, dict):
        consoles()[1].print("[red]error:[/red] a proof bundle is a JSON object")
        raise typer.Exit(EXIT_ERROR)
    _report(bundle, as_json)


FAULT_KINDS = ("overheat", "swap", "silent")


def _faults(spec: str, cells: int, ticks: int) -> list[str]:
    """``overheat,swap`` picks positions and ticks; ``overheat:3@5`` names them."""
    chosen = []
    for index, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        if ":" in item:
            chosen.append(item)
            continue
        if item not in FAULT_KINDS:
            raise typer.BadParameter(f"{item!r}: use {', '.join(FAULT_KINDS)} or "
                                     "kind:position@tick", param_hint="--faults")
        position = (index * 7 + 3) % cells
        chosen.append(f"{item}:{position}@{min(ticks - 1, 2 + 3 * index)}")
    return chosen


@hub_app.command("simulate")
def simulate(
    cells: Annotated[int, typer.Option("--cells", min=1, max=1000)] = 192,
    faults: Annotated[str, typer.Option(
        "--faults", help="overheat,swap,silent (positions picked) or kind:position@tick")] = "",
    ticks: Annotated[int, typer.Option("--ticks", min=1, help="readings per cell")] = 30,
    interval: Annotated[float, typer.Option("--interval", min=0.0,
                                            help="seconds between ticks")] = 1.0,
    battery: Annotated[str | None, typer.Option(
        "--battery", help="the pack's DID (default: a new did:key)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    broker: Annotated[str, typer.Option("--broker", help="MQTT host:port")] = "127.0.0.1:1883",
    register: Annotated[bool, typer.Option(
        "--register/--no-register", help="register the pack's hub and cells on the node first")]
    = False,
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
) -> None:
    """Publish a simulated pack's signed hub messages to an MQTT broker (QoS 1)."""
    import asyncio
    from datetime import UTC, datetime

    from connector.plugins.hub.plugin import SimulatedPack, simulated_hub
    from connector.plugins.hub.sources.mqtt import MqttPublisher, MqttSettings
    from credentials.did_key import mint_battery_did

    out, err = consoles()
    host, _, port = broker.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter("host:port", param_hint="--broker")
    pack = SimulatedPack(battery_did=battery or mint_battery_did()[0], cells=cells, seed=seed,
                         faults=_faults(faults, cells, ticks))
    hub = simulated_hub(pack)
    out.print(f"hub {hub.hub_id} of pack {pack.battery_did}: {cells} cells, faults "
              f"{pack.faults or 'none'}", soft_wrap=True)
    if register:
        with node_errors(node):
            operator_client(node, api_key).post("/management/hub/packs", {
                "hubId": hub.hub_id, "batteryDid": pack.battery_did,
                "cells": [{"position": p, "cellUid": c.cell_uid, "monitorDid": c.monitor_did}
                          for p, c in hub.registered_cells().items()]})

    async def run() -> int:
        sent = 0
        async with MqttPublisher(MqttSettings(host=host, port=int(port))) as publisher:
            for _ in range(ticks):
                batch = [(f"bpc/hubs/{hub.hub_id}/batch", raw)
                         for raw in hub.messages(datetime.now(UTC))]
                await publisher.publish_many(batch)
                sent += len(batch)
                await asyncio.sleep(interval)
        return sent

    try:
        sent = asyncio.run(run())
    except (OSError, RuntimeError) as exc:
        err.print(f"[red]error:[/red] cannot publish to {escape(broker)}: {escape(str(exc))}")
        raise typer.Exit(EXIT_ERROR) from None
    out.print(f"published {sent} signed messages ({ticks} ticks) to {escape(broker)}")


__all__ = ["check_bundle", "hub_app"]
