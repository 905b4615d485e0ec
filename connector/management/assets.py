"""Assets, policies and offers as the operator manages them: request bodies, defaults, storage.

An **asset** is the passport data of one battery at one access level ("dismantling & safety
data of battery X"). Its data comes inline (a JSON object the operator supplies) or by
reference to the battery's passport credentials in the node's store. A **policy** is an ODRL
policy; an **offer** binds an asset to a policy and is what the DSP catalog shows.

Access levels are the data categories of DESIGN.md's table, because they — not the
regulation's four annex groups in ``vocab.access.AccessLevel`` — decide who may read and hence
the default policy. ``public`` ("general & technical") needs no contract: the asset is marked
public, gets no stored offer, and the catalog shows it with an open ``use`` offer. Every other
level is restricted and gets a default policy and offer in the same transaction. Without
``allowedParticipants`` it is the Catena-X policy of ``policies.defaults`` (``role_policy``):
readers prove their role with credentials (DCP presentations, ``connector.dcp``) from issuers
the node's trust registry trusts:

========================  ==============================================================
level                     default policy (all: ``FrameworkAgreement DataExchangeGovernance``,
                          ``UsagePurpose cx.circular.dpp:1``, ``DataUsageEndDurationDays``)
========================  ==============================================================
``sustainability``        Membership, 90 days
``provenance``            Membership, FrameworkAgreement traceability, 90 days
``performance-health``    Membership, FrameworkAgreement circulareconomy, 30 days
``dismantling-safety``    a DismantlerCredential (``vehicleDismantle``), 7 days, and a
                          ``delete`` duty when the 7 days are over
========================  ==============================================================

``"defaultPolicy": "none"`` creates no offer (the operator attaches its own policies).
With ``allowedParticipants`` (partners known by DID, no credentials needed) it is the
allow-list (``bpc-policy:participantDid isAnyOf``) with ``odrl:elapsedTime lteq`` P90D, P90D,
P30D and P7D respectively (``default_policy``). Either way the duration is the agreement's
lifetime, enforced by ``policy_gate.is_in_force``.

Deleting: the store keeps no delete for assets (offers and agreements refer to them), so
``DELETE`` *withdraws* an asset (``withdrawnAt``): it disappears from every listing, the
catalog and ``GET``, and its id stays taken. Only an asset no offer uses can be withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from connector.policy_gate import PARTICIPANT_DID, PolicyError, PolicyGate
from connector.problems import FieldError, ProblemDetails, ProblemError, invalid_request
from connector.store import AssetRecord, OfferRecord, PolicyRecord, new_id
from connector.store.base import Reader, Transaction
from connector.store.records import BatteryRecord, CredentialRecord
from policies.defaults import default_policy as cx_default_policy


class DataCategory(StrEnum):
    """DESIGN.md's access levels: the data categories of a battery passport."""

    PUBLIC = "public"
    SUSTAINABILITY = "sustainability"
    PROVENANCE = "provenance"
    PERFORMANCE_HEALTH = "performance-health"
    DISMANTLING_SAFETY = "dismantling-safety"


#: How long an agreement on a restricted level lasts by default (ISO 8601, from the agreement).
DEFAULT_DURATION: dict[DataCategory, str] = {
    DataCategory.SUSTAINABILITY: "P90D",
    DataCategory.PROVENANCE: "P90D",
    DataCategory.PERFORMANCE_HEALTH: "P30D",
    DataCategory.DISMANTLING_SAFETY: "P7D",
}

#: Keys a stored policy may carry into an offer (``target`` never: the dataset is the target).
_OFFER_KEYS = ("@context", "profile", "assignee", "permission", "prohibition", "obligation")


def _did(value: str) -> str:
    if not value.startswith("did:") or len(value.split(":", 2)) < 3 or not value.split(":")[2]:
        raise ValueError(f"{value!r} is not a DID")
    return value


Did = Annotated[str, AfterValidator(_did)]


class _Body(BaseModel):
    """Request bodies refuse unknown fields, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InlineSource(_Body):
    kind: Literal["inline"]
    data: dict[str, Any]


class CredentialsSource(_Body):
    """The battery's passport credentials in the store, optionally only some types."""

    kind: Literal["passport-credentials"]
    credential_types: list[str] | None = Field(None, alias="credentialTypes", min_length=1)


DataSource = Annotated[InlineSource | CredentialsSource, Field(discriminator="kind")]


class AssetCreate(_Body):
    id: str | None = Field(None, min_length=1, max_length=300)
    battery_did: str = Field(alias="batteryDid", max_length=2000)
    access_level: DataCategory = Field(alias="accessLevel")
    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(None, max_length=5000)
    data_source: DataSource = Field(alias="dataSource")
    allowed_participants: list[Did] | None = Field(
        None, alias="allowedParticipants", min_length=1
    )
    #: ``roles`` (default): the level's credential-based default offer unless an allow-list is
    #: named; ``none``: no default offer (the operator attaches its own policies).
    default_policy: Literal["roles", "none"] = Field("roles", alias="defaultPolicy")

    @field_validator("battery_did")
    @classmethod
    def _battery(cls, value: str) -> str:
        return _did(value)


