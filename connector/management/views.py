"""The management API's answers as pydantic models, for its OpenAPI document.

The routes build their JSON with the ``*_json`` helpers (``assets``, ``process_views``, …);
these models describe that JSON, field for field. They forbid unknown fields, and the ops
tests validate real answers of running nodes against the published document: a field added to
a view without its model (or a model field no view fills) fails there, so the document cannot
drift from what the node sends.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connector.dsp.messages import NegotiationState, TransferState
from connector.management.assets import DataCategory

T = TypeVar("T")

Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Role = Literal["provider", "consumer"]
JsonObject = dict[str, Any]


class View(BaseModel):
    """An answer: exactly these fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Page(View, Generic[T]):
    """One page of a list; ``next`` is the ``after`` cursor of the next page (``null``: last)."""

    items: list[T]
    next: str | None


# --- provider side: assets, policies, offers, batteries ------------------------------------------


class Offer(View):
    id: str
    asset_id: str = Field(alias="assetId")
    policy_id: str = Field(alias="policyId")
    offer: JsonObject = Field(description="the ODRL offer the catalog shows")
    created_at: Time = Field(alias="createdAt")


class Asset(View):
    id: str
    battery_did: str | None = Field(alias="batteryDid")
    access_level: DataCategory = Field(alias="accessLevel")
    title: str | None
    public: bool
    data_source: JsonObject | None = Field(alias="dataSource")
    version: int
    created_at: Time = Field(alias="createdAt")
    updated_at: Time = Field(alias="updatedAt")
    description: str | None = None


class AssetCreated(Asset):
    default_offer: Offer | None = Field(alias="defaultOffer",
                                        description="the level's default offer, if one was made")


class Policy(View):
    id: str
    policy: JsonObject
    version: int
    created_at: Time = Field(alias="createdAt")


class Battery(View):
    did: str
    kind: str
    parent_did: str | None = Field(alias="parentDid")
    properties: JsonObject
    created_at: Time = Field(alias="createdAt")


class PassportCredential(View):
    """One entry of a battery's passport chain."""

    position: int
    digest: str
    previous_digest: str | None = Field(alias="previousDigest")
    issuer: str
    types: list[str]
    credential: JsonObject | str
    created_at: Time = Field(alias="createdAt")


class PassportImported(View):
    battery: str
    length: int
    added: int
    custodian: str | None
    head: str | None


class OfferDecision(View):
    """Whether one offer's policy lets the participant see the dataset, and why."""

    offer_id: str = Field(alias="offerId")
    allowed: bool
    code: str
    failed_constraint: str | None = Field(alias="failedConstraint")
    left_operand: str | None = Field(alias="leftOperand")
    reason: str
    missing: str | None
    granted_by: str | None = Field(alias="grantedBy")
    duties: list[JsonObject]
    unmet: list[JsonObject]


class RoleProofView(View):
    source: str
    credentials: list[Any]
    note: str | None = None
    problems: list[Any] | None = None


class CatalogExplanation(View):
    dataset: str
    participant: str
    at: Time
    visible: bool
    offers: list[OfferDecision]
    role_proof: RoleProofView = Field(alias="roleProof")


# --- consumer side and both: catalog, negotiations, agreements, transfers ------------------------


class Catalog(BaseModel):
    """The provider's DSP ``Catalog`` as it answered (its datasets filtered for this node)."""

    model_config = ConfigDict(extra="allow")

    type_: Literal["Catalog"] = Field(alias="@type")


class Reason(View):
    """Why a process ended or was suspended: typed, with the failing constraint if any."""

    kind: str
    failed_constraint: str | None = Field(alias="failedConstraint")
    detail: str | None


class Negotiation(View):
    id: str
    role: Role
    state: NegotiationState
    counter_party_id: str = Field(alias="counterPartyId")
    counter_party_address: str = Field(alias="counterPartyAddress")
    counter_party_pid: str | None = Field(alias="counterPartyPid")
    asset_id: str | None = Field(alias="assetId")
    offer_id: str | None = Field(alias="offerId")
    agreement_id: str | None = Field(alias="agreementId")
    reason: Reason | None
    created_at: Time = Field(alias="createdAt")
    updated_at: Time = Field(alias="updatedAt")


class Agreement(View):
    id: str
    asset_id: str = Field(alias="assetId")
    provider_id: str = Field(alias="providerId")
    consumer_id: str = Field(alias="consumerId")
    role: Role
    signed_at: Time = Field(alias="signedAt")
    not_after: Time | None = Field(alias="notAfter")
    negotiation_id: str | None = Field(alias="negotiationId")
    policy: JsonObject


