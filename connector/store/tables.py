"""Which table holds which record, column by column: the one mapping both SQL backends share.

Each column has the name of its record field, so a record becomes a row (and back) without
per-record code; ``tests/connector/test_store.py`` checks that the columns listed here are
exactly the fields of each record class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from connector.store.codec import Column, Dialect, Kind, decode, encode
from connector.store.errors import InvalidRecord
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
    NegotiationRecord,
    OfferRecord,
    OutboxMessage,
    PolicyRecord,
    ReceivedData,
    StatusListRecord,
    TokenRecord,
    TransferRecord,
    TrustRegistryRecord,
    WalletCredential,
)

R = TypeVar("R")



@dataclass(frozen=True)
class Table(Generic[R]):
    """A record class, the table that stores it and its key column.

    ``versioned`` tables have ``version``/``created_at``/``updated_at`` and are changed with
    optimistic ``put``; the others are insert-only (or, for the outbox, changed only by the
    leasing calls).
    """

    name: str
    record: type[R]
    key: str
    columns: tuple[Column, ...]
    versioned: bool

    @property
    def select_list(self) -> str:
        """The column list of a SELECT returning whole records."""
        return ", ".join(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column named ``name`` (for filters)."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def encode(self, record: object, dialect: Dialect) -> dict[str, object]:
        """Column values of ``record``, every one checked; ``InvalidRecord`` otherwise."""
        if not isinstance(record, self.record):
            raise InvalidRecord(
                f"{self.name}: expected a {self.record.__name__}, got {type(record).__name__}")
        values = {c.name: encode(c, getattr(record, c.name), dialect, self.name)
                  for c in self.columns}
        key = values[self.key]
        if key == "":
            raise InvalidRecord(f"{self.name}.{self.key}: may not be empty")
        return values

    def decode(self, row: Mapping[str, Any], dialect: Dialect) -> R:
        """The record a row holds."""
        return self.record(**{c.name: decode(c, row[c.name], dialect) for c in self.columns})

    def field_names(self) -> set[str]:
        """Names of the record class's fields (compared with the columns in the tests)."""
        return {f.name for f in dataclasses.fields(self.record)}  # type: ignore[arg-type]


def _cols(*spec: tuple[str, Kind] | tuple[str, Kind, bool]) -> tuple[Column, ...]:
    return tuple(Column(*item) for item in spec)


def _stamped(*spec: tuple[str, Kind] | tuple[str, Kind, bool]) -> tuple[Column, ...]:
    return _cols(*spec, ("version", Kind.INT), ("created_at", Kind.TIME),
                 ("updated_at", Kind.TIME))


_OPT = True
_REASON = (("reason_kind", Kind.TEXT, _OPT), ("failed_constraint", Kind.TEXT, _OPT),
           ("reason_detail", Kind.TEXT, _OPT))

