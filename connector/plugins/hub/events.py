"""What a hub sends and what the bridge makes of it: readings, events, signed hub messages.

Wire format (``PAYLOAD.md`` beside this file): a hub message is a compact JWS (RFC 7515),
EdDSA over Ed25519 with the hub's did:key, whose payload is a ``HubMessage`` as JSON. A JWS
signs the payload's exact bytes, so verifying needs no canonicalisation: a JSON envelope
signed over JCS bytes would have to re-canonicalise every reading's floats on arrival, which
is the slow path of RFC 8785 (about 60 µs per event here) and the whole budget at 50,000
readings a second.

``verify_hub_message`` is the only way in: it refuses with a typed ``HubMessageError`` (size,
JWS shape, unknown hub, signature, JSON, schema, hub identity, clock skew), checking the cheap
things first and parsing nothing the hub did not sign.

Events are the unit of the passport: each one has an id derived from where it comes from
(hub, hub sequence number, kind, cell position), so the same event seen twice is recognised,
and a digest (SHA-256 of its JCS form) that is its Merkle leaf. Measured values in the
details of the events the bridge raises are fixed-point integers (mV, m°C, ‰), which keeps
their canonical form exact and the digest on JCS's fast path.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from hashlib import sha1, sha256
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from credentials.did_key import public_key_of_did_key
from credentials.errors import CredentialsError
from credentials.jcs import canonical_json
from credentials.jsonld import DocumentScan
from credentials.keys import Ed25519Key, PublicKey
from credentials.numbers import MAX_SAFE_INTEGER, check_numbers

#: An Ed25519 did:key: multicodec 0xed01 + 32 bytes is always "z6Mk" + 44 base58 characters.
#: A shape check only; the hub's key is decoded by whoever resolves it.
DID_KEY_PATTERN = r"^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$"
DID_PATTERN = r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$"
CELL_UID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
MAX_POSITION = 65_535
#: The JWS ``typ`` of a hub message (RFC 7515 §4.1.9: a media type without ``application/``).
HUB_MESSAGE_TYPE = "bpc-hub+jws"
PAYLOAD_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("payload.schema.json")
SCHEMA_ID = "https://w3id.org/battery-passport-connector/hub/payload.schema.json"

_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bpc:hub-event")
_EVENT_NAMESPACE_BYTES = _EVENT_NAMESPACE.bytes
_UUID_CLEAR = ~((0xF << 76) | (0x3 << 62)) & (2**128 - 1)
_UUID_V5 = (0x5 << 76) | (0x2 << 62)
_MAX_DETAILS_DEPTH = 8

DidKey = Annotated[str, Strict(), Field(pattern=DID_KEY_PATTERN)]
Did = Annotated[str, Strict(), Field(pattern=DID_PATTERN, max_length=512)]
CellUid = Annotated[str, Strict(), Field(pattern=CELL_UID_PATTERN)]
Position = Annotated[int, Strict(), Field(ge=0, le=MAX_POSITION)]
Seq = Annotated[int, Strict(), Field(ge=0, le=MAX_SAFE_INTEGER)]


def _finite(low: float, high: float) -> Any:
    return Field(ge=low, le=high, allow_inf_nan=False)


class RegisteredCell(NamedTuple):
    """What a hub knows of the cell at one position: its unique ID and its monitor."""

    cell_uid: str
    monitor_did: str


class EventKind(StrEnum):
    THERMAL_EXCURSION = "thermal-excursion"
    OVER_VOLTAGE = "over-voltage"
    UNDER_VOLTAGE = "under-voltage"
    DEEP_DISCHARGE = "deep-discharge"
    CELL_ID_MISMATCH = "cell-id-mismatch"
    MONITOR_LOST = "monitor-lost"
    CELL_SUMMARY = "cell-summary"
    STATE_OF_HEALTH = "state-of-health"
    CELL_REPLACED = "cell-replaced"


class CellReading(BaseModel):
    """One sample from one cell monitor, as the hub relays it.

    Bounds are what a sensor can report at all (a 6 V or 90 °C reading is alarming, not
    malformed: the aggregator turns it into an event); NaN and infinities are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hub_id: DidKey = Field(description="did:key of the hub that relays (and signs) it")
    battery_did: Did = Field(description="DID of the battery (pack) the cell belongs to")
    position: Position = Field(description="cell position in the pack, from 0")
    cell_uid: CellUid = Field(description="unique ID of the cell, as its monitor reads it")
    monitor_did: DidKey = Field(description="did:key of the cell's monitor")
    voltage_v: Annotated[float, Strict(), _finite(0.0, 10.0)] = Field(
        description="cell voltage, V")
    temperature_c: Annotated[float, Strict(), _finite(-100.0, 1000.0)] = Field(
        description="cell temperature, °C")
    soc: Annotated[float, Strict(), _finite(0.0, 1.0)] = Field(
        description="state of charge, 0..1")
    timestamp: AwareDatetime = Field(description="when the monitor sampled, with a UTC offset")
    seq: Seq = Field(description="the hub's sequence number, increasing per hub")


