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

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from connector.dcp.context import for_offer
from connector.dsp.messages import DSP_CONTEXT, ODRL_PROFILE_CONTEXT
from connector.management.assets import is_public, is_withdrawn, public_offer
from connector.policy_gate import Decision, DecisionCode, EvaluationContext, PolicyGate
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


Restriction = Callable[[AssetRecord], str | None]
"""Why a plugin vetoes access to an asset's data (``None``: it does not)."""


def explain_offers(
    item: OfferedAsset, context: EvaluationContext, gate: PolicyGate,
    restriction: Restriction | None = None,
) -> list[tuple[str, Decision]]:
    """One decision per offer of the asset for the requester ``context`` describes; every
    offer is denied with the plugin's reason when ``restriction`` vetoes the asset."""
    vetoed = (restriction(item.asset)
              if restriction is not None and not is_public(item.asset) else None)
    if vetoed is not None:
        return [(str(offer.get("@id")), Decision(False, "restricted", vetoed,
                                                 DecisionCode.CONSTRAINT_FAILED))
                for offer in item.offers]
    return [(str(offer.get("@id")), gate.evaluate(offer, for_offer(context, offer)))
            for offer in item.offers]


async def explain(
    reader: Reader, dataset_id: str, context: EvaluationContext, gate: PolicyGate,
    restriction: Restriction | None = None,
) -> list[tuple[str, Decision]] | None:
    """Why the requester does (not) see ``dataset_id``; ``None``: not in the catalog."""
    item = await offered_asset(reader, dataset_id)
    if item is None:
        return None
    return explain_offers(item, context, gate, restriction)


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
    item: OfferedAsset, context: EvaluationContext, gate: PolicyGate,
    restriction: Restriction | None = None,
) -> list[dict[str, Any]]:
    """The offers of ``item`` the caller can satisfy now (empty: hide the dataset)."""
    decisions = explain_offers(item, context, gate, restriction)
    allowed = {offer_id for offer_id, decision in decisions if decision.allowed}
    return [offer for offer in item.offers if str(offer.get("@id")) in allowed]


def build_catalog(
    items: list[OfferedAsset], view: CatalogView, context: EvaluationContext, gate: PolicyGate,
    restriction: Restriction | None = None,
) -> dict[str, Any]:
    """The root ``Catalog`` of ``items`` (``offered_assets``) for the requester ``context``
    describes (``dataset`` omitted when empty: minItems 1)."""
    datasets: list[dict[str, Any]] = []
    shown: list[dict[str, Any]] = []
    for item in items:
        offers = visible_offers(item, context, gate, restriction)
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


def build_dataset(
    item: OfferedAsset | None, view: CatalogView, context: EvaluationContext, gate: PolicyGate,
    restriction: Restriction | None = None,
) -> dict[str, Any] | None:
    """The root ``Dataset`` of ``item`` (``offered_asset``) if the requester may see it;
    ``None`` (→ 404) otherwise."""
    if item is None:
        return None
    offers = visible_offers(item, context, gate, restriction)
    if not offers:
        return None
    return {"@context": [DSP_CONTEXT, *_offer_contexts(offers)], **view.dataset(item, offers)}
