"""The battery's life across five nodes, driven only through their APIs as operators would.

mine & refiner → cell maker → OEM (with the pack's simulated hub) → fleet operator → recycler,
and back: the recycler's output batches feed a new cathode batch and a new battery.

Each participant's node signs in its own name (``POST /credentials/issue`` for material
batches, ``POST /management/batteries/{did}/credentials`` for passport entries) and custody
moves by the next node importing the chain (``/management/batteries/import``), which audits it
first. A certification body outside the five (its key is the story's own, offline) certifies
the recycler as a dismantler and a service technician for the OEM; the OEM trusts it for those
roles and nothing else.

The story returns an ``Outcome`` of facts read back from the nodes, so a test (and the summary)
judges what happened, not what was printed. A step that does not go as it must raises
``StepFailed`` naming the step and the node's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from rich.console import Console
from rich.markup import escape

from connector import samples
from connector.shipments.story import declare_shipment
from connector.valuechain.nodes import NodeHandle
from credentials import JCS
from credentials.did_key import key_from_seed
from credentials.issuer import issue_credential
from credentials.passport.chain import ChainEntry, Passport
from credentials.passport.mass_balance import (
    MaterialGraph,
    compare_with_minimums,
    recycled_content,
)
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2, ROLES_CONTEXT_V1

T = TypeVar("T")
ROLES = ("mine", "cellmaker", "oem", "fleet", "recycler")
ROLE_TYPES = ("DismantlerCredential", "DataExchangeGovernanceCredential")
TECHNICIAN = "ServiceTechnicianCredential"
RECYCLER_BPN = "BPNL00000000RCYC"
HUB_CELLS = 96
OVERHEATING, SWAPPED = 7, 23
MAX_TICKS = 600
DISMANTLING_DATA = {
    "dismantlingSteps": ["discharge the pack to below 5 % state of charge",
                         "remove the lid (24 M6 screws)", "disconnect the HV service plug",
                         "unbolt the 12 modules", "separate the cooling plate"],
    "tools": ["insulated torque wrench", "HV-rated gloves (class 0)"],
    "extinguishingAgent": "water (large quantities); no CO2",
}


class StepFailed(RuntimeError):
    """A step of the story did not go as it must: which, and what the node answered."""


@dataclass
class Outcome:
    """What the story left on the nodes (read back, not assumed)."""

    battery: str = ""
    second_battery: str = ""
    chain_types: list[str] = field(default_factory=list)
    held_by: dict[str, int] = field(default_factory=dict)
    custodian: str = ""
    thermal_event: str = ""
    thermal_proven: bool = False
    tamper_locked: bool = False
    tamper_cleared: bool = False
    hub_events: int = 0
    state_of_health_entries: int = 0
    agreement_id: str = ""
    agreement_not_after: str = ""
    dismantling_steps: int = 0
    role_proof_queries: int | None = None
    output_batches: list[str] = field(default_factory=list)
    recycled_content: dict[str, str] = field(default_factory=dict)
    shipment_verdict: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, float]] = field(default_factory=list)


class NodeApi:
    """One node's management API with its operator key."""

    def __init__(self, session: aiohttp.ClientSession, node: NodeHandle) -> None:
        self.session = session
        self.node = node
        self.did = node.did
        self.headers = {"Authorization": f"Bearer {node.api_key}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.node.url + path, json=body,
                                        headers=self.headers) as response:
            return response.status, await response.json(content_type=None)

    async def must(self, method: str, path: str, body: Any = None, *,
                   status: int | tuple[int, ...] = (200, 201), step: str) -> Any:
        got, answer = await self.call(method, path, body)
        wanted = (status,) if isinstance(status, int) else status
        if got not in wanted:
            raise StepFailed(f"{step}: {self.node.name} answered {got}: {answer}")
        return answer

    async def issue(self, unsigned: dict[str, Any], step: str) -> dict[str, Any]:
        answer = await self.must("POST", "/credentials/issue", {
            "credential": {**unsigned, "issuer": self.did},
            "options": {"cryptosuite": "eddsa-jcs-2022"}}, status=201, step=step)
        return dict(answer["verifiableCredential"])

    async def append(self, battery: str, unsigned: dict[str, Any], step: str) -> dict[str, Any]:
        return dict(await self.must("POST", f"/management/batteries/{battery}/credentials",
                                    {"credential": unsigned}, status=201, step=step))

    async def chain(self, battery: str) -> list[Any]:
        """The whole passport as this node holds it, page by page."""
        entries: list[Any] = []
        cursor = ""
        while True:
            page = await self.must(
                "GET", f"/management/batteries/{battery}/credentials?limit=500{cursor}",
                status=200, step=f"{self.node.name}: read the passport of {battery}")
            entries.extend(item["credential"] for item in page["items"])
            if not page.get("next"):
                return entries
            cursor = f"&after={page['next']}"