class AgreementTerminated(View):
    agreement_id: str = Field(alias="agreementId")
    terminated: Literal[True]
    terminated_transfers: int = Field(alias="terminatedTransfers")


class DataAddressView(View):
    """Where the data is; never the token itself (``hasToken`` says whether one came)."""

    endpoint: str | None
    endpoint_type: str | None = Field(alias="endpointType")
    has_token: bool = Field(alias="hasToken")


class Transfer(View):
    id: str
    role: Role
    state: TransferState
    agreement_id: str = Field(alias="agreementId")
    asset_id: str = Field(alias="assetId")
    counter_party_id: str = Field(alias="counterPartyId")
    counter_party_address: str = Field(alias="counterPartyAddress")
    counter_party_pid: str | None = Field(alias="counterPartyPid")
    format: str | None
    data_address: DataAddressView | None = Field(alias="dataAddress")
    reason: Reason | None
    created_at: Time = Field(alias="createdAt")
    updated_at: Time = Field(alias="updatedAt")


# --- credentials: status, trust, wallet ----------------------------------------------------------


class StatusChanged(View):
    status_list_credential: str = Field(alias="statusListCredential")
    status_list_index: str = Field(alias="statusListIndex")
    action: Literal["revoke", "suspend", "resume"]


class TrustedIssuer(View):
    """An issuer trusted for one credential type (``*``: every type)."""

    credential_type: str = Field(alias="credentialType")
    issuer: str
    source: str = Field(description="'local' or the id of the trust list it came from")
    active: bool
    from_config: bool | None = Field(None, alias="fromConfig")


class TrustAuthority(View):
    issuer: str
    credential_types: list[str] = Field(alias="credentialTypes")
    source: str
    from_config: bool = Field(alias="fromConfig")


class TrustListEntry(View):
    credential_type: str = Field(alias="credentialType")
    issuer: str


class TrustList(View):
    """An imported trust list, without its credential."""

    source: str
    authority: str
    valid_from: Time = Field(alias="validFrom")
    valid_until: Time = Field(alias="validUntil")
    imported_at: Time = Field(alias="importedAt")
    active: bool
    entries: list[TrustListEntry]


class TrustView(View):
    issuers: list[TrustedIssuer]
    authorities: list[TrustAuthority]
    lists: list[TrustList]


class IssuerAdded(View):
    credential_type: str = Field(alias="credentialType")
    issuer: str
    source: Literal["local"]


class AuthorityAdded(View):
    issuer: str
    credential_types: list[str] = Field(alias="credentialTypes")
    source: Literal["local"]


class WalletCredential(View):
    id: str
    types: list[str]
    issuer: str
    valid_until: Time | None = Field(alias="validUntil")
    removed_at: Time | None = Field(alias="removedAt")
    created_at: Time = Field(alias="createdAt")
    credential: JsonObject | str


# --- usage control -------------------------------------------------------------------------------


class ReceivedData(View):
    """What this node received as consumer: metadata only, never the data."""

    transfer_id: str = Field(alias="transferId")
    agreement_id: str = Field(alias="agreementId")
    asset_id: str = Field(alias="assetId")
    provider_id: str = Field(alias="providerId")
    received_at: Time = Field(alias="receivedAt")
    purge_at: Time | None = Field(alias="purgeAt")
    purged_at: Time | None = Field(alias="purgedAt")
    receipt_id: str | None = Field(alias="receiptId")
    receipt_sent_at: Time | None = Field(alias="receiptSentAt")


class DeletionReceipt(View):
    id: str
    agreement_id: str = Field(alias="agreementId")
    consumer_id: str = Field(alias="consumerId")
    transfer_id: Any = Field(alias="transferId")
    assets: Any
    purged_at: Any = Field(alias="purgedAt")
    received_at: Time = Field(alias="receivedAt")
    receipt: JsonObject


class OverdueReceipt(View):
    agreement_id: str = Field(alias="agreementId")
    consumer_did: str = Field(alias="consumerDid")
    asset_id: str = Field(alias="assetId")
    due_at: Time = Field(alias="dueAt")
    overdue_by: int = Field(alias="overdueBy", description="seconds since dueAt")


__all__ = [
    "Agreement", "AgreementTerminated", "Asset", "AssetCreated", "AuthorityAdded", "Battery",
    "Catalog", "CatalogExplanation", "DeletionReceipt", "IssuerAdded", "Negotiation", "Offer",
    "OverdueReceipt", "Page", "PassportCredential", "PassportImported", "Policy",
    "ReceivedData", "StatusChanged", "Transfer", "TrustView", "TrustedIssuer", "View",
    "WalletCredential",
]
