"""The provider's DCAT catalog in DSP 2025-1 compact form, filtered per requesting participant.

One ``Dataset`` per offered asset (``@id`` = asset id), its ``hasPolicy`` the offers the caller
can satisfy now (``PolicyGate``); a dataset none of whose offers the caller can satisfy is left
out, and an asset with no offer at all is not in the catalog. Public assets carry one open
``use`` offer (``assets.public_offer``): they appear for everyone, with no contract.

Hiding what a caller may not use keeps other participants' allow-lists private, but it makes a
catalog silently shorter — EDC users' most common complaint. ``explain`` answers "why don't I
see dataset X?" with one ``Decision`` per offer, naming the failing constraint.

The functions read through a ``Reader`` so they run in one consistent snapshot; the output is
plain JSON (validated against the official schema in the tests). Offers are stored with the
policy's ``@context``; it is lifted into the catalog's root ``@context`` (the DSP context
first), because nested contexts in a dataset would not pass for compact 2025-1 JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connector.dsp.messages import DSP_CONTEXT, ODRL_PROFILE_CONTEXT
from connector.management.assets import is_public, is_withdrawn, public_offer
from connector.policy_gate import Decision, EvaluationContext, PolicyGate
from connector.store import AssetRecord, OfferRecord
from connector.store.base import Reader

#: The distribution format every dataset is served in (pull over HTTP through the data plane).
DATA_FORMAT = "HttpData-PULL"
_PAGE = 500


@dataclass(frozen=True, slots=True)
class OfferedAsset:
    """An asset with the offers (compact ODRL JSON, ``@context`` still inside) it is under."""

    asset: AssetRecord
    offers: tuple[dict[str, Any], ...]


async def _assets(reader: Reader) -> AsyncIterator[AssetRecord]:
    after: str | None = None
    while True:
        page = await reader.list_assets(after=after, limit=_PAGE)
        for record in page:
            yield record
        if len(page) < _PAGE:
            return
        after = page[-1].id


async def _offers_of(reader: Reader, asset_id: str) -> list[OfferRecord]:
    found: list[OfferRecord] = []
    after: str | None = None
    while True:
        page = await reader.list_offers(asset_id=asset_id, after=after, limit=_PAGE)
        found.extend(page)
        if len(page) < _PAGE:
            return found
        after = page[-1].id


async def offered_asset(reader: Reader, asset_id: str) -> OfferedAsset | None:
    """The asset with its offers, or ``None`` if it is unknown, withdrawn or not offered."""
    asset = await reader.get_asset(asset_id)
    if asset is None or is_withdrawn(asset):
        return None
    if is_public(asset):
        return OfferedAsset(asset, (public_offer(asset.id),))
    offers = tuple(record.offer for record in await _offers_of(reader, asset.id))
    return OfferedAsset(asset, offers) if offers else None


async def offered_assets(reader: Reader) -> list[OfferedAsset]:
    """Every asset in the catalog (before filtering), in id order."""
    found: list[OfferedAsset] = []
    async for asset in _assets(reader):
        if is_withdrawn(asset):
            continue
        if is_public(asset):
            found.append(OfferedAsset(asset, (public_offer(asset.id),)))
            continue
        offers = tuple(record.offer for record in await _offers_of(reader, asset.id))
        if offers:
            found.append(OfferedAsset(asset, offers))
    return found


def explain_offers(
    item: OfferedAsset, participant_did: str, now: datetime, gate: PolicyGate,
) -> list[tuple[str, Decision]]:
    """One decision per offer of the asset for ``participant_did`` at ``now``."""
    context = EvaluationContext(participant_did=participant_did, now=now)
    return [(str(offer.get("@id")), gate.evaluate(offer, context)) for offer in item.offers]


async def explain(
    reader: Reader, dataset_id: str, participant_did: str, now: datetime, gate: PolicyGate,
) -> list[tuple[str, Decision]] | None:
    """Why ``participant_did`` does (not) see ``dataset_id``; ``None``: not in the catalog."""
    item = await offered_asset(reader, dataset_id)
    if item is None:
        return None
    return explain_offers(item, participant_did, now, gate)


def _compact_offer(offer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in offer.items() if key != "@context"}


def _offer_contexts(offers: list[dict[str, Any]]) -> list[str]:
    """Context URLs the shown offers need beyond DSP's own (e.g. the Catena-X policy context)."""
    urls: list[str] = []
    for offer in offers:
        raw = offer.get("@context", [])
        for url in raw if isinstance(raw, list) else [raw]:
            if isinstance(url, str) and url not in (DSP_CONTEXT, ODRL_PROFILE_CONTEXT, *urls):
                urls.append(url)
    return urls