def event_id_for(hub_id: str, seq: int, kind: EventKind | str, position: int) -> str:
    """The deterministic id of an event: a name-based UUID (RFC 9562 v5) of its origin.

    Exactly ``uuid.uuid5(namespace, "hub_id|seq|kind|position")`` (the tests compare), made
    without the ``uuid.UUID`` object, which cost most of the check on every event received.
    """
    digest = sha1(_EVENT_NAMESPACE_BYTES + f"{hub_id}|{seq}|{kind}|{position}".encode(),
                  usedforsecurity=False).digest()
    # RFC 9562 §5.5: the first 16 bytes, version 5 in byte 6, variant 0b10 in byte 8.
    value = int.from_bytes(digest[:16]) & _UUID_CLEAR | _UUID_V5
    x = f"{value:032x}"
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _check_details(node: Any, depth: int = 0) -> bool:
    """Refuse what JSON cannot carry exactly; True when the stdlib encoder gives JCS (no
    floats, no keys from U+D800 up: see ``credentials.jcs``).

    The common types are tested inline, so there is a Python call per container rather than
    per value: this runs for every event a hub sends. Depth counts as it always did: the
    details object is level 0 and no value may sit below level ``_MAX_DETAILS_DEPTH``.
    """
    if depth >= _MAX_DETAILS_DEPTH and node:
        raise ValueError(f"details nest deeper than {_MAX_DETAILS_DEPTH} levels")
    plain = True
    if type(node) is dict:
        for key in node:
            if type(key) is not str:
                raise ValueError("detail keys must be strings")
            if not key.isascii() and max(key) >= "\ud800":
                plain = False  # UTF-16 order may differ from code point order
        values: Iterable[Any] = node.values()
    elif type(node) is list:
        values = node
    else:
        return _check_scalar(node, depth)
    for value in values:
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int:
            if value > MAX_SAFE_INTEGER or value < -MAX_SAFE_INTEGER:
                raise ValueError(f"integer {value} is outside the I-JSON range")
        elif kind is dict or kind is list:
            plain = _check_details(value, depth + 1) and plain
        else:
            plain = _check_scalar(value, depth + 1) and plain
    return plain


def _check_scalar(value: Any, depth: int) -> bool:
    """The slow path of ``_check_details``: floats, subclasses, and what is not JSON."""
    if isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the I-JSON range")
        return True
    if isinstance(value, float):
        try:
            check_numbers(value)
        except CredentialsError as exc:
            raise ValueError(str(exc)) from exc
        if MAX_SAFE_INTEGER < abs(value) < 1e21:  # RFC 8785 writes it as integer digits,
            raise ValueError(f"number {value!r} would be stored as an integer outside "
                             "the I-JSON range")  # which no verifier could read back
        return False
    if isinstance(value, dict):  # subclasses: checked as the plain containers
        return _check_details(dict(value), depth)
    if isinstance(value, list):
        return _check_details(list(value), depth)
    raise ValueError(f"not a JSON value: {type(value).__name__}")