class PolicyCreate(_Body):
    id: str | None = Field(None, min_length=1, max_length=300)
    policy: dict[str, Any]


class OfferCreate(_Body):
    id: str | None = Field(None, min_length=1, max_length=300)
    asset_id: str = Field(alias="assetId", min_length=1)
    policy_id: str = Field(alias="policyId", min_length=1)


# --- problems ----------------------------------------------------------------------------------


def not_found(kind: str, key: str) -> ProblemError:
    return ProblemError(ProblemDetails(404, "not-found", f"No such {kind}", f"no {kind} {key!r}"))


def conflict(slug: str, title: str, detail: str, **extensions: Any) -> ProblemError:
    return ProblemError(ProblemDetails(409, slug, title, detail, extensions))


def field_problem(field: str, message: str) -> ProblemError:
    return invalid_request([FieldError(field=field, message=message)])


# --- defaults ----------------------------------------------------------------------------------


def default_policy(level: DataCategory, allowed: list[str], policy_id: str) -> dict[str, Any]:
    """The default ODRL policy of a restricted level (see the module docstring)."""
    if level is DataCategory.PUBLIC:
        raise ValueError("public data needs no policy")
    return {
        "@id": policy_id,
        "@type": "Set",
        "permission": [{
            "action": "use",
            "constraint": [{"and": [
                {"leftOperand": PARTICIPANT_DID, "operator": "isAnyOf", "rightOperand": allowed},
                {"leftOperand": "odrl:elapsedTime", "operator": "lteq",
                 "rightOperand": DEFAULT_DURATION[level]},
            ]}],
        }],
    }


def role_policy(level: DataCategory, policy_id: str) -> dict[str, Any]:
    """The Catena-X default of a restricted level for readers proven by credentials
    (``policies.defaults``): e.g. dismantling data for a trusted DismantlerCredential holder
    that also holds the data-exchange governance credential, for the battery-passport purpose,
    for seven days, deleted at the end."""
    policy = cx_default_policy(level.value, policy_id)
    assert policy is not None  # only public data has none
    return policy


def public_offer(asset_id: str) -> dict[str, Any]:
    """The open offer a public asset shows in the catalog: use, no constraint, no contract."""
    return {"@id": f"{asset_id}#public", "@type": "Offer", "permission": [{"action": "use"}]}


def offer_from_policy(offer_id: str, policy: dict[str, Any]) -> dict[str, Any]:
    """The catalog offer for a stored policy: its rules under the offer's own ``@id``."""
    offer: dict[str, Any] = {"@id": offer_id, "@type": "Offer"}
    offer.update({key: policy[key] for key in _OFFER_KEYS if key in policy})
    return offer


# --- JSON views --------------------------------------------------------------------------------


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def is_withdrawn(record: AssetRecord) -> bool:
    return bool(record.properties.get("withdrawnAt"))


def is_public(record: AssetRecord) -> bool:
    return record.access_level == DataCategory.PUBLIC.value


def asset_json(record: AssetRecord) -> dict[str, Any]:
    props = record.properties
    body: dict[str, Any] = {
        "id": record.id,
        "batteryDid": props.get("batteryDid", record.battery_did),
        "accessLevel": record.access_level,
        "title": props.get("title"),
        "public": is_public(record),
        "dataSource": props.get("dataSource"),
        "version": record.version,
        "createdAt": _time(record.created_at),
        "updatedAt": _time(record.updated_at),
    }
    if props.get("description"):
        body["description"] = props["description"]
    return body


def policy_json(record: PolicyRecord) -> dict[str, Any]:
    return {"id": record.id, "policy": record.policy, "version": record.version,
            "createdAt": _time(record.created_at)}


def offer_json(record: OfferRecord) -> dict[str, Any]:
    return {"id": record.id, "assetId": record.asset_id, "policyId": record.policy_id,
            "offer": record.offer, "createdAt": _time(record.created_at)}


def battery_json(record: BatteryRecord) -> dict[str, Any]:
    return {"did": record.did, "kind": record.kind, "parentDid": record.parent_did,
            "properties": record.properties, "createdAt": _time(record.created_at)}


def credential_json(record: CredentialRecord) -> dict[str, Any]:
    return {"position": record.position, "digest": record.digest,
            "previousDigest": record.previous_digest, "issuer": record.issuer,
            "types": list(record.types), "credential": record.credential,
            "createdAt": _time(record.created_at)}


# --- operations (inside a store transaction) ---------------------------------------------------


