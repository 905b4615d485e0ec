"""The passport's restricted sections: named on the page, never shown, with the way to ask.

Each section is one of DESIGN.md's restricted data categories (the access levels of the
node's assets, ``connector.management.assets.DataCategory``). The page lists what the section
holds and who may read it; where this node publishes an asset of that category for the
battery, it names the dataset and offer ids that a ``bpc negotiate`` against the node's
Dataspace Protocol endpoint starts from. Only ids leave the store — an asset's title,
description and data stay behind the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.management.assets import DataCategory, is_withdrawn
from connector.store.base import Reader


@dataclass(frozen=True, slots=True)
class SectionInfo:
    title: str
    audience: str
    holds: str


SECTIONS: dict[DataCategory, SectionInfo] = {
    DataCategory.DISMANTLING_SAFETY: SectionInfo(
        "Dismantling and safety", "Available to certified recyclers under contract",
        "dismantling steps and tools, safety measures, detailed composition of cathode, "
        "anode and electrolyte"),
    DataCategory.PERFORMANCE_HEALTH: SectionInfo(
        "Performance and health details",
        "Available to second-life buyers and certified recyclers under contract",
        "cycle counts, remaining capacity and energy, cell-level events with their proofs, "
        "use history"),
    DataCategory.PROVENANCE: SectionInfo(
        "Supply-chain provenance", "Available to regulators and auditors under contract",
        "origin of raw materials, supplier identifiers, chain-of-custody certificates"),
    DataCategory.SUSTAINABILITY: SectionInfo(
        "Sustainability evidence", "Available to regulators and business partners under "
        "contract", "mass-balance evidence behind the carbon footprint and recycled content"),
}
_PAGE = 200


@dataclass(frozen=True, slots=True)
class OfferRef:
    dataset: str
    offer: str


@dataclass(frozen=True, slots=True)
class RestrictedSection:
    category: str
    info: SectionInfo
    offers: tuple[OfferRef, ...]


async def restricted_sections(reader: Reader, battery: str) -> list[RestrictedSection]:
    """One section per restricted category, with this node's offers for ``battery``."""
    offers: dict[str, list[OfferRef]] = {category.value: [] for category in SECTIONS}
    after: str | None = None
    while True:
        assets = await reader.list_assets(battery_did=battery, after=after, limit=_PAGE)
        for asset in assets:
            if asset.access_level not in offers or is_withdrawn(asset):
                continue
            for offer in await reader.list_offers(asset_id=asset.id, limit=_PAGE):
                offers[asset.access_level].append(OfferRef(asset.id, offer.id))
        if len(assets) < _PAGE:
            break
        after = assets[-1].id
    return [RestrictedSection(category.value, info, tuple(offers[category.value]))
            for category, info in SECTIONS.items()]


def section_info(category: str) -> SectionInfo | None:
    try:
        return SECTIONS[DataCategory(category)]
    except ValueError:
        return None


__all__ = ["SECTIONS", "OfferRef", "RestrictedSection", "SectionInfo", "restricted_sections",
           "section_info"]
