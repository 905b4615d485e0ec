"""A battery with a rich passport on a running node, for the passport page tests.

Built the way the node builds passports (``append_to_passport``: each entry signed by the
node, linked to the head, checked against the chain): manufacturing, vehicle integration,
state-of-health readings over four years, the hub bridge's credentials (an event batch with
thermal excursions and a cell-ID mismatch, the tamper marker, an authorised cell replacement),
a repair and a shipment for recycling. Restricted values carry ``RESTRICTED_MARKER`` so a test
can prove they never reach an anonymous viewer; a dismantling-safety asset with the same
marker in its data is published with its default offer.

Imported as ``tests.connector.passport_page.rich_passport``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from connector import samples
from connector.app import IDENTITY, STORE
from connector.management.auth import OPERATOR_AUTH
from connector.passports import append_to_passport
from connector.store import BatteryRecord
from credentials import JCS
from credentials.did_key import key_from_seed
from credentials.passport.chain import Secured
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.types import HUB_CONTEXTS

RESTRICTED_MARKER = "RESTRICTED-7f3a9c-DO-NOT-SHOW"
DISMANTLING_STEP = "unbolt the 12 modules with the insulated torque wrench"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
#: Four and a half years ago: every entry is valid now (a future validFrom fails to verify).
START = (datetime.now(UTC) - timedelta(days=365 * 4 + 180)).replace(microsecond=0)


@dataclass
class RichPassport:
    battery: str
    battery_identifier: str
    vin: str
    soh: list[str]
    asset_id: str
    offer_id: str | None


def battery_did(seed: int) -> str:
    return key_from_seed(random.Random(seed).randbytes(32)).controller


async def mint(app: web.Application, battery: str) -> None:
    async with app[STORE].transaction() as tx:
        await tx.put_battery(BatteryRecord(did=battery, key_id="key-1"))


async def append(app: web.Application, battery: str,
                 make: Any, *, shapes_tested: bool = False) -> str:
    """Sign ``make(previous)`` (an unsigned credential) as the node and append it."""
    key = app[IDENTITY].signing_key

    def build(previous: str | None) -> Secured:
        return issue_passport_credential(make(previous), key, suite=JCS,
                                         shapes_tested=shapes_tested)

    record = await append_to_passport(app, battery, build)
    return record.digest


def hub_credential(kind: str, issuer: str, subject: dict[str, Any], issued: datetime,
                   previous: str | None) -> dict[str, Any]:
    linked = {**subject, "previousCredential": previous} if previous else subject
    return {"@context": list(HUB_CONTEXTS), "id": f"urn:uuid:{uuid.uuid4()}",
            "type": ["VerifiableCredential", kind], "issuer": issuer,
            "validFrom": issued.strftime("%Y-%m-%dT%H:%M:%SZ"), "credentialSubject": linked}


def manufacturing(battery: str, issuer: str, previous: str | None,
                  **overrides: Any) -> dict[str, Any]:
    made = samples.manufacturing_credential(battery, issuer, rng=random.Random(7),
                                            issued=START, previous=previous)
    made["credentialSubject"].update(overrides)
    return made


async def build_rich_passport(app: web.Application, session: aiohttp.ClientSession,
                              base_url: str, *, seed: int = 11,
                              manufacturing_overrides: dict[str, Any] | None = None,
                              ) -> RichPassport:
    node = app[IDENTITY].did
    battery = battery_did(seed)
    await mint(app, battery)
    await append(app, battery, lambda p: manufacturing(battery, node, p,
                                                       **(manufacturing_overrides or {})))
    fitted: dict[str, Any] = {}

    def integration(previous: str | None) -> dict[str, Any]:
        credential = samples.vehicle_integration(battery, node, rng=random.Random(8),
                                                 issued=START + timedelta(days=20),
                                                 previous=previous)
        credential["credentialSubject"]["vehicleModel"] = f"ID.7 {RESTRICTED_MARKER}"
        fitted.update(credential["credentialSubject"])
        return credential

    await append(app, battery, integration)
    soh: list[str] = []
    for year in range(1, 5):
        def reading(previous: str | None, year: int = year) -> dict[str, Any]:
            credential = samples.state_of_health(
                battery, node, age_years=year, rng=random.Random(100 + year),
                issued=START + timedelta(days=365 * year), previous=previous)
            subject = credential["credentialSubject"]
            subject["thermalEventCount"] = 1 if year >= 3 else 0
            soh.append(subject["stateOfHealthPct"])
            return credential

        await append(app, battery, reading)
        if year == 2:
            await _hub_entries(app, battery, node, START + timedelta(days=365 * 2 + 30))
    await append(app, battery, lambda p: _repair(battery, node, p))
    recycler = key_from_seed(bytes(32)).controller
    await append(app, battery, lambda p: samples.shipment(
        battery, node, recycler, purpose="Recycling", rng=random.Random(9),
        issued=START + timedelta(days=365 * 4 + 40), previous=p))
    asset_id, offer_id = await publish_dismantling(app, session, base_url, battery)
    made = manufacturing(battery, node, None, **(manufacturing_overrides or {}))
    return RichPassport(battery, made["credentialSubject"]["batteryIdentifier"],
                        fitted["vehicleIdentificationNumber"], soh, asset_id, offer_id)


async def _hub_entries(app: web.Application, battery: str, node: str, at: datetime) -> None:
    hub = key_from_seed(bytes([3]) * 32).controller
    old_cell, new_cell = (key_from_seed(bytes([n]) * 32).controller for n in (4, 5))
    batch = {"id": battery, "type": "Battery", "hub": hub,
             "merkleRoot": "A" * 43, "treeSize": 7,
             "firstEventAt": (at - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "lastEventAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "eventCounts": [{"eventKind": "cell-id-mismatch", "count": 1},
                             {"eventKind": "cell-summary", "count": 3},
                             {"eventKind": "thermal-excursion", "count": 3}],
             "cellConfiguration": "unverified"}
    marker = {"id": battery, "type": "Battery", "cellConfiguration": "unverified",
              "position": 23, "expectedCellUid": f"UID-{RESTRICTED_MARKER}-A",
              "observedCellUid": "UID-0000-B",
              "observedAt": (at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "eventId": "evt-23"}
    replacement = {"id": battery, "type": "Battery", "position": 23, "oldCellDid": old_cell,
                   "newCellDid": new_cell, "oldCellUid": "UID-0000-A",
                   "newCellUid": "UID-0000-C", "technician": node,
                   "technicianCredential": "urn:uuid:0b6c8f4e-3f7a-4d5e-9c1b-2a3d4e5f6a7b",
                   "replacedAt": (at + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "reason": f"swapped cell, case {RESTRICTED_MARKER}"}
    for kind, subject, when in (("CellConfigurationCredential", marker, at),
                                ("CellEventBatchCredential", batch, at + timedelta(minutes=5)),
                                ("CellReplacementCredential", replacement,
                                 at + timedelta(days=2))):
        await append(app, battery, lambda p, k=kind, s=subject, w=when: hub_credential(
            k, node, s, w, p))


def _repair(battery: str, node: str, previous: str | None) -> dict[str, Any]:
    credential = samples.repair(battery, node, rng=random.Random(10),
                                issued=START + timedelta(days=365 * 3 + 100), previous=previous)
    for item in credential["credentialSubject"]["replacement"]:
        item["reason"] = f"module swelling {RESTRICTED_MARKER}"
    return credential


async def publish_dismantling(app: web.Application, session: aiohttp.ClientSession,
                              base_url: str, battery: str) -> tuple[str, str | None]:
    """A dismantling-safety asset with its default offer, through the management API."""
    key = app[OPERATOR_AUTH].take_generated_key()
    assert key is not None
    body = {"batteryDid": battery, "accessLevel": "dismantling-safety",
            "title": f"Dismantling manual {RESTRICTED_MARKER}",
            "description": DISMANTLING_STEP,
            "dataSource": {"kind": "inline", "data": {
                "dismantlingSteps": [DISMANTLING_STEP, RESTRICTED_MARKER]}}}
    async with session.post(f"{base_url}/management/assets", json=body,
                            headers={"Authorization": f"Bearer {key}"}) as response:
        answer = await response.json()
        assert response.status == 201, answer
    offer = answer.get("defaultOffer")
    return answer["id"], offer["id"] if offer else None


__all__ = ["DISMANTLING_STEP", "IMG", "RESTRICTED_MARKER", "SCRIPT", "START", "RichPassport",
           "append", "battery_did", "build_rich_passport", "hub_credential", "manufacturing",
           "mint"]
