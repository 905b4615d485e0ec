"""Versioned schema migrations: what to apply, and when to refuse to start.

Each backend ships an ordered tuple of ``Migration``s (``schema_sqlite``, ``schema_postgres``)
and applies the pending ones at open, in one transaction, under a lock that serialises nodes
starting together (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), recording each
in ``schema_migrations``. This module holds the backend-free part: the ``Migration`` type and
the plan, which refuses a database that this code cannot safely run against — one migrated
by a newer node (an older replica would write rows the newer code does not expect) or one
whose recorded migration differs from the shipped text (someone edited a released migration).

The SQL is kept in Python modules rather than ``.sql`` files so that it ships in every
install without package-data configuration.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connector.store.errors import MigrationError

SCHEMA_MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``version`` counts from 1 with no gaps; ``sql`` is never edited
    once released (add a new migration instead)."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL, recorded when applied and compared at every start."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Refuse a shipped list that is not versions 1, 2, 3… in order (a packaging bug)."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migrations must be numbered 1, 2, 3… in order, got {versions}")


def pending(available: Sequence[Migration], applied: Mapping[int, str]) -> list[Migration]:
    """The migrations still to apply, given ``applied`` (version → recorded checksum).

    Raises ``MigrationError`` for a database migrated by newer code, an edited migration, or
    a gap (a version applied after one that is missing).
    """
    check_sequence(available)
    known = {m.version: m for m in available}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        raise MigrationError(
            f"the database has schema version {newer[-1]} but this node knows only up to "
            f"{len(available)}: it was migrated by a newer node; upgrade this one")
    for version, checksum in sorted(applied.items()):
        migration = known[version]
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {version} ({migration.name}) differs from the one applied to "
                "this database; released migrations must never be edited")
    todo = [m for m in available if m.version not in applied]
    if todo and applied and todo[0].version < max(applied):
        raise MigrationError(f"migration {todo[0].version} is missing from a database at "
                             f"version {max(applied)}")
    return todo
