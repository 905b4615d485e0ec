"""Checking Python values and turning them into column values, and back.

Every value is checked here, before a driver sees it, so both backends refuse the same
inputs with the same ``InvalidRecord`` instead of a driver error (or, worse, SQLite storing
what PostgreSQL would refuse): no NUL characters or lone surrogates in text (PostgreSQL text
cannot hold them), integers within 64 bits, aware datetimes only, and JSON that round-trips
exactly (string keys, finite numbers, no sets, dates or objects that ``json`` would reject or
silently turn into something else).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from connector.store.errors import InvalidRecord
from connector.store.records import Role

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_MAX_JSON_DEPTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ROLES = tuple(role.value for role in Role)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class Kind(Enum):
    """How a record field is stored."""

    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    TIME = "time"
    JSON = "json"  # a JSON object
    STRINGS = "strings"  # a tuple of str, stored as a JSON array
    SECURED = "secured"  # a JSON credential (object) or a compact JWT, stored as text
    ROLE = "role"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the backends in SQL text and value representation."""

    name: str
    native_time: bool
    """PostgreSQL has ``timestamptz``; SQLite gets integer microseconds since the epoch."""
    native_bool: bool
    lock_rows: str
    """Appended to a SELECT that locks its rows (SQLite's writer lock already covers it)."""
    skip_locked: str
    """Appended to the SELECT of a lease, so concurrent leasers skip each other's rows."""


@dataclass(frozen=True, slots=True)
class Column:
    """One field of a record and the column that holds it (same name)."""

    name: str
    kind: Kind
    nullable: bool = False


def check_text(value: object, where: str) -> str:
    """``value`` if it is text both backends can store."""
    if not isinstance(value, str):
        raise InvalidRecord(f"{where}: expected a string, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidRecord(f"{where}: text may not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecord(f"{where}: text is not valid Unicode ({exc.reason})") from None
    return value


def check_key(value: object, where: str) -> str:
    """``value`` if it can be a record key: non-empty storable text."""
    text = check_text(value, where)
    if not text:
        raise InvalidRecord(f"{where}: may not be empty")
    return text


def check_int(value: object, where: str) -> int:
    """``value`` if it is an int (not a bool) that fits 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecord(f"{where}: expected an integer, got {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidRecord(f"{where}: {value} does not fit in 64 bits")
    return value


def check_time(value: object, where: str) -> datetime:
    """``value`` if it is a timezone-aware datetime (a naive one has no defined instant)."""
    if not isinstance(value, datetime):
        raise InvalidRecord(f"{where}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRecord(f"{where}: datetime must be timezone-aware")
    return value


def _check_json(value: object, where: str, depth: int) -> None:
    if depth > _MAX_JSON_DEPTH:
        raise InvalidRecord(f"{where}: JSON nested deeper than {_MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecord(f"{where}: JSON has no NaN or infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecord(f"{where}: JSON object keys must be strings, got {key!r}")
            check_text(key, where)
            _check_json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]", depth + 1)
    else:
        raise InvalidRecord(f"{where}: {type(value).__name__} is not JSON")


def dump_json(value: object, where: str) -> str:
    """Compact JSON text of ``value``, after checking it round-trips on both backends."""
    _check_json(value, where, 0)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dump_object(value: object, where: str) -> str:
    """Like ``dump_json`` for fields that must hold a JSON object."""
    if not isinstance(value, dict):
        raise InvalidRecord(f"{where}: expected a JSON object, got {type(value).__name__}")
    return dump_json(value, where)


def _encode_secured(value: object, where: str) -> str:
    if isinstance(value, str):
        if not _COMPACT_JWS.fullmatch(value):
            raise InvalidRecord(f"{where}: a string credential must be a compact JWT "
                                "(pass a JSON credential as a dict)")
        return value
    return dump_object(value, where)


def encode(column: Column, value: object, dialect: Dialect, where: str) -> object:
    """The column value for a field value; ``InvalidRecord`` if it cannot be stored."""
    where = f"{where}.{column.name}"
    if value is None:
        if column.nullable:
            return None
        raise InvalidRecord(f"{where}: may not be None")
    match column.kind:
        case Kind.TEXT:
            return check_text(value, where)
        case Kind.INT:
            return check_int(value, where)
        case Kind.BOOL:
            if not isinstance(value, bool):
                raise InvalidRecord(f"{where}: expected a bool, got {type(value).__name__}")
            return value if dialect.native_bool else int(value)
        case Kind.TIME:
            return encode_time(check_time(value, where), dialect)
        case Kind.JSON:
            return dump_object(value, where)
        case Kind.STRINGS:
            if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
                raise InvalidRecord(f"{where}: expected a tuple of strings")
            return dump_json(list(value), where)
        case Kind.SECURED:
            return _encode_secured(value, where)
        case Kind.ROLE:
            if isinstance(value, str) and value in _ROLES:
                return Role(value).value
            raise InvalidRecord(f"{where}: {value!r} is not a role ({', '.join(_ROLES)})")
    raise AssertionError(column.kind)  # pragma: no cover - every kind is matched above


def encode_time(value: datetime, dialect: Dialect) -> object:
    """A checked aware datetime as the backend stores it (exact to the microsecond)."""
    if dialect.native_time:
        return value
    return (value - _EPOCH) // _MICROSECOND


def decode_time(value: object, dialect: Dialect) -> datetime:
    """A stored time as an aware UTC datetime."""
    if dialect.native_time:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    assert isinstance(value, int)
    return _EPOCH + value * _MICROSECOND


def decode(column: Column, value: Any, dialect: Dialect) -> Any:
    """The field value for a stored column value."""
    if value is None:
        return None
    match column.kind:
        case Kind.TEXT | Kind.INT:
            return value
        case Kind.BOOL:
            return bool(value)
        case Kind.TIME:
            return decode_time(value, dialect)
        case Kind.JSON:
            return json.loads(value)
        case Kind.STRINGS:
            return tuple(json.loads(value))
        case Kind.SECURED:
            return json.loads(value) if value.startswith("{") else value
        case Kind.ROLE:
            return Role(value)
    raise AssertionError(column.kind)  # pragma: no cover