_PLAIN_SCAN = DocumentScan(shape=None, jcs_plain=True)
#: ``to_json()`` in RFC 8785 form around the details' own: the other values are ASCII that
#: needs no escaping (their patterns above, the kind's enum, ISO 8601), keys in order.
_EVENT_FORM = ('{{"battery_did":"{}","cell_uid":"{}","details":{},"event_id":"{}",'
               '"hub_id":"{}","kind":"{}","observed_at":"{}","position":{},"seq":{}}}')


class CellEvent(BaseModel):
    """A cell-level fact for the passport; its ``digest()`` is its Merkle leaf.

    ``seq`` is the hub sequence number the event derives from (the reading that raised it,
    the first reading of a summary, the last one before a monitor fell silent), kept so that
    anyone can recompute ``event_id``. ``observed_at`` is normalised to UTC, so an event has
    one JSON form and one digest.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, Strict(), Field(pattern=r"^urn:uuid:[0-9a-f-]{36}$")] = Field(
        description="urn:uuid: UUIDv5 of 'hub_id|seq|kind|position' (see PAYLOAD.md)")
    kind: EventKind
    hub_id: DidKey = Field(description="did:key of the hub the event comes from")
    battery_did: Did
    position: Position
    cell_uid: CellUid = Field(description="unique ID of the cell the event is about")
    seq: Seq = Field(description="hub sequence number the event derives from")
    observed_at: AwareDatetime
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="kind-specific JSON; no NaN/infinity, integers within +-(2^53-1)")

    # Its RFC 8785 bytes and their digest live in ``__pydantic_private__``, set by
    # ``_consistent``: declared ``PrivateAttr``s would cost a Python call per event to
    # initialise (pydantic's ``init_private_attributes``), before being overwritten.

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """The checks pydantic's schema cannot make, once per event, and its RFC 8785 form
        (what it is stored as and what its Merkle leaf hashes), made once here."""
        expected = event_id_for(self.hub_id, self.seq, self.kind, self.position)
        if self.event_id != expected:
            raise ValueError(
                f"event_id {self.event_id} is not the id of its hub, seq, kind and position "
                f"({expected})")
        observed_at = self.observed_at.isoformat()[:-6] + "Z"  # UTC, as pydantic writes it
        try:
            if _check_details(self.details):
                canonical = _EVENT_FORM.format(
                    self.battery_did, self.cell_uid, canonical_json(self.details, _PLAIN_SCAN)
                    .decode(), self.event_id, self.hub_id, self.kind.value, observed_at,
                    self.position, self.seq).encode()
            else:  # floats or exotic keys: the exact path over the whole form
                canonical = canonical_json({
                    "battery_did": self.battery_did, "cell_uid": self.cell_uid,
                    "details": self.details, "event_id": self.event_id, "hub_id": self.hub_id,
                    "kind": self.kind.value, "observed_at": observed_at,
                    "position": self.position, "seq": self.seq})
        except CredentialsError as exc:  # a lone surrogate in a string, say
            raise ValueError(f"the event has no canonical JSON form: {exc}") from exc
        object.__setattr__(self, "__pydantic_private__",
                           {"_canonical": canonical, "_digest": None})
        return self

    @classmethod
    def create(cls, *, kind: EventKind, hub_id: str, battery_did: str, position: int,
               cell_uid: str, seq: int, observed_at: datetime,
               details: dict[str, Any] | None = None) -> CellEvent:
        """An event with its derived id (validated like any other)."""
        return cls(event_id=event_id_for(hub_id, seq, kind, position), kind=kind,
                   hub_id=hub_id, battery_did=battery_did, position=position,
                   cell_uid=cell_uid, seq=seq, observed_at=observed_at,
                   details=details or {})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False
                   ) -> Self:
        """A copy; with ``update``, validated afresh (id, details, digest follow the change)."""
        copy = super().model_copy(deep=deep)
        if not update:
            return copy
        return self.model_validate({**copy.model_dump(), **update})

    def to_json(self) -> dict[str, Any]:
        """The event as stored and proven: the exact JSON its digest covers."""
        return self.model_dump(mode="json")

    def canonical(self) -> bytes:
        """The RFC 8785 (JCS) bytes of ``to_json()``: what is stored and hashed."""
        private = self.__pydantic_private__
        assert private is not None
        canonical: bytes = private["_canonical"]
        return canonical

    def digest(self) -> bytes:
        """SHA-256 of the event's RFC 8785 (JCS) form: its Merkle leaf."""
        # The private dict directly: pydantic's attribute hooks cost more than the hash.
        private = self.__pydantic_private__
        assert private is not None
        cached: bytes | None = private["_digest"]
        if cached is None:
            cached = private["_digest"] = sha256(private["_canonical"]).digest()
        return cached