async def create_asset(
    tx: Transaction, body: AssetCreate, gate: PolicyGate,
) -> tuple[AssetRecord, OfferRecord | None]:
    """Store an asset (and, for a restricted level with an allow-list, its default offer)."""
    battery = await tx.get_battery(body.battery_did)
    if battery is None and isinstance(body.data_source, CredentialsSource):
        raise field_problem("batteryDid", f"no battery {body.battery_did!r} in this node's "
                            "store, so its passport credentials cannot be referenced")
    public = body.access_level is DataCategory.PUBLIC
    if public and body.allowed_participants is not None:
        raise field_problem("allowedParticipants", "public data is open to everyone; an "
                            "allow-list only applies to restricted levels")
    asset_id = body.id or new_id()
    if await tx.get_asset(asset_id) is not None:
        raise conflict("already-exists", "Asset id taken", f"asset {asset_id!r} already "
                       "exists (withdrawn assets keep their id)")
    properties: dict[str, Any] = {
        "title": body.title,
        "batteryDid": body.battery_did,
        "public": public,
        "dataSource": body.data_source.model_dump(mode="json", by_alias=True,
                                                  exclude_none=True),
    }
    if body.description:
        properties["description"] = body.description
    asset = await tx.put_asset(AssetRecord(
        id=asset_id, access_level=body.access_level.value,
        battery_did=battery.did if battery else None, properties=properties,
    ))
    await tx.append_audit(actor="operator", action="asset.created", subject_id=asset_id,
                          details={"accessLevel": body.access_level.value})
    offer = None
    if not public and (body.allowed_participants or body.default_policy == "roles"):
        policy_id = new_id()
        if body.allowed_participants:
            policy = default_policy(body.access_level, body.allowed_participants, policy_id)
        else:
            policy = role_policy(body.access_level, policy_id)
        gate.check(policy)  # our own default must be one the gate understands
        await tx.put_policy(PolicyRecord(id=policy_id, policy=policy))
        offer_id = new_id()
        offer = await tx.put_offer(OfferRecord(
            id=offer_id, asset_id=asset_id, policy_id=policy_id,
            offer=offer_from_policy(offer_id, policy),
        ))
        await tx.append_audit(actor="operator", action="offer.created", subject_id=offer_id,
                              details={"assetId": asset_id, "policyId": policy_id,
                                       "default": True})
    return asset, offer


async def live_asset(reader: Reader, asset_id: str, *, for_update: bool = False) -> AssetRecord:
    """The asset, or 404 (withdrawn assets are gone as far as the API is concerned)."""
    record = await reader.get_asset(asset_id, for_update=for_update)
    if record is None or is_withdrawn(record):
        raise not_found("asset", asset_id)
    return record


async def withdraw_asset(tx: Transaction, asset_id: str, now: datetime) -> None:
    """Withdraw an asset nobody offers; 409 naming the offers otherwise."""
    record = await live_asset(tx, asset_id, for_update=True)
    offers = await tx.list_offers(asset_id=asset_id, limit=20)
    if offers:
        ids = [offer.id for offer in offers]
        raise conflict("asset-in-use", "Asset is offered",
                       f"asset {asset_id!r} is used by offer(s) {', '.join(ids)}; it cannot "
                       "be deleted while an offer uses it", offers=ids)
    properties = {**record.properties, "withdrawnAt": _time(now)}
    await tx.put_asset(AssetRecord(
        id=record.id, access_level=record.access_level, battery_did=record.battery_did,
        properties=properties, version=record.version, created_at=record.created_at,
    ))
    await tx.append_audit(actor="operator", action="asset.withdrawn", subject_id=asset_id)


async def create_policy(tx: Transaction, body: PolicyCreate, gate: PolicyGate) -> PolicyRecord:
    """Store a policy the gate can evaluate; anything else is refused naming the part."""
    policy_id = body.id or str(body.policy.get("@id") or new_id())
    policy = {**body.policy, "@id": policy_id}
    policy.setdefault("@type", "Set")
    try:
        gate.check(policy)
    except PolicyError as exc:
        field = f"policy.{exc.path}" if exc.path else "policy"
        raise field_problem(field, f"{exc.message} ({exc.code})") from None
    if await tx.get_policy(policy_id) is not None:
        raise conflict("already-exists", "Policy id taken", f"policy {policy_id!r} exists")
    record = await tx.put_policy(PolicyRecord(id=policy_id, policy=policy))
    await tx.append_audit(actor="operator", action="policy.created", subject_id=policy_id)
    return record


async def create_offer(tx: Transaction, body: OfferCreate) -> OfferRecord:
    """Bind a restricted, live asset to a stored policy."""
    asset = await tx.get_asset(body.asset_id)
    if asset is None or is_withdrawn(asset):
        raise field_problem("assetId", f"no asset {body.asset_id!r}")
    if is_public(asset):
        raise field_problem("assetId", f"asset {body.asset_id!r} is public: it is served "
                            "without a contract and needs no offer")
    policy = await tx.get_policy(body.policy_id)
    if policy is None:
        raise field_problem("policyId", f"no policy {body.policy_id!r}")
    offer_id = body.id or new_id()
    if await tx.get_offer(offer_id) is not None:
        raise conflict("already-exists", "Offer id taken", f"offer {offer_id!r} exists")
    record = await tx.put_offer(OfferRecord(
        id=offer_id, asset_id=asset.id, policy_id=policy.id,
        offer=offer_from_policy(offer_id, policy.policy),
    ))
    await tx.append_audit(actor="operator", action="offer.created", subject_id=offer_id,
                          details={"assetId": asset.id, "policyId": policy.id})
    return record
