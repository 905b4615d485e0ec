"""Hub readings, events and signed hub messages: the models, the wire format, every refusal."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest
from pydantic import ValidationError

from connector.plugins.hub.events import (
    HUB_MESSAGE_TYPE,
    SCHEMA_PATH,
    CellEvent,
    CellReading,
    EventKind,
    HubLimits,
    HubMessage,
    HubMessageError,
    HubMessageReason,
    check_topic,
    event_digest,
    event_id_for,
    payload_schema,
    payload_schema_text,
    registered_hubs,
    sign_hub_message,
    verify_hub_message,
)
from credentials.did_key import key_from_seed
from credentials.jcs import canonical_json
from credentials.jose import verify_compact_eddsa

HUB = key_from_seed(b"\x11" * 32)
OTHER_HUB = key_from_seed(b"\x22" * 32)
MONITOR = key_from_seed(b"\x33" * 32).controller
BATTERY = key_from_seed(b"\x44" * 32).controller
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
R = HubMessageReason


def reading(**changes):
    data = {"hub_id": HUB.controller, "battery_did": BATTERY, "position": 3,
            "cell_uid": "0AXCEA1T000001K290000003", "monitor_did": MONITOR, "voltage_v": 3.65,
            "temperature_c": 25.5, "soc": 0.5, "timestamp": NOW, "seq": 7}
    return {**data, **changes}


def event(**changes):
    data = {"kind": EventKind.STATE_OF_HEALTH, "hub_id": HUB.controller, "battery_did": BATTERY,
            "position": 3, "cell_uid": "0AXCEA1T000001K290000003", "seq": 8,
            "observed_at": NOW, "details": {"soh_permille": 962}}
    data.update(changes)
    return CellEvent.create(**data)


def message(readings=1, events=0, **changes):
    data = {"hub_id": HUB.controller, "sent_at": NOW,
            "readings": [reading(seq=i) for i in range(readings)],
            "events": [event(seq=1000 + i) for i in range(events)]}
    return {**data, **changes}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(payload: bytes, key=HUB, header=None) -> bytes:
    """A JWS over arbitrary payload bytes: what a buggy or hostile hub could send."""
    header = header or {"alg": "EdDSA", "kid": key.key_id, "typ": HUB_MESSAGE_TYPE}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}".encode()


RESOLVE = registered_hubs([HUB.controller, OTHER_HUB.controller])


def refused(raw: bytes, reason: HubMessageReason, resolve=RESOLVE, **kwargs) -> HubMessageError:
    with pytest.raises(HubMessageError) as info:
        verify_hub_message(raw, resolve, now=kwargs.pop("now", NOW), **kwargs)
    assert info.value.reason is reason, info.value
    assert isinstance(info.value, ValueError)
    assert info.value.to_json()["reason"] == str(reason)
    return info.value


# Readings -------------------------------------------------------------------------------

def test_a_reading_validates():
    r = CellReading(**reading())
    assert r.position == 3 and r.voltage_v == 3.65
    assert CellReading.model_validate_json(r.model_dump_json()) == r


@pytest.mark.parametrize(("field", "value"), [
    ("position", -1), ("position", 70_000), ("position", True), ("position", "3"),
    ("soc", 1.01), ("soc", -0.1), ("voltage_v", -0.1), ("voltage_v", 11.0),
    ("temperature_c", math.nan), ("temperature_c", math.inf), ("temperature_c", -math.inf),
    ("temperature_c", 1e6), ("voltage_v", "3.6"), ("seq", -1), ("seq", 2**53), ("seq", 1.0),
    ("hub_id", "did:web:example.com"), ("monitor_did", "did:key:zQ3sh"),
    ("battery_did", "battery-1"), ("cell_uid", ""), ("cell_uid", "x" * 65),
    ("cell_uid", "cell uid with spaces"), ("timestamp", datetime(2026, 1, 1)),
    ("timestamp", "yesterday"),
])
def test_out_of_range_and_mistyped_readings_are_refused(field, value):
    with pytest.raises(ValidationError):
        CellReading(**reading(**{field: value}))


def test_unknown_and_missing_reading_fields_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        CellReading(**reading(current_a=12.0))
    data = reading()
    del data["seq"]
    with pytest.raises(ValidationError):
        CellReading(**data)


def test_nan_in_json_is_refused():
    text = json.dumps(reading(timestamp=NOW.isoformat())).replace("25.5", "NaN")
    with pytest.raises(ValidationError):
        CellReading.model_validate_json(text)


# Events ---------------------------------------------------------------------------------

def test_event_ids_are_deterministic_from_hub_seq_kind_and_position():
    a = event()
    assert a.event_id == event().event_id == event_id_for(HUB.controller, 8,
                                                           EventKind.STATE_OF_HEALTH, 3)
    assert a.event_id.startswith("urn:uuid:")
    others = {event(seq=9).event_id, event(position=4).event_id,
              event(kind=EventKind.CELL_REPLACED).event_id,
              event(hub_id=OTHER_HUB.controller).event_id}
    assert a.event_id not in others and len(others) == 4
    # details and time do not change the id: a redelivered event keeps it
    assert event(details={"soh_permille": 1}).event_id == a.event_id


def test_an_event_whose_id_does_not_match_its_origin_is_refused():
    data = event().to_json()
    data["seq"] = 9
    with pytest.raises(ValidationError, match="event_id"):
        CellEvent.model_validate(data)
    with pytest.raises(ValidationError):
        CellEvent.model_validate({**event().to_json(), "colour": "red"})


def test_observed_at_is_normalised_to_utc_so_one_instant_has_one_digest():
    plus_two = timezone(timedelta(hours=2))
    local = event(observed_at=NOW.astimezone(plus_two))
    assert local.to_json()["observed_at"] == "2026-03-01T12:00:00Z"
    assert local.digest() == event().digest()


def test_digest_is_sha256_of_the_jcs_form_and_survives_a_json_round_trip():
    for details in ({"soh_permille": 962}, {"soh": 0.962, "note": "ü", "nested": [1, {"b": 2,
                                                                                  "a": 1.5}]},
                    {}):
        e = event(details=details)
        document = e.to_json()
        assert e.digest() == hashlib.sha256(canonical_json(document)).digest()
        assert e.digest() == event_digest(json.loads(json.dumps(document)))
        assert CellEvent.model_validate(document).digest() == e.digest()
        assert CellEvent.model_validate_json(json.dumps(document)).digest() == e.digest()
    assert event(details={"a": 1}).digest() != event(details={"a": 2}).digest()


def test_the_fast_digest_path_equals_rfc8785_on_integer_details():
    import rfc8785

    e = event(details={"voltage_mv": {"min": 3612, "max": 3671}, "z": None, "b": True,
                       "é": "ß", "list": [3, 2, 1]})
    assert e.digest() == hashlib.sha256(rfc8785.dumps(e.to_json())).digest()


def test_model_copy_with_changes_is_validated_and_digested_afresh():
    e = event()
    assert e.model_copy().digest() == e.digest()
    changed = e.model_copy(update={"details": {"soh": 0.5}})
    assert changed.details == {"soh": 0.5} and changed.event_id == e.event_id
    assert changed.digest() == hashlib.sha256(canonical_json(changed.to_json())).digest()
    assert changed.digest() != e.digest()
    with pytest.raises(ValidationError, match="event_id"):
        e.model_copy(update={"seq": 99})  # the id would no longer be the event's


@pytest.mark.parametrize("details", [
    {"x": math.nan}, {"x": math.inf}, {"x": 2**53}, {"x": 0.1234567890123456789},
    {"x": 5.62099091005531e16},
    {"x": object()}, {1: "non-string key"}, {"deep": [[[[[[[[[[1]]]]]]]]]]},
])
def test_details_json_cannot_carry_exactly_are_refused(details):
    with pytest.raises(ValidationError):
        event(details=details)


# Signing and verifying ------------------------------------------------------------------

def test_sign_and_verify_round_trip():
    raw = sign_hub_message(HUB, message(readings=3, events=2))
    verified = verify_hub_message(raw, RESOLVE, now=NOW)
    assert isinstance(verified, HubMessage)
    assert [r.seq for r in verified.readings] == [0, 1, 2]
    assert verified.events[0].digest() == event(seq=1000).digest()
    # a standard JOSE verifier accepts it too
    header = json.loads(base64.urlsafe_b64decode(raw.split(b".")[0] + b"=="))
    assert header == {"alg": "EdDSA", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE}
    claims = verify_compact_eddsa(raw.decode(), HUB.public_key)
    assert claims is not None and claims["hub_id"] == HUB.controller


def test_a_heartbeat_without_readings_verifies():
    raw = sign_hub_message(HUB, HubMessage(hub_id=HUB.controller, sent_at=NOW))
    assert verify_hub_message(raw, RESOLVE, now=NOW).readings == []


def test_signing_refuses_another_hubs_payload_and_invalid_payloads():
    with pytest.raises(ValueError, match="cannot sign"):
        sign_hub_message(OTHER_HUB, message())
    with pytest.raises(ValidationError):
        sign_hub_message(HUB, message(extra=1))


def test_oversized():
    raw = sign_hub_message(HUB, message(readings=50))
    error = refused(raw, R.OVERSIZED, limits=HubLimits(max_bytes=len(raw) - 1))
    assert str(len(raw)) in error.message
    assert verify_hub_message(raw, RESOLVE, now=NOW, limits=HubLimits(max_bytes=len(raw)))
    refused(b"x" * (256 * 1024 + 1), R.OVERSIZED)  # size is checked before anything else


@pytest.mark.parametrize("raw", [
    b"", b"not a jws", b"a.b", b"a.b.c.d", b"..", b"\xff\xfe.a.b",
    b"e30.e30.e30",  # header {} has no alg
])
def test_malformed_envelopes(raw):
    refused(raw, R.MALFORMED)


@pytest.mark.parametrize("header", [
    {"alg": "HS256", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE},
    {"alg": "EdDSA", "kid": HUB.key_id},
    {"alg": "EdDSA", "kid": HUB.key_id, "typ": "JWT"},
    {"alg": "EdDSA", "typ": HUB_MESSAGE_TYPE},
    {"alg": "EdDSA", "kid": 5, "typ": HUB_MESSAGE_TYPE},
    {"alg": "EdDSA", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE, "crit": ["exp"]},
    {"alg": "EdDSA", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE, "b64": False},
])
def test_malformed_headers(header):
    payload = json.dumps(message(readings=0, sent_at=NOW.isoformat())).encode()
    refused(sign_raw(payload, header=header), R.MALFORMED)


def test_non_canonical_or_foreign_base64_is_malformed():
    raw = sign_hub_message(HUB, message())
    protected, payload, signature = raw.split(b".")
    padded = b".".join([protected, payload, signature + b"=="])
    std_alphabet = b".".join([protected, payload.replace(b"-", b"+").replace(b"_", b"/"),
                              signature])
    # spare bits: the signature (64 bytes) ends in a character carrying 4 unused bits
    last = signature[-1:]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = b".".join([protected, payload,
                       signature[:-1] + alphabet[alphabet.index(last) + 1:][:1]])
    for bad in (padded, spare, b" " + raw):
        refused(bad, R.MALFORMED)
    # the hub signed its payload's one spelling: any other is not what it signed
    bad_char = b".".join([protected, payload[:-1] + b"*", signature])
    refused(bad_char, R.BAD_SIGNATURE)
    if b"-" in payload or b"_" in payload:
        refused(std_alphabet, R.BAD_SIGNATURE)


def test_a_validly_signed_payload_that_is_not_json_is_malformed():
    refused(sign_raw(b"{not json"), R.MALFORMED)
    refused(sign_raw(b"\xff\xfe"), R.MALFORMED)


def test_unknown_hub():
    raw = sign_hub_message(HUB, message())
    error = refused(raw, R.UNKNOWN_HUB, resolve=registered_hubs([OTHER_HUB.controller]))
    assert HUB.controller in error.message
    stranger = key_from_seed(b"\x99" * 32)
    refused(sign_raw(b"{}", key=stranger), R.UNKNOWN_HUB)


def test_bad_signature():
    raw = sign_hub_message(HUB, message())
    protected, payload, signature = raw.split(b".")
    forged_payload = b64(json.dumps(message(readings=0, sent_at=NOW.isoformat())).encode())
    # another payload under the old signature
    refused(b".".join([protected, forged_payload.encode(), signature]), R.BAD_SIGNATURE)
    # a flipped signature bit
    sig = bytearray(base64.urlsafe_b64decode(signature + b"=="))
    sig[10] ^= 1
    refused(b".".join([protected, payload, b64(bytes(sig)).encode()]), R.BAD_SIGNATURE)
    # a truncated signature
    refused(b".".join([protected, payload, signature[:40]]), R.BAD_SIGNATURE)
    # signed by another key while naming the hub's kid
    header = {"alg": "EdDSA", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE}
    body = json.dumps(message(readings=0, sent_at=NOW.isoformat())).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    forged = f"{signing_input}.{b64(OTHER_HUB.sign(signing_input.encode()))}".encode()
    refused(forged, R.BAD_SIGNATURE)


def _signed_json(data) -> bytes:
    return sign_raw(json.dumps(data, default=str).encode())


@pytest.mark.parametrize(("change", "path"), [
    (lambda m: m.update(colour="red"), "colour"),
    (lambda m: m["readings"][0].update(current_a=3.0), "readings.0.current_a"),
    (lambda m: m["readings"][0].update(position=-1), "readings.0.position"),
    (lambda m: m["readings"][0].update(soc=1.5), "readings.0.soc"),
    (lambda m: m["readings"][0].update(temperature_c=1e309), "readings.0.temperature_c"),
    (lambda m: m["readings"][0].pop("seq"), "readings.0.seq"),
    (lambda m: m.update(version=2), "version"),
    (lambda m: m.update(readings="none"), "readings"),
    (lambda m: m["events"][0].update(seq=12345), "events.0"),
    (lambda m: m["events"][0].update(kind="explosion"), "events.0.kind"),
    (lambda m: m["readings"][0].update(timestamp="2026-03-01T12:00:00"), "readings.0.timestamp"),
])
def test_schema_violations(change, path):
    data = _jsonable(message(readings=1, events=1))
    change(data)
    error = refused(_signed_json(data), R.SCHEMA)
    assert error.path is not None and error.path.startswith(path)


def test_nan_and_non_object_payloads_are_schema_violations():
    text = json.dumps(_jsonable(message(1))).replace('"temperature_c": 25.5',
                                                     '"temperature_c": NaN')
    assert "NaN" in text
    refused(sign_raw(text.encode()), R.SCHEMA)
    refused(sign_raw(b"[1, 2]"), R.SCHEMA)


def _jsonable(data):
    return json.loads(json.dumps(data, default=lambda o: o.isoformat() if isinstance(
        o, datetime) else o.to_json()))


def test_hub_mismatch():
    # the kid is the hub's, the payload names another hub
    data = _jsonable(message(hub_id=OTHER_HUB.controller, readings=0))
    refused(_signed_json(data), R.HUB_MISMATCH)
    # a reading or an event of another hub inside the hub's own message
    data = _jsonable(message(readings=2))
    data["readings"][1]["hub_id"] = OTHER_HUB.controller
    assert refused(_signed_json(data), R.HUB_MISMATCH).path == "readings[1].hub_id"
    data = _jsonable(message(readings=0, events=1))
    data["events"][0] = event(hub_id=OTHER_HUB.controller).to_json()
    assert refused(_signed_json(data), R.HUB_MISMATCH).path == "events[0].hub_id"


def test_timestamps_outside_the_allowed_skew():
    too_new = NOW + timedelta(minutes=5, seconds=1)
    too_old = NOW - timedelta(hours=24, seconds=1)
    refused(sign_hub_message(HUB, message(sent_at=too_new)), R.TIMESTAMP_IN_FUTURE)
    refused(sign_hub_message(HUB, message(sent_at=too_old)), R.TIMESTAMP_TOO_OLD)
    error = refused(sign_hub_message(HUB, message(readings=0, events=0) | {
        "readings": [reading(timestamp=too_new)]}), R.TIMESTAMP_IN_FUTURE)
    assert error.path == "readings[0].timestamp"
    late_event = event(observed_at=too_old)
    error = refused(sign_hub_message(HUB, message(readings=0) | {"events": [late_event]}),
                    R.TIMESTAMP_TOO_OLD)
    assert error.path == "events[0].observed_at"
    # exactly at the limits is fine, and the limits are configurable
    at_limits = message(readings=0) | {"readings": [reading(timestamp=NOW + timedelta(minutes=5)),
                                                    reading(timestamp=NOW - timedelta(hours=24))]}
    assert verify_hub_message(sign_hub_message(HUB, at_limits), RESOLVE, now=NOW)
    tight = HubLimits(max_future=timedelta(seconds=1), max_past=timedelta(seconds=1))
    refused(sign_hub_message(HUB, at_limits), R.TIMESTAMP_IN_FUTURE, limits=tight)


def test_checks_run_cheapest_first():
    """An unknown hub's message is refused before its signature or payload is looked at."""
    garbage = sign_raw(b"{not json", key=key_from_seed(b"\x98" * 32))
    refused(garbage, R.UNKNOWN_HUB)
    forged = sign_raw(b"{not json", key=OTHER_HUB, header={
        "alg": "EdDSA", "kid": HUB.key_id, "typ": HUB_MESSAGE_TYPE})
    refused(forged, R.BAD_SIGNATURE)


