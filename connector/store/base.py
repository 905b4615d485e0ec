"""The ``Store`` interface every part of the node uses, whatever database is underneath.

Three ways in, one per kind of work:

``async with store.read() as r``
    A consistent read-only snapshot: ``get_*`` and ``list_*``. Never blocks writers.
``async with store.transaction() as tx``
    Everything a protocol step writes, committed together or not at all (the EDC rule: an
    inbound message is validated, its new state stored, its audit line and its outbound
    messages queued, and only then acknowledged). Leaving the block commits; an exception
    rolls back. ``get_*(…, for_update=True)`` locks the row until the end (the ACA-Py rule:
    load for update before changing), and ``put_*`` also checks ``version``, so a writer
    that skipped the lock still cannot overwrite a change it never saw. Do no network I/O
    inside: it holds locks (on SQLite, the one writer lock).
``store.lease_outbox`` / ``store.lease_processes``
    Workers take work by leasing rows, so any replica sharing the database can continue any
    process, and a crashed worker's lease simply runs out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from connector.store.records import (
    AgreementEvidence,
    AgreementRecord,
    AgreementTermination,
    AgreementUsage,
    AssetRecord,
    AuditEvent,
    BatteryRecord,
    CredentialRecord,
    DeletionReceipt,
    HubBatch,
    HubCell,
    HubEvent,
    HubEventGroup,
    HubEventRef,
    JSONObject,
    NegotiationRecord,
    OfferRecord,
    OutboxMessage,
    PolicyRecord,
    ProcessKind,
    ReceivedData,
    Role,
    StatusListRecord,
    TokenRecord,
    TransferRecord,
    TrustRegistryRecord,
    WalletCredential,
)

DEFAULT_PAGE = 100
"""How many rows a ``list_*`` call returns unless told otherwise."""


@dataclass(frozen=True, slots=True)
class StateCounts:
    """Rows per state, counted by the database so every replica on it reports the same numbers.

    Token rows are never deleted and a refresh revokes the old row and adds a new one, so the
    token counts are monotonic: issued at a transfer's start = rows not ``refreshed``, refreshes
    = rows ``refreshed``, revoked by an ended agreement = revoked rows minus refreshes.
    """

    #: ``(role, state) -> rows`` of negotiations and of transfers.
    negotiations: dict[tuple[str, str], int]
    transfers: dict[tuple[str, str], int]
    #: ``(revoked, issued by a refresh) -> rows`` of access tokens.
    tokens: dict[tuple[bool, bool], int]
    #: Access tokens neither revoked nor expired at ``now``.
    live_tokens: int
    #: Credentials appended to the passports this node keeps.
    passport_credentials: int


class Reader(ABC):
    """Reads, in a snapshot (``Store.read``) or inside a transaction (``Transaction``).

    ``get_*`` return ``None`` for an unknown key. ``for_update=True`` locks the row until the
    transaction ends; it needs a ``Store.transaction()`` (a read session refuses it).
    ``list_*`` return rows in key order, at most ``limit``, starting after the key ``after``
    (keyset paging); ``None`` filters are ignored.
    """

    @abstractmethod
    async def get_battery(self, did: str, *, for_update: bool = False) -> BatteryRecord | None:
        """The battery or cell with this DID."""

    @abstractmethod
    async def list_batteries(
        self, *, parent_did: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[BatteryRecord]:
        """Batteries by DID; ``parent_did`` lists a battery's cells."""

    @abstractmethod
    async def get_credential(self, digest: str) -> CredentialRecord | None:
        """The passport entry with this digest."""

    @abstractmethod
    async def passport(
        self, battery_did: str, *, from_position: int = 0, limit: int | None = None,
    ) -> list[CredentialRecord]:
        """A battery's passport entries in chain order (all of them unless ``limit``)."""

    @abstractmethod
    async def passport_head(self, battery_did: str) -> CredentialRecord | None:
        """The last entry of a battery's passport: what the next entry must link to."""

    @abstractmethod
    async def get_asset(self, asset_id: str, *, for_update: bool = False) -> AssetRecord | None:
        """The asset with this id."""

    @abstractmethod
    async def list_assets(
        self, *, access_level: str | None = None, battery_did: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AssetRecord]:
        """Assets by id."""

    @abstractmethod
    async def get_policy(self, policy_id: str, *, for_update: bool = False) -> PolicyRecord | None:
        """The policy with this id."""

    @abstractmethod
    async def list_policies(
        self, *, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[PolicyRecord]:
        """Policies by id."""

    @abstractmethod
    async def get_offer(self, offer_id: str, *, for_update: bool = False) -> OfferRecord | None:
        """The offer with this id."""

    @abstractmethod
    async def list_offers(
        self, *, asset_id: str | None = None, policy_id: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[OfferRecord]:
        """Offers by id."""

    @abstractmethod
    async def get_negotiation(
        self, negotiation_id: str, *, for_update: bool = False,
    ) -> NegotiationRecord | None:
        """The negotiation whose process id on this side is ``negotiation_id``."""

    @abstractmethod
    async def list_negotiations(
        self, *, state: str | None = None, role: Role | None = None,
        counterparty_did: str | None = None, counterparty_pid: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[NegotiationRecord]:
        """Negotiations by id; ``counterparty_pid`` finds a repeated initial request."""

    @abstractmethod
    async def get_agreement(self, agreement_id: str) -> AgreementRecord | None:
        """The agreement with this id."""

    @abstractmethod
    async def list_agreements(
        self, *, asset_id: str | None = None, consumer_did: str | None = None,
        provider_did: str | None = None, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AgreementRecord]:
        """Agreements by id."""

    @abstractmethod
    async def get_transfer(
        self, transfer_id: str, *, for_update: bool = False,
    ) -> TransferRecord | None:
        """The transfer whose process id on this side is ``transfer_id``."""

    @abstractmethod
    async def list_transfers(
        self, *, state: str | None = None, role: Role | None = None,
        agreement_id: str | None = None, counterparty_pid: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[TransferRecord]:
        """Transfers by id."""

    @abstractmethod
    async def get_token(self, jti: str, *, for_update: bool = False) -> TokenRecord | None:
        """The access token with this ``jti``."""

    @abstractmethod
    async def list_tokens(
        self, *, agreement_id: str | None = None, transfer_id: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[TokenRecord]:
        """Access tokens by ``jti``."""

    @abstractmethod
    async def find_token_by_refresh_hash(
        self, refresh_token_hash: str, *, for_update: bool = False
    ) -> TokenRecord | None:
        """The live (not revoked) token whose current or previous refresh hash this is."""

    @abstractmethod
    async def get_status_list(self, url: str, *,
                              for_update: bool = False) -> StatusListRecord | None:
        """The status list published at ``url``."""

    @abstractmethod
    async def list_status_lists(self, *, purpose: str | None = None) -> list[StatusListRecord]:
        """This node's status lists (a handful: a new one only when one fills up)."""

    @abstractmethod
    async def get_agreement_termination(self, agreement_id: str) -> AgreementTermination | None:
        """Why and when the provider ended this agreement early; ``None`` if it did not."""

    # --- role proofs, trust and usage control (migration 5) ---------------------------------

    @abstractmethod
    async def get_wallet_credential(self, credential_id: str, *,
                                    for_update: bool = False) -> WalletCredential | None:
        """A credential held by this node (removed ones too)."""

    @abstractmethod
    async def list_wallet_credentials(
        self, *, include_removed: bool = False, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[WalletCredential]:
        """Held credentials by id; removed ones only with ``include_removed``."""

    @abstractmethod
    async def get_trust_registry(self, name: str = "default", *,
                                 for_update: bool = False) -> TrustRegistryRecord | None:
        """The stored trust registry ``name``."""

    @abstractmethod
    async def get_agreement_evidence(self, agreement_id: str) -> AgreementEvidence | None:
        """The credentials a provider relied on for this agreement."""

    @abstractmethod
    async def list_agreement_evidence(
        self, *, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AgreementEvidence]:
        """Every agreement's evidence by agreement id (the policy monitor's walk)."""

    @abstractmethod
    async def get_agreement_usage(self, agreement_id: str, *,
                                  for_update: bool = False) -> AgreementUsage | None:
        """How often an agreement's data was served; ``None``: never."""

    @abstractmethod
    async def get_received_data(self, transfer_id: str, *,
                                for_update: bool = False) -> ReceivedData | None:
        """Data received through a transfer (consumer side)."""

    @abstractmethod
    async def list_received_data(
        self, *, agreement_id: str | None = None, due_by: datetime | None = None,
        receipt_unsent: bool = False, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[ReceivedData]:
        """Received data by transfer id. ``due_by``: only unpurged rows whose ``purge_at`` is
        at or before it; ``receipt_unsent``: only rows with a receipt not yet taken."""

    @abstractmethod
    async def list_deletion_receipts(
        self, *, agreement_id: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[DeletionReceipt]:
        """Deletion receipts consumers sent this node (provider side), by id."""

    # --- the hub bridge (migrations 6, 7) ----------------------------------------------------

    @abstractmethod
    async def get_hub_cell(self, cell_id: str, *, for_update: bool = False) -> HubCell | None:
        """A registered cell position (``"<hub_id>#<position>"``)."""

    @abstractmethod
    async def list_hub_cells(
        self, *, hub_id: str | None = None, battery_did: str | None = None,
        configuration: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[HubCell]:
        """Registered cell positions by id."""

    @abstractmethod
    async def get_hub_event(self, event_id: str) -> HubEvent | None:
        """A stored hub event (batched by a stored batch, or not batched yet)."""

    @abstractmethod
    async def list_hub_events(
        self, *, battery_did: str | None = None, batch_id: str | None = None,
        unbatched: bool = False, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[HubEvent]:
        """Hub events by id; ``unbatched``: only those no batch covers yet."""

    @abstractmethod
    async def get_hub_batch(self, batch_id: str) -> HubBatch | None:
        """A closed batch of hub events."""

    @abstractmethod
    async def list_hub_batches(
        self, *, battery_did: str | None = None, uncredentialed: bool = False,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[HubBatch]:
        """Batches by id; ``uncredentialed``: only those whose credential is not appended."""

    @abstractmethod
    async def get_outbox(self, message_id: str) -> OutboxMessage | None:
        """The outbound message with this id (delivered or not)."""

    @abstractmethod
    async def list_outbox(
        self, *, process_id: str | None = None, pending_only: bool = False,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[OutboxMessage]:
        """Outbound messages by id; ``pending_only`` leaves out delivered and failed ones."""

    @abstractmethod
    async def list_audit(
        self, *, subject_id: str | None = None, after_seq: int = 0, limit: int = DEFAULT_PAGE,
    ) -> list[AuditEvent]:
        """Audit events in ``seq`` order, after ``after_seq``."""

    @abstractmethod
    async def count_states(self, now: datetime) -> StateCounts:
        """How many processes, tokens and passport entries there are (the node's metrics)."""


class Transaction(Reader):
    """Reads and writes committed together (see the module docstring)."""

    @abstractmethod
    async def put_battery(self, record: BatteryRecord) -> BatteryRecord:
        """Insert (``version`` 0) or update (``version`` as read); returns the stored copy.

        Every ``put_*`` raises ``AlreadyExists`` when inserting a taken key,
        ``ConcurrentUpdate`` when the stored version differs, ``NotFound`` when updating a
        key that is not stored, and ``InvalidRecord`` for values it cannot store.
        """

    @abstractmethod
    async def add_credential(self, record: CredentialRecord) -> CredentialRecord:
        """Append a passport entry; it can never be changed or removed afterwards.

        ``InvalidRecord`` if ``previous_digest`` is not the digest at ``position - 1`` (or that
        entry is missing); ``ConcurrentUpdate`` if ``position`` was taken meanwhile;
        ``AlreadyExists`` if the digest is already stored.
        """

    @abstractmethod
    async def put_asset(self, record: AssetRecord) -> AssetRecord:
        """Insert or update an asset (see ``put_battery``)."""

    @abstractmethod
    async def put_policy(self, record: PolicyRecord) -> PolicyRecord:
        """Insert or update a policy (see ``put_battery``)."""

    @abstractmethod
    async def put_offer(self, record: OfferRecord) -> OfferRecord:
        """Insert or update an offer (see ``put_battery``)."""

    @abstractmethod
    async def put_negotiation(self, record: NegotiationRecord) -> NegotiationRecord:
        """Insert or update a negotiation (see ``put_battery``)."""

    @abstractmethod
    async def add_agreement(self, record: AgreementRecord) -> AgreementRecord:
        """Store an agreement; immutable afterwards. ``AlreadyExists`` if the id is taken."""

    @abstractmethod
    async def add_agreement_termination(
        self, record: AgreementTermination
    ) -> AgreementTermination:
        """End an agreement early, once (``AlreadyExists`` the second time); permanent."""

    @abstractmethod
    async def put_transfer(self, record: TransferRecord) -> TransferRecord:
        """Insert or update a transfer (see ``put_battery``)."""

    @abstractmethod
    async def put_token(self, record: TokenRecord) -> TokenRecord:
        """Insert or update an access token (see ``put_battery``)."""

    @abstractmethod
    async def put_status_list(self, record: StatusListRecord) -> StatusListRecord:
        """Insert or update a status list (see ``put_battery``)."""

    @abstractmethod
    async def put_wallet_credential(self, record: WalletCredential) -> WalletCredential:
        """Insert or update a held credential (see ``put_battery``)."""

    @abstractmethod
    async def put_trust_registry(self, record: TrustRegistryRecord) -> TrustRegistryRecord:
        """Insert or update a trust registry (see ``put_battery``)."""

    @abstractmethod
    async def put_agreement_evidence(self, record: AgreementEvidence) -> AgreementEvidence:
        """Insert or update an agreement's evidence (see ``put_battery``)."""

    @abstractmethod
    async def put_agreement_usage(self, record: AgreementUsage) -> AgreementUsage:
        """Insert or update an agreement's access count (see ``put_battery``)."""

    @abstractmethod
    async def put_received_data(self, record: ReceivedData) -> ReceivedData:
        """Insert or update received data (see ``put_battery``)."""

    @abstractmethod
    async def add_deletion_receipt(self, record: DeletionReceipt) -> bool:
        """Record a deletion receipt; ``False`` if one with its id is already recorded."""

    @abstractmethod
    async def put_hub_cell(self, record: HubCell) -> HubCell:
        """Insert or update a registered cell position (see ``put_battery``)."""

    @abstractmethod
    async def delete_hub_cells(self, hub_id: str) -> int:
        """Forget a hub's registered cells (its pack left this node's bridge); how many. The
        events and batches it raised stay."""

    @abstractmethod
    async def add_hub_events(self, group: HubEventGroup) -> list[str]:
        """Store the group's events not stored before (by ``event_id``); the ids actually
        inserted, so a redelivered message adds nothing (``connector.store.hub_events``)."""

    @abstractmethod
    async def assign_hub_batch(self, batch_id: str, events: Sequence[HubEventRef]) -> list[str]:
        """Mark unbatched events as covered by ``batch_id``; the ids that were free (an event
        another batch covers already is left alone)."""

    @abstractmethod
    async def put_hub_batch(self, record: HubBatch) -> HubBatch:
        """Insert or update a batch (see ``put_battery``)."""

    @abstractmethod
    async def revoke_tokens(self, agreement_id: str) -> int:
        """Revoke every live token of an agreement (it ended); returns how many changed."""

    @abstractmethod
    async def append_audit(
        self, *, actor: str, action: str, subject_id: str, details: JSONObject | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        """Append an audit event (with the change it records); returns it with its ``seq``."""

    @abstractmethod
    async def enqueue(self, message: OutboxMessage) -> OutboxMessage:
        """Queue an outbound message; senders see it only once this transaction commits."""

    @abstractmethod
    async def cancel_outbox(self, process_id: str, *, error: str) -> int:
        """Stop every undelivered message of a process (it ended here first); how many."""

    @abstractmethod
    async def record_inbound(self, process_id: str, message_key: str) -> bool:
        """Note an inbound message; ``True`` the first time, ``False`` for a repeat.

        Recorded in this transaction, so a message whose handling rolled back counts as
        never received and its retry is processed.
        """

    @abstractmethod
    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after a successful commit (e.g. wake the outbox sender).

        Not run on rollback. A callback that raises is logged, never reported as a failed
        commit: the data is already stored.
        """


class Store(ABC):
    """A node's durable state: open with ``connector.store.open_store``, close when done."""

    backend: str
    """``"sqlite"`` or ``"postgresql"``."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[Reader]:
        """A read-only snapshot session."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-write transaction; nested ones (in the same task) raise ``StoreError``."""

    @abstractmethod
    async def lease_outbox(
        self, owner: str, *, lease_seconds: float, limit: int = 10,
        now: datetime | None = None,
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages to ``owner`` until ``now + lease_seconds``.

        Due: not delivered, not failed, ``next_attempt_at <= now``, and no lease or an expired
        one. Two leasers (in any process) never get the same message while its lease runs.
        Returned in queue order (due time, then the order they were queued), carrying the new
        lease.
        """

    @abstractmethod
    async def remember_token_use(
        self, issuer: str, jti: str, *, expires_at: datetime, now: datetime,
    ) -> bool:
        """``True`` the first time ``(issuer, jti)`` is presented while it lives (until
        ``expires_at``), ``False`` for a replay: one answer for every replica on this store."""

    @abstractmethod
    async def forget_tokens_expired(self, before: datetime) -> int:
        """Drop remembered token uses that expired before ``before``; how many."""

    @abstractmethod
    async def release_outbox_leases(self, owner: str) -> int:
        """Drop every lease ``owner`` holds on undelivered messages (a node starting again
        under its old name takes its messages back at once, not after the leases run out)."""

    @abstractmethod
    async def mark_delivered(
        self, message_id: str, owner: str, *, now: datetime | None = None,
    ) -> bool:
        """Mark a leased message delivered; ``False`` if ``owner`` no longer holds it."""

    @abstractmethod
    async def reschedule(
        self, message_id: str, owner: str, *, next_attempt_at: datetime, attempts: int,
        error: str | None = None,
    ) -> bool:
        """Release a message to be retried at ``next_attempt_at`` (the sender's backoff).

        ``False`` if ``owner`` no longer holds the lease (someone else may be sending it).
        """

    @abstractmethod
    async def give_up(
        self, message_id: str, owner: str, *, error: str, now: datetime | None = None,
    ) -> bool:
        """Stop retrying a message (``failed_at``); ``False`` if ``owner`` lost the lease."""

    @abstractmethod
    async def lease_processes(
        self, kind: ProcessKind, owner: str, *, states: Collection[str], lease_seconds: float,
        limit: int = 10, now: datetime | None = None,
    ) -> list[str]:
        """Lease up to ``limit`` processes in ``states`` that nobody holds; returns their ids.

        For work a process needs besides sending (timeouts, policy re-checks, recovery after
        a crash). The holder then loads each in a transaction ``for_update``.
        """

    @abstractmethod
    async def release_process(
        self, kind: ProcessKind, process_id: str, owner: str, *,
        not_before: datetime | None = None,
    ) -> bool:
        """Give a process lease back; ``not_before`` keeps it from being leased until then."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest migration applied to the database."""

    @abstractmethod
    async def close(self) -> None:
        """Close connections; idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
