"""The battery's current status (Annex XIII 4(c)) as the chain's verified entries tell it.

Walked in chain order, each entry that changes the battery's life sets the status: the
manufacturer's declared ``batteryStatus``; a repair makes it re-used (BattReg: repair of a
non-waste battery keeps the passport); a repurposing entry starts a repurposed passport; a
shipment for recycling makes it waste (Basel e-waste guidelines: shipped to be recycled is
shipped as waste); a recycling outcome ends it as recycled (Art. 77(8)). Entries that fail
verification change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .entries import PageEntry, verified

LABELS: dict[str, str] = {
    "original": "Original",
    "reused": "Re-used (repaired)",
    "repurposed": "Repurposed (second life)",
    "waste": "Waste (for recycling)",
    "recycled": "Recycled",
}
_DECLARED = {"Original": "original", "Reused": "reused", "Repurposed": "repurposed",
             "Waste": "waste", "Recycled": "recycled"}


@dataclass(frozen=True, slots=True)
class Status:
    value: str
    since: datetime | None
    #: The credential type that set it (None: no verified entry says anything).
    basis: str | None

    @property
    def label(self) -> str:
        return LABELS.get(self.value, self.value)


def _status_of(entry: PageEntry, current: str) -> str | None:
    subject = entry.subject
    match entry.credential_type:
        case "BatteryManufacturingCredential":
            return _DECLARED.get(str(subject.get("batteryStatus")))
        case "RepairCredential":
            return "reused" if current == "original" else None
        case "RepurposingCredential":
            return "repurposed"
        case "ShipmentCredential":
            return "waste" if subject.get("shipmentPurpose") == "Recycling" else None
        case "RecyclingOutcomeCredential":
            return "recycled"
    return None


def current_status(entries: Sequence[PageEntry]) -> Status:
    status = Status("original", None, None)
    for entry in verified(entries):
        if status.value == "recycled":
            break  # nothing comes back from recycling
        changed = _status_of(entry, status.value)
        if changed is not None and (changed != status.value or status.basis is None):
            status = Status(changed, entry.issued_at, entry.credential_type)
    return status


__all__ = ["LABELS", "Status", "current_status"]
