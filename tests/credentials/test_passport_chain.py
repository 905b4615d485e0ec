"""The hash-linked passport chain: digests, reading entries, and what ``Passport.append`` refuses.

The builders here are also used by ``test_passport_audit.py``. Until the passport terms are in
the battery context, entries use ``CONTEXT``: the VCDM 2.0 context plus an inline context that
defines exactly the terms these tests use, under the battery vocabulary IRIs (no ``@vocab``,
which would hide an undefined term). Switching to the battery context is a change of
``CONTEXT`` alone (the unknown-type test keeps its one extra term inline).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
import rfc8785

from credentials import JCS, CredentialsError, issue_credential, issue_jwt_credential, key_from_seed
from credentials.errors import MalformedDocument, NumberOutOfRange
from credentials.keys import Ed25519Key
from credentials.passport.chain import (
    DIGEST_PREFIX,
    BrokenLink,
    ChainEntry,
    CustodyViolation,
    InvalidRepurposing,
    MalformedEntry,
    Passport,
    PassportError,
    SubjectMismatch,
    UnknownCredentialType,
    credential_digest,
    credential_document,
    credential_types,
    issuer_of,
    previous_credential,
    subject_id,
)
from vocab import CREDENTIALS_V2

VOCAB = "https://w3id.org/battery-passport-connector/vocab#"
_ID = {"@type": "@id"}
PASSPORT_TERMS: dict[str, Any] = {
    **{name: VOCAB + name for name in (
        "Battery",
        "BatteryManufacturingCredential",
        "CustodyTransferCredential",
        "VehicleIntegrationCredential",
        "StateOfHealthCredential",
        "RepurposingCredential",
        "RecyclingOutcomeCredential",
        "MembershipCredential",
        "previousCredential",
        "manufacturingDate",
        "transferDate",
        "vehicleIdentificationNumber",
        "stateOfHealthPct",
        "recyclingFacility",
        "repurposingDate",
        "newApplication",
        "memberOf",
    )},
    "transferredTo": {"@id": VOCAB + "transferredTo", **_ID},
    "originalBattery": {"@id": VOCAB + "originalBattery", **_ID},
}
CONTEXT: list[Any] = [CREDENTIALS_V2, PASSPORT_TERMS]

CELL_MAKER = key_from_seed(bytes([11] * 32))
OEM = key_from_seed(bytes([12] * 32))
RECYCLER = key_from_seed(bytes([13] * 32))
STRANGER = key_from_seed(bytes([14] * 32))
REPURPOSER = key_from_seed(bytes([15] * 32))
BATTERY = key_from_seed(bytes([21] * 32)).controller
OTHER_BATTERY = key_from_seed(bytes([22] * 32)).controller
SECOND_LIFE = key_from_seed(bytes([23] * 32)).controller

T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: After every entry's validFrom: the moment the audits judge validity at.
AUDIT_NOW = datetime(2026, 6, 1, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_entry(
    kind: str,
    key: Ed25519Key,
    *,
    previous: str | None,
    day: int,
    battery: str = BATTERY,
    fields: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    suite: str = JCS,
    context: list[Any] | None = None,
) -> dict[str, Any] | str:
    """A secured passport entry ``kind`` by ``key`` about ``battery``, issued on ``day``."""
    when = T0 + timedelta(days=day)
    subject: dict[str, Any] = {"id": battery, "type": "Battery", **(fields or {})}
    if previous is not None:
        subject["previousCredential"] = previous
    seed = f"{kind}|{key.controller}|{battery}|{previous}|{day}|{sorted((fields or {}).items())}"
    doc: dict[str, Any] = {
        "@context": context or CONTEXT,
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}",
        "type": ["VerifiableCredential", kind],
        "issuer": key.controller,
        "validFrom": stamp(when),
        "credentialSubject": subject,
        **(extra or {}),
    }
    if suite == "jwt":
        return issue_jwt_credential(doc, key, now=when)
    return issue_credential(doc, key, suite=suite, now=when)


def transfer(key: Ed25519Key, to: Ed25519Key, *, previous: str | None, day: int,
             **kwargs: Any) -> dict[str, Any] | str:
    return make_entry("CustodyTransferCredential", key, previous=previous, day=day,
                      fields={"transferredTo": to.controller,
                              "transferDate": (T0 + timedelta(days=day)).date().isoformat()},
                      **kwargs)


def soh(key: Ed25519Key, *, previous: str | None, day: int, pct: str = "97.5",
        **kwargs: Any) -> dict[str, Any] | str:
    return make_entry("StateOfHealthCredential", key, previous=previous, day=day,
                      fields={"stateOfHealthPct": pct}, **kwargs)


def lifecycle_steps(*, formats: dict[int, str] | None = None) -> Passport:
    """Cell maker makes the battery and hands it to the OEM, which integrates it, measures it
    and hands it to the recycler, which recycles it: six entries, custody moving twice."""
    formats = formats or {}
    passport = Passport(BATTERY)
    steps: list[tuple[str, Ed25519Key, dict[str, Any]]] = [
        ("BatteryManufacturingCredential", CELL_MAKER, {"manufacturingDate": "2026-01-05"}),
        ("CustodyTransferCredential", CELL_MAKER,
         {"transferredTo": OEM.controller, "transferDate": "2026-01-06"}),
        ("VehicleIntegrationCredential", OEM, {"vehicleIdentificationNumber": "WVWZZZ1JZXW000001"}),
        ("StateOfHealthCredential", OEM, {"stateOfHealthPct": "97.5"}),
        ("CustodyTransferCredential", OEM,
         {"transferredTo": RECYCLER.controller, "transferDate": "2026-01-09"}),
        ("RecyclingOutcomeCredential", RECYCLER, {"recyclingFacility": "BPNA000000000042"}),
    ]
    for day, (kind, key, fields) in enumerate(steps):
        passport.append(make_entry(kind, key, previous=passport.link_for_next(), day=day,
                                   fields=fields, suite=formats.get(day, JCS)))
    return passport


@cache
def _lifecycle_entries() -> tuple[Any, ...]:
    return lifecycle_steps().entries


def lifecycle() -> Passport:
    """A fresh copy of the six-entry passport (built once: signing with inline contexts runs
    a full JSON-LD expansion per credential)."""
    return Passport.from_entries(copy.deepcopy(list(_lifecycle_entries())))


def state(passport: Passport) -> tuple[Any, ...]:
    """Everything observable about a passport, to show a refusal changed nothing."""
    return (copy.deepcopy(passport.entries), passport.digests, passport.head,
            passport.custodian, passport.link_for_next(), len(passport))


def reference_digest(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(b"\x12\x20" + hashlib.sha256(data).digest()) \
        .rstrip(b"=").decode()


# --- digests --------------------------------------------------------------------------------


def test_digest_of_a_json_credential_is_multihash_sha256_of_its_jcs_form() -> None:
    entry = lifecycle().entries[0]
    digest = credential_digest(entry)
    assert digest.startswith(DIGEST_PREFIX) and digest[3] in "ABCD"
    assert len(digest) == 47  # "u" + base64url of 34 bytes
    multihash = base64.urlsafe_b64decode(digest[1:] + "==")
    assert multihash[:2] == b"\x12\x20" and len(multihash) == 34
    assert digest == reference_digest(rfc8785.dumps(entry))  # the proof is included
    reordered = json.loads(json.dumps(entry, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert credential_digest(reordered) == digest  # key order does not matter, JCS decides
    altered = copy.deepcopy(entry)
    altered["proof"]["proofValue"] = altered["proof"]["proofValue"][:-1] + "x"
    assert credential_digest(altered) != digest


def test_digest_of_a_jwt_is_over_its_ascii() -> None:
    token = soh(OEM, previous=None, day=1, suite="jwt")
    assert isinstance(token, str)
    assert credential_digest(token) == reference_digest(token.encode("ascii"))
    assert credential_digest(f"  {token}\n") == credential_digest(token)


@pytest.mark.parametrize("bad", [42, None, ["a"], "caf\u00e9.x.y", {"n": float("nan")}])
def test_digest_refuses_what_has_no_canonical_form(bad: Any) -> None:
    with pytest.raises((MalformedDocument, NumberOutOfRange)):
        credential_digest(bad)


# --- reading --------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [JCS, "jwt"])
def test_reading_helpers_work_for_json_and_jwt(suite: str) -> None:
    previous = "uEiB" + "A" * 43
    entry = transfer(OEM, RECYCLER, previous=previous, day=3, suite=suite)
    assert subject_id(entry) == BATTERY
    assert issuer_of(entry) == OEM.controller
    assert credential_types(entry) == ("VerifiableCredential", "CustodyTransferCredential")
    assert previous_credential(entry) == previous
    assert credential_document(entry)["credentialSubject"]["transferredTo"] == RECYCLER.controller
    read = ChainEntry.read(entry)
    assert (read.is_transfer, read.transferred_to) == (True, RECYCLER.controller)
    assert read.digest == credential_digest(entry)


@pytest.mark.parametrize("bad", [
    42,
    "not a jwt",
    "e30.e30.e30",  # a JWT whose payload is {}: no credential in it
    "e30.bm90IGpzb24.e30",
    {"type": ["VerifiableCredential"], "issuer": "did:example:1"},
    {"type": ["VerifiableCredential"], "issuer": "did:example:1", "credentialSubject": [{}, {}]},
    {"type": ["VerifiableCredential"], "issuer": "did:example:1", "credentialSubject": {}},
    {"type": 7, "issuer": "did:example:1", "credentialSubject": {"id": "did:example:2"}},
    {"type": ["VerifiableCredential"], "credentialSubject": {"id": "did:example:2"}},
    {"type": ["VerifiableCredential"], "issuer": "did:example:1",
     "credentialSubject": {"id": "did:example:2", "previousCredential": ["uEiB"]}},
    {"type": ["VerifiableCredential", "CustodyTransferCredential"], "issuer": "did:example:1",
     "credentialSubject": {"id": "did:example:2"}},
])
def test_unreadable_entries_are_malformed(bad: Any) -> None:
    with pytest.raises(MalformedEntry):
        ChainEntry.read(bad)


# --- the passport ---------------------------------------------------------------------------


def test_custody_moves_with_transfers_and_each_entry_names_the_head() -> None:
    passport = lifecycle()
    digests = passport.digests
    assert len(passport) == 6
    assert passport.head == digests[-1] == passport.link_for_next()
    assert passport.custodian == RECYCLER.controller
    assert [previous_credential(e) for e in passport] == [None, *digests[:-1]]
    assert [issuer_of(e) for e in passport] == [CELL_MAKER.controller] * 2 + \
        [OEM.controller] * 3 + [RECYCLER.controller]

    growing = Passport(BATTERY)
    assert (growing.head, growing.custodian, growing.link_for_next()) == (None, None, None)
    custodians = []
    for entry in passport:
        growing.append(entry)
        custodians.append(growing.custodian)
    assert custodians == [CELL_MAKER.controller, OEM.controller, OEM.controller,
                          OEM.controller, RECYCLER.controller, RECYCLER.controller]


def test_a_jwt_entry_links_like_any_other() -> None:
    passport = lifecycle_steps(formats={3: "jwt"})
    assert isinstance(passport.entries[3], str)
    assert previous_credential(passport.entries[4]) == credential_digest(passport.entries[3])


def _refusals() -> list[tuple[str, type[PassportError], Any]]:
    """(name, expected error, build the entry from the passport) for append's refusals."""
    return [
        ("no link", BrokenLink, lambda p: soh(RECYCLER, previous=None, day=9)),
        ("link to an older entry", BrokenLink,
         lambda p: soh(RECYCLER, previous=p.digests[3], day=9)),
        ("link to a made-up digest", BrokenLink,
         lambda p: soh(RECYCLER, previous="uEiB" + "A" * 43, day=9)),
        ("issued by a stranger", CustodyViolation,
         lambda p: soh(STRANGER, previous=p.head, day=9)),
        ("issued by the previous custodian", CustodyViolation,
         lambda p: soh(OEM, previous=p.head, day=9)),
        ("transfer by a non-custodian", CustodyViolation,
         lambda p: transfer(OEM, STRANGER, previous=p.head, day=9)),
        ("about another battery", SubjectMismatch,
         lambda p: soh(RECYCLER, previous=p.head, day=9, battery=OTHER_BATTERY)),
        ("not a passport type", UnknownCredentialType,
         lambda p: make_entry("MembershipCredential", RECYCLER, previous=p.head, day=9,
                              fields={"memberOf": "Catena-X"})),
        ("a repurposing in the middle", InvalidRepurposing,
         lambda p: make_entry("RepurposingCredential", RECYCLER, previous=p.head, day=9,
                              fields={"originalBattery": OTHER_BATTERY})),
        ("garbage", MalformedEntry, lambda p: {"hello": "world"}),
        ("not a JWT", MalformedEntry, lambda p: "hello.world"),
    ]


