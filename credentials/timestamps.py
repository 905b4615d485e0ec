"""XML Schema dateTime handling for ``created``, ``validFrom``, ``validUntil`` and friends."""

from __future__ import annotations

from datetime import UTC, datetime

from credentials.errors import MalformedDocument


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_datetime(moment: datetime) -> str:
    """Whole seconds in UTC with a ``Z``: the form every peer implementation parses."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object, *, path: str) -> datetime:
    """Parse an xsd:dateTime; a timestamp without a zone is read as UTC, as VCDM allows."""
    if not isinstance(value, str):
        raise MalformedDocument(f"{path} must be an xsd:dateTime string", path=path)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedDocument(
            f"{path} is not a valid xsd:dateTime: {value!r}", path=path
        ) from exc
    if "T" not in text:
        raise MalformedDocument(f"{path} must hold a date and a time: {value!r}", path=path)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
