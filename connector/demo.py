"""``bpc demo``: a battery's passport from the mine to the OEM, end to end on one machine.

Each party has its own key (kept encrypted in a throw-away keystore): a mine and a refiner
issue batch credentials, a recycler issues recycled-salt batches, a cathode-material supplier
blends virgin and recycled material, a cell maker mints battery DIDs and issues manufacturing
credentials, and custody moves to an OEM. The demo then audits the passports, prints the
recycled-content table and the origin of the cobalt, and shows a tampered credential, a forged
passport entry and a double-counted batch being caught. Finally an OEM node and a recycler node
start on loopback ports and the recycler negotiates seven days of access to one battery's
dismantling data, fetches it, and is refused once the (injected) clock has moved past the
seven days (``demo_dataspace``).
"""

from __future__ import annotations

import asyncio
import copy
import random
import secrets
import stat
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from connector import samples
from connector.demo_dataspace import dataspace_act
from connector.demo_hub import hub_act
from connector.passport_cli import print_findings, print_passport, print_recycled_content
from connector.passport_cli import print_trace as print_trace_table
from credentials import JCS, JWT, RDFC, Ed25519Key, Verifier
from credentials.keystore import Keystore
from credentials.passport.audit import audit
from credentials.passport.chain import Passport
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.mass_balance import (
    MaterialGraph,
    check,
    compare_with_minimums,
    recycled_content,
)
from credentials.passport.trace import trace

PARTIES = ("mine", "refiner", "recycler", "cathode supplier", "cell maker", "OEM", "stranger")


def run_demo(console: Console) -> int:
    """Run the demo and return the process exit code (0 when everything behaved)."""
    with tempfile.TemporaryDirectory(prefix="bpc-demo-") as tmp:
        return asyncio.run(_Demo(console, Path(tmp) / "keystore", Path(tmp) / "nodes").run())