@pytest.mark.parametrize(("name", "error", "build"), _refusals(), ids=[r[0] for r in _refusals()])
def test_append_refuses_and_leaves_the_passport_unchanged(
    name: str, error: type[PassportError], build: Any
) -> None:
    passport = lifecycle()
    before = state(passport)
    bad = build(passport)
    with pytest.raises(error) as caught:
        passport.append(bad)
    assert isinstance(caught.value, CredentialsError)
    assert caught.value.problem.message
    assert state(passport) == before
    # The passport still takes a good entry after refusing a bad one.
    passport.append(soh(RECYCLER, previous=passport.head, day=10))
    assert len(passport) == 7


def test_the_first_entry_has_no_link() -> None:
    passport = Passport(BATTERY)
    with pytest.raises(BrokenLink):
        passport.append(soh(CELL_MAKER, previous="uEiB" + "A" * 43, day=0))
    assert len(passport) == 0 and passport.custodian is None


def test_from_entries_rejects_a_wrong_order() -> None:
    entries = list(lifecycle().entries)
    entries[2], entries[3] = entries[3], entries[2]
    with pytest.raises(BrokenLink):
        Passport.from_entries(entries)
    assert Passport.from_entries(list(lifecycle().entries)).head == lifecycle().head


def test_errors_are_credentials_errors_with_typed_problems() -> None:
    for error in (BrokenLink, CustodyViolation, SubjectMismatch, UnknownCredentialType,
                  InvalidRepurposing, MalformedEntry):
        assert issubclass(error, PassportError) and issubclass(error, CredentialsError)
    assert CustodyViolation("x").problem.type == "issuer-mismatch"


