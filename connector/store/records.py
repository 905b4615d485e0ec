"""The records the store keeps: frozen values, one class per kind of row.

Records are plain data with no behaviour and no database handle (unlike ORM objects), so a
state machine can take one, compute the next one with ``dataclasses.replace`` and hand it back
to a transaction. Fields the store owns are filled in by it and returned in the stored copy:

- ``version`` counts the stored changes of a mutable record. ``0`` means "not stored yet";
  ``put_*`` inserts such a record as version 1 and otherwise updates only if the stored row
  still has the version the caller read (optimistic concurrency), bumping it by one.
- ``updated_at`` is the time of that change; ``created_at`` is kept from the first insert.
- ``AuditEvent.seq`` is assigned on append.

Times are timezone-aware (the store refuses naive ones) and come back in UTC. JSON fields hold
only what JSON can express (``dict`` with ``str`` keys, ``list``, ``str``, ``int``, finite
``float``, ``bool``, ``None``); PostgreSQL stores them as ``jsonb``, so key order is not kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

JSONObject = dict[str, Any]
"""A JSON object as ``json.loads`` returns it."""

Secured = dict[str, Any] | str
"""A secured credential: a JSON credential with its proof, or a compact JWT."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default clock of records and stores)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh process or message id; DSP wants IRIs, and ``urn:uuid:`` is one."""
    return f"urn:uuid:{uuid.uuid4()}"


class Role(StrEnum):
    """Which side of a negotiation or transfer this node plays."""

    PROVIDER = "provider"
    CONSUMER = "consumer"


