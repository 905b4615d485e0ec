"""What each management route promises, for ``GET /openapi.json`` (``connector.ops.openapi``).

One ``describe`` per handler: summary, request body model, answers (``views``), query
parameters. Method and path come from the router, so they are not repeated here. Kept in one
module beside the route modules rather than as decorators inside them, so the descriptions
of routes whose modules belong to other parts (usage control) live by the same rule; a route
without a description fails ``tests/connector/ops/test_openapi.py`` until it gets one here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from connector.management import (
    consumer,
    data_access,
    passports,
    routes,
    status,
    trust,
    views,
    wallet,
)
from connector.management.assets import AssetCreate, OfferCreate, PolicyCreate
from connector.ops.api_docs import ANY_MEDIA, PAGING, Answer, Param, api_operation
from connector.usage import routes as usage

JWT_MEDIA = "application/vc+jwt"


class CredentialDocument(BaseModel):
    """A verifiable credential (JSON-LD with its proof)."""

    model_config = ConfigDict(extra="allow", title="CredentialDocument")


def describe(handler: Callable[..., Any], **description: Any) -> None:
    api_operation(**description)(handler)


def _ok(model: type[BaseModel] | None, status: int = 200, text: str = "") -> tuple[Answer, ...]:
    return (Answer(status, model, text),)


_ROLE = Param("role", "only this role's", enum=("provider", "consumer"))

# --- provider side: assets, policies, offers, batteries, explain ----------------------

describe(routes.post_asset, summary="Publish an asset (and its default offer)", tag="assets",
         body=AssetCreate, answers=_ok(views.AssetCreated, 201, "Created"), problems=(409,))
describe(routes.list_assets, summary="List assets", tag="assets",
         params=(*PAGING, Param("accessLevel", "only this access level"),
                 Param("batteryDid", "only this battery's")),
         answers=_ok(views.Page[views.Asset]))
describe(routes.get_asset, summary="One asset", tag="assets", answers=_ok(views.Asset))
describe(routes.delete_asset, summary="Withdraw an asset no offer uses", tag="assets",
         answers=_ok(None, 204), problems=(409,))
describe(routes.post_policy, summary="Store an ODRL policy", tag="assets", body=PolicyCreate,
         answers=_ok(views.Policy, 201, "Created"), problems=(409,))
describe(routes.list_policies, summary="List policies", tag="assets", params=PAGING,
         answers=_ok(views.Page[views.Policy]))
describe(routes.post_offer, summary="Offer an asset under a policy", tag="assets",
         body=OfferCreate, answers=_ok(views.Offer, 201, "Created"), problems=(409,))
describe(routes.list_offers, summary="List offers", tag="assets",
         params=(*PAGING, Param("assetId", "only this asset's")),
         answers=_ok(views.Page[views.Offer]))
describe(routes.list_batteries, summary="List batteries", tag="passports", params=PAGING,
         answers=_ok(views.Page[views.Battery]))
describe(routes.battery_credentials, summary="A battery's passport, in chain order",
         tag="passports", params=PAGING, answers=_ok(views.Page[views.PassportCredential]))
describe(routes.explain_catalog, summary="Why a participant does or does not see a dataset",
         tag="assets",
         params=(Param("dataset", "the dataset (asset) id", required=True),
                 Param("participant", "the participant's DID", required=True)),
         answers=_ok(views.CatalogExplanation))
describe(passports.post_battery, summary="Mint a battery DID and register the battery",
         tag="passports", body=passports.BatteryMint,
         answers=_ok(views.Battery, 201, "Created"))
describe(passports.post_credential, summary="Sign and append an entry to a passport",
         tag="passports", body=passports.PassportAppend,
         answers=_ok(views.PassportCredential, 201, "Appended"), problems=(409, 422))
describe(passports.import_passport, summary="Take over a passport handed on (whole chain)",
         tag="passports", body=passports.PassportImport,
         answers=(Answer(201, views.PassportImported, "Entries added"),
                  Answer(200, views.PassportImported, "Already held")), problems=(409, 422))

# --- consumer side and both --------------------------------------------------------------

describe(consumer.request_catalog, summary="Ask a provider for its catalog", tag="consumer",
         body=consumer.CatalogRequest, answers=_ok(views.Catalog), problems=(502,))
describe(consumer.post_negotiation, summary="Start a contract negotiation", tag="negotiations",
         body=consumer.NegotiationCreate, answers=_ok(views.Negotiation, 201, "Started"),
         problems=(404, 502))
describe(consumer.list_negotiations, summary="List negotiations", tag="negotiations",
         params=(*PAGING, _ROLE, Param("state", "only this state (e.g. FINALIZED)")),
         answers=_ok(views.Page[views.Negotiation]))
describe(consumer.get_negotiation, summary="One negotiation", tag="negotiations",
         answers=_ok(views.Negotiation))
describe(consumer.terminate_negotiation, summary="Terminate a negotiation", tag="negotiations",
         body=consumer.ReasonBody, body_required=False, answers=_ok(views.Negotiation),
         problems=(409,))
describe(consumer.list_agreements, summary="List agreements", tag="agreements",
         params=(*PAGING, _ROLE, Param("assetId", "only this asset's")),
         answers=_ok(views.Page[views.Agreement]))
describe(consumer.get_agreement, summary="One agreement", tag="agreements",
         answers=_ok(views.Agreement))
describe(data_access.terminate_agreement, summary="End an agreement early (provider)",
         tag="agreements", body=data_access.AgreementTerminate, body_required=False,
         answers=_ok(views.AgreementTerminated), problems=(409,))
describe(consumer.post_transfer, summary="Request a transfer under an agreement",
         tag="transfers", body=consumer.TransferCreate,
         answers=_ok(views.Transfer, 201, "Requested"), problems=(404,))
describe(consumer.list_transfers, summary="List transfers", tag="transfers",
         params=(*PAGING, _ROLE, Param("state", "only this state (e.g. STARTED)"),
                 Param("agreementId", "only this agreement's")),
         answers=_ok(views.Page[views.Transfer]))
describe(consumer.get_transfer, summary="One transfer", tag="transfers",
         answers=_ok(views.Transfer))
describe(consumer.act_on_transfer, summary="Complete, suspend, resume or terminate a transfer",
         tag="transfers", body=consumer.ReasonBody, body_required=False,
         params=(Param("action", "what to do", where="path",
                       enum=("complete", "suspend", "resume", "terminate")),),
         answers=_ok(views.Transfer), problems=(409,))
describe(data_access.transfer_data, summary="Fetch a started transfer's data (consumer)",
         tag="transfers", problems=(403, 409),
         answers=(Answer(200, None, "The provider's bytes, in its media type", ANY_MEDIA),))

# --- credentials: status, trust, wallet --------------------------------------------------

describe(status.change_status, summary="Revoke, suspend or resume a credential this node issued",
         tag="credentials", body=status.StatusChange,
         params=(Param("action", "the status change", where="path",
                       enum=("revoke", "suspend", "resume")),),
         answers=_ok(views.StatusChanged), problems=(409,))
describe(trust.get_trust, summary="The trust registry", tag="trust", answers=_ok(views.TrustView))
describe(trust.post_issuer, summary="Trust an issuer for a credential type", tag="trust",
         body=trust.IssuerBody, answers=(Answer(201, views.IssuerAdded, "Added"),
                                         Answer(200, views.IssuerAdded, "Already trusted")))
describe(trust.delete_issuer, summary="Stop trusting an issuer (body or query)", tag="trust",
         body=trust.IssuerBody, body_required=False,
         params=(Param("credentialType", "instead of a body"),
                 Param("issuer", "instead of a body")),
         answers=_ok(None, 204), problems=(404,))
describe(trust.post_authority, summary="Accept trust lists signed by an authority", tag="trust",
         body=trust.AuthorityBody, answers=(Answer(201, views.AuthorityAdded, "Added"),
                                            Answer(200, views.AuthorityAdded, "Updated")))
describe(trust.delete_authority, summary="Stop accepting an authority's lists", tag="trust",
         body=trust.AuthorityRef, body_required=False,
         params=(Param("issuer", "instead of a body"),), answers=_ok(None, 204),
         problems=(404,))
describe(trust.post_list, summary="Import a signed trust list", tag="trust",
         body=CredentialDocument, body_media=("application/json", JWT_MEDIA),
         answers=_ok(views.TrustList, 201, "Imported"), problems=(422,))
describe(trust.delete_list, summary="Remove an imported trust list", tag="trust",
         answers=_ok(None, 204))
describe(wallet.add_credential, summary="Put a credential issued to this node in its wallet",
         tag="wallet", body=CredentialDocument,
         answers=_ok(views.WalletCredential, 201, "Added"), problems=(409, 422))
describe(wallet.list_credentials, summary="List the wallet's credentials", tag="wallet",
         params=(*PAGING, Param("includeRemoved", "list removed ones too", type="boolean")),
         answers=_ok(views.Page[views.WalletCredential]))
describe(wallet.get_credential, summary="One held credential", tag="wallet",
         answers=_ok(views.WalletCredential))
describe(wallet.remove_credential, summary="Remove a credential from the wallet", tag="wallet",
         answers=_ok(None, 204))

# --- usage control (connector.usage.routes) ----------------------------------------------

describe(usage.list_received, summary="Data received as consumer (metadata only)", tag="usage",
         params=(*PAGING, Param("agreementId", "only this agreement's")),
         answers=_ok(views.Page[views.ReceivedData]))
describe(usage.get_received, summary="Received data as it arrived, while kept", tag="usage",
         answers=(Answer(200, None, "The data, in its media type", ANY_MEDIA),),
         problems=(410,))
describe(usage.list_receipts, summary="Deletion receipts consumers sent", tag="usage",
         params=(*PAGING, Param("agreementId", "only this agreement's")),
         answers=_ok(views.Page[views.DeletionReceipt]))
describe(usage.list_overdue, summary="Agreements whose deletion receipt is overdue",
         tag="usage", params=PAGING, answers=_ok(views.Page[views.OverdueReceipt]))