# --- repurposing ----------------------------------------------------------------------------


def original_for_repurposing() -> Passport:
    """Made by the cell maker, used by the OEM, then handed to a repurposer."""
    passport = Passport(BATTERY)
    passport.append(make_entry("BatteryManufacturingCredential", CELL_MAKER, previous=None,
                               day=0, fields={"manufacturingDate": "2026-01-05"}))
    passport.append(transfer(CELL_MAKER, OEM, previous=passport.head, day=1))
    passport.append(soh(OEM, previous=passport.head, day=2, pct="71.0"))
    passport.append(transfer(OEM, REPURPOSER, previous=passport.head, day=3))
    return passport


def repurposing(key: Ed25519Key = REPURPOSER, *, previous: str | None, day: int = 4,
                original: str = BATTERY, battery: str = SECOND_LIFE) -> dict[str, Any] | str:
    return make_entry("RepurposingCredential", key, previous=previous, day=day, battery=battery,
                      fields={"originalBattery": original, "repurposingDate": "2026-01-09",
                              "newApplication": "stationary storage"})


def test_a_repurposed_passport_starts_at_the_original_head() -> None:
    original = original_for_repurposing()
    second = Passport.repurposed_from(original, repurposing(previous=original.head))
    assert second.battery == SECOND_LIFE
    assert second.origin is not None and second.origin.head == original.head
    assert second.custodian == REPURPOSER.controller
    second.append(soh(REPURPOSER, previous=second.head, day=5, battery=SECOND_LIFE))
    assert len(second) == 2 and len(original) == 4


