"""The passport page's view model: everything the HTML and the JSON show, and nothing more.

Built by one pure function from the stored chain's entries (read and verified), the node's
offers and its public URL, so the page and the JSON cannot disagree, and a test can hold the
view against restricted values without a browser. Values are kept as the credential states
them (strings); the templates escape them, the JSON encoder quotes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .content import CarbonFootprint, RecycledRow, carbon_footprint, minimum_dates
from .content import recycled_content as declared_recycled_content
from .disclosure import public_attributes
from .entries import PageEntry, verified
from .health import Event, SohPoint, events, soh_series
from .identifiers import page_path, page_url, passport_id
from .restricted import RestrictedSection
from .status import Status, current_status
from .verification import Problem

#: What each credential type means in the battery's life, for the custody timeline.
ENTRY_LABELS: dict[str, str] = {
    "BatteryManufacturingCredential": "Manufactured",
    "PackAssemblyCredential": "Pack assembled",
    "VehicleIntegrationCredential": "Fitted to a vehicle",
    "StateOfHealthCredential": "State-of-health reading",
    "RepairCredential": "Repaired",
    "RepurposingCredential": "Repurposed (new passport)",
    "ShipmentCredential": "Shipped",
    "CustodyTransferCredential": "Custody handed on",
    "RecyclingOutcomeCredential": "Recycled",
    "CellEventBatchCredential": "Cell-monitoring events recorded",
    "CellConfigurationCredential": "Cell configuration checked",
    "CellReplacementCredential": "Cell replaced",
    "UnreadableEntry": "Unreadable entry",
}


@dataclass(frozen=True, slots=True)
class Attribute:
    term: str
    label: str
    value: str
    unit: str
    group: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class TimelineItem:
    position: int
    credential_type: str
    label: str
    issuer: str
    issued_at: datetime | None
    digest: str
    verified: bool
    problems: tuple[Problem, ...]
    by_this_node: bool


@dataclass(frozen=True, slots=True)
class PassportView:
    battery: str
    passport_id: str
    page_url: str
    node_did: str
    dsp_endpoint: str
    chain_ok: bool
    chain_problems: tuple[Problem, ...]
    status: Status
    attributes: tuple[Attribute, ...]
    carbon: CarbonFootprint | None
    recycled: tuple[RecycledRow, ...]
    timeline: tuple[TimelineItem, ...]
    soh: tuple[SohPoint, ...]
    events: tuple[Event, ...]
    restricted: tuple[RestrictedSection, ...]

    @property
    def path(self) -> str:
        return page_path(self.battery)

    @property
    def title(self) -> str:
        for attribute in self.attributes:
            if attribute.term == "batteryIdentifier":
                return attribute.value
        return self.passport_id

    @property
    def unverified_count(self) -> int:
        return sum(1 for item in self.timeline if not item.verified)

    def attribute_groups(self) -> list[tuple[str, list[Attribute]]]:
        groups: dict[str, list[Attribute]] = {}
        for attribute in self.attributes:
            groups.setdefault(attribute.group, []).append(attribute)
        return list(groups.items())

    def to_json(self) -> dict[str, Any]:
        first, second = minimum_dates()
        return {
            "battery": self.battery,
            "passportId": self.passport_id,
            "pageUrl": self.page_url,
            "qrCode": {"svg": self.page_url + "/qr.svg", "png": self.page_url + "/qr.png"},
            "status": {"value": self.status.value, "label": self.status.label,
                       "since": _time(self.status.since), "basis": self.status.basis},
            "verification": {"ok": self.chain_ok,
                             "unverifiedEntries": self.unverified_count,
                             "problems": [_problem(p) for p in self.chain_problems]},
            "attributes": [{"term": a.term, "label": a.label, "value": a.value,
                            "unit": a.unit or None, "group": a.group}
                           for a in self.attributes],
            "carbonFootprint": None if self.carbon is None else {
                "kgCO2ePerKWh": str(self.carbon.kg_co2e_per_kwh),
                "performanceClass": self.carbon.performance_class,
                "totalKgCO2e": _decimal(self.carbon.total_kg_co2e)},
            "recycledContent": {
                "minimumsFrom": [first.isoformat(), second.isoformat()],
                "elements": [{"element": r.element, "declaredPct": _decimal(r.declared_pct),
                              "minimumPct": [_decimal(r.minimum_first_pct),
                                             _decimal(r.minimum_second_pct)],
                              "meetsMinimum": [r.meets_first, r.meets_second]}
                             for r in self.recycled]},
            "custody": [{"position": t.position, "type": t.credential_type, "label": t.label,
                         "issuer": t.issuer, "issuedAt": _time(t.issued_at),
                         "digest": t.digest, "verified": t.verified,
                         "problems": [_problem(p) for p in t.problems]}
                        for t in self.timeline],
            "stateOfHealth": [{"at": _time(p.at), "pct": str(p.pct)} for p in self.soh],
            "events": [{"category": e.category, "kind": e.kind, "description": e.description,
                        "start": _time(e.start), "end": _time(e.end), "count": e.count}
                       for e in self.events],
            "restricted": [{"category": s.category, "title": s.info.title,
                            "access": s.info.audience, "holds": s.info.holds,
                            "requestAccess": self.page_url + "/access/" + s.category,
                            "offers": [{"dataset": o.dataset, "offer": o.offer}
                                       for o in s.offers]}
                           for s in self.restricted],
        }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _problem(problem: Problem) -> dict[str, Any]:
    return {"type": problem.type, "reason": problem.reason, "path": problem.path,
            "severity": "error" if problem.error else "warning"}


def _scalar(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def public_attribute_rows(entries: Sequence[PageEntry], public_base_url: str
                          ) -> list[Attribute]:
    """The whitelisted public terms of the verified entries; a later entry's value wins."""
    found: dict[str, Attribute] = {}
    for entry in verified(entries):
        for shown in public_attributes(entry.credential_type):
            value = _scalar(entry.subject.get(shown.term))
            if value is None:
                continue
            link = page_url(public_base_url, value) if shown.term == "originalBattery" \
                and value.startswith("did:") else None
            found[shown.term] = Attribute(shown.term, shown.label, value, shown.unit,
                                          shown.group, link)
    return list(found.values())


def build_view(*, battery: str, entries: Sequence[PageEntry], chain_ok: bool,
               chain_problems: Sequence[Problem],
               restricted: Sequence[RestrictedSection], public_base_url: str,
               node_did: str) -> PassportView:
    timeline = tuple(TimelineItem(
        e.position, e.credential_type, ENTRY_LABELS.get(e.credential_type, e.credential_type),
        e.issuer, e.issued_at, e.digest, e.verified, e.check.problems, e.issuer == node_did)
        for e in entries)
    return PassportView(
        battery=battery, passport_id=passport_id(battery),
        page_url=page_url(public_base_url, battery), node_did=node_did,
        dsp_endpoint=public_base_url, chain_ok=chain_ok,
        chain_problems=tuple(chain_problems), status=current_status(entries),
        attributes=tuple(public_attribute_rows(entries, public_base_url)),
        carbon=carbon_footprint(entries),
        recycled=tuple(declared_recycled_content(entries)), timeline=timeline,
        soh=tuple(soh_series(entries)), events=tuple(events(entries)),
        restricted=tuple(restricted))


__all__ = ["ENTRY_LABELS", "Attribute", "PassportView", "TimelineItem", "build_view",
           "public_attribute_rows"]
