"""The ``Store`` implemented once in SQL, over any backend that can run a statement.

SQLite and PostgreSQL differ in how they connect, lock and report errors (their modules), in
DDL (their migrations) and in a few value representations (``codec.Dialect``); the statements
that read and write records are the same, so they live here once. Statements are written with
PostgreSQL's ``$n`` placeholders; the SQLite connection rewrites them to its ``?n``.

Inserts use ``ON CONFLICT DO NOTHING`` and updates a ``version`` guard, so a conflict is
detected from the rows returned instead of from a database error: on PostgreSQL an error aborts
the whole transaction, a conflict found this way does not.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connector.store import hub_events
from connector.store.base import DEFAULT_PAGE, Reader, StateCounts, Store, Transaction
from connector.store.codec import (
    Dialect,
    check_int,
    check_key,
    check_text,
    check_time,
    decode_time,
    encode,
    encode_time,
)
from connector.store.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidRecord,
    NotFound,
    StoreError,
)
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
from connector.store.tables import (
    AGREEMENT_EVIDENCE,
    AGREEMENT_TERMINATIONS,
    AGREEMENT_USAGE,
    AGREEMENTS,
    ASSETS,
    AUDIT,
    BATTERIES,
    CREDENTIALS,
    DELETION_RECEIPTS,
    HUB_BATCHES,
    HUB_CELLS,
    NEGOTIATIONS,
    OFFERS,
    OUTBOX,
    POLICIES,
    RECEIVED_DATA,
    STATUS_LISTS,
    TOKENS,
    TRANSFERS,
    TRUST_REGISTRIES,
    WALLET,
    Table,
)

log = logging.getLogger(__name__)

R = TypeVar("R")
Clock = Callable[[], datetime]

MAX_PAGE = 10_000
"""The largest ``limit`` a list or lease call accepts (bounded memory per call)."""

_PROCESS_TABLES: dict[ProcessKind, Table[Any]] = {
    ProcessKind.NEGOTIATION: NEGOTIATIONS,
    ProcessKind.TRANSFER: TRANSFERS,
}

#: Stores with a write session open in the current task: a second one would wait for the
#: first forever on SQLite (one writer) and could deadlock on row locks on PostgreSQL.
_WRITING: ContextVar[frozenset[int]] = ContextVar("bpc_store_writing", default=frozenset())


class Connection(ABC):
    """One database connection inside one transaction, reduced to what the SQL here needs."""

    dialect: Dialect

    @abstractmethod
    async def fetch(self, sql: str, *params: object) -> list[dict[str, Any]]:
        """Run one statement and return its rows; driver errors become ``StoreError``s."""


def _check_limit(limit: object) -> int:
    value = check_int(limit, "limit")
    if not 0 < value <= MAX_PAGE:
        raise InvalidRecord(f"limit: must be between 1 and {MAX_PAGE}, got {value}")
    return value


@functools.cache
def _insert_sql(table: Table[Any], returning: str) -> str:
    names = [c.name for c in table.columns if c.name != "seq"]
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT DO NOTHING RETURNING {returning}")


@functools.cache
def _update_sql(table: Table[Any]) -> tuple[str, tuple[str, ...]]:
    """The optimistic UPDATE of a versioned table and the columns it sets, in order."""
    names = tuple(c.name for c in table.columns if c.name not in (table.key, "created_at"))
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    sql = (f"UPDATE {table.name} SET {sets} WHERE {table.key} = $1 "
           f"AND version = ${len(names) + 2} RETURNING created_at")
    return sql, names


class SqlSession(Transaction):
    """A read session or a transaction on one ``Connection``; valid until its block ends."""

    def __init__(self, conn: Connection, *, writable: bool, clock: Clock) -> None:
        self._conn = conn
        self._dialect = conn.dialect
        self._writable = writable
        self._clock = clock
        self._open = True
        self.callbacks: list[Callable[[], None]] = []

    def close(self) -> None:
        """End the session: any later call raises instead of running outside the block."""
        self._open = False

    async def _fetch(self, sql: str, *params: object) -> list[dict[str, Any]]:
        if not self._open:
            raise StoreError("this store session has ended; open a new one")
        return await self._conn.fetch(sql, *params)

    def _require_writable(self) -> None:
        if not self._writable:
            raise StoreError("a read session cannot write; use store.transaction()")

    def _now(self) -> datetime:
        return check_time(self._clock(), "clock")

    def _bool(self, value: bool) -> object:
        return value if self._dialect.native_bool else int(value)

    # --- generic operations -------------------------------------------------------------

    async def _get(self, table: Table[R], key: object, for_update: bool) -> R | None:
        key = check_key(key, f"{table.name}.{table.key}")
        if for_update and not self._writable:
            raise StoreError("for_update needs a transaction; use store.transaction()")
        lock = self._dialect.lock_rows if for_update else ""
        rows = await self._fetch(
            f"SELECT {table.select_list} FROM {table.name} WHERE {table.key} = $1{lock}", key)
        return table.decode(rows[0], self._dialect) if rows else None

    async def _list(
        self, table: Table[R], filters: Mapping[str, object], *, after: object, limit: object,
        extra: str = "",
    ) -> list[R]:
        params: list[object] = []
        clauses = [extra] if extra else []
        for name, value in filters.items():
            if value is not None:
                params.append(encode(table.column(name), value, self._dialect, table.name))
                clauses.append(f"{name} = ${len(params)}")
        if after is not None:
            params.append(check_key(after, "after"))
            clauses.append(f"{table.key} > ${len(params)}")
        params.append(_check_limit(limit))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(
            f"SELECT {table.select_list} FROM {table.name}{where} "
            f"ORDER BY {table.key} LIMIT ${len(params)}", *params)
        return [table.decode(row, self._dialect) for row in rows]

    async def _insert(self, table: Table[Any], values: Mapping[str, object]) -> bool:
        """Insert a row unless its key (or another unique key) is taken; True if inserted."""
        params = [value for name, value in values.items() if name != "seq"]
        return bool(await self._fetch(_insert_sql(table, table.key), *params))

    async def _exists(self, table: Table[Any], column: str, value: object) -> bool:
        rows = await self._fetch(f"SELECT 1 AS found FROM {table.name} WHERE {column} = $1",
                                 value)
        return bool(rows)

    async def _put(self, table: Table[R], record: R) -> R:
        self._require_writable()
        values = table.encode(record, self._dialect)
        key, version = values[table.key], values["version"]
        assert isinstance(version, int)
        if version < 0:
            raise InvalidRecord(f"{table.name}.version: must not be negative")
        now = self._now()
        values["updated_at"] = encode_time(now, self._dialect)
        if version == 0:
            values["version"] = 1
            if not await self._insert(table, values):
                raise AlreadyExists(f"{table.name} {key!r} already exists")
            return replace(record, version=1, updated_at=now)  # type: ignore[type-var]
        values["version"] = version + 1
        sql, names = _update_sql(table)
        rows = await self._fetch(sql, key, *(values[n] for n in names), version)
        if not rows:
            stored = await self._fetch(
                f"SELECT version FROM {table.name} WHERE {table.key} = $1", key)
            if not stored:
                raise NotFound(f"{table.name} {key!r} does not exist")
            raise ConcurrentUpdate(f"{table.name} {key!r} is at version "
                                   f"{stored[0]['version']}, not {version}")
        created = decode_time(rows[0]["created_at"], self._dialect)
        return replace(record, version=version + 1, updated_at=now,  # type: ignore[type-var]
                       created_at=created)

    # --- reads --------------------------------------------------------------------------

    async def get_battery(self, did: str, *, for_update: bool = False) -> BatteryRecord | None:
        return await self._get(BATTERIES, did, for_update)

    async def list_batteries(
        self, *, parent_did: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[BatteryRecord]:
        return await self._list(BATTERIES, {"parent_did": parent_did}, after=after, limit=limit)

    async def get_credential(self, digest: str) -> CredentialRecord | None:
        return await self._get(CREDENTIALS, digest, False)

    async def passport(
        self, battery_did: str, *, from_position: int = 0, limit: int | None = None,
    ) -> list[CredentialRecord]:
        params: list[object] = [check_key(battery_did, "battery_did"),
                                check_int(from_position, "from_position")]
        page = ""
        if limit is not None:
            params.append(_check_limit(limit))
            page = " LIMIT $3"
        rows = await self._fetch(
            f"SELECT {CREDENTIALS.select_list} FROM credentials WHERE battery_did = $1 "
            f"AND position >= $2 ORDER BY position{page}", *params)
        return [CREDENTIALS.decode(row, self._dialect) for row in rows]

    async def passport_head(self, battery_did: str) -> CredentialRecord | None:
        rows = await self._fetch(
            f"SELECT {CREDENTIALS.select_list} FROM credentials WHERE battery_did = $1 "
            "ORDER BY position DESC LIMIT 1", check_key(battery_did, "battery_did"))
        return CREDENTIALS.decode(rows[0], self._dialect) if rows else None

    async def get_asset(self, asset_id: str, *, for_update: bool = False) -> AssetRecord | None:
        return await self._get(ASSETS, asset_id, for_update)

    async def list_assets(
        self, *, access_level: str | None = None, battery_did: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AssetRecord]:
        return await self._list(ASSETS, {"access_level": access_level, "battery_did": battery_did},
                                after=after, limit=limit)

    async def get_policy(self, policy_id: str, *, for_update: bool = False) -> PolicyRecord | None:
        return await self._get(POLICIES, policy_id, for_update)

    async def list_policies(
        self, *, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[PolicyRecord]:
        return await self._list(POLICIES, {}, after=after, limit=limit)

    async def get_offer(self, offer_id: str, *, for_update: bool = False) -> OfferRecord | None:
        return await self._get(OFFERS, offer_id, for_update)

    async def list_offers(
        self, *, asset_id: str | None = None, policy_id: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[OfferRecord]:
        return await self._list(OFFERS, {"asset_id": asset_id, "policy_id": policy_id},
                                after=after, limit=limit)

    async def get_negotiation(
        self, negotiation_id: str, *, for_update: bool = False,
    ) -> NegotiationRecord | None:
        return await self._get(NEGOTIATIONS, negotiation_id, for_update)

    async def list_negotiations(
        self, *, state: str | None = None, role: Role | None = None,
        counterparty_did: str | None = None, counterparty_pid: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[NegotiationRecord]:
        filters = {"state": state, "role": role, "counterparty_did": counterparty_did,
                   "counterparty_pid": counterparty_pid}
        return await self._list(NEGOTIATIONS, filters, after=after, limit=limit)

    async def get_agreement(self, agreement_id: str) -> AgreementRecord | None:
        return await self._get(AGREEMENTS, agreement_id, False)

    async def list_agreements(
        self, *, asset_id: str | None = None, consumer_did: str | None = None,
        provider_did: str | None = None, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AgreementRecord]:
        filters = {"asset_id": asset_id, "consumer_did": consumer_did,
                   "provider_did": provider_did}
        return await self._list(AGREEMENTS, filters, after=after, limit=limit)

    async def get_transfer(
        self, transfer_id: str, *, for_update: bool = False,
    ) -> TransferRecord | None:
        return await self._get(TRANSFERS, transfer_id, for_update)

    async def list_transfers(
        self, *, state: str | None = None, role: Role | None = None,
        agreement_id: str | None = None, counterparty_pid: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[TransferRecord]:
        filters = {"state": state, "role": role, "agreement_id": agreement_id,
                   "counterparty_pid": counterparty_pid}
        return await self._list(TRANSFERS, filters, after=after, limit=limit)

    async def get_token(self, jti: str, *, for_update: bool = False) -> TokenRecord | None:
        return await self._get(TOKENS, jti, for_update)

    async def list_tokens(
        self, *, agreement_id: str | None = None, transfer_id: str | None = None,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[TokenRecord]:
        return await self._list(TOKENS, {"agreement_id": agreement_id, "transfer_id": transfer_id},
                                after=after, limit=limit)

    async def count_states(self, now: datetime) -> StateCounts:
        processes = {}
        for table in ("negotiations", "transfers"):
            rows = await self._fetch(
                f"SELECT role, state, COUNT(*) AS n FROM {table} GROUP BY role, state")
            processes[table] = {(str(r["role"]), str(r["state"])): int(r["n"]) for r in rows}
        rows = await self._fetch(
            "SELECT revoked, previous_refresh_token_hash IS NOT NULL AS refreshed, "
            "COUNT(*) AS n FROM tokens GROUP BY revoked, previous_refresh_token_hash IS NOT NULL")
        tokens: dict[tuple[bool, bool], int] = {}
        for r in rows:  # SQLite answers 0/1, PostgreSQL booleans
            key = (bool(r["revoked"]), bool(r["refreshed"]))
            tokens[key] = tokens.get(key, 0) + int(r["n"])
        live = await self._fetch(
            "SELECT COUNT(*) AS n FROM tokens WHERE revoked = $1 AND expires_at > $2",
            self._bool(False), encode_time(check_time(now, "now"), self._dialect))
        credentials = await self._fetch("SELECT COUNT(*) AS n FROM credentials")
        return StateCounts(negotiations=processes["negotiations"],
                           transfers=processes["transfers"], tokens=tokens,
                           live_tokens=int(live[0]["n"]),
                           passport_credentials=int(credentials[0]["n"]))

    async def find_token_by_refresh_hash(
        self, refresh_token_hash: str, *, for_update: bool = False
    ) -> TokenRecord | None:
        h = check_text(refresh_token_hash, "refresh_token_hash")
        if for_update and not self._writable:
            raise StoreError("for_update needs a transaction; use store.transaction()")
        lock = self._dialect.lock_rows if for_update else ""
        rows = await self._fetch(
            f"SELECT {TOKENS.select_list} FROM tokens WHERE revoked = $2 AND "
            f"(refresh_token_hash = $1 OR previous_refresh_token_hash = $1) "
            f"ORDER BY jti LIMIT 1{lock}", h, self._bool(False))
        return TOKENS.decode(rows[0], self._dialect) if rows else None

    async def get_status_list(self, url: str, *,
                              for_update: bool = False) -> StatusListRecord | None:
        return await self._get(STATUS_LISTS, url, for_update)

    async def list_status_lists(self, *, purpose: str | None = None) -> list[StatusListRecord]:
        return await self._list(STATUS_LISTS, {"purpose": purpose}, after=None, limit=MAX_PAGE)

    async def get_agreement_termination(self, agreement_id: str) -> AgreementTermination | None:
        return await self._get(AGREEMENT_TERMINATIONS, agreement_id, False)

    async def get_wallet_credential(self, credential_id: str, *,
                                    for_update: bool = False) -> WalletCredential | None:
        return await self._get(WALLET, credential_id, for_update)

    async def list_wallet_credentials(
        self, *, include_removed: bool = False, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[WalletCredential]:
        extra = "" if include_removed else "removed_at IS NULL"
        return await self._list(WALLET, {}, after=after, limit=limit, extra=extra)

    async def get_trust_registry(self, name: str = "default", *,
                                 for_update: bool = False) -> TrustRegistryRecord | None:
        return await self._get(TRUST_REGISTRIES, name, for_update)

    async def get_agreement_evidence(self, agreement_id: str) -> AgreementEvidence | None:
        return await self._get(AGREEMENT_EVIDENCE, agreement_id, False)

    async def list_agreement_evidence(
        self, *, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[AgreementEvidence]:
        return await self._list(AGREEMENT_EVIDENCE, {}, after=after, limit=limit)

    async def get_agreement_usage(self, agreement_id: str, *,
                                  for_update: bool = False) -> AgreementUsage | None:
        return await self._get(AGREEMENT_USAGE, agreement_id, for_update)

    async def get_received_data(self, transfer_id: str, *,
                                for_update: bool = False) -> ReceivedData | None:
        return await self._get(RECEIVED_DATA, transfer_id, for_update)

    async def list_received_data(
        self, *, agreement_id: str | None = None, due_by: datetime | None = None,
        receipt_unsent: bool = False, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[ReceivedData]:
        params: list[object] = []
        clauses: list[str] = []
        if agreement_id is not None:
            params.append(check_key(agreement_id, "agreement_id"))
            clauses.append(f"agreement_id = ${len(params)}")
        if due_by is not None:
            params.append(encode_time(check_time(due_by, "due_by"), self._dialect))
            clauses.append(f"purged_at IS NULL AND purge_at <= ${len(params)}")
        if receipt_unsent:
            clauses.append("receipt IS NOT NULL AND receipt_sent_at IS NULL")
        if after is not None:
            params.append(check_key(after, "after"))
            clauses.append(f"transfer_id > ${len(params)}")
        params.append(_check_limit(limit))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(
            f"SELECT {RECEIVED_DATA.select_list} FROM received_data{where} "
            f"ORDER BY transfer_id LIMIT ${len(params)}", *params)
        return [RECEIVED_DATA.decode(row, self._dialect) for row in rows]

    async def list_deletion_receipts(
        self, *, agreement_id: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[DeletionReceipt]:
        return await self._list(DELETION_RECEIPTS, {"agreement_id": agreement_id},
                                after=after, limit=limit)

    async def get_hub_cell(self, cell_id: str, *, for_update: bool = False) -> HubCell | None:
        return await self._get(HUB_CELLS, cell_id, for_update)

    async def list_hub_cells(
        self, *, hub_id: str | None = None, battery_did: str | None = None,
        configuration: str | None = None, after: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> list[HubCell]:
        return await self._list(HUB_CELLS, {"hub_id": hub_id, "battery_did": battery_did,
                                            "configuration": configuration},
                                after=after, limit=limit)

    async def get_hub_event(self, event_id: str) -> HubEvent | None:
        return await hub_events.get_event(self._fetch, self._dialect, event_id)

    async def list_hub_events(
        self, *, battery_did: str | None = None, batch_id: str | None = None,
        unbatched: bool = False, after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[HubEvent]:
        return await hub_events.list_events(
            self._fetch, self._dialect, battery_did=battery_did, batch_id=batch_id,
            unbatched=unbatched, after=after, limit=_check_limit(limit))

    async def get_hub_batch(self, batch_id: str) -> HubBatch | None:
        return await self._get(HUB_BATCHES, batch_id, False)

    async def list_hub_batches(
        self, *, battery_did: str | None = None, uncredentialed: bool = False,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[HubBatch]:
        return await self._list(HUB_BATCHES, {"battery_did": battery_did}, after=after,
                                limit=limit,
                                extra="credential_digest IS NULL" if uncredentialed else "")

    async def get_outbox(self, message_id: str) -> OutboxMessage | None:
        return await self._get(OUTBOX, message_id, False)

    async def list_outbox(
        self, *, process_id: str | None = None, pending_only: bool = False,
        after: str | None = None, limit: int = DEFAULT_PAGE,
    ) -> list[OutboxMessage]:
        extra = "delivered_at IS NULL AND failed_at IS NULL" if pending_only else ""
        return await self._list(OUTBOX, {"process_id": process_id}, after=after, limit=limit,
                                extra=extra)

    async def list_audit(
        self, *, subject_id: str | None = None, after_seq: int = 0, limit: int = DEFAULT_PAGE,
    ) -> list[AuditEvent]:
        params: list[object] = [check_int(after_seq, "after_seq"), _check_limit(limit)]
        subject = ""
        if subject_id is not None:
            params.append(check_text(subject_id, "subject_id"))
            subject = " AND subject_id = $3"
        rows = await self._fetch(
            f"SELECT {AUDIT.select_list} FROM audit_log WHERE seq > $1{subject} "
            "ORDER BY seq LIMIT $2", *params)
        return [AUDIT.decode(row, self._dialect) for row in rows]

    # --- writes -------------------------------------------------------------------------

    async def put_battery(self, record: BatteryRecord) -> BatteryRecord:
        return await self._put(BATTERIES, record)

    async def add_credential(self, record: CredentialRecord) -> CredentialRecord:
        self._require_writable()
        values = CREDENTIALS.encode(record, self._dialect)
        did, position = record.battery_did, record.position
        check_key(did, "credentials.battery_did")
        if position < 0:
            raise InvalidRecord("credentials.position: must not be negative")
        if position == 0:
            if not await self._exists(BATTERIES, "did", did):
                raise InvalidRecord(f"credentials.battery_did: unknown battery {did!r}")
        else:
            rows = await self._fetch(
                "SELECT digest FROM credentials WHERE battery_did = $1 AND position = $2",
                did, position - 1)
            if not rows:
                raise InvalidRecord(f"credentials.position: {did!r} has no entry at "
                                    f"position {position - 1} to link to")
            if rows[0]["digest"] != record.previous_digest:
                raise InvalidRecord(
                    f"credentials.previous_digest: {record.previous_digest!r} is not the "
                    f"digest at position {position - 1} ({rows[0]['digest']!r})")
        if not await self._insert(CREDENTIALS, values):
            if await self._exists(CREDENTIALS, "digest", record.digest):
                raise AlreadyExists(f"credential {record.digest!r} is already stored")
            raise ConcurrentUpdate(f"position {position} of {did!r} was taken by another entry")
        return record

    async def put_asset(self, record: AssetRecord) -> AssetRecord:
        return await self._put(ASSETS, record)

    async def put_policy(self, record: PolicyRecord) -> PolicyRecord:
        return await self._put(POLICIES, record)

    async def put_offer(self, record: OfferRecord) -> OfferRecord:
        return await self._put(OFFERS, record)

    async def put_negotiation(self, record: NegotiationRecord) -> NegotiationRecord:
        return await self._put(NEGOTIATIONS, record)

    async def add_agreement(self, record: AgreementRecord) -> AgreementRecord:
        self._require_writable()
        if not await self._insert(AGREEMENTS, AGREEMENTS.encode(record, self._dialect)):
            raise AlreadyExists(f"agreement {record.id!r} already exists")
        return record

    async def add_agreement_termination(
        self, record: AgreementTermination
    ) -> AgreementTermination:
        self._require_writable()
        if not await self._exists(AGREEMENTS, "id", check_key(record.agreement_id,
                                                              "agreement_id")):
            raise InvalidRecord(f"agreement_terminations.agreement_id: unknown agreement "
                                f"{record.agreement_id!r}")
        values = AGREEMENT_TERMINATIONS.encode(record, self._dialect)
        if not await self._insert(AGREEMENT_TERMINATIONS, values):
            raise AlreadyExists(f"agreement {record.agreement_id!r} is already terminated")
        return record

    async def put_transfer(self, record: TransferRecord) -> TransferRecord:
        return await self._put(TRANSFERS, record)

    async def put_token(self, record: TokenRecord) -> TokenRecord:
        return await self._put(TOKENS, record)

    async def put_status_list(self, record: StatusListRecord) -> StatusListRecord:
        return await self._put(STATUS_LISTS, record)

    async def put_wallet_credential(self, record: WalletCredential) -> WalletCredential:
        return await self._put(WALLET, record)

    async def put_trust_registry(self, record: TrustRegistryRecord) -> TrustRegistryRecord:
        return await self._put(TRUST_REGISTRIES, record)

    async def put_agreement_evidence(self, record: AgreementEvidence) -> AgreementEvidence:
        return await self._put(AGREEMENT_EVIDENCE, record)

    async def put_agreement_usage(self, record: AgreementUsage) -> AgreementUsage:
        return await self._put(AGREEMENT_USAGE, record)

    async def put_received_data(self, record: ReceivedData) -> ReceivedData:
        return await self._put(RECEIVED_DATA, record)

    async def add_deletion_receipt(self, record: DeletionReceipt) -> bool:
        self._require_writable()
        return await self._insert(DELETION_RECEIPTS,
                                  DELETION_RECEIPTS.encode(record, self._dialect))

    async def put_hub_cell(self, record: HubCell) -> HubCell:
        return await self._put(HUB_CELLS, record)

    async def delete_hub_cells(self, hub_id: str) -> int:
        self._require_writable()
        rows = await self._fetch("DELETE FROM hub_cells WHERE hub_id = $1 RETURNING id",
                                 check_key(hub_id, "hub_id"))
        return len(rows)

    async def add_hub_events(self, group: HubEventGroup) -> list[str]:
        self._require_writable()
        return await hub_events.add_group(self._fetch, self._dialect, group)

    async def assign_hub_batch(self, batch_id: str, events: Sequence[HubEventRef]) -> list[str]:
        self._require_writable()
        return await hub_events.assign_batch(self._fetch, batch_id, events)

    async def put_hub_batch(self, record: HubBatch) -> HubBatch:
        return await self._put(HUB_BATCHES, record)

    async def revoke_tokens(self, agreement_id: str) -> int:
        self._require_writable()
        now = encode_time(self._now(), self._dialect)
        rows = await self._fetch(
            "UPDATE tokens SET revoked = $2, version = version + 1, updated_at = $3 "
            "WHERE agreement_id = $1 AND revoked = $4 RETURNING jti",
            check_key(agreement_id, "agreement_id"), self._bool(True), now, self._bool(False))
        return len(rows)

    async def append_audit(
        self, *, actor: str, action: str, subject_id: str, details: JSONObject | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        self._require_writable()
        event = AuditEvent(seq=0, at=self._now() if at is None else at, actor=actor,
                           action=action, subject_id=subject_id,
                           details={} if details is None else details)
        values = AUDIT.encode(event, self._dialect)
        rows = await self._fetch(_insert_sql(AUDIT, "seq"),
                                 *(v for name, v in values.items() if name != "seq"))
        return replace(event, seq=rows[0]["seq"])

    async def enqueue(self, message: OutboxMessage) -> OutboxMessage:
        self._require_writable()
        values = OUTBOX.encode(message, self._dialect)
        if message.attempts < 0:
            raise InvalidRecord("outbox.attempts: must not be negative")
        if not await self._insert(OUTBOX, values):
            raise AlreadyExists(f"outbox message {message.id!r} already exists")
        return message

    async def cancel_outbox(self, process_id: str, *, error: str) -> int:
        self._require_writable()
        now = encode_time(self._now(), self._dialect)
        rows = await self._fetch(
            "UPDATE outbox SET failed_at = $2, last_error = $3 WHERE process_id = $1 "
            "AND delivered_at IS NULL AND failed_at IS NULL RETURNING id",
            check_key(process_id, "process_id"), now, check_text(error, "error"))
        return len(rows)

    async def record_inbound(self, process_id: str, message_key: str) -> bool:
        self._require_writable()
        rows = await self._fetch(
            "INSERT INTO inbound_receipts (process_id, message_key, received_at) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING process_id",
            check_key(process_id, "process_id"), check_key(message_key, "message_key"),
            encode_time(self._now(), self._dialect))
        return bool(rows)

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._require_writable()
        self.callbacks.append(callback)


class SqlStore(Store):
    """The shared part of the SQL stores; a backend supplies connections in transactions."""

    def __init__(self, *, dialect: Dialect, clock: Clock) -> None:
        self._dialect = dialect
        self._clock = clock

    @abstractmethod
    def _write_connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection in a read-write transaction: commit on exit, roll back on error."""

    @abstractmethod
    def _read_connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection in a read-only snapshot transaction."""

    def _now(self, now: datetime | None) -> datetime:
        return check_time(self._clock() if now is None else now, "now")

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[Connection]:
        writing = _WRITING.get()
        if id(self) in writing:
            raise StoreError("a transaction of this store is already open in this task; "
                             "nest the work inside it instead of opening another")
        token = _WRITING.set(writing | {id(self)})
        try:
            async with self._write_connection() as conn:
                yield conn
        finally:
            _WRITING.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        async with self._read_connection() as conn:
            session = SqlSession(conn, writable=False, clock=self._clock)
            try:
                yield session
            finally:
                session.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._writing() as conn:
            session = SqlSession(conn, writable=True, clock=self._clock)
            try:
                yield session
            finally:
                session.close()
        for callback in session.callbacks:
            try:
                callback()
            except Exception:
                log.exception("on_commit callback %r failed (the transaction committed)",
                              callback)

    async def _fetch_one_shot(self, sql: str, *params: object) -> list[dict[str, Any]]:
        async with self._writing() as conn:
            return await conn.fetch(sql, *params)

    async def lease_outbox(
        self, owner: str, *, lease_seconds: float, limit: int = 10,
        now: datetime | None = None,
    ) -> list[OutboxMessage]:
        at = self._now(now)
        until = at + _lease_length(lease_seconds)
        d = self._dialect
        rows = await self._fetch_one_shot(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id IN ("
            "SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL "
            "AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) "
            f"ORDER BY next_attempt_at, created_at, id LIMIT $4{d.skip_locked}) "
            f"RETURNING {OUTBOX.select_list}",
            check_key(owner, "owner"), encode_time(until, d), encode_time(at, d),
            _check_limit(limit))
        messages = [OUTBOX.decode(row, d) for row in rows]
        return sorted(messages, key=lambda m: (m.next_attempt_at, m.created_at, m.id))

    async def remember_token_use(
        self, issuer: str, jti: str, *, expires_at: datetime, now: datetime,
    ) -> bool:
        d = self._dialect
        at, until = encode_time(now, d), encode_time(expires_at, d)
        rows = await self._fetch_one_shot(
            "INSERT INTO seen_tokens (issuer, jti, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE seen_tokens.expires_at <= $4 RETURNING jti",
            check_text(issuer, "issuer"), check_text(jti, "jti"), until, at)
        return bool(rows)

    async def forget_tokens_expired(self, before: datetime) -> int:
        rows = await self._fetch_one_shot(
            "DELETE FROM seen_tokens WHERE expires_at <= $1 RETURNING jti",
            encode_time(before, self._dialect))
        return len(rows)

    async def release_outbox_leases(self, owner: str) -> int:
        rows = await self._fetch_one_shot(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 "
            "AND delivered_at IS NULL AND failed_at IS NULL RETURNING id",
            check_key(owner, "owner"))
        return len(rows)

    async def _settle(self, message_id: str, owner: str, sets: str, *params: object) -> bool:
        """Apply ``sets`` to a message ``owner`` still holds, and drop the lease."""
        rows = await self._fetch_one_shot(
            f"UPDATE outbox SET {sets}, lease_owner = NULL, lease_until = NULL "
            "WHERE id = $1 AND lease_owner = $2 AND delivered_at IS NULL AND failed_at IS NULL "
            "RETURNING id",
            check_key(message_id, "message_id"), check_key(owner, "owner"), *params)
        return bool(rows)

    async def mark_delivered(
        self, message_id: str, owner: str, *, now: datetime | None = None,
    ) -> bool:
        return await self._settle(message_id, owner, "delivered_at = $3",
                                  encode_time(self._now(now), self._dialect))

    async def reschedule(
        self, message_id: str, owner: str, *, next_attempt_at: datetime, attempts: int,
        error: str | None = None,
    ) -> bool:
        at = check_time(next_attempt_at, "next_attempt_at")
        if check_int(attempts, "attempts") < 0:
            raise InvalidRecord("attempts: must not be negative")
        return await self._settle(
            message_id, owner, "next_attempt_at = $3, attempts = $4, last_error = $5",
            encode_time(at, self._dialect), attempts,
            None if error is None else check_text(error, "error"))

    async def give_up(
        self, message_id: str, owner: str, *, error: str, now: datetime | None = None,
    ) -> bool:
        return await self._settle(message_id, owner, "failed_at = $3, last_error = $4",
                                  encode_time(self._now(now), self._dialect),
                                  check_text(error, "error"))

    async def lease_processes(
        self, kind: ProcessKind, owner: str, *, states: Collection[str], lease_seconds: float,
        limit: int = 10, now: datetime | None = None,
    ) -> list[str]:
        table = _process_table(kind)
        if isinstance(states, str) or not states:
            raise InvalidRecord("states: give a non-empty collection of state names")
        wanted = [check_text(state, "states") for state in states]
        at = self._now(now)
        d = self._dialect
        marks = ", ".join(f"${i}" for i in range(5, 5 + len(wanted)))
        rows = await self._fetch_one_shot(
            f"UPDATE {table.name} SET lease_owner = $1, lease_until = $2 WHERE id IN ("
            f"SELECT id FROM {table.name} WHERE state IN ({marks}) "
            "AND (lease_until IS NULL OR lease_until <= $3) "
            f"ORDER BY updated_at, id LIMIT $4{d.skip_locked}) RETURNING id",
            check_key(owner, "owner"), encode_time(at + _lease_length(lease_seconds), d),
            encode_time(at, d), _check_limit(limit), *wanted)
        return sorted(row["id"] for row in rows)

    async def release_process(
        self, kind: ProcessKind, process_id: str, owner: str, *,
        not_before: datetime | None = None,
    ) -> bool:
        table = _process_table(kind)
        until = None if not_before is None else encode_time(
            check_time(not_before, "not_before"), self._dialect)
        rows = await self._fetch_one_shot(
            f"UPDATE {table.name} SET lease_owner = NULL, lease_until = $3 "
            "WHERE id = $1 AND lease_owner = $2 RETURNING id",
            check_key(process_id, "process_id"), check_key(owner, "owner"), until)
        return bool(rows)

    async def schema_version(self) -> int:
        async with self._read_connection() as conn:
            rows = await conn.fetch("SELECT MAX(version) AS version FROM schema_migrations")
        return int(rows[0]["version"] or 0)


def _lease_length(seconds: object) -> timedelta:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise InvalidRecord(f"lease_seconds: must be a positive number, got {seconds!r}")
    return timedelta(seconds=seconds)


def _process_table(kind: object) -> Table[Any]:
    for known, table in _PROCESS_TABLES.items():
        if kind == known:
            return table
    raise InvalidRecord(f"kind: {kind!r} is not a process kind")