@pytest.mark.parametrize(("name", "error", "entry"), [
    ("wrong link", BrokenLink, lambda o: repurposing(previous=o.digests[2])),
    ("no link", BrokenLink, lambda o: repurposing(previous=None)),
    ("wrong original", InvalidRepurposing,
     lambda o: repurposing(previous=o.head, original=OTHER_BATTERY)),
    ("same DID", InvalidRepurposing, lambda o: repurposing(previous=o.head, battery=BATTERY)),
    ("not a repurposing", InvalidRepurposing,
     lambda o: soh(REPURPOSER, previous=o.head, day=4, battery=SECOND_LIFE)),
    ("not the custodian", CustodyViolation, lambda o: repurposing(OEM, previous=o.head)),
])
def test_repurposing_refusals(name: str, error: type[PassportError], entry: Any) -> None:
    original = original_for_repurposing()
    before = state(original)
    with pytest.raises(error):
        Passport.repurposed_from(original, entry(original))
    assert state(original) == before


def test_a_plain_passport_does_not_start_with_a_repurposing() -> None:
    original = original_for_repurposing()
    with pytest.raises(BrokenLink):
        Passport(SECOND_LIFE).append(repurposing(previous=original.head))
    with pytest.raises(InvalidRepurposing):
        Passport(SECOND_LIFE).append(repurposing(previous=None))
    with pytest.raises(BrokenLink):
        Passport.repurposed_from(Passport(BATTERY), repurposing(previous=None))