@dataclass(frozen=True, slots=True)
class CatalogView:
    """Where the catalog points: the provider's identity and its DSP endpoint."""

    participant_id: str
    base_url: str

    @property
    def service_id(self) -> str:
        return f"{self.participant_id}#dsp"

    @property
    def catalog_id(self) -> str:
        return f"{self.base_url}/catalog"

    def service(self) -> dict[str, Any]:
        return {"@id": self.service_id, "@type": "DataService", "endpointURL": self.base_url}

    def dataset(self, item: OfferedAsset, offers: list[dict[str, Any]]) -> dict[str, Any]:
        """A ``Dataset`` node with the given (already filtered) offers."""
        props = item.asset.properties
        dataset: dict[str, Any] = {
            "@id": item.asset.id,
            "@type": "Dataset",
            "dct:title": props.get("title", item.asset.id),
        }
        if props.get("description"):
            dataset["dct:description"] = props["description"]
        dataset["dct:subject"] = props.get("batteryDid", item.asset.battery_did)
        dataset["dcat:keyword"] = [item.asset.access_level]
        dataset["hasPolicy"] = [_compact_offer(offer) for offer in offers]
        distribution: dict[str, Any] = {
            "@type": "Distribution", "format": DATA_FORMAT, "accessService": self.service_id,
        }
        if item.asset.access_level == "public":
            # Public data needs no contract: say where to GET it (the data plane serves it
            # without a token).
            from connector.dataplane.grants import DataPlaneUrls

            distribution["dcat:accessURL"] = DataPlaneUrls(self.base_url).asset_endpoint(
                item.asset.id)
        dataset["distribution"] = [distribution]
        return dataset


def visible_offers(
    item: OfferedAsset, participant_did: str, now: datetime, gate: PolicyGate,
) -> list[dict[str, Any]]:
    """The offers of ``item`` the caller can satisfy now (empty: hide the dataset)."""
    decisions = explain_offers(item, participant_did, now, gate)
    allowed = {offer_id for offer_id, decision in decisions if decision.allowed}
    return [offer for offer in item.offers if str(offer.get("@id")) in allowed]


async def build_catalog(
    reader: Reader, view: CatalogView, participant_did: str, now: datetime, gate: PolicyGate,
) -> dict[str, Any]:
    """The root ``Catalog`` for one caller (``dataset`` omitted when empty: minItems 1)."""
    datasets: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    for item in await offered_assets(reader):
        offers = visible_offers(item, participant_did, now, gate)
        if offers:
            datasets.append(view.dataset(item, offers))
            shown.extend(offers)
    catalog: dict[str, Any] = {
        "@context": [DSP_CONTEXT, *_offer_contexts(shown)],
        "@id": view.catalog_id,
        "@type": "Catalog",
        "participantId": view.participant_id,
        "service": [view.service()],
    }
    if datasets:
        catalog["dataset"] = datasets
    return catalog


async def build_dataset(
    reader: Reader, view: CatalogView, dataset_id: str, participant_did: str, now: datetime,
    gate: PolicyGate,
) -> dict[str, Any] | None:
    """The root ``Dataset`` if the caller may see it; ``None`` (→ 404) otherwise."""
    item = await offered_asset(reader, dataset_id)
    if item is None:
        return None
    offers = visible_offers(item, participant_did, now, gate)
    if not offers:
        return None
    return {"@context": [DSP_CONTEXT, *_offer_contexts(offers)], **view.dataset(item, offers)}
