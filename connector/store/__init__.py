"""The node's durable state behind one ``Store`` interface: SQLite (default) or PostgreSQL.

``open_store(url, data_dir=…)`` picks the backend from the ``--store`` value:

- ``None`` or ``""``: ``<data_dir>/node.db``;
- a path (``node.db``, ``/var/lib/bpc/node.db``); a relative one is inside ``data_dir``;
- ``sqlite:///var/lib/bpc/node.db``: an absolute path, as in ``file:`` URLs (``sqlite:////…``
  names the same file); ``sqlite:node.db``: a path relative to ``data_dir``;
- ``postgresql://user@host:5432/db`` (or ``postgres://``): PostgreSQL; ``?schema=name`` picks
  a schema other than ``public``; other parameters go to asyncpg.

The node's configuration derives ``sqlite:///<absolute data_dir>/node.db`` by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from connector.store.base import Reader, Store, Transaction
from connector.store.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    Conflict,
    InvalidRecord,
    MigrationError,
    NotFound,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
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
    new_id,
    utcnow,
)

DEFAULT_SQLITE_NAME = "node.db"

__all__ = [
    "DEFAULT_SQLITE_NAME",
    "AgreementEvidence",
    "AgreementRecord",
    "AgreementTermination",
    "AgreementUsage",
    "AlreadyExists",
    "AssetRecord",
    "AuditEvent",
    "BatteryRecord",
    "ConcurrentUpdate",
    "Conflict",
    "CredentialRecord",
    "DeletionReceipt",
    "HubBatch",
    "HubCell",
    "HubEvent",
    "HubEventGroup",
    "HubEventRef",
    "InvalidRecord",
    "MigrationError",
    "NegotiationRecord",
    "NotFound",
    "OfferRecord",
    "OutboxMessage",
    "PolicyRecord",
    "ProcessKind",
    "Reader",
    "ReceivedData",
    "Role",
    "StatusListRecord",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "TokenRecord",
    "Transaction",
    "TransferRecord",
    "TrustRegistryRecord",
    "WalletCredential",
    "new_id",
    "open_store",
    "sqlite_path",
    "utcnow",
]


def sqlite_path(url: str | None, *, data_dir: Path) -> Path | None:
    """The SQLite file ``url`` names, or ``None`` if it names another backend.

    Raises ``StoreConfigError`` for what is neither (an unknown scheme, ``:memory:``, a
    ``sqlite://`` URL with a host or parameters).
    """
    if not url:
        return data_dir / DEFAULT_SQLITE_NAME
    if not url.lower().startswith(("sqlite:", "postgresql:", "postgres:")) and "://" not in url:
        if url == ":memory:":
            raise StoreConfigError("an in-memory SQLite store would lose every write; give a "
                                   "file path")
        return data_dir / Path(url).expanduser()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return None
    if scheme != "sqlite":
        raise StoreConfigError(f"unsupported store URL scheme {parts.scheme!r}: use a file path, "
                               "sqlite:///<path> or postgresql://…")
    if parts.netloc or parts.query or parts.fragment:
        raise StoreConfigError("a sqlite URL takes only a path: sqlite:///absolute/path or "
                               "sqlite:relative/to/data_dir")
    path = parts.path
    if path.startswith("/"):
        path = "/" + path.lstrip("/")  # sqlite:////abs and sqlite:///abs name the same file
    if path.strip("/") in ("", ":memory:"):
        raise StoreConfigError(f"store URL {url!r} names no database file")
    return data_dir / path


async def open_store(url: str | None, *, data_dir: Path, **options: Any) -> Store:
    """Open the store ``url`` names (see the module docstring), migrated and ready.

    ``options`` go to the backend's ``open`` (``clock``, ``busy_timeout``, ``max_size``…).
    """
    path = sqlite_path(url, data_dir=data_dir)
    if path is not None:
        from connector.store.sqlite import SQLiteStore

        return await SQLiteStore.open(path, **options)
    assert url is not None
    try:
        from connector.store.postgres import PostgresStore
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreConfigError(
            "PostgreSQL needs asyncpg: pip install 'battery-passport-connector[postgres]'") \
            from exc
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if len(schemas) > 1:
        raise StoreConfigError("give ?schema= at most once")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=rest))
    if schemas:
        options.setdefault("schema", schemas[0])
    return await PostgresStore.open(dsn, **options)
