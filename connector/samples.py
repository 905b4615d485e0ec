"""Realistic battery passport credentials for the demo and the benchmarks.

Value ranges follow ``shared/passport-model/derived/synthetic-ranges.json`` (an NMC811 pack of
a passenger car); measurements are xsd:decimal strings so no peer reads them differently.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2


def _decimal(rng: random.Random, low: float, high: float, digits: int = 1) -> str:
    return f"{rng.uniform(low, high):.{digits}f}"


def manufacturing_credential(
    battery_did: str,
    issuer_did: str,
    *,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``BatteryManufacturingCredential`` with about 30 subject fields."""
    rng = rng or random.Random()
    issued = issued or datetime.now(UTC).replace(microsecond=0)
    made = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 300))
    cells = rng.randrange(90, 109)
    energy = rng.uniform(60, 85)
    capacity_ah = energy * 1000 / (cells * 3.65)
    serial = f"{rng.randrange(10**6, 10**7)}"
    return {
        "@context": [CREDENTIALS_V2, BATTERY_CONTEXT_V1],
        "id": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "type": ["VerifiableCredential", "BatteryManufacturingCredential"],
        "issuer": issuer_did,
        "validFrom": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credentialSubject": {
            "id": battery_did,
            "type": "Battery",
            "passportIdentifier": f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "batteryIdentifier": f"0AXPEA1TRC{serial}R5F0000123"[:24],
            "batteryCategory": "bp:ElectricVehicleBattery",
            "batteryModel": f"NMC811-{cells}S-{energy:.0f}",
            "batteryStatus": "bp:Original",
            "manufacturerIdentification": f"BPNL{rng.randrange(10**11, 10**12):012d}",
            "manufacturerName": "Cellforge Europe GmbH",
            "manufacturingFacility": f"BPNA{rng.randrange(10**11, 10**12):012d}",
            "manufacturingCountry": rng.choice(["DE", "PL", "HU", "SE"]),
            "manufacturingDate": made.isoformat(),
            "batteryChemistry": "NMC811",
            "cathodeActiveMaterial": "LiNi0.8Mn0.1Co0.1O2",
            "anodeActiveMaterial": "graphite",
            "cellFormat": rng.choice(["prismatic", "pouch", "cylindrical 4680"]),
            "cellCount": cells,
            "moduleCount": rng.choice([4, 6, 8, 12]),
            "ratedCapacityAh": f"{capacity_ah:.1f}",
            "ratedEnergyKWh": f"{energy:.1f}",
            "nominalVoltageV": f"{cells * 3.65:.1f}",
            "minimumVoltageV": f"{cells * 2.5:.1f}",
            "maximumVoltageV": f"{cells * 4.2:.1f}",
            "batteryMassKg": _decimal(rng, 300, 700),
            "lengthMm": _decimal(rng, 1800, 2400, 0),
            "widthMm": _decimal(rng, 1200, 1600, 0),
            "heightMm": _decimal(rng, 110, 160, 0),
            "operatingTemperatureMinC": _decimal(rng, -40, -20, 0),
            "operatingTemperatureMaxC": _decimal(rng, 50, 60, 0),
            "expectedLifetimeCycles": rng.randrange(1000, 2001),
            "warrantyPeriodYears": 8,
            "carbonFootprintKgCO2ePerKWh": _decimal(rng, 0.08, 0.25, 3),
            "carbonFootprintPerformanceClass": rng.choice(["A", "B", "C"]),
            "recycledContentCobaltPct": _decimal(rng, 10, 26),
            "recycledContentLithiumPct": _decimal(rng, 4, 12),
            "recycledContentNickelPct": _decimal(rng, 4, 15),
            "inputBatch": [f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"],
        },
    }
