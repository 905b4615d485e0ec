"""The SQLite store: the embedded default, one file in the node's data directory.

Durability and concurrency come from SQLite itself, configured per connection:

- ``journal_mode=WAL`` so readers never block the writer (and the reverse), and
  ``synchronous=FULL`` so a commit is fsynced before ``transaction()`` returns: an
  acknowledged write survives a crash or power loss.
- Every write transaction is ``BEGIN IMMEDIATE``: it takes the database's one writer lock
  first, so writers serialise (across processes too, waiting up to ``busy_timeout``) and a
  transaction never fails half-way on a lock upgrade. That lock is also what ``for_update``
  means here. Within a process one connection writes, behind an ``asyncio.Lock``.
- Reads use a few ``query_only`` connections, each read session a snapshot.

Where the work runs: statements inside a transaction run on the event loop thread. They are
in-memory B-tree work of a few microseconds each, while a hop to a worker thread costs ~0.1 ms
and, worse, keeps the write lock held across event-loop turns (measured with ``bpc bench dsp``:
the lock was held 55-65 % of the time under load, mostly waiting for those hops). What can
wait — ``BEGIN IMMEDIATE`` (another process may hold the lock), ``COMMIT`` (the fsync) and
opening — runs on the connection's own single worker thread, so the loop never waits on disk
and a connection is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from connector.store.codec import Dialect
from connector.store.errors import (
    AlreadyExists,
    InvalidRecord,
    MigrationError,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from connector.store.migrations import SCHEMA_MIGRATIONS_TABLE, pending
from connector.store.records import utcnow
from connector.store.schema_sqlite import MIGRATIONS
from connector.store.sql import Clock, Connection, SqlStore

DIALECT = Dialect(name="sqlite", native_time=False, native_bool=False, lock_rows="",
                  skip_locked="")

MIN_SQLITE = (3, 37, 0)
"""STRICT tables need 3.37 (RETURNING and ON CONFLICT DO NOTHING need 3.35)."""

_PLACEHOLDER = re.compile(r"\$(\d+)")
_PLACEHOLDERS: dict[str, str] = {}


def _qmark(sql: str) -> str:
    """PostgreSQL's ``$n`` placeholders as SQLite's ``?n`` (cached: statements repeat)."""
    converted = _PLACEHOLDERS.get(sql)
    if converted is None:
        converted = _PLACEHOLDERS[sql] = _PLACEHOLDER.sub(r"?\1", sql)
    return converted


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


T = TypeVar("T")

#: Statements that may wait (on another process's lock, on the disk): off the loop.
_SLOW = frozenset({"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"})


class _Db:
    """One ``sqlite3`` connection with an async face (see the module docstring for where
    each call runs). Callers never use one ``_Db`` from two tasks at once: the writer sits
    behind the store's lock, each reader is checked out of a queue."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self._last: Future[Any] | None = None  # the latest call given to the worker thread

    @classmethod
    async def connect(cls, path: Path, *, timeout: float) -> _Db:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bpc-sqlite")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: sqlite3.connect(path, isolation_level=None, timeout=timeout,
                                                  check_same_thread=False))
        except BaseException:
            executor.shutdown(wait=False)
            raise
        conn.row_factory = _dict_row
        return cls(conn, executor)

    async def _off_loop(self, work: Callable[[], T]) -> T:
        # The thread's own future, not asyncio's wrapper: a cancelled caller cancels only the
        # wrapper, while the thread may still be committing.
        self._last = self._executor.submit(work)
        return await asyncio.wrap_future(self._last)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        if sql in _SLOW:
            await self._off_loop(lambda: self._conn.execute(sql))
        else:
            self._conn.execute(sql, tuple(params))

    async def execute_fetchall(self, sql: str,
                               params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    async def rollback(self) -> None:
        if self._last is not None and not self._last.done():
            # A COMMIT may still be in flight there (its caller was cancelled): queue behind
            # it rather than use the connection from two threads at once.
            await self._off_loop(self._conn.rollback)
        else:
            self._conn.rollback()

    async def close(self) -> None:
        try:
            await self._off_loop(self._conn.close)
        finally:
            self._executor.shutdown(wait=False)


def _translate(exc: sqlite3.Error, doing: str) -> StoreError:
    """The ``StoreError`` for a driver error (raised ``from`` it by the caller)."""
    message = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        if message.startswith("UNIQUE constraint failed"):
            return AlreadyExists(f"{doing}: {message}")
        if "FOREIGN KEY" in message:
            return InvalidRecord(f"{doing}: a referenced record does not exist")
        return InvalidRecord(f"{doing}: {message}")
    if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in message or "busy" in message):
        return StoreUnavailable(f"{doing}: the database stayed locked past busy_timeout")
    return StoreError(f"{doing}: {message}")


class _SQLiteConnection(Connection):
    dialect = DIALECT

    def __init__(self, db: _Db) -> None:
        self._db = db

    async def fetch(self, sql: str, *params: object) -> list[dict[str, Any]]:
        try:
            return await self._db.execute_fetchall(_qmark(sql), params)
        except sqlite3.Error as exc:
            raise _translate(exc, "sqlite") from exc


