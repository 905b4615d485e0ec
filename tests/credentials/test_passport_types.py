"""The typed passport credentials: every type issues and verifies (so every term it uses is
defined), models and JSON round-trip, bad subjects are refused naming the attribute, and the
sample material batches balance the way PASSPORT.md says."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import hub_samples
import pytest
import rfc8785
from pydantic import BaseModel

from connector import samples
from credentials import JCS, RDFC, VerifyOptions, issue_credential, key_from_seed
from credentials import verify_credential as verify
from credentials.errors import MalformedDocument
from credentials.jsonld import expand_strict
from credentials.passport.types import (
    CREDENTIAL_TYPES,
    BatchSubject,
    BatterySubject,
    ElementMass,
    MaterialBatch,
    ParticipantSubject,
    StateOfHealth,
    UnknownCredentialType,
    build_credential,
    parse_credential,
)
from vocab import (
    BATTERY_CONTEXT_V1,
    BATTERY_VOCAB,
    CREDENTIALS_V2,
    HUB_CONTEXT_V1,
    document_loader,
)

KEY = key_from_seed(bytes(range(32)))
ISSUER = KEY.controller
BATTERY = key_from_seed(bytes(range(1, 33))).controller
SECOND_LIFE = key_from_seed(bytes(range(2, 34))).controller
RECYCLER = key_from_seed(bytes(range(3, 35))).controller
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
XSD = "http://www.w3.org/2001/XMLSchema#"


def digest(secured: dict[str, Any]) -> str:
    """PASSPORT.md's digest of a secured credential (multibase, sha2-256 multihash of JCS)."""
    hashed = b"\x12\x20" + hashlib.sha256(rfc8785.dumps(secured)).digest()
    return "u" + base64.urlsafe_b64encode(hashed).rstrip(b"=").decode()


def _chain() -> list[dict[str, Any]]:
    return samples.nmc811_material_chain(ISSUER, rng=random.Random(11), issued=NOW)


def _recycling() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return samples.recycle_battery(BATTERY, ISSUER, rng=random.Random(12), issued=NOW)


def _original_last_entry() -> str:
    soh = samples.state_of_health(BATTERY, ISSUER, rng=random.Random(13), issued=NOW)
    return digest(issue_credential(soh, KEY, suite=JCS, now=NOW))


SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "raw-material-mined": lambda: _chain()[0],
    "raw-material-refined": lambda: _chain()[1],
    "raw-material-sulphate": lambda: samples.raw_material_batch(
        ISSUER, rng=random.Random(1), issued=NOW),
    "material-batch-precursor": lambda: _chain()[-3],
    "material-batch-cam": lambda: _chain()[-1],
    "material-batch-recycled": lambda: samples.recycled_batch(
        ISSUER, element="Co", rng=random.Random(2), issued=NOW),
    "manufacturing": lambda: samples.manufacturing_credential(
        BATTERY, ISSUER, rng=random.Random(3), issued=NOW),
    "manufacturing-from-cam": lambda: samples.manufacturing_credential(
        BATTERY, ISSUER, rng=random.Random(3), issued=NOW, cathode_batch=_chain()[-1]),
    "pack-assembly": lambda: samples.pack_assembly(
        BATTERY, ISSUER, rng=random.Random(4), issued=NOW),
    "vehicle-integration": lambda: samples.vehicle_integration(
        BATTERY, ISSUER, rng=random.Random(5), issued=NOW),
    "state-of-health": lambda: samples.state_of_health(
        BATTERY, ISSUER, cycles=640, rng=random.Random(6), issued=NOW),
    "repair": lambda: samples.repair(BATTERY, ISSUER, rng=random.Random(7), issued=NOW),
    "repurposing": lambda: samples.repurposing(
        SECOND_LIFE, BATTERY, ISSUER, previous=_original_last_entry(), rng=random.Random(8),
        issued=NOW),
    "shipment": lambda: samples.shipment(
        BATTERY, ISSUER, RECYCLER, purpose="Recycling", rng=random.Random(9), issued=NOW),
    "custody-transfer": lambda: samples.custody_transfer(
        BATTERY, ISSUER, RECYCLER, rng=random.Random(10), issued=NOW),
    "recycling-outcome": lambda: _recycling()[0],
    "recycling-output-batch": lambda: _recycling()[1][0],
    "dismantler": lambda: samples.dismantler(
        "did:web:dismantler.example", ISSUER, rng=random.Random(14), issued=NOW),
    "membership": lambda: samples.membership(
        "did:web:oem.example", ISSUER, rng=random.Random(15), issued=NOW),
}


