"""The demo's data-space act: an OEM node and a recycler node, seven-day access, then expiry.

Two real nodes start on loopback ports (did:web, SQLite in throw-away data directories). The
OEM publishes a battery's dismantling and safety data for the recycler only (default policy:
the recycler's DID, seven days from the agreement); the recycler reads the OEM's catalog,
negotiates, starts a transfer and fetches the data — all through each node's management API,
as an operator would. Then the demo moves the nodes' shared clock eight days on (an injected
clock, not a sleep) and shows the same fetch refused and the transfer ended on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.app import IDENTITY, create_app
from connector.config import NodeConfig
from connector.dsp.negotiation_service import DspSettings
from connector.serve import RunningNode, running_node

PASSPHRASE_ENV = "BPC_DEMO_KEYSTORE_PASSPHRASE"

DISMANTLING_DATA = {
    "dismantlingSteps": ["discharge the pack to below 5 % state of charge",
                         "remove the lid (24 M6 screws)", "disconnect the HV service plug",
                         "unbolt the 12 modules", "separate the cooling plate"],
    "tools": ["insulated torque wrench", "HV-rated gloves (class 0)"],
    "hazardousSubstances": ["LiPF6 electrolyte", "NMC811 cathode powder"],
    "extinguishingAgent": "water (large quantities); no CO2",
    "safetyMeasures": ["store damaged cells in a sand-filled container",
                       "ventilate: HF may form from electrolyte"],
}


class ShiftedClock:
    """Wall time plus an offset both nodes share; ``advance`` moves them together."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def demo_node(data_dir: Path, operator_key: str,
                    clock: Callable[[], datetime]) -> AsyncIterator[RunningNode]:
    port = _free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                        keystore_passphrase_env=PASSPHRASE_ENV, operator_api_key=operator_key,
                        shutdown_timeout_s=2)
    settings = DspSettings(clock=clock, backoff_base_s=0.05, backoff_cap_s=1.0)
    async with running_node(config, create_app(config, dsp_settings=settings)) as node:
        yield node


class Operator:
    """Calls one node's management API with its operator key."""

    def __init__(self, session: aiohttp.ClientSession, node: RunningNode, key: str) -> None:
        self.session = session
        self.node = node
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.node.url + path, json=body,
                                        headers=self.headers) as response:
            return response.status, await response.json(content_type=None)

    async def until(self, path: str, done: set[str], timeout_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            _, view = await self.call("GET", path)
            if view.get("state") in done or time.monotonic() > deadline:
                return dict(view)
            await asyncio.sleep(0.02)


async def dataspace_act(console: Console, battery_did: str, root: Path) -> bool:
    """Play the act; ``True`` when every step behaved as it should."""
    os.environ.setdefault(PASSPHRASE_ENV, secrets.token_urlsafe(16))
    clock = ShiftedClock()
    ok = True

    def expect(condition: bool, what: str) -> None:
        nonlocal ok
        if not condition:
            ok = False
            console.print(f"[red]unexpected:[/red] {escape(what)}")

    oem_key, recycler_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    started = time.perf_counter()
    async with (
        demo_node(root / "oem", oem_key, clock) as oem_node,
        demo_node(root / "recycler", recycler_key, clock) as recycler_node,
        aiohttp.ClientSession() as session,
    ):
        oem = Operator(session, oem_node, oem_key)
        recycler = Operator(session, recycler_node, recycler_key)
        oem_did, recycler_did = oem_node.app[IDENTITY].did, recycler_node.app[IDENTITY].did
        console.print(f"  OEM node       {oem_node.url}  {oem_did}", soft_wrap=True)
        console.print(f"  recycler node  {recycler_node.url}  {recycler_did}", soft_wrap=True)

        status, asset = await oem.call("POST", "/management/assets", {
            "batteryDid": battery_did, "accessLevel": "dismantling-safety",
            "title": "Dismantling and safety data", "allowedParticipants": [recycler_did],
            "dataSource": {"kind": "inline", "data": DISMANTLING_DATA}})
        expect(status == 201, f"the OEM could not publish its asset: {asset}")
        offer_id = (asset.get("defaultOffer") or {}).get("id", "")
        console.print(f"  OEM publishes dismantling data of {battery_did} for the recycler, "
                      "for 7 days from agreement", soft_wrap=True)

        timings: list[tuple[str, float]] = []
        mark = time.perf_counter()
        status, catalog = await recycler.call("POST", "/management/catalog/request",
                                              {"counterPartyAddress": oem_node.url})
        datasets = catalog.get("dataset", []) if isinstance(catalog, dict) else []
        expect(status == 200 and len(datasets) == 1, f"catalog: {status} {catalog}")
        timings.append(("catalog", time.perf_counter() - mark))

        mark = time.perf_counter()
        status, negotiation = await recycler.call("POST", "/management/negotiations", {
            "counterPartyAddress": oem_node.url, "offerId": offer_id})
        expect(status == 201, f"negotiation refused: {negotiation}")
        negotiation = await recycler.until(f"/management/negotiations/{negotiation.get('id')}",
                                           {"FINALIZED", "TERMINATED"})
        expect(negotiation.get("state") == "FINALIZED", f"negotiation: {negotiation}")
        timings.append(("negotiation to FINALIZED", time.perf_counter() - mark))
        agreement_id = negotiation.get("agreementId")

        mark = time.perf_counter()
        status, transfer = await recycler.call("POST", "/management/transfers", {
            "agreementId": agreement_id, "counterPartyAddress": oem_node.url})
        expect(status == 201, f"transfer refused: {transfer}")
        transfer_path = f"/management/transfers/{transfer.get('id')}"
        transfer = await recycler.until(transfer_path, {"STARTED", "TERMINATED"})
        expect(transfer.get("state") == "STARTED", f"transfer: {transfer}")
        timings.append(("transfer to STARTED", time.perf_counter() - mark))

        mark = time.perf_counter()
        status, data = await recycler.call("GET", transfer_path + "/data")
        expect(status == 200 and data.get("data") == DISMANTLING_DATA, f"fetch: {data}")
        timings.append(("fetch through the data plane", time.perf_counter() - mark))

        table = Table(title="Recycler obtains the dismantling data", title_justify="left")
        table.add_column("step")
        table.add_column("ms", justify="right")
        for step, seconds in timings:
            table.add_row(step, f"{seconds * 1000:.1f}")
        console.print(table)
        steps = data.get("data", {}).get("dismantlingSteps", []) if status == 200 else []
        console.print(f"  agreement {agreement_id}: {len(steps)} dismantling steps received, "
                      f"first: {escape(steps[0]) if steps else '-'}", soft_wrap=True)

        clock.advance(timedelta(days=8))
        console.print("  … the nodes' clock moves 8 days on (injected clock, no waiting)")
        status, refused = await recycler.call("GET", transfer_path + "/data")
        expect(status == 403, f"access after expiry answered {status}: {refused}")
        console.print(f"  fetch again: {status} {escape(str(refused.get('detail')))}",
                      soft_wrap=True)
        ended = await recycler.until(transfer_path, {"TERMINATED"})
        expect(ended.get("state") == "TERMINATED", f"transfer after expiry: {ended}")
        reason = ended.get("reason") or {}
        console.print(f"  transfer {ended.get('state')} ({reason.get('kind')}: "
                      f"{escape(str(reason.get('detail')))})", soft_wrap=True)
    console.print(f"  two nodes, negotiation, transfer, fetch and expiry in "
                  f"{time.perf_counter() - started:.1f} s")
    return ok


__all__ = ["DISMANTLING_DATA", "ShiftedClock", "dataspace_act"]