def split_script(script: str) -> list[str]:
    """The statements of a migration script, one per item (triggers kept whole).

    ``executescript`` would do this but commits first, which would take the migration out
    of its ``BEGIN IMMEDIATE`` transaction.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \n;"):
        raise MigrationError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


async def _connect(path: Path, *, busy_timeout: float, writer: bool) -> _Db:
    try:
        db = await _Db.connect(path, timeout=busy_timeout)
    except sqlite3.Error as exc:
        raise StoreConfigError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
    try:
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if writer:
            rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            mode = next(iter(rows))["journal_mode"]
            if str(mode).lower() != "wal":
                raise StoreConfigError(
                    f"SQLite database {str(path)!r} cannot use WAL (journal_mode is {mode}); "
                    "is it on a network file system?")
            await db.execute("PRAGMA foreign_keys = ON")
        else:
            await db.execute("PRAGMA query_only = ON")
        await db.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        await db.close()
        error = _translate(exc, f"opening {str(path)!r}")
        if not isinstance(error, StoreUnavailable):
            error = StoreConfigError(str(error))
        raise error from exc
    except BaseException:
        await db.close()
        raise
    return db


async def _rollback(db: _Db) -> None:
    """Roll back if a transaction is open; never raises (the first error is the one to see)."""
    try:
        if db.in_transaction:
            await db.rollback()
    except sqlite3.Error:  # pragma: no cover - connection already unusable
        pass


async def _migrate(db: _Db, clock: Clock) -> None:
    """Apply pending migrations in one BEGIN IMMEDIATE transaction (one node at a time)."""
    try:
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA_MIGRATIONS_TABLE} ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
                "applied_at TEXT NOT NULL) STRICT")
            rows = await db.execute_fetchall(
                f"SELECT version, checksum FROM {SCHEMA_MIGRATIONS_TABLE}")
            applied = {row["version"]: row["checksum"] for row in rows}
            for migration in pending(MIGRATIONS, applied):
                for statement in split_script(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    f"INSERT INTO {SCHEMA_MIGRATIONS_TABLE} (version, name, checksum, "
                    "applied_at) VALUES (?, ?, ?, ?)",
                    (migration.version, migration.name, migration.checksum,
                     clock().isoformat()))
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise
    except sqlite3.Error as exc:
        error = _translate(exc, "migrating the SQLite schema")
        if not isinstance(error, StoreUnavailable):
            error = MigrationError(str(error))
        raise error from exc


class SQLiteStore(SqlStore):
    """A ``Store`` in one SQLite file; open with ``SQLiteStore.open`` (or ``open_store``)."""

    backend = "sqlite"

    def __init__(self, path: Path, writer: _Db, readers: list[_Db], *, clock: Clock) -> None:
        super().__init__(dialect=DIALECT, clock=clock)
        self.path = path
        self._writer: _Db | None = writer
        self._write_lock = asyncio.Lock()
        self._all_readers = readers
        self._readers: asyncio.Queue[_Db] = asyncio.Queue()
        for reader in readers:
            self._readers.put_nowait(reader)
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path, *, busy_timeout: float = 10.0, readers: int = 2,
        clock: Clock = utcnow,
    ) -> SQLiteStore:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``busy_timeout`` (seconds) is how long a writer waits for another process's write
        lock before ``StoreUnavailable``.
        """
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreConfigError(
                f"SQLite {sqlite3.sqlite_version} is too old; the store needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer")
        if readers < 1:
            raise StoreConfigError("readers: at least one read connection is needed")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(f"cannot create the directory of {str(path)!r}: {exc}") \
                from exc
        writer = await _connect(path, busy_timeout=busy_timeout, writer=True)
        opened = [writer]
        try:
            await _migrate(writer, clock)
            for _ in range(readers):
                opened.append(await _connect(path, busy_timeout=busy_timeout, writer=False))
        except BaseException:
            for db in opened:
                await db.close()
            raise
        return cls(path, writer, opened[1:], clock=clock)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[Connection]:
        self._check_open()
        async with self._write_lock:
            db = self._writer
            if db is None:
                raise StoreError("the store is closed")
            await _rollback(db)  # a cancelled earlier session may have left one open
            try:
                await db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, "starting a transaction") from exc
            try:
                yield _SQLiteConnection(db)
            except BaseException:
                await _rollback(db)
                raise
            try:
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                await _rollback(db)
                raise _translate(exc, "committing") from exc

    @asynccontextmanager
    async def _read_connection(self) -> AsyncIterator[Connection]:
        self._check_open()
        db = await self._readers.get()
        try:
            await _rollback(db)
            try:
                await db.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _translate(exc, "starting a read") from exc
            try:
                yield _SQLiteConnection(db)
            finally:
                await _rollback(db)
        finally:
            self._readers.put_nowait(db)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                await writer.close()
        for reader in self._all_readers:
            await reader.close()