async def until(check: Callable[[], Awaitable[T]], timeout_s: float = 20.0) -> T | None:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found or None
        await asyncio.sleep(0.05)


class ValueChain:
    """The story over five nodes (``ROLES``); ``run`` returns the ``Outcome``."""

    def __init__(self, nodes: Mapping[str, NodeHandle], session: aiohttp.ClientSession,
                 console: Console, *, seed: int = 7,
                 hub_broker: tuple[str, int] | None = None) -> None:
        missing = [r for r in ROLES if r not in nodes]
        if missing:
            raise ValueError(f"the value chain needs nodes {', '.join(missing)}")
        self.api = {role: NodeApi(session, nodes[role]) for role in ROLES}
        #: None: the OEM's node simulates the pack itself; else the pack's hub publishes to
        #: this MQTT broker, where the OEM's bridge subscribes.
        self.hub_broker = hub_broker
        self.console = console
        self.rng = random.Random(seed)
        self.certifier = key_from_seed(bytes(self.rng.randrange(256) for _ in range(32)))
        self.outcome = Outcome()
        self.batches: list[dict[str, Any]] = []
        self.manufactured: dict[str, dict[str, Any]] = {}

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", soft_wrap=True)

    async def run(self) -> Outcome:
        acts: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("material batches: mine & refiner, recycled salts", self.materials),
            ("battery DID, manufacturing, custody to the OEM", self.manufacture),
            ("the pack's cell monitors stream into its passport", self.cell_events),
            ("fleet operation and end of first life", self.first_life),
            ("the recycler proves its certificate, 7 days of dismantling data", self.dismantling),
            ("recycling outcome feeds a new cathode batch and a new battery", self.second_life),
        ]
        for number, (title, act) in enumerate(acts, start=1):
            self.console.rule(f"{number}. {title}")
            began = time.perf_counter()
            with self.console.status(title):
                await act()
            self.outcome.steps.append((title, time.perf_counter() - began))
        await self.read_back()
        return self.outcome

    # --- 1. materials -------------------------------------------------------------------------

    async def materials(self) -> None:
        mine, recycler = self.api["mine"], self.api["recycler"]
        rng = self.rng
        ore = await mine.issue(samples.raw_material_batch(
            mine.did, material=samples.SPODUMENE.name, rng=rng, batch_mass_kg="120000.0"),
            "mine: spodumene batch")
        lithium = await mine.issue(samples.raw_material_batch(
            mine.did, material=samples.LITHIUM_HYDROXIDE.name, inputs=[ore], rng=rng),
            "refiner: lithium hydroxide")
        sulphates = [await mine.issue(samples.raw_material_batch(
            mine.did, material=m.name, rng=rng, batch_mass_kg=kg), f"refiner: {m.name}")
            for m, kg in ((samples.NICKEL_SULPHATE, "40000.0"), (samples.COBALT_SULPHATE, None),
                          (samples.MANGANESE_SULPHATE, None))]
        recycled = [await recycler.issue(samples.recycled_batch(
            recycler.did, element=e, element_mass_kg=kg, rng=rng), f"recycler: recycled {e}")
            for e, kg in (("Ni", "900.0"), ("Co", "250.0"), ("Li", "60.0"))]
        precursor = await mine.issue(samples.precursor_batch(
            [*sulphates, *recycled[:2]], mine.did, rng=rng), "refiner: precursor")
        cathode = await mine.issue(samples.cam_batch(
            [precursor, lithium, recycled[2]], mine.did, rng=rng), "refiner: cathode material")
        self.batches = [ore, lithium, *sulphates, *recycled, precursor, cathode]
        for credential in self.batches:
            subject = credential["credentialSubject"]
            who = "recycler" if credential["issuer"] == recycler.did else "mine & refiner"
            self.say(f"{who:15} {credential['type'][1]:28} {subject['material'][:32]:32} "
                     f"{subject['batchMassKg']:>10} kg")

    # --- 2. manufacturing and custody ----------------------------------------------------------

    async def mint(self, label: str) -> str:
        maker = self.api["cellmaker"]
        minted = await maker.must("POST", "/management/batteries", {"label": label},
                                  status=201, step=f"cell maker: mint {label}")
        battery = str(minted["did"])
        made = await maker.append(battery, samples.manufacturing_credential(
            battery, maker.did, rng=self.rng, cathode_batch=self.batches[-1]),
            f"cell maker: manufacturing credential of {label}")
        self.manufactured[battery] = made["credential"]
        return battery

    async def hand_over(self, battery: str, giver: str, taker: str) -> None:
        source, target = self.api[giver], self.api[taker]
        await source.append(battery, samples.custody_transfer(
            battery, source.did, target.did, rng=self.rng), f"{giver}: custody to {taker}")
        chain = await source.chain(battery)
        taken = await target.must("POST", "/management/batteries/import",
                                  {"credentials": chain}, status=(200, 201),
                                  step=f"{taker}: import the passport")
        if taken["custodian"] != target.did:
            raise StepFailed(f"{taker}: custodian after import is {taken['custodian']}")
        self.say(f"{giver} → {taker}: chain of {taken['length']} entries audited and imported; "
                 f"{taker} holds custody")

    async def manufacture(self) -> None:
        battery = self.outcome.battery = await self.mint("pack SN-0001")
        made = self.manufactured[battery]["credentialSubject"]
        self.say(f"cell maker mints {battery}: {made['ratedEnergyKWh']} kWh, cathode batch "
                 f"{self.batches[-1]['credentialSubject']['id']}")
        await self.hand_over(battery, "cellmaker", "oem")
        oem = self.api["oem"]
        await oem.append(battery, samples.vehicle_integration(battery, oem.did, rng=self.rng),
                         "OEM: vehicle integration")
        self.say("OEM fits the pack into a vehicle (VehicleIntegrationCredential)")

    # --- 3. the hub ---------------------------------------------------------------------------

    async def cell_events(self) -> None:
        from connector.plugins.hub.cli import check_bundle

        oem, battery = self.api["oem"], self.outcome.battery
        faults = [f"overheat:{OVERHEATING}@2", f"swap:{SWAPPED}@5"]
        publishing: asyncio.Task[None] | None = None
        if self.hub_broker is None:
            await oem.must("POST", "/management/hub/simulations", {
                "batteryDid": battery, "cells": HUB_CELLS, "paceS": 0.1, "faults": faults},
                status=201, step="OEM: put the pack on the simulated hub")
            via = "the node's embedded simulated hub"
        else:
            publishing = await self.publish_over_mqtt(battery, faults)
            via = f"MQTT ({self.hub_broker[0]}:{self.hub_broker[1]}, QoS 1)"
        self.say(f"the pack's hub streams {HUB_CELLS} cells through {via} (cell {OVERHEATING} "
                 f"overheats, cell {SWAPPED} is swapped for another)")

        async def thermal() -> Any:
            _, found = await oem.call("GET", f"/management/hub/events?batteryDid={battery}"
                                             "&kind=thermal-excursion")
            for item in found.get("items", []):
                if item.get("batchId"):
                    status, bundle = await oem.call(
                        "GET", f"/management/hub/events/{item['event']['event_id']}/proof")
                    if status == 200 and bundle.get("credential"):
                        return bundle
            return None

        bundle = await until(thermal)
        if bundle is None:
            raise StepFailed("no thermal event reached a batch credential")
        proven, why = check_bundle(bundle)
        self.outcome.thermal_event = bundle["event"]["event_id"]
        self.outcome.thermal_proven = proven
        self.say(f"cell {bundle['event']['position']} thermal excursion → batch credential "
                 f"{bundle['credential']['id']}; inclusion proof checked offline: {why}")

        async def unverified() -> Any:
            _, status = await oem.call("GET", "/management/hub/status")
            return status.get("unverifiedCells")

        cells = await until(unverified)
        if not cells:
            raise StepFailed("the swapped cell did not mark the pack unverified")
        self.outcome.tamper_locked = True
        self.say(f"cell {cells[0]['position']} reports {cells[0]['observedCellUid']}, not "
                 f"{cells[0]['expectedCellUid']}: tamper event, cell data locked")
        await oem.must("POST", "/management/trust/issuers", {
            "credentialType": TECHNICIAN, "issuer": self.certifier.controller},
            status=(200, 201), step="OEM: trust the certifier for technicians")
        technician = issue_credential({
            "@context": [CREDENTIALS_V2, ROLES_CONTEXT_V1], "issuer": self.certifier.controller,
            "type": ["VerifiableCredential", TECHNICIAN],
            "credentialSubject": {"id": "did:web:service.example:technicians:7",
                                  "qualification": "high-voltage battery technician"}},
            self.certifier, suite=JCS)
        _, hub = await oem.call("GET", "/management/hub/status")
        hub_id = next(h["hub"] for h in hub["hubs"] if h["battery"] == battery)
        await oem.must("POST", "/management/hub/cells/replace", {
            "hubId": hub_id, "position": cells[0]["position"],
            "newCellUid": cells[0]["observedCellUid"],
            "newCellDid": key_from_seed(bytes(32 * [SWAPPED])).controller,
            "technicianCredential": technician}, status=201,
            step="OEM: technician registers the replacement")
        _, hub = await oem.call("GET", "/management/hub/status")
        self.outcome.tamper_cleared = not hub.get("unverifiedCells")
        self.say("a certified technician registers the new cell: CellReplacementCredential "
                 f"appended, lock lifted: {self.outcome.tamper_cleared}")
        if publishing is None:
            stopped = await oem.must("DELETE", f"/management/hub/simulations/{battery}",
                                     status=200, step="OEM: take the pack off the hub")
        else:
            publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publishing
            stopped = await oem.must("DELETE", f"/management/hub/packs/{hub_id}",
                                     status=200, step="OEM: take the pack's hub off the bridge")
        _, hub = await oem.call("GET", "/management/hub/status")
        self.outcome.hub_events = int(hub["stats"]["eventsStored"])
        self.say(f"pack leaves the bench: {self.outcome.hub_events} events in "
                 f"{hub['stats']['batches']} Merkle batches, all credentialed "
                 f"({stopped['closingEvents']} closing summaries)")

    async def publish_over_mqtt(self, battery: str, faults: list[str]) -> asyncio.Task[None]:
        """Register the pack's hub with the OEM's bridge and publish its signed messages to
        the broker, as the pack's hub would, until cancelled."""
        from connector.plugins.hub.plugin import SimulatedPack, simulated_hub
        from connector.plugins.hub.sources.mqtt import MqttPublisher, MqttSettings

        assert self.hub_broker is not None
        hub = simulated_hub(SimulatedPack(battery_did=battery, cells=HUB_CELLS, seed=1,
                                          faults=faults))
        await self.api["oem"].must("POST", "/management/hub/packs", {
            "hubId": hub.hub_id, "batteryDid": battery,
            "cells": [{"position": p, "cellUid": c.cell_uid, "monitorDid": c.monitor_did}
                      for p, c in hub.registered_cells().items()]},
            status=201, step="OEM: register the pack's hub and cells")
        host, port = self.hub_broker

        async def publish() -> None:
            async with MqttPublisher(MqttSettings(host=host, port=port)) as publisher:
                for _ in range(MAX_TICKS):
                    await publisher.publish_many([(f"bpc/hubs/{hub.hub_id}/batch", raw)
                                                  for raw in hub.messages(datetime.now(UTC))])
                    await asyncio.sleep(0.1)

        return asyncio.create_task(publish(), name="value-chain-hub")

    # --- 4. fleet -----------------------------------------------------------------------------

    async def first_life(self) -> None:
        battery = self.outcome.battery
        await self.hand_over(battery, "oem", "fleet")
        fleet = self.api["fleet"]
        for year, cycles in ((2, 380), (5, 1100), (8, 1800)):
            await fleet.append(battery, samples.state_of_health(
                battery, fleet.did, cycles=cycles, age_years=year, rng=self.rng),
                f"fleet: state of health after {year} years")
        self.say("fleet operator records state of health after 2, 5 and 8 years")
        await fleet.append(battery, samples.shipment(
            battery, fleet.did, self.api["recycler"].did, purpose="Recycling",
            rng=self.rng), "fleet: ship to the recycler")
        self.say("end of first life: shipped to the recycler for recycling")
        self.outcome.shipment_verdict = await declare_shipment(self)
        await self.hand_over(battery, "fleet", "recycler")

    # --- 5. dismantling data ------------------------------------------------------------------

    def certify(self, kind: str, context: str, subject: dict[str, Any]) -> dict[str, Any]:
        signed = issue_credential({
            "@context": [CREDENTIALS_V2, context], "issuer": self.certifier.controller,
            "type": ["VerifiableCredential", kind], "credentialSubject": subject},
            self.certifier, suite=JCS)
        assert isinstance(signed, dict)
        return signed

    async def dismantling(self) -> None:
        oem, recycler, battery = self.api["oem"], self.api["recycler"], self.outcome.battery
        for kind in ROLE_TYPES:
            await oem.must("POST", "/management/trust/issuers", {
                "credentialType": kind, "issuer": self.certifier.controller},
                status=(200, 201), step=f"OEM: trust the certifier for {kind}")
        for credential in (
            self.certify("DismantlerCredential", BATTERY_CONTEXT_V1, {
                "id": recycler.did, "type": "Participant", "holderIdentifier": RECYCLER_BPN,
                "activityType": ["vehicleDismantle"], "allowedVehicleBrands": ["Volta"]}),
            self.certify("DataExchangeGovernanceCredential", ROLES_CONTEXT_V1, {
                "id": recycler.did, "holderIdentifier": RECYCLER_BPN,
                "group": "UseCaseFramework", "useCase": "DataExchangeGovernance",
                "contractVersion": "1.0"}),
        ):
            await recycler.must("POST", "/management/wallet/credentials", credential,
                                status=201, step="recycler: keep a credential in its wallet")
        self.say("a certification body certifies the recycler (dismantler, data-exchange "
                 "governance); the OEM trusts it for those roles")
        asset = await oem.must("POST", "/management/assets", {
            "batteryDid": battery, "accessLevel": "dismantling-safety",
            "title": "Dismantling and safety data",
            "dataSource": {"kind": "inline", "data": DISMANTLING_DATA}},
            status=201, step="OEM: publish the dismantling data")
        published = (asset.get("defaultOffer") or {}).get("offer", {})
        offer = {**{k: v for k, v in published.items() if k != "@context"},
                 "target": asset["id"]}
        catalog = await recycler.must("POST", "/management/catalog/request",
                                      {"counterPartyAddress": oem.node.url}, status=200,
                                      step="recycler: read the OEM's catalog")
        if not catalog.get("dataset"):
            raise StepFailed(f"the certified recycler sees no dataset: {catalog}")
        started = await recycler.must("POST", "/management/negotiations", {
            "counterPartyAddress": oem.node.url, "offer": offer}, status=201,
            step="recycler: negotiate")

        async def settled(path: str, states: set[str]) -> Any:
            _, view = await recycler.call("GET", path)
            return view if view.get("state") in states else None

        negotiation = await until(lambda: settled(
            f"/management/negotiations/{started['id']}", {"FINALIZED", "TERMINATED"}))
        if not negotiation or negotiation.get("state") != "FINALIZED":
            raise StepFailed(f"negotiation did not finalize: {negotiation}")
        agreement = self.outcome.agreement_id = str(negotiation["agreementId"])
        transfer = await recycler.must("POST", "/management/transfers", {
            "agreementId": agreement, "counterPartyAddress": oem.node.url}, status=201,
            step="recycler: start the transfer")
        path = f"/management/transfers/{transfer['id']}"
        view = await until(lambda: settled(path, {"STARTED", "TERMINATED"}))
        if not view or view.get("state") != "STARTED":
            raise StepFailed(f"transfer did not start: {view}")
        data = await recycler.must("GET", path + "/data", status=200,
                                   step="recycler: fetch through the data plane")
        if data.get("data") != DISMANTLING_DATA:
            raise StepFailed(f"the recycler received other data: {data}")
        self.outcome.dismantling_steps = len(data["data"]["dismantlingSteps"])
        _, agreement_view = await oem.call("GET", f"/management/agreements/{agreement}")
        signed = datetime.fromisoformat(str(agreement_view["signedAt"]).replace("Z", "+00:00"))
        self.outcome.agreement_not_after = (signed + timedelta(days=7)).isoformat(
            timespec="seconds")
        self.say(f"agreement {agreement}: use for 7 days from "
                 f"{escape(str(agreement_view['signedAt']))}, then delete; "
                 f"{self.outcome.dismantling_steps} dismantling steps fetched")

    # --- 6. second life of the material --------------------------------------------------------

    async def second_life(self) -> None:
        mine, recycler, battery = self.api["mine"], self.api["recycler"], self.outcome.battery
        energy = float(self.manufactured[battery]["credentialSubject"]["ratedEnergyKWh"])
        outcome, outputs = samples.recycle_battery(battery, recycler.did, energy_kwh=energy,
                                                   rng=self.rng)
        signed_outputs = [await recycler.issue(o, "recycler: output batch") for o in outputs]
        await recycler.append(battery, outcome, "recycler: recycling outcome")
        self.outcome.output_batches = [o["credentialSubject"]["id"] for o in signed_outputs]
        recovered = ", ".join(f"{e['element']} {e['massKg']} kg"
                              for o in signed_outputs
                              for e in o["credentialSubject"]["elementMass"])
        self.say(f"recycler records the outcome (RecyclingOutcomeCredential); output batches: "
                 f"{recovered}")
        by_element = {o["credentialSubject"]["elementMass"][0]["element"]: o
                      for o in signed_outputs}
        fresh = [await mine.issue(samples.raw_material_batch(
            mine.did, material=m.name, rng=self.rng, batch_mass_kg=kg), f"refiner: {m.name}")
            for m, kg in ((samples.NICKEL_SULPHATE, "400.0"),
                          (samples.MANGANESE_SULPHATE, "20.0"))]
        lithium = await mine.issue(samples.raw_material_batch(
            mine.did, material=samples.LITHIUM_HYDROXIDE.name, rng=self.rng,
            batch_mass_kg="80.0"), "refiner: lithium hydroxide")
        precursor = await mine.issue(samples.precursor_batch(
            [*fresh, by_element["Ni"], by_element["Co"], by_element["Mn"]], mine.did,
            rng=self.rng), "refiner: precursor with recycled Ni, Co, Mn")
        cathode = await mine.issue(samples.cam_batch(
            [precursor, lithium, by_element["Li"]], mine.did, rng=self.rng),
            "refiner: cathode material with recycled Li")
        self.batches.extend([*signed_outputs, *fresh, lithium, precursor, cathode])
        second = self.outcome.second_battery = await self.mint("pack SN-0002")
        self.say(f"a new cathode batch takes the recycled salts; the cell maker builds {second}")
        graph = MaterialGraph.from_credentials([*self.batches, *self.manufactured.values()])
        verdicts = compare_with_minimums(recycled_content(graph, second), on=date(2031, 8, 18))
        from connector.passport_cli import print_recycled_content

        print_recycled_content(verdicts, self.console)
        self.outcome.recycled_content = {
            v.element: "-" if v.share_pct is None else f"{v.share_pct:.1f}" for v in verdicts}

    # --- read back -----------------------------------------------------------------------------

    async def read_back(self) -> None:
        battery = self.outcome.battery
        for role, api in self.api.items():
            status, _ = await api.call("GET", f"/management/batteries/{battery}/credentials")
            self.outcome.held_by[role] = len(await api.chain(battery)) if status == 200 else 0
        chain = await self.api["recycler"].chain(battery)
        entries = [ChainEntry.read(entry) for entry in chain]
        self.outcome.chain_types = [next(t for t in e.types if t != "VerifiableCredential")
                                    for e in entries]
        self.outcome.state_of_health_entries = self.outcome.chain_types.count(
            "StateOfHealthCredential")
        self.outcome.custodian = Passport.from_entries(chain, battery=battery).custodian or ""


__all__ = ["ROLES", "NodeApi", "Outcome", "StepFailed", "ValueChain"]
