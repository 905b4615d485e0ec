"""What an anonymous viewer of the passport page may see: a whitelist, never a blacklist.

A credential subject mixes public data (rated capacity) with data for persons with a
legitimate interest (the VIN, cell IDs) and for recyclers under contract (detailed
composition), and new terms get added to the vocabulary over time. So the page never shows
"everything except the restricted fields": it shows the terms listed here, and of those only
the ones the access matrix (``vocab.access``, Annex XIII point 1) calls public. A term added
here by mistake that the matrix restricts is dropped at run time (and a test fails).

Besides the attribute table the page shows four derived sections that issue 8 asks for openly
(``OPEN_BY_DECISION``). The access matrix files their inputs under "persons with a legitimate
interest" (Annex XIII point 4: status, state of health, negative events); the page shows only
the derived summary — a status word, SoH percentages over time, event kinds with counts and
times — and never the identifiers that tie them to a vehicle or a cell (VIN, cell UIDs,
positions, hub DIDs, technicians, reasons). Taking one of them off the public page is a change
of this one mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vocab.access import AccessLevel, access_level


@dataclass(frozen=True, slots=True)
class Shown:
    """A public term and how a person reads it."""

    term: str
    label: str
    unit: str = ""
    #: The section of the page it belongs to.
    group: str = "Identification"


_MANUFACTURING: tuple[Shown, ...] = (
    Shown("batteryIdentifier", "Battery identifier"),
    Shown("passportIdentifier", "Battery passport identifier"),
    Shown("batteryModel", "Model"),
    Shown("batteryCategory", "Category"),
    Shown("manufacturerName", "Manufacturer"),
    Shown("manufacturerIdentification", "Manufacturer ID (BPNL)"),
    Shown("manufacturingFacility", "Manufacturing facility (BPNA)"),
    Shown("manufacturingCountry", "Country of manufacture"),
    Shown("manufacturingDate", "Date of manufacture"),
    Shown("warrantyPeriodYears", "Commercial warranty", "years"),
    Shown("batteryChemistry", "Chemistry", group="Technical data"),
    Shown("ratedCapacityAh", "Rated capacity", "Ah", "Technical data"),
    Shown("ratedEnergyKWh", "Rated energy", "kWh", "Technical data"),
    Shown("nominalVoltageV", "Nominal voltage", "V", "Technical data"),
    Shown("minimumVoltageV", "Minimum voltage", "V", "Technical data"),
    Shown("maximumVoltageV", "Maximum voltage", "V", "Technical data"),
    Shown("batteryMassKg", "Mass", "kg", "Technical data"),
    Shown("lengthMm", "Length", "mm", "Technical data"),
    Shown("widthMm", "Width", "mm", "Technical data"),
    Shown("heightMm", "Height", "mm", "Technical data"),
    Shown("operatingTemperatureMinC", "Lowest operating temperature", "°C", "Technical data"),
    Shown("operatingTemperatureMaxC", "Highest operating temperature", "°C", "Technical data"),
    Shown("expectedLifetimeCycles", "Expected lifetime", "cycles", "Technical data"),
)

#: Credential type → the public terms of its subject the attribute table shows.
PUBLIC_ATTRIBUTES: dict[str, tuple[Shown, ...]] = {
    "BatteryManufacturingCredential": _MANUFACTURING,
    "PackAssemblyCredential": (
        Shown("assemblyDate", "Pack assembly date"),
        Shown("assemblyFacility", "Pack assembly facility"),
    ),
    "RepurposingCredential": (
        Shown("originalBattery", "Repurposed from battery", group="Second life"),
        Shown("newApplication", "New application", group="Second life"),
    ),
}

#: Public terms the carbon-footprint and recycled-content section reads.
CARBON_TERMS = ("carbonFootprintKgCO2ePerKWh", "carbonFootprintPerformanceClass",
                "ratedEnergyKWh")
RECYCLED_TERMS: dict[str, str] = {
    "Co": "recycledContentCobaltPct",
    "Li": "recycledContentLithiumPct",
    "Ni": "recycledContentNickelPct",
    "Pb": "recycledContentLeadPct",
}

#: Restricted terms whose *derived summary* issue 8 shows openly (see the module docstring):
#: the section → the terms it reads. Nothing else of these credentials reaches the page.
OPEN_BY_DECISION: dict[str, tuple[str, ...]] = {
    "status": ("batteryStatus", "shipmentPurpose"),
    "state-of-health chart": ("stateOfHealthPct", "measurementTime"),
    "events": ("thermalEventCount", "eventCounts", "eventKind", "count", "firstEventAt",
               "lastEventAt", "cellConfiguration", "observedAt", "replacedAt"),
    "custody timeline": ("previousCredential",),
}


@cache
def public_attributes(credential_type: str) -> tuple[Shown, ...]:
    """The whitelisted terms of ``credential_type`` that the access matrix calls public."""
    return tuple(shown for shown in PUBLIC_ATTRIBUTES.get(credential_type, ())
                 if access_level(shown.term) is AccessLevel.PUBLIC)


def is_public(term: str) -> bool:
    return access_level(term) is AccessLevel.PUBLIC


__all__ = ["CARBON_TERMS", "OPEN_BY_DECISION", "PUBLIC_ATTRIBUTES", "RECYCLED_TERMS", "Shown",
           "is_public", "public_attributes"]
