"""The PostgreSQL store: for several node processes sharing one database.

Any replica can continue any process because nothing about a process lives in a node's
memory: ``for_update`` reads are ``SELECT … FOR UPDATE`` row locks, puts carry the optimistic
``version`` check, and leases are taken with ``FOR UPDATE SKIP LOCKED`` so concurrent leasers
pass over each other's rows instead of queueing on them. Transactions run at READ COMMITTED
(the default); read sessions are REPEATABLE READ, READ ONLY snapshots.

The store lives in one schema (``schema=`` in the URL, default ``public``), set as the
``search_path`` of every pooled connection, so several stores (or test runs) can share one
database. Migrations run under a transaction-scoped advisory lock keyed by the schema, so
nodes starting together apply them once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from connector.store.codec import Dialect
from connector.store.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidRecord,
    MigrationError,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from connector.store.migrations import SCHEMA_MIGRATIONS_TABLE, pending
from connector.store.records import utcnow
from connector.store.schema_postgres import MIGRATIONS
from connector.store.sql import Clock, Connection, SqlStore

DIALECT = Dialect(name="postgresql", native_time=True, native_bool=True,
                  lock_rows=" FOR UPDATE", skip_locked=" FOR UPDATE SKIP LOCKED")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
)


def redact(dsn: str) -> str:
    """``dsn`` without its password, for error messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case identifier (it is put into SQL unquoted)."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise StoreConfigError(
            f"schema {schema!r}: use lower-case letters, digits and _ (at most 63, not "
            "starting with a digit)")
    return schema


def _translate(exc: BaseException, doing: str) -> StoreError:
    """The ``StoreError`` for a driver error (raised ``from`` it by the caller)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists(f"{doing}: {exc}")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return InvalidRecord(f"{doing}: a referenced record does not exist ({exc})")
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError):
        return InvalidRecord(f"{doing}: {exc}")
    if isinstance(exc, asyncpg.exceptions.TransactionRollbackError):
        return ConcurrentUpdate(f"{doing}: {exc} (the transaction was rolled back; retry it)")
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(f"{doing}: PostgreSQL is unavailable ({exc!r})")
    return StoreError(f"{doing}: {exc!r}")


class _PostgresConnection(Connection):
    dialect = DIALECT

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *params: object) -> list[dict[str, Any]]:
        try:
            records = await self._conn.fetch(sql, *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
            raise _translate(exc, "postgresql") from exc
        return [dict(record) for record in records]


def _lock_key(schema: str) -> int:
    """The advisory lock id guarding migrations of ``schema`` (a signed 64-bit int)."""
    digest = hashlib.sha256(f"bpc-store-migrations:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _migrate(conn: asyncpg.Connection, schema: str, clock: Clock) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
        exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
        if not exists:
            await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_MIGRATIONS_TABLE} (version BIGINT PRIMARY KEY, "
            "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
        rows = await conn.fetch(f"SELECT version, checksum FROM {SCHEMA_MIGRATIONS_TABLE}")
        for migration in pending(MIGRATIONS, {row["version"]: row["checksum"] for row in rows}):
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {SCHEMA_MIGRATIONS_TABLE} (version, name, checksum, applied_at) "
                "VALUES ($1, $2, $3, $4)",
                migration.version, migration.name, migration.checksum, clock())


class PostgresStore(SqlStore):
    """A ``Store`` in one schema of a PostgreSQL database, over an asyncpg pool."""

    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool, *, dsn: str, schema: str, clock: Clock) -> None:
        super().__init__(dialect=DIALECT, clock=clock)
        self._pool = pool
        self.dsn = redact(dsn)
        self.schema = schema
        self._closed = False

    @classmethod
    async def open(
        cls, dsn: str, *, schema: str = "public", min_size: int = 1, max_size: int = 10,
        connect_timeout: float = 10.0, clock: Clock = utcnow,
    ) -> PostgresStore:
        """Connect a pool to ``dsn``, create ``schema`` if needed and migrate it."""
        check_schema_name(schema)
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                server_settings={"search_path": schema})
        except (asyncpg.InvalidAuthorizationSpecificationError,
                asyncpg.InvalidCatalogNameError, asyncpg.ClientConfigurationError,
                ValueError) as exc:
            raise StoreConfigError(f"cannot use PostgreSQL at {redact(dsn)}: {exc}") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {redact(dsn)}: {exc!r}") \
                from exc
        try:
            async with pool.acquire() as conn:
                await _migrate(conn, schema, clock)
        except MigrationError:
            await pool.close()
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
            await pool.close()
            error = _translate(exc, f"migrating schema {schema}")
            if not isinstance(error, StoreUnavailable):
                error = MigrationError(str(error))
            raise error from exc
        except BaseException:
            pool.terminate()
            raise
        return cls(pool, dsn=dsn, schema=schema, clock=clock)

    def __repr__(self) -> str:
        return f"PostgresStore({self.dsn!r}, schema={self.schema!r})"

    @asynccontextmanager
    async def _session(self, **options: Any) -> AsyncIterator[Connection]:
        if self._closed:
            raise StoreError("the store is closed")
        try:
            conn = await self._pool.acquire()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
            raise _translate(exc, "acquiring a connection") from exc
        try:
            transaction = conn.transaction(**options)
            try:
                await transaction.start()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
                raise _translate(exc, "starting a transaction") from exc
            try:
                yield _PostgresConnection(conn)
            except BaseException:
                try:
                    await transaction.rollback()
                except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE):
                    pass  # the connection is broken; the pool replaces it
                raise
            try:
                await transaction.commit()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, *_UNAVAILABLE) as exc:
                raise _translate(exc, "committing") from exc
        finally:
            await self._pool.release(conn)

    def _write_connection(self) -> AbstractAsyncContextManager[Connection]:
        return self._session()

    def _read_connection(self) -> AbstractAsyncContextManager[Connection]:
        return self._session(isolation="repeatable_read", readonly=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), timeout=10)
        except TimeoutError:  # pragma: no cover - a session never returned its connection
            self._pool.terminate()