def _hub_sample(kind: str) -> Callable[[], dict[str, Any]]:
    """A cell-level entry of the hub bridge (hub/v1 context), issued by ``ISSUER``."""
    return lambda: {**hub_samples.BUILDERS[kind](), "issuer": ISSUER}


SAMPLES.update({
    "cell-event-batch": _hub_sample("CellEventBatchCredential"),
    "cell-replacement": _hub_sample("CellReplacementCredential"),
    "cell-configuration": _hub_sample("CellConfigurationCredential"),
})
SAMPLE_NAMES = sorted(SAMPLES)


def credential_type(document: dict[str, Any]) -> str:
    return str(document["type"][1])


def test_samples_cover_every_credential_type() -> None:
    assert {credential_type(SAMPLES[name]()) for name in SAMPLE_NAMES} == set(CREDENTIAL_TYPES)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_samples_are_deterministic(name: str) -> None:
    assert SAMPLES[name]() == SAMPLES[name]()


@pytest.mark.parametrize("suite", [RDFC, JCS])
@pytest.mark.parametrize("name", SAMPLE_NAMES)
async def test_every_sample_issues_and_verifies(name: str, suite: str) -> None:
    unsigned = SAMPLES[name]()
    assert unsigned["issuer"] == ISSUER
    secured = json.loads(json.dumps(issue_credential(unsigned, KEY, suite=suite, now=NOW)))
    result = await verify(secured, VerifyOptions(now=NOW))
    assert result.problems == []
    assert result.verified is True


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_expands_with_credentials_v2(name: str) -> None:
    """Strict expansion with credentials v2 first: no protected-term clash, no dropped term."""
    document = SAMPLES[name]()
    assert document["@context"] in ([CREDENTIALS_V2, BATTERY_CONTEXT_V1],
                                    [CREDENTIALS_V2, BATTERY_CONTEXT_V1, HUB_CONTEXT_V1])
    expanded = expand_strict(document)
    subject = expanded[0]["https://www.w3.org/2018/credentials#credentialSubject"][0]
    assert any(key.startswith(BATTERY_VOCAB) for key in subject)


# --- typed reading and round trips -----------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_parse_credential_reads_each_sample(name: str) -> None:
    document = SAMPLES[name]()
    subject = parse_credential(document)
    assert type(subject) is CREDENTIAL_TYPES[credential_type(document)]
    assert subject.credential_type == credential_type(document)
    assert subject.id == document["credentialSubject"]["id"]
    # model → JSON gives back exactly the subject that was read
    assert subject.to_json() == document["credentialSubject"]
    # and JSON → model gives back the same model
    assert type(subject).model_validate(subject.to_json()) == subject


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_parse_credential_reads_a_signed_credential(name: str) -> None:
    secured = issue_credential(SAMPLES[name](), KEY, suite=JCS, now=NOW)
    assert parse_credential(secured).to_json() == secured["credentialSubject"]


def test_build_credential_round_trip() -> None:
    document = samples.state_of_health(BATTERY, ISSUER, rng=random.Random(1), issued=NOW)
    subject = parse_credential(document)
    rebuilt = build_credential(subject, issuer=ISSUER, valid_from=NOW, credential_id=document["id"])
    assert rebuilt == document
    assert rebuilt["type"] == ["VerifiableCredential", "StateOfHealthCredential"]
    assert rebuilt["validFrom"] == "2026-03-01T12:00:00Z"


