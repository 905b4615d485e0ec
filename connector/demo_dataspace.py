"""The demo's data-space act: certified recyclers, refusals, revocation and deletion receipts.

Four real nodes start on loopback ports (did:web, SQLite in throw-away data directories): a
certification body, the OEM, a certified recycler and an uncertified workshop. Everything goes
through each node's management API, as an operator would do it:

1. The OEM trusts the certifier for dismantler certificates and data-exchange governance; the
   certifier issues both to the recycler (with revocable status entries), which keeps them in
   its wallet. The OEM publishes the battery's dismantling data under the default Catena-X
   policy: a trusted DismantlerCredential, the battery-passport purpose, seven days, delete at
   the end.
2. The workshop holds no certificate: the OEM's catalog shows it nothing, ``explain`` says
   why, and a negotiation for the offer is refused with the reason.
3. The recycler proves its role (the OEM queries its credential service once), negotiates
   seven days of access, starts a transfer and fetches the data.
4. The nodes' shared clock moves eight days on (an injected clock, not a sleep): the fetch is
   refused, the recycler's node purges the data and the OEM receives its signed deletion
   receipt.
5. A second agreement runs; the certifier revokes the recycler's certificate; the OEM's policy
   monitor terminates the running agreement, and a new negotiation is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.app import IDENTITY, create_app
from connector.config import NodeConfig
from connector.dcp.context import ROLE_PROOFS
from connector.dsp.negotiation_service import DspSettings
from connector.serve import RunningNode, running_node
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2, ROLES_CONTEXT_V1

T = TypeVar("T")
PASSPHRASE_ENV = "BPC_DEMO_KEYSTORE_PASSPHRASE"
NODES = ("certifier", "oem", "recycler", "workshop")
ROLE_TYPES = ("DismantlerCredential", "DataExchangeGovernanceCredential")
RECYCLER_BPN = "BPNL00000000RCYC"

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def demo_node(data_dir: Path, operator_key: str,
                    clock: Callable[[], datetime]) -> AsyncIterator[RunningNode]:
    port = free_port()
    # Watches every 0.2 s and no status-list caching: the demo shows in seconds what a real
    # node does within its watch interval and status max age.
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                        keystore_passphrase_env=PASSPHRASE_ENV, operator_api_key=operator_key,
                        shutdown_timeout_s=2, watch_interval_s=0.2, status_max_age_s=0)
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


async def until(check: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T | None:
    """Poll ``check`` until it answers something truthy (returned); ``None`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.05)


async def _receipt_recorded(oem: Operator, agreement_id: str) -> bool:
    """Whether the OEM recorded a consumer's deletion receipt for the agreement."""
    _, receipts = await oem.call("GET", f"/management/deletion-receipts?agreementId={agreement_id}")
    return bool(receipts.get("items"))


async def _issue(certifier: Operator, kind: str, context: str,
                 subject: dict[str, Any]) -> dict[str, Any]:
    status, body = await certifier.call("POST", "/credentials/issue", {"credential": {
        "@context": [CREDENTIALS_V2, context], "type": ["VerifiableCredential", kind],
        "issuer": certifier.node.app[IDENTITY].did, "credentialSubject": subject}})
    return dict(body["verifiableCredential"]) if status == 201 else {}


class _Act:
    """The act's steps; ``expect`` records every deviation (the act returns ``ok``)."""

    def __init__(self, console: Console, clock: ShiftedClock) -> None:
        self.console = console
        self.clock = clock
        self.ok = True
        self.timings: list[tuple[str, float]] = []

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            self.ok = False
            self.console.print(f"[red]unexpected:[/red] {escape(what)}")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", soft_wrap=True)

    async def negotiate(self, who: Operator, oem: Operator, offer: dict[str, Any],
                        ) -> dict[str, Any]:
        status, started = await who.call("POST", "/management/negotiations", {
            "counterPartyAddress": oem.node.url, "offer": offer})
        self.expect(status == 201, f"negotiation not started: {started}")
        return await who.until(f"/management/negotiations/{started.get('id')}",
                               {"FINALIZED", "TERMINATED"})

    async def transfer(self, recycler: Operator, oem: Operator, agreement_id: str) -> str:
        status, transfer = await recycler.call("POST", "/management/transfers", {
            "agreementId": agreement_id, "counterPartyAddress": oem.node.url})
        self.expect(status == 201, f"transfer refused: {transfer}")
        path = f"/management/transfers/{transfer.get('id')}"
        transfer = await recycler.until(path, {"STARTED", "TERMINATED"})
        self.expect(transfer.get("state") == "STARTED", f"transfer: {transfer}")
        return path

    def timed(self, step: str, since: float) -> None:
        self.timings.append((step, time.perf_counter() - since))


def _reason(view: dict[str, Any]) -> str:
    reason = view.get("reason") or {}
    return str(reason.get("detail") or reason) if isinstance(reason, dict) else str(reason)


async def dataspace_act(console: Console, battery_did: str, root: Path) -> bool:
    """Play the act; ``True`` when every step behaved as it should."""
    os.environ.setdefault(PASSPHRASE_ENV, secrets.token_urlsafe(16))
    clock = ShiftedClock()
    act = _Act(console, clock)
    keys = {name: secrets.token_urlsafe(24) for name in NODES}
    started = time.perf_counter()
    async with (
        demo_node(root / "certifier", keys["certifier"], clock) as certifier_node,
        demo_node(root / "oem", keys["oem"], clock) as oem_node,
        demo_node(root / "recycler", keys["recycler"], clock) as recycler_node,
        demo_node(root / "workshop", keys["workshop"], clock) as workshop_node,
        aiohttp.ClientSession() as session,
    ):
        certifier, oem, recycler, workshop = (
            Operator(session, n, keys[name]) for n, name in zip(
                (certifier_node, oem_node, recycler_node, workshop_node), NODES, strict=True))
        for name, node in zip(NODES, (certifier_node, oem_node, recycler_node, workshop_node),
                              strict=True):
            act.say(f"{name:<10} {node.url}  {node.app[IDENTITY].did}")
        certificate = await _certify(act, certifier, oem, recycler)
        offer, asset_id = await _publish(act, oem, battery_did)
        await _uncertified(act, oem, workshop, offer, asset_id)
        first = await _seven_days(act, oem, recycler, offer)
        await _expiry_and_receipt(act, oem, recycler, first)
        await _revocation(act, certifier, oem, recycler, offer, certificate)
    console.print(f"  four nodes: role proofs, refusal, expiry with deletion receipt, revocation "
                  f"in {time.perf_counter() - started:.1f} s")
    return act.ok


async def _certify(act: _Act, certifier: Operator, oem: Operator,
                   recycler: Operator) -> dict[str, Any]:
    """Trust at the OEM; the recycler's two credentials, issued and put into its wallet."""
    certifier_did, recycler_did = (certifier.node.app[IDENTITY].did,
                                   recycler.node.app[IDENTITY].did)
    for kind in ROLE_TYPES:
        status, body = await oem.call("POST", "/management/trust/issuers",
                                      {"credentialType": kind, "issuer": certifier_did})
        act.expect(status == 201, f"the OEM could not trust the certifier: {body}")
    act.say(f"OEM trusts the certifier for {' and '.join(ROLE_TYPES)}")
    dismantler = await _issue(certifier, "DismantlerCredential", BATTERY_CONTEXT_V1, {
        "id": recycler_did, "type": "Participant", "holderIdentifier": RECYCLER_BPN,
        "activityType": ["vehicleDismantle"], "allowedVehicleBrands": ["Volta"]})
    governance = await _issue(certifier, "DataExchangeGovernanceCredential", ROLES_CONTEXT_V1, {
        "id": recycler_did, "holderIdentifier": RECYCLER_BPN, "group": "UseCaseFramework",
        "useCase": "DataExchangeGovernance", "contractVersion": "1.0"})
    act.expect(bool(dismantler and governance), "the certifier could not issue")
    for credential in (dismantler, governance):
        status, body = await recycler.call("POST", "/management/wallet/credentials", credential)
        act.expect(status == 201, f"the recycler's wallet refused a credential: {body}")
    act.say("certifier issues the recycler a dismantler certificate and a data-exchange "
            "governance credential (revocable); the recycler keeps both in its wallet")
    return dismantler


async def _publish(act: _Act, oem: Operator, battery_did: str) -> tuple[dict[str, Any], str]:
    status, asset = await oem.call("POST", "/management/assets", {
        "batteryDid": battery_did, "accessLevel": "dismantling-safety",
        "title": "Dismantling and safety data",
        "dataSource": {"kind": "inline", "data": DISMANTLING_DATA}})
    act.expect(status == 201 and bool(asset.get("defaultOffer")), f"publish: {asset}")
    published = (asset.get("defaultOffer") or {}).get("offer", {})
    offer = {**{k: v for k, v in published.items() if k != "@context"},
             "target": asset.get("id")}
    act.say(f"OEM publishes dismantling data of {battery_did} for certified dismantlers: "
            "7 days from agreement, delete at the end")
    return offer, str(asset.get("id"))


async def _uncertified(act: _Act, oem: Operator, workshop: Operator, offer: dict[str, Any],
                       asset_id: str) -> None:
    status, catalog = await workshop.call("POST", "/management/catalog/request",
                                          {"counterPartyAddress": oem.node.url})
    act.expect(status == 200 and not catalog.get("dataset"), f"workshop catalog: {catalog}")
    workshop_did = workshop.node.app[IDENTITY].did
    query = urlencode({"dataset": asset_id, "participant": workshop_did})
    status, explained = await oem.call("GET", f"/management/catalog/explain?{query}")
    act.expect(status == 200 and explained.get("visible") is False, f"explain: {explained}")
    why = (explained.get("offers") or [{}])[0]
    act.say(f"workshop (no certificate) sees 0 datasets; OEM explains: "
            f"{escape(str(why.get('reason')))}")
    refused = await act.negotiate(workshop, oem, offer)
    act.expect(refused.get("state") == "TERMINATED", f"workshop negotiation: {refused}")
    act.expect("DismantlerCredential" in _reason(refused), f"refusal reason: {refused}")
    act.say(f"workshop asks anyway: {refused.get('state')} ({escape(_reason(refused))})")


async def _seven_days(act: _Act, oem: Operator, recycler: Operator,
                      offer: dict[str, Any]) -> tuple[str, str]:
    """Catalog, negotiation, transfer, fetch; (agreement id, transfer path)."""
    asked_before = oem.node.app[ROLE_PROOFS].queries
    mark = time.perf_counter()
    status, catalog = await recycler.call("POST", "/management/catalog/request",
                                          {"counterPartyAddress": oem.node.url})
    act.expect(status == 200 and len(catalog.get("dataset", [])) == 1, f"catalog: {catalog}")
    act.timed("catalog (role proof fetched and verified)", mark)
    mark = time.perf_counter()
    negotiation = await act.negotiate(recycler, oem, offer)
    act.expect(negotiation.get("state") == "FINALIZED", f"negotiation: {negotiation}")
    act.timed("negotiation to FINALIZED (proof cached)", mark)
    agreement_id = str(negotiation.get("agreementId"))
    mark = time.perf_counter()
    path = await act.transfer(recycler, oem, agreement_id)
    act.timed("transfer to STARTED", mark)
    mark = time.perf_counter()
    status, data = await recycler.call("GET", path + "/data")
    act.expect(status == 200 and data.get("data") == DISMANTLING_DATA, f"fetch: {data}")
    act.timed("fetch through the data plane", mark)
    table = Table(title="Certified recycler obtains the dismantling data", title_justify="left")
    table.add_column("step")
    table.add_column("ms", justify="right")
    for step, seconds in act.timings:
        table.add_row(step, f"{seconds * 1000:.1f}")
    act.console.print(table)
    queries = oem.node.app[ROLE_PROOFS].queries - asked_before
    act.expect(queries == 1, f"the OEM queried the recycler's wallet {queries} times, not once")
    steps = data.get("data", {}).get("dismantlingSteps", []) if status == 200 else []
    act.say(f"agreement {agreement_id}: {len(steps)} dismantling steps received; the OEM "
            f"asked the recycler's credential service {queries} time(s)")
    return agreement_id, path


async def _expiry_and_receipt(act: _Act, oem: Operator, recycler: Operator,
                              first: tuple[str, str]) -> None:
    agreement_id, path = first
    act.clock.advance(timedelta(days=8))
    act.say("… the nodes' clock moves 8 days on (injected clock, no waiting)")
    status, refused = await recycler.call("GET", path + "/data")
    act.expect(status == 403, f"access after expiry answered {status}: {refused}")
    act.say(f"fetch again: {status} {escape(str(refused.get('detail')))}")
    ended = await recycler.until(path, {"TERMINATED"})
    act.expect(ended.get("state") == "TERMINATED", f"transfer after expiry: {ended}")

    act.expect(bool(await until(lambda: _receipt_recorded(oem, agreement_id))),
               "no deletion receipt reached the OEM")
    _, kept = await recycler.call("GET", f"/management/received-data?agreementId={agreement_id}")
    row = (kept.get("items") or [{}])[0]
    act.expect(bool(row.get("purgedAt")), f"the recycler still holds the data: {row}")
    _, receipts = await oem.call("GET",
                                 f"/management/deletion-receipts?agreementId={agreement_id}")
    receipt = (receipts.get("items") or [{}])[0]
    act.say(f"recycler purges the data at {row.get('purgedAt')}; OEM records deletion receipt "
            f"{receipt.get('id')} for {receipt.get('assets')}")
    _, overdue = await oem.call("GET", "/management/deletion-receipts/overdue")
    act.expect(not overdue.get("items"), f"receipts overdue: {overdue}")


async def _revocation(act: _Act, certifier: Operator, oem: Operator, recycler: Operator,
                      offer: dict[str, Any], certificate: dict[str, Any]) -> None:
    negotiation = await act.negotiate(recycler, oem, offer)
    act.expect(negotiation.get("state") == "FINALIZED", f"second negotiation: {negotiation}")
    path = await act.transfer(recycler, oem, str(negotiation.get("agreementId")))
    status, _ = await recycler.call("GET", path + "/data")
    act.expect(status == 200, f"second agreement fetch: {status}")
    act.say(f"a second agreement {negotiation.get('agreementId')} runs; data fetched")
    status, body = await certifier.call("POST", "/management/status/revoke",
                                        {"credential": certificate})
    act.expect(status == 200, f"revocation: {body}")
    act.say("certifier revokes the recycler's dismantler certificate")
    ended = await recycler.until(path, {"TERMINATED"})
    act.expect(ended.get("state") == "TERMINATED", f"transfer after revocation: {ended}")
    act.say(f"OEM's policy monitor ends the running agreement: transfer {ended.get('state')} "
            f"({escape(_reason(ended))})")
    agreement_id = str(negotiation.get("agreementId"))

    act.expect(bool(await until(lambda: _receipt_recorded(oem, agreement_id))),
               "no receipt for the terminated agreement")
    act.say("the agreement ended early, so the recycler's node purges that data too; the OEM "
            "records its deletion receipt")
    again = await act.negotiate(recycler, oem, offer)
    act.expect(again.get("state") == "TERMINATED", f"negotiation after revocation: {again}")
    act.say(f"recycler asks again: {again.get('state')} ({escape(_reason(again))})")


__all__ = ["DISMANTLING_DATA", "ShiftedClock", "dataspace_act"]