BATTERIES = Table(
    "batteries", BatteryRecord, "did",
    _stamped(("did", Kind.TEXT), ("kind", Kind.TEXT), ("parent_did", Kind.TEXT, _OPT),
             ("key_id", Kind.TEXT, _OPT), ("properties", Kind.JSON)),
    versioned=True,
)
CREDENTIALS = Table(
    "credentials", CredentialRecord, "digest",
    _cols(("digest", Kind.TEXT), ("battery_did", Kind.TEXT), ("position", Kind.INT),
          ("previous_digest", Kind.TEXT, _OPT), ("issuer", Kind.TEXT), ("types", Kind.STRINGS),
          ("credential", Kind.SECURED), ("created_at", Kind.TIME)),
    versioned=False,
)
ASSETS = Table(
    "assets", AssetRecord, "id",
    _stamped(("id", Kind.TEXT), ("access_level", Kind.TEXT), ("battery_did", Kind.TEXT, _OPT),
             ("properties", Kind.JSON)),
    versioned=True,
)
POLICIES = Table(
    "policies", PolicyRecord, "id",
    _stamped(("id", Kind.TEXT), ("policy", Kind.JSON)),
    versioned=True,
)
OFFERS = Table(
    "offers", OfferRecord, "id",
    _stamped(("id", Kind.TEXT), ("asset_id", Kind.TEXT), ("offer", Kind.JSON),
             ("policy_id", Kind.TEXT, _OPT)),
    versioned=True,
)
NEGOTIATIONS = Table(
    "negotiations", NegotiationRecord, "id",
    _stamped(("id", Kind.TEXT), ("role", Kind.ROLE), ("state", Kind.TEXT),
             ("counterparty_did", Kind.TEXT), ("counterparty_address", Kind.TEXT),
             ("counterparty_pid", Kind.TEXT, _OPT), ("asset_id", Kind.TEXT, _OPT),
             ("offer_id", Kind.TEXT, _OPT), ("offer", Kind.JSON, _OPT),
             ("agreement_id", Kind.TEXT, _OPT), *_REASON, ("agreement", Kind.JSON, _OPT)),
    versioned=True,
)
AGREEMENTS = Table(
    "agreements", AgreementRecord, "id",
    _cols(("id", Kind.TEXT), ("asset_id", Kind.TEXT), ("provider_did", Kind.TEXT),
          ("consumer_did", Kind.TEXT), ("agreement", Kind.JSON), ("signed_at", Kind.TIME),
          ("negotiation_id", Kind.TEXT, _OPT), ("not_after", Kind.TIME, _OPT),
          ("created_at", Kind.TIME)),
    versioned=False,
)
TRANSFERS = Table(
    "transfers", TransferRecord, "id",
    _stamped(("id", Kind.TEXT), ("role", Kind.ROLE), ("state", Kind.TEXT),
             ("agreement_id", Kind.TEXT), ("asset_id", Kind.TEXT),
             ("counterparty_did", Kind.TEXT), ("counterparty_address", Kind.TEXT),
             ("format", Kind.TEXT), ("counterparty_pid", Kind.TEXT, _OPT),
             ("data_address", Kind.JSON, _OPT), *_REASON),
    versioned=True,
)
TOKENS = Table(
    "tokens", TokenRecord, "jti",
    _stamped(("jti", Kind.TEXT), ("agreement_id", Kind.TEXT), ("consumer_did", Kind.TEXT),
             ("asset_id", Kind.TEXT), ("expires_at", Kind.TIME), ("transfer_id", Kind.TEXT, _OPT),
             ("revoked", Kind.BOOL), ("audience", Kind.TEXT, _OPT),
             ("refresh_token_hash", Kind.TEXT, _OPT),
             ("previous_refresh_token_hash", Kind.TEXT, _OPT)),
    versioned=True,
)
AGREEMENT_TERMINATIONS = Table(
    "agreement_terminations", AgreementTermination, "agreement_id",
    _cols(("agreement_id", Kind.TEXT), ("at", Kind.TIME), ("actor", Kind.TEXT),
          ("reason", Kind.TEXT)),
    versioned=False,
)
STATUS_LISTS = Table(
    "status_lists", StatusListRecord, "url",
    _stamped(("url", Kind.TEXT), ("purpose", Kind.TEXT), ("state", Kind.JSON)),
    versioned=True,
)
WALLET = Table(
    "wallet_credentials", WalletCredential, "id",
    _stamped(("id", Kind.TEXT), ("types", Kind.STRINGS), ("issuer", Kind.TEXT),
             ("document", Kind.JSON), ("valid_until", Kind.TIME, _OPT),
             ("removed_at", Kind.TIME, _OPT)),
    versioned=True,
)
TRUST_REGISTRIES = Table(
    "trust_registries", TrustRegistryRecord, "name",
    _stamped(("name", Kind.TEXT), ("document", Kind.JSON)),
    versioned=True,
)
AGREEMENT_EVIDENCE = Table(
    "agreement_evidence", AgreementEvidence, "agreement_id",
    _stamped(("agreement_id", Kind.TEXT), ("consumer_did", Kind.TEXT), ("evidence", Kind.JSON)),
    versioned=True,
)
AGREEMENT_USAGE = Table(
    "agreement_usage", AgreementUsage, "agreement_id",
    _stamped(("agreement_id", Kind.TEXT), ("access_count", Kind.INT),
             ("last_access_at", Kind.TIME, _OPT)),
    versioned=True,
)
RECEIVED_DATA = Table(
    "received_data", ReceivedData, "transfer_id",
    _stamped(("transfer_id", Kind.TEXT), ("agreement_id", Kind.TEXT),
             ("provider_did", Kind.TEXT), ("asset_id", Kind.TEXT), ("data", Kind.JSON, _OPT),
             ("received_at", Kind.TIME), ("purge_at", Kind.TIME, _OPT),
             ("purged_at", Kind.TIME, _OPT), ("receipt", Kind.JSON, _OPT),
             ("receipt_sent_at", Kind.TIME, _OPT), ("provider_address", Kind.TEXT, _OPT)),
    versioned=True,
)
DELETION_RECEIPTS = Table(
    "deletion_receipts", DeletionReceipt, "id",
    _cols(("id", Kind.TEXT), ("agreement_id", Kind.TEXT), ("consumer_did", Kind.TEXT),
          ("receipt", Kind.JSON), ("received_at", Kind.TIME)),
    versioned=False,
)
HUB_CELLS = Table(
    "hub_cells", HubCell, "id",
    _stamped(("id", Kind.TEXT), ("hub_id", Kind.TEXT), ("battery_did", Kind.TEXT),
             ("position", Kind.INT), ("cell_uid", Kind.TEXT), ("cell_did", Kind.TEXT),
             ("configuration", Kind.TEXT), ("observed_uid", Kind.TEXT, _OPT)),
    versioned=True,
)
HUB_BATCHES = Table(
    "hub_batches", HubBatch, "id",
    _stamped(("id", Kind.TEXT), ("battery_did", Kind.TEXT), ("hub_id", Kind.TEXT),
             ("merkle_root", Kind.TEXT), ("tree_size", Kind.INT), ("event_ids", Kind.STRINGS),
             ("first_event_at", Kind.TIME), ("last_event_at", Kind.TIME),
             ("closed_at", Kind.TIME), ("credential_digest", Kind.TEXT, _OPT)),
    versioned=True,
)
OUTBOX = Table(
    "outbox", OutboxMessage, "id",
    _cols(("id", Kind.TEXT), ("process_id", Kind.TEXT), ("kind", Kind.TEXT),
          ("target_url", Kind.TEXT), ("body", Kind.JSON), ("attempts", Kind.INT),
          ("next_attempt_at", Kind.TIME), ("lease_owner", Kind.TEXT, _OPT),
          ("lease_until", Kind.TIME, _OPT), ("delivered_at", Kind.TIME, _OPT),
          ("failed_at", Kind.TIME, _OPT), ("last_error", Kind.TEXT, _OPT),
          ("created_at", Kind.TIME)),
    versioned=False,
)
AUDIT = Table(
    "audit_log", AuditEvent, "seq",
    _cols(("seq", Kind.INT), ("at", Kind.TIME), ("actor", Kind.TEXT), ("action", Kind.TEXT),
          ("subject_id", Kind.TEXT), ("details", Kind.JSON)),
    versioned=False,
)

TABLES: tuple[Table[Any], ...] = (BATTERIES, CREDENTIALS, ASSETS, POLICIES, OFFERS, NEGOTIATIONS,
                                  AGREEMENTS, AGREEMENT_TERMINATIONS, TRANSFERS, TOKENS,
                                  STATUS_LISTS, WALLET, TRUST_REGISTRIES, AGREEMENT_EVIDENCE,
                                  AGREEMENT_USAGE, RECEIVED_DATA, DELETION_RECEIPTS, HUB_CELLS,
                                  HUB_BATCHES, OUTBOX, AUDIT)
