"""The store's exceptions: one hierarchy, whatever the backend.

Callers never see ``sqlite3`` or ``asyncpg`` exceptions: a protocol handler has to tell "retry
this" (``Conflict``, ``StoreUnavailable``) from "the caller sent nonsense" (``InvalidRecord``)
from "no such process" (``NotFound``) without knowing which database runs underneath. Each
class also derives from the matching builtin (pydid style), so ``except LookupError`` or
``except ValueError`` work too.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises."""


class StoreConfigError(StoreError, ValueError):
    """The store URL or options cannot work (unknown scheme, bad path, missing driver)."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached, or stayed locked past the timeout: retry later."""


class MigrationError(StoreError):
    """The database schema does not match this code (edited migration, newer database)."""


class InvalidRecord(StoreError, ValueError):
    """A value cannot be stored as given: wrong type, not JSON, naive time, dangling reference.

    Raised before anything is written where the store can tell on its own; a dangling foreign
    key is only found by the database and aborts the transaction.
    """


class NotFound(StoreError, LookupError):
    """An update names a record that does not exist."""


class Conflict(StoreError):
    """Another writer got there first: re-read and decide again.

    A conflict the store detects itself (a stale ``version``, a taken key) leaves the
    transaction usable; one the database reports (a PostgreSQL deadlock) has aborted it.
    """


class ConcurrentUpdate(Conflict):
    """The row changed since it was read: its ``version`` is no longer the one put back."""


class AlreadyExists(Conflict):
    """An insert names a key that is already taken."""