def test_check_topic():
    verified = verify_hub_message(sign_hub_message(HUB, message(readings=2)), RESOLVE, now=NOW)
    check_topic(verified, HUB.controller, None)
    check_topic(HubMessage.model_validate(message(readings=0) | {
        "readings": [reading(position=3)]}), HUB.controller, 3)
    with pytest.raises(HubMessageError) as info:
        check_topic(verified, OTHER_HUB.controller, None)
    assert info.value.reason is R.HUB_MISMATCH
    with pytest.raises(HubMessageError):
        check_topic(verified, HUB.controller, 4)


# JSON Schema ----------------------------------------------------------------------------

def test_the_committed_schema_is_the_generated_one():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == payload_schema_text(), (
        "payload.schema.json is stale: run python -m connector.plugins.hub.events")


def test_the_schema_accepts_what_the_models_accept_and_refuses_unknown_fields():
    schema = payload_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = json.loads(HubMessage.model_validate(message(readings=2, events=1)).model_dump_json())
    validator.validate(good)
    bad = {**good, "colour": "red"}
    assert not validator.is_valid(bad)
    bad_reading = json.loads(json.dumps(good))
    bad_reading["readings"][0]["soc"] = 2
    assert not validator.is_valid(bad_reading)


# The fast paths: event ids without uuid.UUID, RFC 8785 without rfc8785 ----------------------

