"""The demo's hub act: a pack's cell monitors stream into its passport through the OEM's node.

One node starts with the hub plugin enabled and its built-in simulated hub (no broker): a
48-cell pack whose cell 3 overheats and whose cell 11 is swapped for another cell. The OEM's
node keeps the pack's passport (it is the custodian), so the bridge appends the events as
Merkle-batch credentials; the thermal event is proven offline from its inclusion proof; the
swapped cell marks the pack unverified and locks its cell data until a service technician,
certified by an issuer the OEM trusts, registers the replacement.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.markup import escape

from connector.app import STORE, create_app
from connector.config import NodeConfig
from connector.demo_dataspace import PASSPHRASE_ENV, Operator, free_port, until
from connector.passports import start_sample_passport
from connector.plugins.hub.cli import check_bundle
from connector.plugins.hub.routes import BRIDGE
from connector.plugins.manager import access_restriction
from connector.serve import running_node
from credentials.data_integrity import JCS
from credentials.did_key import key_from_seed, mint_battery_did
from credentials.issuer import issue_credential
from vocab import CREDENTIALS_V2, ROLES_CONTEXT_V1

CELLS = 48
OVERHEATING, SWAPPED = 3, 11


async def hub_act(console: Console, root: Path) -> bool:
    """Play the act; ``True`` when every step behaved as it should."""
    os.environ.setdefault(PASSPHRASE_ENV, secrets.token_urlsafe(16))
    ok = True

    def expect(condition: bool, what: str) -> None:
        nonlocal ok
        if not condition:
            ok = False
            console.print(f"[red]unexpected:[/red] {escape(what)}")

    pack, _ = mint_battery_did()
    key = secrets.token_urlsafe(24)
    port = free_port()
    config = NodeConfig(
        public_base_url=f"http://127.0.0.1:{port}", data_dir=root / "oem-hub",
        keystore_passphrase_env=PASSPHRASE_ENV, operator_api_key=key, shutdown_timeout_s=2,
        plugins={"hub": {"enabled": True, "source": "simulated", "summary_period_s": 2.0,
                         "batch_max_age_s": 0.5, "tick_s": 0.1,
                         "simulated": {"battery_did": pack, "cells": CELLS, "pace_s": 0.1,
                                       "faults": [f"overheat:{OVERHEATING}@2",
                                                  f"swap:{SWAPPED}@6"]}}})
    started = time.perf_counter()
    async with running_node(config, create_app(config)) as node, aiohttp.ClientSession() as s:
        oem = Operator(s, node, key)
        await start_sample_passport(node.app, pack, seed=11)
        console.print(f"  OEM node {node.url} keeps the passport of pack {pack} and runs the "
                      f"simulated hub of its {CELLS} cells (cell {OVERHEATING} overheats, cell "
                      f"{SWAPPED} is swapped)", soft_wrap=True)

        async def thermal_proven() -> dict[str, Any] | None:
            async with node.app[STORE].read() as reader:
                events = await reader.list_hub_events(battery_did=pack, limit=10_000)
            for event in events:
                if event.kind == "thermal-excursion" and event.batch_id:
                    status, bundle = await oem.call(
                        "GET", f"/management/hub/events/{event.event_id}/proof")
                    if status == 200 and bundle.get("credential"):
                        return dict(bundle)
            return None

        bundle = await until(thermal_proven, timeout_s=20.0)
        expect(bundle is not None, "no thermal event reached a batch credential")
        if bundle is not None:
            proven, why = check_bundle(bundle)
            expect(proven, f"the thermal event's proof: {why}")
            event = bundle["event"]
            console.print(f"  cell {event['position']} thermal excursion at "
                          f"{event['observed_at']}: in batch credential "
                          f"{bundle['credential']['id']}; proven offline ({why})",
                          soft_wrap=True)

        async def locked() -> str | None:
            return access_restriction(node.app, pack, "performance-health")

        reason = await until(locked, timeout_s=20.0)
        expect(reason is not None, "the swapped cell did not lock the pack's cell data")
        console.print(f"  tamper: {escape(str(reason))}", soft_wrap=True)

        view = await node.app[BRIDGE].status()
        cells = view["unverifiedCells"]
        expect(len(cells) == 1, f"unverified cells: {cells}")
        certifier = key_from_seed(secrets.token_bytes(32))
        technician = "did:web:service.example:technicians:7"
        credential = issue_credential({
            "@context": [CREDENTIALS_V2, ROLES_CONTEXT_V1], "issuer": certifier.controller,
            "type": ["VerifiableCredential", "ServiceTechnicianCredential"],
            "credentialSubject": {"id": technician,
                                  "qualification": "high-voltage battery technician"}},
            certifier, suite=JCS)
        status, body = await oem.call("POST", "/management/trust/issuers", {
            "credentialType": "ServiceTechnicianCredential", "issuer": certifier.controller})
        expect(status == 201, f"trusting the technician certifier: {body}")
        if cells:
            status, replaced = await oem.call("POST", "/management/hub/cells/replace", {
                "hubId": view["hubs"][0]["hub"], "position": cells[0]["position"],
                "newCellUid": cells[0]["observedCellUid"],
                "newCellDid": key_from_seed(secrets.token_bytes(32)).controller,
                "technicianCredential": credential})
            expect(status == 201, f"replacement refused: {replaced}")
            lifted = access_restriction(node.app, pack, "performance-health") is None
            console.print(f"  technician {technician} registers the new cell at position "
                          f"{cells[0]['position']}: CellReplacementCredential appended; lock "
                          f"lifted: {lifted}", soft_wrap=True)
        expect(access_restriction(node.app, pack, "performance-health") is None,
               "the pack's cell data is still locked")
        async with node.app[STORE].read() as reader:
            entries = await reader.passport(pack)
        kinds = [next(t for t in r.types if t != "VerifiableCredential") for r in entries]
        stats = (await node.app[BRIDGE].status())["stats"]
        console.print(f"  passport of the pack: {len(entries)} entries "
                      f"({', '.join(sorted(set(kinds)))}); bridge: {stats['eventsStored']} "
                      f"events in {stats['batches']} batches", soft_wrap=True)
    console.print(f"  hub act in {time.perf_counter() - started:.1f} s")
    return ok


__all__ = ["hub_act"]
