"""State of health over time and the thermal and tamper events, from verified entries.

The series comes from ``StateOfHealthCredential`` readings (``measurementTime``,
``stateOfHealthPct``). Events come from three places: the hub bridge's
``CellEventBatchCredential`` counts (thermal excursions and cell-ID mismatches, with the
batch's time window), its ``CellConfigurationCredential`` tamper marker and
``CellReplacementCredential``, and rises of the BMS's ``thermalEventCount`` between readings.
Only kinds, counts and times leave this module: which cell, which position, whose UID and why
stay restricted (``disclosure``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .entries import PageEntry, instant, verified

#: Hub event kinds the page lists, and what they mean to a person.
HUB_EVENT_LABELS: dict[str, tuple[str, str]] = {
    "thermal-excursion": ("thermal", "Cell temperature above the safe limit"),
    "cell-id-mismatch": ("tamper", "A cell reported an unexpected unique ID"),
}


@dataclass(frozen=True, slots=True)
class SohPoint:
    at: datetime
    pct: Decimal


@dataclass(frozen=True, slots=True)
class Event:
    """``category`` is ``thermal`` or ``tamper``; ``end`` only for a batch's time window."""

    category: str
    kind: str
    description: str
    start: datetime
    end: datetime | None = None
    count: int = 1


def _pct(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        pct = Decimal(value)
    except InvalidOperation:
        return None
    return pct if pct.is_finite() and 0 <= pct <= 100 else None


def soh_series(entries: Sequence[PageEntry]) -> list[SohPoint]:
    points = []
    for entry in verified(entries, "StateOfHealthCredential"):
        at, pct = instant(entry.subject.get("measurementTime")), _pct(
            entry.subject.get("stateOfHealthPct"))
        if at is not None and pct is not None:
            points.append(SohPoint(at, pct))
    return sorted(points, key=lambda p: p.at)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _batch_events(entry: PageEntry) -> list[Event]:
    start = instant(entry.subject.get("firstEventAt"))
    end = instant(entry.subject.get("lastEventAt"))
    counts = entry.subject.get("eventCounts")
    if start is None or not isinstance(counts, list):
        return []
    found = []
    for item in counts:
        if not isinstance(item, dict):
            continue
        kind, count = item.get("eventKind"), _count(item.get("count"))
        if isinstance(kind, str) and kind in HUB_EVENT_LABELS and count:
            category, description = HUB_EVENT_LABELS[kind]
            found.append(Event(category, kind, description, start, end, count))
    return found


def _single_event(entry: PageEntry) -> Event | None:
    subject = entry.subject
    if entry.credential_type == "CellConfigurationCredential":
        at = instant(subject.get("observedAt"))
        if at is None:
            return None
        if subject.get("cellConfiguration") == "unverified":
            return Event("tamper", "configuration-unverified",
                         "Cell configuration marked unverified (possible tampering)", at)
        return Event("tamper", "configuration-verified", "Cell configuration verified again",
                     at)
    if entry.credential_type == "CellReplacementCredential":
        at = instant(subject.get("replacedAt"))
        if at is not None:
            return Event("tamper", "cell-replaced",
                         "Cell replaced by an authorised technician", at)
    return None


def events(entries: Sequence[PageEntry]) -> list[Event]:
    found: list[Event] = []
    thermal_before = 0
    for entry in verified(entries):
        if entry.credential_type == "CellEventBatchCredential":
            found.extend(_batch_events(entry))
        elif entry.credential_type == "StateOfHealthCredential":
            count = _count(entry.subject.get("thermalEventCount"))
            at = instant(entry.subject.get("measurementTime"))
            if count is not None and at is not None:
                if count > thermal_before:
                    found.append(Event("thermal", "bms-thermal-event",
                                       "Thermal event reported by the battery management "
                                       "system", at, None, count - thermal_before))
                thermal_before = max(thermal_before, count)
        else:
            single = _single_event(entry)
            if single is not None:
                found.append(single)
    return sorted(found, key=lambda e: e.start)


__all__ = ["HUB_EVENT_LABELS", "Event", "SohPoint", "events", "soh_series"]
