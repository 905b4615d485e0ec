"""``bpc demo``: the first steps of a battery passport, end to end on one machine.

A cell maker mints a DID for each of three batteries, keeps the keys in an encrypted
keystore, issues a manufacturing credential per battery, and verifies them; then someone
alters the rated energy of one credential and the verifier names what is wrong.
"""

from __future__ import annotations

import asyncio
import copy
import random
import secrets
import stat
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.samples import manufacturing_credential
from credentials import JCS, RDFC, issue_credential, issue_jwt_credential, verify_credential
from credentials.keystore import Keystore


def run_demo(console: Console) -> int:
    """Run the demo and return the process exit code (0 when everything behaved)."""
    with tempfile.TemporaryDirectory(prefix="bpc-demo-") as tmp:
        return asyncio.run(_demo(console, Path(tmp) / "keystore"))


async def _demo(console: Console, keystore_dir: Path) -> int:
    keystore = Keystore(keystore_dir, secrets.token_urlsafe(16))
    cell_maker = keystore.new_key("cell maker (issuer)")
    console.rule("1. Cell maker identity and battery DIDs")
    console.print(f"cell maker DID: [bold]{cell_maker.controller}[/bold]", soft_wrap=True)
    batteries = [keystore.new_key(f"battery {i}").controller for i in range(1, 4)]
    mode = stat.S_IMODE(next(keystore_dir.iterdir()).stat().st_mode)
    console.print(f"keys stored encrypted in {keystore_dir} (file mode {mode:o})")
    for did in batteries:
        console.print(f"  minted battery DID {did}", soft_wrap=True)

    console.rule("2. Manufacturing credentials, one per battery")
    rng = random.Random(2027)
    suites = [RDFC, JCS, "jwt"]
    issued: list[dict[str, object] | str] = []
    for did, suite in zip(batteries, suites, strict=True):
        credential = manufacturing_credential(did, cell_maker.controller, rng=rng)
        if suite == "jwt":
            issued.append(issue_jwt_credential(credential, cell_maker))
        else:
            issued.append(issue_credential(credential, cell_maker, suite=suite))
        subject = credential["credentialSubject"]
        assert isinstance(subject, dict)
        console.print(f"  {suite:16} {subject['batteryChemistry']} "
                      f"{subject['ratedEnergyKWh']} kWh, {subject['cellCount']} cells, "
                      f"{subject['carbonFootprintKgCO2ePerKWh']} kg CO2e/kWh")

    console.rule("3. Verification")
    table = Table("battery", "format", "verified", "problems")
    all_valid = True
    for did, credential in zip(batteries, issued, strict=True):
        result = await verify_credential(credential)
        all_valid &= result.verified
        table.add_row(did[:24] + "…", result.suite or "", _yes(result.verified),
                      ", ".join(str(p.type) for p in result.problems) or "-")
    console.print(table)

    console.rule("4. Someone raises the rated energy of battery 1")
    tampered = copy.deepcopy(issued[0])
    assert isinstance(tampered, dict)
    subject = tampered["credentialSubject"]
    before = subject["ratedEnergyKWh"]
    subject["ratedEnergyKWh"] = "99.9"
    console.print(f"  ratedEnergyKWh {before} → 99.9")
    result = await verify_credential(tampered)
    for problem in result.problems:
        console.print(f"  verifier: [red]{problem.type}[/red] at {escape(str(problem.path))}: "
                      f"{escape(problem.message)}", soft_wrap=True)
    caught = not result.verified
    console.rule()
    if all_valid and caught:
        console.print("[green]demo complete:[/green] 3 credentials verified, tampering caught")
        return 0
    console.print("[red]demo failed:[/red] the verifier did not behave as expected")
    return 1


def _yes(flag: bool) -> str:
    return "[green]yes[/green]" if flag else "[red]no[/red]"