class ProcessKind(StrEnum):
    """The kinds of process workers lease (``Store.lease_processes``)."""

    NEGOTIATION = "negotiation"
    TRANSFER = "transfer"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryRecord:
    """A battery (or cell) DID this node tracks; its keys stay in the keystore."""

    did: str
    kind: str = "battery"
    parent_did: str | None = None
    key_id: str | None = None
    properties: JSONObject = field(default_factory=dict)
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialRecord:
    """One passport entry: a secured credential at ``position`` in its battery's chain.

    Immutable once added. ``previous_digest`` must be the digest at ``position - 1`` (the
    store checks); at position 0 it is ``None`` or, for a repurposed battery, the head of the
    original passport.
    """

    battery_did: str
    position: int
    digest: str
    previous_digest: str | None
    issuer: str
    types: tuple[str, ...]
    credential: Secured
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetRecord:
    """A passport data asset offered in the catalog at one access level."""

    id: str
    access_level: str
    battery_did: str | None = None
    properties: JSONObject = field(default_factory=dict)
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRecord:
    """A named ODRL policy (JSON) that offers refer to."""

    id: str
    policy: JSONObject
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRecord:
    """An ODRL offer (JSON) for an asset, as the catalog shows it."""

    id: str
    asset_id: str
    offer: JSONObject
    policy_id: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationRecord:
    """A contract negotiation as this node sees it; ``id`` is this side's process id.

    A terminated negotiation says why in ``reason_kind`` (a typed reason), the
    ``failed_constraint`` that decided it when a policy did, and a human ``reason_detail``.
    """

    id: str
    role: Role
    state: str
    counterparty_did: str
    counterparty_address: str
    counterparty_pid: str | None = None
    asset_id: str | None = None
    offer_id: str | None = None
    offer: JSONObject | None = None
    agreement_id: str | None = None
    reason_kind: str | None = None
    failed_constraint: str | None = None
    reason_detail: str | None = None
    #: The agreement JSON once one is proposed (AGREED onwards); it becomes an
    #: ``AgreementRecord`` only when the negotiation is FINALIZED.
    agreement: JSONObject | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgreementRecord:
    """A contract agreement (ODRL JSON): immutable once added, never lost."""

    id: str
    asset_id: str
    provider_did: str
    consumer_did: str
    agreement: JSONObject
    signed_at: datetime
    negotiation_id: str | None = None
    not_after: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRecord:
    """A transfer process under an agreement; ``id`` is this side's process id."""

    id: str
    role: Role
    state: str
    agreement_id: str
    asset_id: str
    counterparty_did: str
    counterparty_address: str
    format: str
    counterparty_pid: str | None = None
    data_address: JSONObject | None = None
    reason_kind: str | None = None
    failed_constraint: str | None = None
    reason_detail: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """A data-plane access token, by its ``jti``, bound to one agreement."""

    jti: str
    agreement_id: str
    consumer_did: str
    asset_id: str
    expires_at: datetime
    transfer_id: str | None = None
    revoked: bool = False
    #: The data plane endpoint the token is for (its ``aud``).
    audience: str | None = None
    #: SHA-256 of the refresh token issued with it; never the token itself.
    refresh_token_hash: str | None = None
    #: The refresh token rotated out by the last refresh, still accepted until the new one is
    #: first presented (Tractus-X since 2026-08: a lost refresh answer must not lock a consumer
    #: out for good).
    previous_refresh_token_hash: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgreementTermination:
    """The provider ended an agreement before its window closed: stored beside the agreement
    (which is immutable) and, like it, never changed or removed."""

    agreement_id: str
    at: datetime
    actor: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusListRecord:
    """A Bitstring Status List this node publishes (``credentials.status_list`` state JSON:
    the bits and which indices are taken), changed only inside a transaction."""

    url: str
    purpose: str
    state: JSONObject
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletCredential:
    """A credential issued *to* this node, which it presents to verifiers (DCP holder side).

    ``types`` are short type names (``DismantlerCredential``) so the credential service can
    answer a scope without parsing every document; ``removed_at`` set: no longer presented."""

    id: str
    types: tuple[str, ...]
    issuer: str
    document: JSONObject
    valid_until: datetime | None = None
    removed_at: datetime | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustRegistryRecord:
    """The node's trust registry (``credentials.trust.TrustRegistry`` JSON), one row per name
    (``default``): shared by every replica on the store."""

    name: str
    document: JSONObject
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgreementEvidence:
    """What a provider relied on when it agreed: the consumer's verified credentials (id,
    SHA-256 digest, types, issuer, ``credentialStatus``), so a policy monitor can end the
    agreement when one of them is revoked or suspended."""

    agreement_id: str
    consumer_did: str
    #: ``{"credentials": [{"id", "digest", "types", "issuer", "credentialStatus"}, …]}``
    evidence: JSONObject
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgreementUsage:
    """How often the data of an agreement was served (``odrl:count``)."""

    agreement_id: str
    access_count: int = 0
    last_access_at: datetime | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedData:
    """Consumer side: data received under an agreement (keyed by the transfer), kept until
    ``purge_at`` (the agreement's delete duty falls due); ``data`` is None once purged, and
    ``receipt`` is the signed deletion receipt, ``receipt_sent_at`` when the provider took it."""

    transfer_id: str
    agreement_id: str
    provider_did: str
    asset_id: str
    data: JSONObject | None
    received_at: datetime
    purge_at: datetime | None = None
    purged_at: datetime | None = None
    receipt: JSONObject | None = None
    receipt_sent_at: datetime | None = None
    provider_address: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeletionReceipt:
    """Provider side: a consumer's signed deletion receipt for (data of) an agreement."""

    id: str
    agreement_id: str
    consumer_did: str
    receipt: JSONObject
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class HubCell:
    """A cell position of a pack a hub monitors: the cell registered there (its unique ID and
    DID). ``configuration`` is ``unverified`` from a mismatch (``observed_uid`` seen instead)
    until an authorised replacement registers the new cell."""

    id: str  # "<hub_id>#<position>"
    hub_id: str
    battery_did: str
    position: int
    cell_uid: str
    cell_did: str
    configuration: str = "verified"
    observed_uid: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class HubEvent:
    """One cell-level event from a hub, stored exactly once (by ``event_id``); ``batch_id``
    is set when a batch credential covers it."""

    event_id: str
    hub_id: str
    battery_did: str
    kind: str
    position: int | None
    observed_at: datetime
    event: JSONObject
    received_at: datetime
    batch_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HubEventGroup:
    """Events of one hub message for one pack, as the bridge hands them to the store: one
    row holds their JSON, a small key row per event makes them unique and batchable.

    ``events`` is a JSON array whose item ``i`` is the event ``event_ids[i]`` (raised from
    hub sequence number ``seqs[i]``), written by a trusted encoder (the bridge's, which
    checked every event first); the store checks that it is storable text, not its JSON
    again. An event id already stored is skipped, so a redelivered message adds nothing.
    """

    hub_id: str
    battery_did: str
    received_at: datetime
    event_ids: tuple[str, ...]
    seqs: tuple[int, ...]
    events: str


class HubEventRef(NamedTuple):
    """A stored event as a batch names it: its id and the hub sequence number it derives
    from (the store keeps events in sequence order, so a batch's events sit together)."""

    seq: int
    event_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HubBatch:
    """A closed batch of hub events: the Merkle root over ``event_ids`` (in leaf order) that
    its passport credential carries (``credential_digest`` once appended)."""

    id: str
    battery_did: str
    hub_id: str
    merkle_root: str
    tree_size: int
    event_ids: tuple[str, ...]
    first_event_at: datetime
    last_event_at: datetime
    closed_at: datetime
    credential_digest: str | None = None
    version: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    """An outbound protocol message, stored with the state change that caused it.

    A sender leases it (``lease_owner`` until ``lease_until``), delivers it and marks it
    delivered, or reschedules it with backoff; ``failed_at`` ends the retries.
    """

    process_id: str
    kind: str
    target_url: str
    body: JSONObject
    id: str = field(default_factory=new_id)
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    lease_owner: str | None = None
    lease_until: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One line of the append-only audit log; ``seq`` orders the log."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject_id: str
    details: JSONObject