def test_models_are_built_by_python_name_and_serialise_decimals_as_strings() -> None:
    subject = StateOfHealth(
        id=BATTERY,
        measurement_time=NOW,
        state_of_health_pct=Decimal("91.50"),
        capacity_fade_pct=Decimal("8.5"),
        remaining_capacity_ah=Decimal("0.0000001"),
        full_cycle_count=412,
        thermal_event_count=0,
        deep_discharge_count=2,
        overcharge_count=0,
    )
    out = subject.to_json()
    assert out["stateOfHealthPct"] == "91.50"
    assert out["remainingCapacityAh"] == "0.0000001"  # never exponent notation
    assert out["measurementTime"] == "2026-03-01T12:00:00Z"
    assert out["fullCycleCount"] == 412
    assert "remainingUsefulLifeCycles" not in out
    assert subject.state_of_health_pct == Decimal("91.50")


def _aliases(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    if model in seen:
        return set()
    seen.add(model)
    found: set[str] = set()
    for name, field in model.model_fields.items():
        found.add(field.alias or name)
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found |= _aliases(annotation, seen)
            stack.extend(get_args(annotation))
    return found


def _battery_context() -> dict[str, Any]:
    context: dict[str, Any] = document_loader(BATTERY_CONTEXT_V1)["document"]["@context"]
    return context


def test_every_json_key_is_a_term_of_the_context() -> None:
    context = {**_battery_context(), **document_loader(HUB_CONTEXT_V1)["document"]["@context"]}
    keys: set[str] = set()
    seen: set[type[BaseModel]] = set()
    for model in CREDENTIAL_TYPES.values():
        keys |= _aliases(model, seen)
        assert model.subject_type in context
        assert model.credential_type in context
    assert keys - {"id", "type"} <= set(context)
    assert not {"stateOfHealthPct", "previousCredential", "materialInput"} - keys


# --- the context ------------------------------------------------------------------------------


def test_context_is_protected_and_drops_input_batch() -> None:
    context = _battery_context()
    assert context["@protected"] is True
    assert context["bp"] == BATTERY_VOCAB
    assert context["xsd"] == XSD
    assert "inputBatch" not in context
    for term in ("Original", "Repurposed", "Reused", "Waste", "Recycled", "Repair",
                 "Repurposing", "Recycling"):
        assert context[term] == f"bp:{term}"
    assert context["batteryStatus"]["@type"] == "@vocab"
    assert context["shipmentPurpose"]["@type"] == "@vocab"
    assert context["outputBatch"] == {"@id": "bp:outputBatch", "@type": "@id",
                                      "@container": "@set"}
    assert context["component"]["@container"] == "@set"
    assert context["stateOfHealthPct"]["@type"] == "xsd:decimal"
    assert context["fullCycleCount"]["@type"] == "xsd:integer"
    assert context["measurementTime"]["@type"] == "xsd:dateTime"
    assert context["repairDate"]["@type"] == "xsd:date"


def test_context_redefines_no_credentials_v2_term() -> None:
    v2 = document_loader(CREDENTIALS_V2)["document"]["@context"]
    taken = set(v2)
    for definition in v2.values():
        if isinstance(definition, dict) and isinstance(definition.get("@context"), dict):
            taken |= set(definition["@context"])
    ours = {k for k in _battery_context() if not k.startswith("@")}
    assert not ours & taken


def _subject_of(document: dict[str, Any]) -> dict[str, Any]:
    expanded = expand_strict(document)
    subject: dict[str, Any] = expanded[0]["https://www.w3.org/2018/credentials#credentialSubject"][0]
    return subject


def test_vocab_values_expand_to_terms() -> None:
    shipped = _subject_of(samples.shipment(BATTERY, ISSUER, RECYCLER, purpose="Repair",
                                           rng=random.Random(1), issued=NOW))
    assert shipped[BATTERY_VOCAB + "shipmentPurpose"] == [{"@id": BATTERY_VOCAB + "Repair"}]
    assert shipped[BATTERY_VOCAB + "consignee"] == [{"@id": RECYCLER}]
    outcome, _ = samples.recycle_battery(BATTERY, ISSUER, rng=random.Random(1), issued=NOW)
    recycled = _subject_of(outcome)
    assert recycled[BATTERY_VOCAB + "batteryStatus"] == [{"@id": BATTERY_VOCAB + "Recycled"}]
    assert all("@id" in ref for ref in recycled[BATTERY_VOCAB + "outputBatch"])
    material = recycled[BATTERY_VOCAB + "recoveredMaterial"][0]
    assert material[BATTERY_VOCAB + "massKg"][0]["@type"] == XSD + "decimal"


def test_typed_literals_expand_with_their_datatypes() -> None:
    subject = _subject_of(samples.state_of_health(BATTERY, ISSUER, rng=random.Random(1),
                                                  issued=NOW))
    assert subject[BATTERY_VOCAB + "stateOfHealthPct"][0]["@type"] == XSD + "decimal"
    assert subject[BATTERY_VOCAB + "fullCycleCount"][0]["@type"] == XSD + "integer"
    assert subject[BATTERY_VOCAB + "measurementTime"][0]["@type"] == XSD + "dateTime"


# --- bad inputs -------------------------------------------------------------------------------


def _soh() -> dict[str, Any]:
    return samples.state_of_health(BATTERY, ISSUER, rng=random.Random(1), issued=NOW)


def _refused(document: dict[str, Any]) -> MalformedDocument:
    with pytest.raises(MalformedDocument) as caught:
        parse_credential(document)
    return caught.value


def test_unknown_credential_type() -> None:
    document = _soh()
    document["type"] = ["VerifiableCredential", "StateOfHealthCredentail"]
    error = _refused(document)
    assert isinstance(error, UnknownCredentialType)
    assert error.problem.path == "type"


def test_two_passport_types_are_ambiguous() -> None:
    document = _soh()
    document["type"] = ["VerifiableCredential", "StateOfHealthCredential", "RepairCredential"]
    assert isinstance(_refused(document), UnknownCredentialType)


def test_percentage_above_100() -> None:
    document = _soh()
    document["credentialSubject"]["stateOfHealthPct"] = "120"
    error = _refused(document)
    assert error.problem.path == "credentialSubject.stateOfHealthPct"
    assert "percentage" in str(error)


def test_missing_required_field() -> None:
    document = _soh()
    del document["credentialSubject"]["fullCycleCount"]
    assert _refused(document).problem.path == "credentialSubject.fullCycleCount"


def test_transfer_to_a_non_did() -> None:
    document = samples.custody_transfer(BATTERY, ISSUER, RECYCLER, rng=random.Random(1),
                                        issued=NOW)
    document["credentialSubject"]["transferredTo"] = "https://recycler.example"
    assert _refused(document).problem.path == "credentialSubject.transferredTo"


@pytest.mark.parametrize(("field", "value"), [
    ("stateOfHealthPct", 91.5),  # a JSON number where an xsd:decimal string belongs
    ("stateOfHealthPct", "9.15e1"),  # not in the xsd:decimal lexical space
    ("fullCycleCount", "640"),
    ("fullCycleCount", -1),
    ("fullCycleCount", True),
    ("measurementTime", "2026-03-01T10:00:00"),  # no time zone
    ("measurementTime", "2026-03-01"),
    ("previousCredential", "uEiBnot-a-digest"),
    ("id", "urn:uuid:2b1c8f0e-3c1e-4a57-9c1a-0d4e8f5b6a7c"),  # a battery is a DID
    ("stateOfHealth", "91.5"),  # not a term
    ("state_of_health_pct", "91.5"),  # Python names are not JSON keys
])
def test_bad_state_of_health_values(field: str, value: Any) -> None:
    document = _soh()
    document["credentialSubject"][field] = value
    assert _refused(document).problem.path == f"credentialSubject.{field}"


def test_nested_path_is_named() -> None:
    document = SAMPLES["material-batch-cam"]()
    document["credentialSubject"]["elementMass"][1]["massKg"] = "-1.0"
    assert _refused(document).problem.path == "credentialSubject.elementMass[1].massKg"


@pytest.mark.parametrize(("field", "value"), [
    ("countryOfOrigin", "UK"),  # not an ISO 3166-1 code (GB is)
    ("processType", "smelting"),
    ("batchMassKg", "0"),
])
def test_bad_batch_values(field: str, value: Any) -> None:
    document = SAMPLES["raw-material-sulphate"]()
    document["credentialSubject"][field] = value
    assert _refused(document).problem.path == f"credentialSubject.{field}"


def test_bad_bpnl() -> None:
    document = SAMPLES["membership"]()
    document["credentialSubject"]["holderIdentifier"] = "BPNL00000001"
    assert _refused(document).problem.path == "credentialSubject.holderIdentifier"


def test_element_masses_cannot_exceed_the_batch() -> None:
    document = SAMPLES["raw-material-sulphate"]()
    document["credentialSubject"]["batchMassKg"] = "1.0"
    assert _refused(document).problem.path == "credentialSubject"


def test_recycling_output_must_be_all_recycled() -> None:
    document = SAMPLES["material-batch-recycled"]()
    del document["credentialSubject"]["elementMass"][0]["recycledMassKg"]
    assert "recycled" in str(_refused(document))


def test_not_a_passport_credential() -> None:
    document = _soh()
    document["@context"] = [CREDENTIALS_V2]
    assert _refused(document).problem.path == "@context"
    document = _soh()
    document["credentialSubject"] = [document["credentialSubject"]]
    assert _refused(document).problem.path == "credentialSubject"


# --- previousCredential ----------------------------------------------------------------------


def test_previous_credential_links_battery_entries() -> None:
    first = issue_credential(SAMPLES["manufacturing"](), KEY, suite=JCS, now=NOW)
    link = digest(first)
    assert link.startswith("uEi") and len(link) == 47
    subject = parse_credential(_soh())
    second = build_credential(subject, issuer=ISSUER, valid_from=NOW, previous=link)
    assert second["credentialSubject"]["previousCredential"] == link
    parsed = parse_credential(second)
    assert isinstance(parsed, BatterySubject)
    assert parsed.previous_credential == link


def test_previous_credential_must_be_a_digest() -> None:
    subject = parse_credential(_soh())
    with pytest.raises(MalformedDocument) as caught:
        build_credential(subject, issuer=ISSUER, previous="sha256:abc")
    assert caught.value.problem.path == "credentialSubject.previousCredential"


@pytest.mark.parametrize("name", ["material-batch-cam", "membership"])
def test_only_passport_entries_link(name: str) -> None:
    subject = parse_credential(SAMPLES[name]())
    assert isinstance(subject, BatchSubject | ParticipantSubject)
    with pytest.raises(MalformedDocument):
        build_credential(subject, issuer=ISSUER, previous=digest({"any": "thing"}))
    document = SAMPLES[name]()
    document["credentialSubject"]["previousCredential"] = digest({"any": "thing"})
    assert _refused(document).problem.path == "credentialSubject.previousCredential"


def test_repurposing_requires_the_link_and_a_new_did() -> None:
    document = SAMPLES["repurposing"]()
    del document["credentialSubject"]["previousCredential"]
    assert _refused(document).problem.path == "credentialSubject.previousCredential"
    document = SAMPLES["repurposing"]()
    document["credentialSubject"]["originalBattery"] = document["credentialSubject"]["id"]
    assert _refused(document).problem.path == "credentialSubject"


# --- sample masses balance --------------------------------------------------------------------


def test_material_chain_balances() -> None:
    """PASSPORT.md mass balance on the sample chain: per process, total and per element;
    no batch claimed beyond its mass; recycled shares propagate."""
    chain = [parse_credential(doc) for doc in _chain()]
    batches = {b.id: b for b in chain if isinstance(b, BatchSubject)}
    claimed: dict[str, Decimal] = {}
    for output in batches.values():
        if not output.input:
            continue
        used = sum((i.mass_kg for i in output.input), Decimal(0))
        keep = 1 - output.loss_tolerance_pct / 100
        assert used * keep <= output.batch_mass_kg <= used
        incoming: dict[str, Decimal] = {}
        for edge in output.input:
            source = batches[edge.batch]
            claimed[edge.batch] = claimed.get(edge.batch, Decimal(0)) + edge.mass_kg
            for element in source.element_mass:
                share = edge.mass_kg / source.batch_mass_kg
                incoming[element.element] = (incoming.get(element.element, Decimal(0))
                                             + element.mass_kg * share)
        for element in output.element_mass:
            assert incoming[element.element] * keep <= element.mass_kg
            assert element.mass_kg <= incoming[element.element]
    for batch_id, kg in claimed.items():
        assert kg <= batches[batch_id].batch_mass_kg
    cam = chain[-1]
    assert isinstance(cam, MaterialBatch) and cam.process_type == "cathode-synthesis"
    shares = {e.element: e.mass_kg / cam.batch_mass_kg for e in cam.element_mass}
    # LiNi0.8Mn0.1Co0.1O2 by mass: Li 7.1, Ni 48.3, Mn 5.6, Co 6.1 %
    for element, expected in {"Li": 0.0713, "Ni": 0.4827, "Mn": 0.0565, "Co": 0.0606}.items():
        assert abs(float(shares[element]) - expected) < 0.002
    assert all(e.recycled_kg > 0 for e in cam.element_mass if e.element != "Mn")


def test_battery_from_cam_claims_its_recycled_shares() -> None:
    cam = _chain()[-1]
    battery = parse_credential(samples.manufacturing_credential(
        BATTERY, ISSUER, rng=random.Random(3), issued=NOW, cathode_batch=cam))
    cam_subject = parse_credential(cam)
    assert battery.to_json()["materialInput"][0]["batch"] == cam_subject.id
    assert battery.to_json()["recycledContentNickelPct"] == str(
        samples.recycled_content_pct(cam)["Ni"])


def test_recycling_outcome_matches_its_output_batches() -> None:
    outcome, outputs = _recycling()
    parsed = parse_credential(outcome)
    batches = [parse_credential(doc) for doc in outputs]
    assert parsed.to_json()["outputBatch"] == [b.id for b in batches]
    recovered = {m["element"]: Decimal(m["massKg"])
                 for m in parsed.to_json()["recoveredMaterial"]}
    for batch in batches:
        assert isinstance(batch, MaterialBatch) and batch.process_type == "recycling"
        assert batch.input is None
        for element in batch.element_mass:
            assert element.recycled_kg == element.mass_kg == recovered[element.element]


def test_manufacturing_sample_keeps_its_shape() -> None:
    subject = SAMPLES["manufacturing"]()["credentialSubject"]
    assert len(subject) == 37  # id, type and 35 fields, as before materialInput
    assert "inputBatch" not in subject
    assert subject["batteryStatus"] == "Original"
    (material,) = subject["materialInput"]
    assert material["batch"].startswith("urn:uuid:")
    assert 60 * 1.3 <= float(material["massKg"]) <= 85 * 1.6


def test_element_mass_default_recycled_is_zero() -> None:
    element = ElementMass.model_validate({"element": "Ni", "massKg": "10.0"})
    assert element.recycled_kg == 0
    assert element.to_json() == {"element": "Ni", "massKg": "10.0"}
    assert copy.deepcopy(element) == element