def test_event_ids_are_exactly_uuid5_of_the_origin():
    import random
    import uuid

    from connector.plugins.hub import events as events_module

    rng = random.Random(5)
    for _ in range(500):
        hub = "".join(rng.choice("abcXYZ09:é😀|-") for _ in range(rng.randrange(0, 60)))
        seq, position = rng.randrange(2**53), rng.randrange(65536)
        kind = rng.choice([*EventKind, "free-text"])
        expected = uuid.uuid5(events_module._EVENT_NAMESPACE,
                              f"{hub}|{seq}|{kind}|{position}")
        assert event_id_for(hub, seq, kind, position) == f"urn:uuid:{expected}"


_AWKWARD = ["", "plain", 'quote " and \\ backslash', "\x00\x01\x1f\x7f", "\b\f\n\r\t",
            "\u2028\u2029", "é ü ß", "\ud7ff\ue000\uffff", "😀 𝄞", "</script>", "%s{}"]


def _awkward_values():
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda f: f == 0.0 or float(f"{f:.14e}") == f),
        st.sampled_from(_AWKWARD),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
    keys = st.one_of(st.sampled_from(_AWKWARD), st.text(
        st.characters(blacklist_categories=("Cs",)), max_size=6))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def test_the_stored_form_is_rfc8785_of_the_event_json_whatever_the_details():
    import rfc8785
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=400, deadline=None)
    @given(st.dictionaries(st.one_of(st.sampled_from(_AWKWARD), st.text(max_size=6).filter(
        lambda k: not any("\ud800" <= c <= "\udfff" for c in k))), _awkward_values(),
        max_size=6), st.sampled_from(list(EventKind)),
        st.datetimes(timezones=st.just(timezone(timedelta(hours=-3)))))
    def check(details, kind, observed_at):
        try:
            e = event(details=details, kind=kind, observed_at=observed_at)
        except ValidationError:  # deeper than the details allow
            return
        exact = rfc8785.dumps(e.to_json())
        assert e.canonical() == exact
        assert e.digest() == hashlib.sha256(exact).digest()
        # what the store keeps reads back to the same leaf, as an offline verifier computes it
        assert event_digest(json.loads(e.canonical())) == e.digest()

    check()


def test_details_that_json_cannot_store_are_refused_when_the_event_is_made():
    with pytest.raises(ValidationError, match="canonical JSON"):
        event(details={"note": "lone \ud800 surrogate"})
    with pytest.raises(ValidationError, match="deeper"):
        event(details={"a": [[[[[[[[1]]]]]]]]})
    assert event(details={"a": [[[[[[[1]]]]]]]}).details  # eight levels are allowed
    assert event(details={"a": [[[[[[[[]]]]]]]]}).details  # an empty ninth level too
