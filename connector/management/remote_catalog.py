"""The consumer's outbound catalog request, and finding an offer in the answer.

The node asks a provider for its catalog the way it sends every DSP message: a
``CatalogRequestMessage`` POSTed to ``<provider DSP base>/catalog/request``, signed as this
participant with a token bound to the request (``participant_auth``; the same ``DspClient`` +
``RequestSigner`` the outbox uses), addressed (``aud``) to the provider's DID. The catalog a
provider returns is filtered for the caller, which is why the *node* must ask (with its key),
not the operator's browser.

Failures are the provider's, not the operator's, so they are 502 problems: no answer at all
(``counterparty-unreachable``) or an error answer (``counterparty-error``, carrying the
provider's status and JSON body so the operator can read its DSP error ``code``). They travel
as ``counterPartyAnswer: {status, body}``: a top-level ``status`` would be RFC 9457's own
member, which must stay the 502 of *this* answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from connector.app import HTTP_CLIENT, IDENTITY
from connector.dsp.client import Delivery, DspClient, join_url
from connector.dsp.messages import CatalogRequestMessage, MessageOffer
from connector.dsp.negotiation_service import dsp_state
from connector.participant_auth import RequestSigner
from connector.problems import ProblemDetails, ProblemError
from credentials.did_web import did_web_from_url

#: A catalog nests at most this deep (catalogs of catalogs); deeper is not worth following.
_MAX_DEPTH = 8


def provider_did_of(address: str, given: str | None) -> str:
    """The provider's DID: the one the operator gave, else the did:web of its DSP address."""
    return given if given is not None else did_web_from_url(address)


def _counterparty_error(address: str, delivery: Delivery, detail: str) -> ProblemError:
    body = delivery.body if isinstance(delivery.body, dict | list) else None
    return ProblemError(ProblemDetails(
        502, "counterparty-error", "The counterparty answered with an error", detail,
        {"counterPartyAddress": address,
         "counterPartyAnswer": {"status": delivery.status, "body": body}},
    ))


async def fetch_catalog(app: web.Application, address: str, provider_did: str) -> dict[str, Any]:
    """The provider's DSP ``Catalog`` JSON as it answered; 502 problems when it did not."""
    from connector.dcp.access_tokens import ACCESS_TOKENS

    tokens = app.get(ACCESS_TOKENS)  # DCP: the provider may ask our wallet for role proofs
    clock = dsp_state(app).settings.clock  # the node's clock, which the provider checks iat by
    client = DspClient(app[HTTP_CLIENT], RequestSigner(
        app[IDENTITY].signing_key, clock,
        access_tokens=tokens.for_verifier if tokens else None))
    url = join_url(address, "catalog/request")
    delivery = await client.post(url, CatalogRequestMessage().to_json(), audience=provider_did)
    if delivery.status == 0:
        raise ProblemError(ProblemDetails(
            502, "counterparty-unreachable", "The counterparty did not answer",
            f"no answer from {url}: {delivery.error}", {"counterPartyAddress": address},
        ))
    if not delivery.ok:
        raise _counterparty_error(address, delivery,
                                  f"{url} answered HTTP {delivery.status}")
    body = delivery.body
    if not isinstance(body, dict) or body.get("@type") != "Catalog":
        why = delivery.error or "the answer is not a DSP Catalog object"
        raise _counterparty_error(address, delivery, f"{url}: {why}")
    return body


def _nodes(value: Any) -> list[dict[str, Any]]:
    """A compact JSON-LD value that may be one node or a list of them."""
    items = value if isinstance(value, list) else [value] if value is not None else []
    return [item for item in items if isinstance(item, dict)]


def datasets(catalog: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every dataset of the catalog, nested catalogs included."""
    yield from _nodes(catalog.get("dataset"))
    if depth < _MAX_DEPTH:
        for child in _nodes(catalog.get("catalog")):
            yield from datasets(child, depth + 1)


def find_offer(catalog: dict[str, Any], offer_id: str) -> tuple[str, dict[str, Any]] | None:
    """``(dataset id, offer)`` for the offer whose ``@id`` is ``offer_id``, if listed."""
    for dataset in datasets(catalog):
        dataset_id = dataset.get("@id")
        if not isinstance(dataset_id, str):
            continue
        for offer in _nodes(dataset.get("hasPolicy")):
            if offer.get("@id") == offer_id:
                return dataset_id, offer
    return None


def offer_from_catalog(catalog: dict[str, Any], offer_id: str, address: str) -> MessageOffer:
    """The catalog offer as a contract request carries it: the dataset becomes its ``target``.

    404 ``offer-not-found`` when the provider does not list it *for us* (it may exist and be
    hidden by its policy: the catalog is filtered per participant); 502 when the listed offer
    is not one a contract request can carry.
    """
    found = find_offer(catalog, offer_id)
    if found is None:
        raise ProblemError(ProblemDetails(
            404, "offer-not-found", "The provider does not offer this",
            f"the catalog of {address} lists no offer {offer_id!r} for this participant",
            {"offerId": offer_id, "counterPartyAddress": address},
        ))
    dataset_id, offer = found
    wire = {key: value for key, value in offer.items() if key not in ("@context", "target")}
    try:
        return MessageOffer.model_validate({**wire, "target": dataset_id})
    except ValidationError as exc:
        raise ProblemError(ProblemDetails(
            502, "counterparty-error", "The counterparty's offer is not valid",
            f"offer {offer_id!r} of {address} cannot be requested: "
            f"{exc.errors()[0]['msg'] if exc.errors() else exc}",
            {"counterPartyAddress": address, "counterPartyAnswer": {"status": 200, "body": offer}},
        )) from None
