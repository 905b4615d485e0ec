"""The hub bridge's cell-level passport entries (CellEventBatch, CellReplacement,
CellConfiguration): they issue and verify under the hub context, append to a pack's passport
after its manufacturing entry under the custody rules, and a broken field is refused before
signing, naming the attribute."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import hub_samples as hub
import pytest

from connector.samples import manufacturing_credential
from credentials import JCS, JWT, RDFC, key_from_seed, verify_credential
from credentials.errors import MalformedDocument, UndefinedTerm
from credentials.jsonld import expand_strict
from credentials.merkle import MerkleTree, decode_hash
from credentials.passport.chain import (
    PASSPORT_ENTRY_TYPES,
    BrokenLink,
    CustodyViolation,
    Passport,
)
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.shapes import ShapeViolation, validate_shapes
from credentials.passport.types import (
    CREDENTIAL_TYPES,
    HUB_EVENT_KINDS,
    CellConfiguration,
    CellEventBatch,
    CellReplacement,
    EventCount,
    PassportSubject,
    build_credential,
    parse_credential,
)
from vocab import BATTERY_CONTEXT_V1, BATTERY_VOCAB, CREDENTIALS_V2, HUB_CONTEXT_V1
from vocab.access import AccessLevel, access_level

CUSTODIAN = key_from_seed(bytes([30] * 32))
STRANGER = key_from_seed(bytes([31] * 32))
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
SUITES = (RDFC, JCS, JWT)
HUB_TYPES = tuple(hub.BUILDERS)
MODELS: dict[str, type[PassportSubject]] = {
    "CellEventBatchCredential": CellEventBatch,
    "CellReplacementCredential": CellReplacement,
    "CellConfigurationCredential": CellConfiguration,
}


def unsigned(kind: str, issuer: str = CUSTODIAN.controller) -> dict[str, Any]:
    document = hub.BUILDERS[kind]()
    document["issuer"] = issuer
    return document


def subject_of(kind: str) -> PassportSubject:
    return parse_credential(hub.BUILDERS[kind]())


def refused_at(document: dict[str, Any], path: str, suite: str = JCS) -> str:
    """Issuing ``document`` is refused by the shapes with a violation at ``path``."""
    with pytest.raises(ShapeViolation) as refused:
        issue_passport_credential(document, CUSTODIAN, suite=suite, now=NOW)
    messages = [message for at, message in refused.value.violations if at == path]
    assert messages, refused.value.violations
    return messages[0]


# --- the contract ---------------------------------------------------------------------------


def test_the_types_are_registered_passport_entries() -> None:
    for kind, model in MODELS.items():
        assert CREDENTIAL_TYPES[kind] is model
        assert kind in PASSPORT_ENTRY_TYPES
        assert model.contexts == (CREDENTIALS_V2, BATTERY_CONTEXT_V1, HUB_CONTEXT_V1)


@pytest.mark.parametrize("kind", HUB_TYPES)
def test_each_sample_expands_under_the_battery_vocabulary(kind: str) -> None:
    """The hub context follows the protected battery context without clashing with it, and
    every subject field (reason too, from the battery context) lands in the bp: namespace."""
    expanded = expand_strict(hub.BUILDERS[kind]())
    subject = expanded[0]["https://www.w3.org/2018/credentials#credentialSubject"][0]
    fields = {key for key in subject if not key.startswith("@")}
    names = set(hub.BUILDERS[kind]()["credentialSubject"]) - {"id", "type"}
    assert fields == {BATTERY_VOCAB + name for name in names}


def test_without_the_hub_context_the_terms_are_undefined() -> None:
    document = unsigned("CellEventBatchCredential")
    document["@context"] = [CREDENTIALS_V2, BATTERY_CONTEXT_V1]
    with pytest.raises(UndefinedTerm):
        issue_passport_credential(document, CUSTODIAN, now=NOW)
    with pytest.raises(MalformedDocument) as refused:
        parse_credential(document)
    assert refused.value.problem.path == "@context"


@pytest.mark.parametrize(
    "term",
    ["hub", "merkleRoot", "treeSize", "firstEventAt", "lastEventAt", "eventCounts", "eventKind",
     "count", "cellConfiguration", "position", "oldCellDid", "newCellDid", "oldCellUid",
     "newCellUid", "technician", "technicianCredential", "replacedAt", "expectedCellUid",
     "observedCellUid", "observedAt", "eventId"],
)
def test_cell_level_data_is_for_legitimate_interest(term: str) -> None:
    """Cell-level telemetry is performance & health data (DESIGN.md): not public."""
    assert access_level(term) is AccessLevel.LEGITIMATE_INTEREST


# --- issuing and verifying --------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("kind", HUB_TYPES)
async def test_each_type_issues_and_verifies(kind: str, suite: str) -> None:
    secured = issue_passport_credential(unsigned(kind), CUSTODIAN, suite=suite, now=NOW)
    if isinstance(secured, dict):
        secured = json.loads(json.dumps(secured))
    result = await verify_credential(secured)
    assert result.problems == []
    assert result.verified is True


@pytest.mark.parametrize("kind", HUB_TYPES)
def test_models_round_trip_and_build_the_credential(kind: str) -> None:
    document = hub.BUILDERS[kind]()
    subject = parse_credential(document)
    assert type(subject) is MODELS[kind]
    assert subject.to_json() == document["credentialSubject"]
    rebuilt = build_credential(subject, issuer=hub.ISSUER, credential_id=document["id"],
                               valid_from=datetime(2026, 3, 1, tzinfo=UTC))
    assert rebuilt == document


def test_a_batch_event_is_proven_against_the_issued_root() -> None:
    secured = issue_passport_credential(unsigned("CellEventBatchCredential"), CUSTODIAN,
                                        suite=JCS, now=NOW)
    assert isinstance(secured, dict)
    claims = secured["credentialSubject"]
    root = decode_hash(claims["merkleRoot"])
    tree = MerkleTree(hub.EVENT_DIGESTS)
    for index, leaf in enumerate(hub.EVENT_DIGESTS):
        proof = tree.inclusion(index)
        assert proof.tree_size == claims["treeSize"]
        assert proof.verify(leaf, root)
    assert not tree.inclusion(0).verify(hub.EVENT_DIGESTS[1], root)


# --- the passport chain -----------------------------------------------------------------------


def _manufacturing() -> dict[str, Any]:
    document = manufacturing_credential(hub.PACK, CUSTODIAN.controller, rng=random.Random(3),
                                        issued=NOW)
    secured = issue_passport_credential(document, CUSTODIAN, suite=JCS, now=NOW)
    assert isinstance(secured, dict)
    return secured


def _entry(kind: str, passport: Passport, *, key: Any = CUSTODIAN, suite: str = JCS,
           linked: bool = True) -> dict[str, Any] | str:
    """The sample subject of ``kind`` as the next entry: linked to the head unless told not."""
    document = build_credential(subject_of(kind), issuer=key.controller, valid_from=NOW,
                                previous=passport.head if linked else None)
    return issue_passport_credential(document, key, suite=suite, now=NOW)


@pytest.mark.parametrize("suite", [RDFC, JCS])
def test_the_tamper_story_appends_after_manufacturing(suite: str) -> None:
    """Mismatch marker, the batch holding its event, the technician's replacement: each links
    to the head and is issued by the custodian."""
    passport = Passport(hub.PACK)
    passport.append(_manufacturing())
    for kind in ("CellConfigurationCredential", "CellEventBatchCredential",
                 "CellReplacementCredential"):
        head = passport.head
        entry = _entry(kind, passport, suite=suite)
        assert isinstance(entry, dict)
        assert entry["credentialSubject"]["previousCredential"] == head
        assert entry["@context"][-1] == HUB_CONTEXT_V1
        passport.append(entry)
    assert len(passport) == 4
    assert passport.custodian == CUSTODIAN.controller


def test_a_hub_entry_is_appended_as_a_jwt_too() -> None:
    passport = Passport(hub.PACK)
    passport.append(_manufacturing())
    passport.append(_entry("CellEventBatchCredential", passport, suite=JWT))
    assert len(passport) == 2


def test_only_the_custodian_appends_hub_entries() -> None:
    passport = Passport(hub.PACK)
    passport.append(_manufacturing())
    head = passport.head
    with pytest.raises(CustodyViolation):
        passport.append(_entry("CellConfigurationCredential", passport, key=STRANGER))
    assert passport.head == head and len(passport) == 1


def test_a_hub_entry_must_link_to_the_head() -> None:
    passport = Passport(hub.PACK)
    passport.append(_manufacturing())
    with pytest.raises(BrokenLink):
        passport.append(_entry("CellEventBatchCredential", passport, linked=False))
    assert len(passport) == 1


# --- shape violations (refused before signing) -----------------------------------------------


def test_a_missing_merkle_root_is_named() -> None:
    document = unsigned("CellEventBatchCredential")
    del document["credentialSubject"]["merkleRoot"]
    assert "missing" in refused_at(document, "credentialSubject.merkleRoot")


@pytest.mark.parametrize("suite", SUITES)
def test_a_tree_size_of_zero_is_refused(suite: str) -> None:
    document = unsigned("CellEventBatchCredential")
    document["credentialSubject"]["treeSize"] = 0
    assert "too small" in refused_at(document, "credentialSubject.treeSize", suite)


@pytest.mark.parametrize("field", ["oldCellDid", "newCellDid"])
def test_a_cell_did_must_be_a_did_key(field: str) -> None:
    document = unsigned("CellReplacementCredential")
    document["credentialSubject"][field] = "did:web:cells.example:0007"
    assert "expected form" in refused_at(document, f"credentialSubject.{field}")


def test_the_hub_must_be_a_did_key() -> None:
    document = unsigned("CellEventBatchCredential")
    document["credentialSubject"]["hub"] = "did:web:hub.example"
    refused_at(document, "credentialSubject.hub")


@pytest.mark.parametrize("kind", HUB_TYPES)
def test_an_unknown_field_is_refused(kind: str) -> None:
    document = unsigned(kind)
    document["credentialSubject"]["cellTemperatureC"] = "31.5"
    with pytest.raises(UndefinedTerm) as refused:
        issue_passport_credential(document, CUSTODIAN, now=NOW)
    assert "cellTemperatureC" in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("CellConfigurationCredential", "cellConfiguration", "tampered"),
        ("CellEventBatchCredential", "cellConfiguration", "Verified"),
    ],
)
def test_a_wrong_configuration_state_is_refused(kind: str, field: str, value: str) -> None:
    document = unsigned(kind)
    document["credentialSubject"][field] = value
    assert "not an allowed value" in refused_at(document, f"credentialSubject.{field}")


def test_a_wrong_event_kind_is_refused() -> None:
    document = unsigned("CellEventBatchCredential")
    document["credentialSubject"]["eventCounts"][1]["eventKind"] = "overheat"
    message = refused_at(document, "credentialSubject.eventCounts.eventKind")
    assert "'overheat' is not an allowed value" in message


@pytest.mark.parametrize(
    ("kind", "field", "value", "path"),
    [
        # 43 characters, but the last one leaves non-zero spare bits: a second spelling
        ("CellEventBatchCredential", "merkleRoot", hub.ROOT[:-1] + "B", "merkleRoot"),
        ("CellEventBatchCredential", "merkleRoot", hub.ROOT + "=", "merkleRoot"),
        ("CellEventBatchCredential", "treeSize", "six", "treeSize"),
        ("CellEventBatchCredential", "firstEventAt", "2026-03-01T11:00:00Z", "firstEventAt"),
        ("CellEventBatchCredential", "lastEventAt", "2026-03-01", "lastEventAt"),
        ("CellEventBatchCredential", "eventCounts", [{"eventKind": "cell-summary", "count": 0}],
         "eventCounts.count"),
        ("CellReplacementCredential", "position", -1, "position"),
        ("CellReplacementCredential", "newCellDid", hub.OLD_CELL, "oldCellDid"),
        ("CellReplacementCredential", "newCellUid", hub.OLD_UID, "oldCellUid"),
        ("CellReplacementCredential", "technician", "service technician 7", "technician"),
        ("CellReplacementCredential", "technicianCredential", "badge 7",
         "technicianCredential"),
        ("CellReplacementCredential", "replacedAt", "yesterday", "replacedAt"),
        ("CellConfigurationCredential", "observedCellUid", "", "observedCellUid"),
        ("CellConfigurationCredential", "eventId", ..., "eventId"),
        ("CellConfigurationCredential", "observedAt", ..., "observedAt"),
    ],
)
def test_a_broken_field_is_named(kind: str, field: str, value: Any, path: str) -> None:
    document = unsigned(kind)
    if value is ...:
        del document["credentialSubject"][field]
    else:
        document["credentialSubject"][field] = value
    refused_at(document, f"credentialSubject.{path}")


def test_a_credential_id_is_a_technician_credential_too() -> None:
    document = unsigned("CellReplacementCredential")
    document["credentialSubject"]["technicianCredential"] = "urn:uuid:7c3e9b1a-0d2f-4e5a"
    assert validate_shapes(document) == []


def test_a_verified_marker_and_a_batch_without_snapshot_conform() -> None:
    marker = unsigned("CellConfigurationCredential")
    marker["credentialSubject"].update(cellConfiguration="verified", observedCellUid=hub.OLD_UID)
    batch = unsigned("CellEventBatchCredential")
    del batch["credentialSubject"]["cellConfiguration"]
    replacement = unsigned("CellReplacementCredential")
    del replacement["credentialSubject"]["reason"]
    for document in (marker, batch, replacement):
        assert validate_shapes(document) == []
        parse_credential(document)


# --- what only the typed models check ---------------------------------------------------------


def _model_refuses(kind: str, path: str, **changes: Any) -> str:
    document = hub.BUILDERS[kind]()
    document["credentialSubject"].update(changes)
    with pytest.raises(MalformedDocument) as refused:
        parse_credential(document)
    assert refused.value.problem.path == path
    return str(refused.value)


def test_the_counts_must_add_up_to_the_tree_size() -> None:
    message = _model_refuses("CellEventBatchCredential", "credentialSubject", treeSize=7)
    assert "add up to 6, not treeSize 7" in message


def test_a_kind_is_counted_once() -> None:
    counts = [{"eventKind": "cell-summary", "count": 3}, {"eventKind": "cell-summary", "count": 3}]
    message = _model_refuses("CellEventBatchCredential", "credentialSubject", eventCounts=counts)
    assert "cell-summary is counted more than once" in message


def test_the_model_reads_the_root_with_the_merkle_decoder() -> None:
    _model_refuses("CellEventBatchCredential", "credentialSubject.merkleRoot",
                   merkleRoot=hub.ROOT[:-1] + "B")


@pytest.mark.parametrize(
    ("state", "observed"),
    [("unverified", hub.OLD_UID), ("verified", hub.NEW_UID)],
)
def test_the_observation_must_fit_the_configuration_state(state: str, observed: str) -> None:
    _model_refuses("CellConfigurationCredential", "credentialSubject",
                   cellConfiguration=state, observedCellUid=observed)


def test_the_event_kinds_are_those_of_the_contract() -> None:
    assert set(HUB_EVENT_KINDS) == {
        "thermal-excursion", "over-voltage", "under-voltage", "deep-discharge",
        "cell-id-mismatch", "monitor-lost", "cell-summary", "state-of-health", "cell-replaced",
    }
    assert EventCount(event_kind="monitor-lost", count=1).to_json() == {
        "eventKind": "monitor-lost", "count": 1}


def test_the_bridge_builds_subjects_by_python_name() -> None:
    """What the hub bridge writes: models from Python values, JSON from ``to_json``."""
    batch = CellEventBatch(
        id=hub.PACK, hub=hub.HUB, merkle_root=hub.ROOT, tree_size=6,
        first_event_at=datetime(2026, 3, 1, 10, tzinfo=UTC),
        last_event_at=datetime(2026, 3, 1, 10, 15, tzinfo=UTC),
        event_counts=[EventCount(event_kind="cell-summary", count=4),
                      EventCount(event_kind="thermal-excursion", count=1),
                      EventCount(event_kind="cell-id-mismatch", count=1)],
        cell_configuration="unverified",
    )
    assert batch.to_json() == hub.cell_event_batch_subject()
    document = build_credential(batch, issuer=CUSTODIAN.controller, valid_from=NOW)
    assert validate_shapes(document) == []
    untouched = copy.deepcopy(document)
    issue_passport_credential(document, CUSTODIAN, now=NOW)
    assert document == untouched