class _Demo:
    def __init__(self, console: Console, keystore_dir: Path, nodes_dir: Path) -> None:
        self.console = console
        self.keystore_dir = keystore_dir
        self.nodes_dir = nodes_dir
        self.keystore = Keystore(keystore_dir, secrets.token_urlsafe(16))
        self.rng = random.Random(2027)
        self.verifier = Verifier()
        self.moment = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
        self.ok = True

    def tick(self) -> datetime:
        self.moment += timedelta(hours=1)
        return self.moment

    def issue(self, unsigned: dict[str, Any], key: Ed25519Key, suite: str = JCS) -> Any:
        """Shapes first, then the signature: what the demo issues is a valid passport entry."""
        return issue_passport_credential(unsigned, key, suite=suite, now=self.moment)

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            self.ok = False
            self.console.print(f"[red]unexpected:[/red] {escape(what)}")

    async def run(self) -> int:
        keys = self.parties()
        batches, cathode = self.material_chain(keys)
        passports = await self.batteries(keys, cathode)
        await self.audit_and_report(batches, passports)
        await self.attacks(keys, batches, cathode, passports)
        self.console.rule("6. Four nodes: a certified recycler gets 7 days of dismantling data")
        battery = next(iter(passports))
        if not await dataspace_act(self.console, battery, self.nodes_dir):
            self.ok = False
        self.console.rule("7. The pack's cell monitors stream into its passport (hub bridge)")
        if not await hub_act(self.console, self.nodes_dir):
            self.ok = False
        self.console.rule()
        if self.ok:
            self.console.print("[green]demo complete:[/green] passports audited, recycled "
                               "content computed, tampering caught, forgery and double "
                               "counting caught, roles proven, access refused, expired and "
                               "revoked, data purged with a deletion receipt, cell events "
                               "proven, a swapped cell locked until a technician cleared it")
            return 0
        self.console.print("[red]demo failed:[/red] something did not behave as expected")
        return 1

    def parties(self) -> dict[str, Ed25519Key]:
        self.console.rule("1. The parties, each with its own did:key")
        keys = {name: self.keystore.new_key(name) for name in PARTIES}
        mode = stat.S_IMODE(next(self.keystore_dir.iterdir()).stat().st_mode)
        for name, key in keys.items():
            self.console.print(f"  {name:17} {key.controller}", soft_wrap=True)
        self.console.print(f"  keys encrypted at rest in {self.keystore_dir} (mode {mode:o})")
        return keys

    def material_chain(
        self, keys: dict[str, Ed25519Key]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        self.console.rule("2. Material batches: mine → refiner → cathode material")
        mine, refiner, recycler, cam = (keys[k].controller for k in
                                        ("mine", "refiner", "recycler", "cathode supplier"))
        rng, now = self.rng, self.tick()
        ore = samples.raw_material_batch(mine, material=samples.SPODUMENE.name, rng=rng,
                                         issued=now, batch_mass_kg="120000.0")
        lithium = samples.raw_material_batch(refiner, material=samples.LITHIUM_HYDROXIDE.name,
                                             inputs=[ore], rng=rng, issued=now)
        sulphates = [samples.raw_material_batch(refiner, material=m.name, rng=rng, issued=now,
                                                batch_mass_kg=mass)
                     for m, mass in ((samples.NICKEL_SULPHATE, "40000.0"),
                                     (samples.COBALT_SULPHATE, None),
                                     (samples.MANGANESE_SULPHATE, None))]
        recycled = [samples.recycled_batch(recycler, element=e, element_mass_kg=kg, rng=rng,
                                           issued=now)
                    for e, kg in (("Ni", "900.0"), ("Co", "250.0"), ("Li", "60.0"))]
        precursor = samples.precursor_batch([*sulphates, *recycled[:2]], cam, rng=rng,
                                            issued=now)
        cathode = samples.cam_batch([precursor, lithium, recycled[2]], cam, rng=rng, issued=now)
        unsigned = [ore, lithium, *sulphates, *recycled, precursor, cathode]
        issuers = {mine: keys["mine"], refiner: keys["refiner"], recycler: keys["recycler"],
                   cam: keys["cathode supplier"]}
        signed = [self.issue(u, issuers[u["issuer"]]) for u in unsigned]
        for credential in signed:
            subject = credential["credentialSubject"]
            self.console.print(f"  {credential['type'][1]:28} {subject['material'][:34]:34} "
                               f"{subject['batchMassKg']:>10} kg")
        return signed, signed[-1]

    async def batteries(
        self, keys: dict[str, Ed25519Key], cathode: dict[str, Any]
    ) -> dict[str, list[Any]]:
        self.console.rule("3. Battery DIDs, manufacturing credentials, custody to the OEM")
        cell_maker, oem = keys["cell maker"], keys["OEM"]
        passports: dict[str, list[Any]] = {}
        formats = [RDFC, JCS, JWT]
        for fmt in formats:
            battery = self.keystore.new_key("battery").controller
            passport = Passport(battery)
            made = samples.manufacturing_credential(battery, cell_maker.controller, rng=self.rng,
                                                    issued=self.tick(), cathode_batch=cathode)
            passport.append(self.issue(made, cell_maker, fmt))
            transfer = samples.custody_transfer(battery, cell_maker.controller, oem.controller,
                                                rng=self.rng, issued=self.tick(),
                                                previous=passport.link_for_next())
            passport.append(self.issue(transfer, cell_maker))
            fitted = samples.vehicle_integration(battery, oem.controller, rng=self.rng,
                                                 issued=self.tick(),
                                                 previous=passport.link_for_next())
            passport.append(self.issue(fitted, oem))
            passports[battery] = list(passport.entries)
            subject = made["credentialSubject"]
            self.console.print(f"  {battery}  {fmt:16} {subject['ratedEnergyKWh']} kWh, "
                               f"custodian now OEM", soft_wrap=True)
        return passports

    async def audit_and_report(
        self, batches: list[dict[str, Any]], passports: dict[str, list[Any]]
    ) -> None:
        self.console.rule("4. Audit, recycled content and the origin of the cobalt")
        first = next(iter(passports))
        for battery, entries in passports.items():
            report = await audit(entries, verifier=self.verifier, now=self.moment)
            self.expect(report.ok, f"audit of {battery}: {report.to_json()['findings']}")
            if battery == first:
                print_passport(report, entries, self.console)
                print_findings(report, self.console)
        manufactured = [e for entries in passports.values() for e in entries[:1]
                        if isinstance(e, dict)]
        graph = MaterialGraph.from_credentials([*batches, *manufactured])
        findings = check(graph)
        self.expect(not findings, f"mass balance: {[f.message for f in findings]}")
        self.console.print(f"  mass balance over {len(batches)} batches: "
                           f"{'conserved, no double counting' if not findings else findings}")
        shares = recycled_content(graph, first)
        print_recycled_content(compare_with_minimums(shares, on=date(2031, 8, 18)),
                               self.console)
        print_trace_table(trace(graph, first, "Co"), self.console)

    async def attacks(self, keys: dict[str, Ed25519Key], batches: list[dict[str, Any]],
                      cathode: dict[str, Any], passports: dict[str, list[Any]]) -> None:
        self.console.rule("5. Tampering, a forged entry, a double-counted batch")
        battery, entries = next(iter(passports.items()))

        tampered = copy.deepcopy(entries[0])
        tampered["credentialSubject"]["ratedEnergyKWh"] = "99.9"
        result = await self.verifier.verify_credential(tampered)
        self.expect(not result.verified, "the tampered credential verified")
        self.console.print("  ratedEnergyKWh raised to 99.9 → verifier: "
                           f"{', '.join(str(p.type) for p in result.problems)}")

        stranger = keys["stranger"]
        forged = samples.state_of_health(battery, stranger.controller, rng=self.rng,
                                         issued=self.tick(),
                                         previous=Passport.from_entries(entries).head)
        report = await audit([*entries, self.issue(forged, stranger)], verifier=self.verifier,
                             now=self.moment)
        kinds = {str(f.type) for f in report.errors}
        self.expect("custody-violation" in kinds, f"forged entry not caught: {kinds}")
        self.console.print(f"  a stranger appends a state-of-health entry → audit: "
                           f"{', '.join(sorted(kinds))}")

        greedy_battery = self.keystore.new_key("battery").controller
        greedy = samples.manufacturing_credential(greedy_battery, keys["cell maker"].controller,
                                                  rng=self.rng, issued=self.tick(),
                                                  cathode_batch=cathode)
        cathode_mass = cathode["credentialSubject"]["batchMassKg"]
        greedy["credentialSubject"]["materialInput"][0]["massKg"] = cathode_mass
        manufactured = [e[0] for e in passports.values() if isinstance(e[0], dict)]
        graph = MaterialGraph.from_credentials(
            [*batches, *manufactured, self.issue(greedy, keys["cell maker"])])
        kinds = {str(f.type) for f in check(graph)}
        self.expect("double-counted" in kinds, f"double counting not caught: {kinds}")
        self.console.print(f"  a fourth battery claims the whole {cathode_mass} kg cathode "
                           f"batch → mass balance: {', '.join(sorted(kinds))}")
        self.console.print("  tampering caught")
