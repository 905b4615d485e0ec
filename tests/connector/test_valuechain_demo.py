"""``bpc demo`` end to end: five node processes play the battery's life. The test judges the
outcome from what the nodes stored (their SQLite files, read after the nodes stopped), not from
the printout."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.connector.node_processes import sqlite_reader
from tests.connector.test_cli import bpc

pytestmark = pytest.mark.slow
ROLES = ("mine", "cellmaker", "oem", "fleet", "recycler")


def _chains(db: Path) -> dict[str, list[str]]:
    """Each battery's passport in this store: the credential type of each position."""
    with sqlite_reader(db) as conn:
        rows = conn.execute("SELECT battery_did, types FROM credentials "
                            "ORDER BY battery_did, position").fetchall()
    chains: dict[str, list[str]] = {}
    for row in rows:
        kind = next(t for t in json.loads(row["types"]) if t != "VerifiableCredential")
        chains.setdefault(row["battery_did"], []).append(kind.removesuffix("Credential"))
    return chains


def _rows(db: Path, sql: str) -> list[sqlite3.Row]:
    with sqlite_reader(db) as conn:
        return conn.execute(sql).fetchall()


def test_the_demo_plays_the_battery_life_across_five_nodes(tmp_path: Path) -> None:
    root = tmp_path / "bpc-demo"
    # as `make demo` runs it: the default, relative directory, from where the user is
    run = bpc("demo", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stores = {role: root / role / "data" / "node.db" for role in ROLES}
    for role, db in stores.items():
        assert db.exists() and (root / role / "node.toml").exists(), role

    recycled = _chains(stores["recycler"])
    assert len(recycled) == 1
    battery, life = next(iter(recycled.items()))
    assert life[:3] == ["BatteryManufacturing", "CustodyTransfer", "VehicleIntegration"]
    assert {"CellConfiguration", "CellEventBatch", "CellReplacement"} <= set(life)
    assert life.count("StateOfHealth") == 3 and life.count("CustodyTransfer") == 3
    assert life[-3:] == ["Shipment", "CustodyTransfer", "RecyclingOutcome"]

    # each node holds the chain as far as it kept custody; the cell maker built a second pack
    assert len(_chains(stores["oem"])[battery]) == life.index("StateOfHealth")
    assert len(_chains(stores["fleet"])[battery]) == len(life) - 1
    made = _chains(stores["cellmaker"])
    assert len(made) == 2 and made[battery] == life[:2]
    assert [c for b, c in made.items() if b != battery] == [["BatteryManufacturing"]]
    assert _chains(stores["mine"]) == {}

    # the hub: every batch of events is covered by a credential in the OEM's store
    batches = _rows(stores["oem"], "SELECT credential_digest FROM hub_batches")
    assert batches and all(b["credential_digest"] for b in batches)
    assert len(batches) == life.count("CellEventBatch")

    # the recycler negotiated, fetched the dismantling data and still holds it (7 days)
    agreements = _rows(stores["oem"], "SELECT consumer_did FROM agreements")
    assert len(agreements) == 1
    received = _rows(stores["recycler"], "SELECT data, purged_at FROM received_data")
    assert len(received) == 1 and received[0]["purged_at"] is None
    # the fleet operator's shipment declaration verifies offline once the nodes are gone:
    # recycling is waste, with the rule that decided it
    declaration = root / "shipment-declaration.json"
    assert declaration.exists() and (root / "shipment-cache").is_dir()
    verdict = bpc("shipment", "verify", str(declaration), "--offline-cache",
                  str(root / "shipment-cache"), "--json")
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr  # 1: waste, by design
    report = json.loads(verdict.stdout)
    assert report["signatureValid"] and not report["findings"]
    items = report["items"]
    assert [(i["battery"], i["classification"]) for i in items] == [(battery, "waste")]
    kept = json.loads(received[0]["data"])["json"]
    assert kept["batteryDid"] == battery and len(kept["data"]["dismantlingSteps"]) == 5


def test_a_node_that_cannot_start_fails_the_demo_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    (root / "oem").mkdir(parents=True)
    (root / "oem" / "api-key").write_text("short\n")  # an operator key the node refuses
    run = bpc("demo", "--dir", str(root))
    assert run.returncode == 1
    assert "node oem exited" in run.stdout and "Traceback" not in run.stdout
