"""``bpc passport``: import, show, audit and trace, run as a real process on real files."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connector import samples
from credentials import JCS, RDFC, key_from_seed
from credentials.passport.chain import Passport
from credentials.passport.issuing import issue_passport_credential

SUPPLIER = key_from_seed(bytes([41] * 32))
CELL_MAKER = key_from_seed(bytes([42] * 32))
OEM = key_from_seed(bytes([43] * 32))
BATTERY = key_from_seed(bytes([44] * 32)).controller


def bpc(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", "passport", *args,
                           "--data", str(data)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def supply_chain() -> dict[str, Any]:
    rng = random.Random(8)
    batches = [issue_passport_credential(b, SUPPLIER, suite=JCS) for b in
               samples.nmc811_material_chain(SUPPLIER.controller, rng=rng)]
    passport = Passport(BATTERY)
    made = samples.manufacturing_credential(BATTERY, CELL_MAKER.controller, rng=rng,
                                            cathode_batch=batches[-1])
    passport.append(issue_passport_credential(made, CELL_MAKER, suite=RDFC))
    transfer = samples.custody_transfer(BATTERY, CELL_MAKER.controller, OEM.controller, rng=rng,
                                        previous=passport.link_for_next())
    passport.append(issue_passport_credential(transfer, CELL_MAKER, suite=JCS))
    fitted = samples.vehicle_integration(BATTERY, OEM.controller, rng=rng,
                                         previous=passport.link_for_next())
    passport.append(issue_passport_credential(fitted, OEM, suite="jwt"))
    return {"batches": batches, "entries": list(passport.entries)}


def _write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def test_import_show_audit_trace(supply_chain: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = _write_jsonl(tmp_path / "all.jsonl",
                          [*supply_chain["batches"], *supply_chain["entries"]])
    imported = bpc("import", str(source), data=data)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.stdout.count("added") == len(supply_chain["batches"]) + 3

    shown = bpc("show", BATTERY, data=data)
    assert shown.returncode == 0, shown.stderr
    assert "BatteryManufacturingCredential" in shown.stdout
    assert OEM.controller in shown.stdout  # the custodian after the transfer
    assert "recycled content" in shown.stdout and "Co" in shown.stdout

    audited = bpc("audit", BATTERY, "--json", data=data)
    assert audited.returncode == 0, audited.stdout
    assert json.loads(audited.stdout)["ok"] is True

    traced = bpc("trace", BATTERY, "--element", "Co", "--json", data=data)
    assert traced.returncode == 0, traced.stderr
    report = json.loads(traced.stdout)
    shares = sum(float(s["sharePct"]) for s in report["sources"])
    assert abs(shares - 100.0) < 0.01
    assert report["massBalance"] == []


def test_audit_of_a_file_reports_a_forged_entry(
    supply_chain: dict[str, Any], tmp_path: Path
) -> None:
    stranger = key_from_seed(bytes([45] * 32))
    entries = supply_chain["entries"]
    forged = samples.state_of_health(BATTERY, stranger.controller, rng=random.Random(9),
                                     previous=Passport.from_entries(entries).head)
    path = _write_jsonl(tmp_path / "passport.jsonl",
                        [*entries, issue_passport_credential(forged, stranger, suite=JCS)])
    audited = bpc("audit", str(path), data=tmp_path / "unused")
    assert audited.returncode == 1
    assert "custody-violation" in audited.stdout


def test_import_refuses_a_tampered_credential(
    supply_chain: dict[str, Any], tmp_path: Path
) -> None:
    tampered = json.loads(json.dumps(supply_chain["entries"][0]))
    tampered["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    data = tmp_path / "data"
    result = bpc("import", str(_write_jsonl(tmp_path / "t.jsonl", [tampered])), data=data)
    assert result.returncode == 1 and "rejected" in result.stdout
    assert not (data / "credentials.jsonl").exists()


def test_unknown_battery_and_bad_files_are_clear_errors(tmp_path: Path) -> None:
    missing = bpc("show", "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH",
                  data=tmp_path)
    assert missing.returncode == 2 and "no passport entries" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{nope")
    broken = bpc("audit", str(garbage), data=tmp_path)
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    neither = bpc("audit", "not-a-did", data=tmp_path)
    assert neither.returncode == 2 and "neither a file nor a DID" in neither.stderr


def test_a_repurposed_passport_audits_against_its_original(
    supply_chain: dict[str, Any], tmp_path: Path
) -> None:
    original = Passport.from_entries(supply_chain["entries"])
    second_life = key_from_seed(bytes([46] * 32)).controller
    first = samples.repurposing(second_life, BATTERY, OEM.controller, previous=original.head,
                                rng=random.Random(10))
    new_passport = _write_jsonl(tmp_path / "second-life.jsonl",
                                [issue_passport_credential(first, OEM, suite=JCS)])
    original_file = _write_jsonl(tmp_path / "original.jsonl", supply_chain["entries"])
    alone = bpc("audit", str(new_passport), data=tmp_path)
    assert alone.returncode == 1 and "broken-link" in alone.stdout
    linked = bpc("audit", str(new_passport), "--original", str(original_file), data=tmp_path)
    assert linked.returncode == 0, linked.stdout


def test_vc_issue_holds_passport_types_to_their_shapes(tmp_path: Path) -> None:
    env = {**os.environ, "BPC_KEYSTORE": str(tmp_path / "keys"),
           "BPC_KEYSTORE_PASSPHRASE": "pw", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                              text=True, timeout=120, env=env)

    issuer = run("key", "new").stdout.strip().split("#")[0]
    unsigned = samples.state_of_health(BATTERY, issuer, rng=random.Random(11))
    unsigned["credentialSubject"]["stateOfHealthPct"] = "120.0"
    source = tmp_path / "soh.json"
    source.write_text(json.dumps(unsigned))
    refused = run("vc", "issue", str(source))
    assert refused.returncode == 2
    assert "stateOfHealthPct" in refused.stderr and "Traceback" not in refused.stderr
    unsigned["credentialSubject"]["stateOfHealthPct"] = "91.5"
    source.write_text(json.dumps(unsigned))
    assert run("vc", "issue", str(source)).returncode == 0