def event_digest(event: dict[str, Any]) -> bytes:
    """The digest of an event's JSON form, as an offline verifier computes it."""
    return sha256(canonical_json(event)).digest()


class HubMessage(BaseModel):
    """The payload of one signed hub message: readings and hub-raised events.

    A message with neither is a heartbeat (the hub is alive; its monitors said nothing).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="Hub message",
        json_schema_extra={"description": "Payload of a signed hub message (the JWS payload)."})

    version: Literal[1] = PAYLOAD_VERSION
    hub_id: DidKey = Field(description="did:key of the hub; its key signs the message")
    sent_at: AwareDatetime = Field(description="when the hub sent the message")
    readings: list[CellReading] = Field(default_factory=list, max_length=10_000)
    events: list[CellEvent] = Field(default_factory=list, max_length=10_000)

    def timestamps(self) -> Iterable[tuple[str, datetime]]:
        yield "sent_at", self.sent_at
        for index, reading in enumerate(self.readings):
            yield f"readings[{index}].timestamp", reading.timestamp
        for index, event in enumerate(self.events):
            yield f"events[{index}].observed_at", event.observed_at


class HubMessageReason(StrEnum):
    OVERSIZED = "oversized"
    #: Not a compact EdDSA JWS, or its signed payload is not JSON.
    MALFORMED = "malformed"
    UNKNOWN_HUB = "unknown-hub"
    BAD_SIGNATURE = "bad-signature"
    SCHEMA = "schema-violation"
    #: Validly signed, but a reading, an event or the topic names another hub.
    HUB_MISMATCH = "hub-mismatch"
    TIMESTAMP_IN_FUTURE = "timestamp-in-future"
    TIMESTAMP_TOO_OLD = "timestamp-too-old"


class HubMessageError(ValueError):
    """Why a hub message was refused: a typed ``reason``, a message and where (``path``)."""

    def __init__(self, reason: HubMessageReason, message: str, *, path: str | None = None
                 ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.path = path

    def to_json(self) -> dict[str, str]:
        out = {"reason": str(self.reason), "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        return out


@dataclass(frozen=True, slots=True)
class HubLimits:
    """How much a hub message may carry and how far its clocks may be off."""

    max_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_past: timedelta = timedelta(hours=24)


#: Given a hub DID, its public key when the hub is registered, else ``None``.
HubKeyResolver = Callable[[str], PublicKey | None]


def registered_hubs(hub_ids: Iterable[str]) -> HubKeyResolver:
    """A resolver that knows exactly ``hub_ids`` (did:key: the key is in the DID)."""
    keys = {hub_id: public_key_of_did_key(hub_id) for hub_id in hub_ids}
    return keys.get


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_hub_message(key: Ed25519Key, payload: HubMessage | dict[str, Any]) -> bytes:
    """The compact JWS of a hub message, signed by the hub's key (what goes on the wire).

    The payload is validated first: a hub (or the simulator) never signs what the bridge
    would refuse for its schema.
    """
    message = payload if isinstance(payload, HubMessage) else HubMessage.model_validate(payload)
    if key.controller != message.hub_id:
        raise ValueError(f"key {key.key_id} cannot sign for hub {message.hub_id}")
    header = {"alg": "EdDSA", "kid": key.key_id, "typ": HUB_MESSAGE_TYPE}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64url(message.model_dump_json().encode()))
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode('ascii')))}".encode("ascii")


_TO_STANDARD_B64 = bytes.maketrans(b"-_", b"+/")


def _jws_segments(raw: bytes) -> tuple[bytes, bytes, bytes]:
    parts = raw.split(b".")
    if len(parts) != 3 or not all(parts):
        raise HubMessageError(HubMessageReason.MALFORMED,
                              "not a compact JWS (three base64url segments)")
    return parts[0], parts[1], parts[2]


def _decode_segment(segment: bytes, name: str) -> bytes:
    """Strict base64url: only its alphabet, no padding, no spare bits set (one spelling).

    Checked by bytes scans and one decode, not a regular expression over a 50 KB payload:
    ``credentials.jose.unverified_header`` costs more than the signature check on these.
    """
    if b"+" in segment or b"/" in segment or b"=" in segment:
        raise HubMessageError(HubMessageReason.MALFORMED, f"the JWS {name} is not base64url")
    try:
        decoded = binascii.a2b_base64(
            segment.translate(_TO_STANDARD_B64) + b"=" * (-len(segment) % 4), strict_mode=True)
    except binascii.Error as exc:
        raise HubMessageError(HubMessageReason.MALFORMED,
                              f"the JWS {name} is not base64url: {exc}") from exc
    tail = len(segment) % 4  # 2 or 3 characters encode the last 1 or 2 bytes
    if tail and base64.urlsafe_b64encode(decoded[1 - tail:]).rstrip(b"=") != segment[-tail:]:
        raise HubMessageError(HubMessageReason.MALFORMED,
                              f"the JWS {name} is not in canonical base64url")
    return decoded


def _jws_header(protected: bytes) -> dict[str, Any]:
    try:
        header = json.loads(_decode_segment(protected, "header"))
    except ValueError as exc:
        raise HubMessageError(HubMessageReason.MALFORMED, f"the JWS header is not JSON: {exc}"
                              ) from exc
    if not isinstance(header, dict) or header.get("alg") != "EdDSA":
        raise HubMessageError(HubMessageReason.MALFORMED, "the JWS alg must be EdDSA")
    if header.get("typ") != HUB_MESSAGE_TYPE or not isinstance(header.get("kid"), str):
        raise HubMessageError(HubMessageReason.MALFORMED,
                              f"the JWS header needs typ {HUB_MESSAGE_TYPE!r} and a kid")
    if "crit" in header or "b64" in header:
        raise HubMessageError(HubMessageReason.MALFORMED, "JWS extensions are not supported")
    return header


def _schema_error(exc: ValidationError) -> HubMessageError:
    first = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] in ("json_invalid", "json_type"):
        return HubMessageError(HubMessageReason.MALFORMED,
                               f"the signed payload is not a JSON object: {first['msg']}")
    return HubMessageError(
        HubMessageReason.SCHEMA,
        f"{exc.error_count()} schema violation(s); first at {path}: {first['msg']}",
        path=path)


def verify_hub_message(
    raw: bytes,
    resolve_hub_key: HubKeyResolver,
    *,
    now: datetime | None = None,
    limits: HubLimits = HubLimits(),
) -> HubMessage:
    """The verified payload of one hub message, or ``HubMessageError`` saying why not.

    Order: size; JWS shape and header; hub known (by the ``kid``'s DID); signature; JSON and
    schema of the signed payload; every reading and event names the signing hub; every
    timestamp within ``limits`` of ``now``.
    """
    if len(raw) > limits.max_bytes:
        raise HubMessageError(HubMessageReason.OVERSIZED,
                              f"{len(raw)} bytes exceed the limit of {limits.max_bytes}")
    protected, payload, signature = _jws_segments(raw)
    header = _jws_header(protected)
    hub_did = header["kid"].split("#", 1)[0]
    public_key = resolve_hub_key(hub_did)
    if public_key is None:
        raise HubMessageError(HubMessageReason.UNKNOWN_HUB, f"hub {hub_did} is not registered")
    raw_signature = _decode_segment(signature, "signature")
    if len(raw_signature) != 64 or not public_key.verify(
            raw[: len(protected) + 1 + len(payload)], raw_signature):
        raise HubMessageError(HubMessageReason.BAD_SIGNATURE,
                              f"the signature is not hub {hub_did}'s")
    body = _decode_segment(payload, "payload")
    try:
        message = HubMessage.model_validate_json(body)
    except ValidationError as exc:
        raise _schema_error(exc) from exc
    _check_hub(message, hub_did)
    _check_clock(message, now or datetime.now(UTC), limits)
    return message


def _check_hub(message: HubMessage, hub_did: str) -> None:
    if message.hub_id != hub_did:
        raise HubMessageError(HubMessageReason.HUB_MISMATCH,
                              f"signed by {hub_did} but names hub {message.hub_id}",
                              path="hub_id")
    for name, items in (("readings", message.readings), ("events", message.events)):
        for index, item in enumerate(items):
            if item.hub_id != hub_did:
                raise HubMessageError(HubMessageReason.HUB_MISMATCH,
                                      f"a hub speaks only for itself, not {item.hub_id}",
                                      path=f"{name}[{index}].hub_id")


def _check_clock(message: HubMessage, now: datetime, limits: HubLimits) -> None:
    latest, earliest = now + limits.max_future, now - limits.max_past
    for path, moment in message.timestamps():
        if moment > latest:
            raise HubMessageError(HubMessageReason.TIMESTAMP_IN_FUTURE,
                                  f"{moment.isoformat()} is more than {limits.max_future} "
                                  f"ahead of {now.isoformat()}", path=path)
        if moment < earliest:
            raise HubMessageError(HubMessageReason.TIMESTAMP_TOO_OLD,
                                  f"{moment.isoformat()} is more than {limits.max_past} "
                                  f"before {now.isoformat()}", path=path)


# MQTT topics ------------------------------------------------------------------------------

def check_topic(message: HubMessage, hub_id: str, position: int | None) -> None:
    """Refuse a verified message published under another hub's or another cell's topic.

    ``hub_id`` and ``position`` come from the topic (``sources.base.parse_topic``):
    ``bpc/hubs/{hub_id}/batch`` may carry any of the hub's cells (``position`` None),
    ``bpc/hubs/{hub_id}/cells/{position}`` only that one.
    """
    if hub_id != message.hub_id:
        raise HubMessageError(HubMessageReason.HUB_MISMATCH,
                              f"hub {message.hub_id} published on hub {hub_id}'s topic")
    if position is None:
        return
    items: list[CellReading | CellEvent] = [*message.readings, *message.events]
    for item in items:
        if item.position != position:
            raise HubMessageError(HubMessageReason.HUB_MISMATCH,
                                  f"cell {position}'s topic carries data of cell {item.position}")


# JSON Schema ------------------------------------------------------------------------------

def payload_schema() -> dict[str, Any]:
    """The JSON Schema of the JWS payload, generated from the models (never hand-edited)."""
    schema = HubMessage.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema}


def payload_schema_text() -> str:
    return json.dumps(payload_schema(), indent=2, ensure_ascii=False) + "\n"


def write_payload_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate ``payload.schema.json`` (``python -m connector.plugins.hub.events``)."""
    path.write_text(payload_schema_text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_payload_schema())
