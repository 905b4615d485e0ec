"""SHACL shapes of the passport credentials: what passes, what fails, and how a failure reads.

Credentials are built as plain JSON with the published contexts (VCDM 2.0 + battery v1), one
valid example per credential type of ``vocab/PASSPORT.md``; each failure test breaks one field
and checks that the violation names it (``credentialSubject.<field>``) in words.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import re
import statistics
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import hub_samples
import pytest
from rdflib import Graph
from rdflib.namespace import SH

from credentials import key_from_seed
from credentials.errors import MalformedDocument, UndefinedTerm
from credentials.passport.shapes import (
    ShapeViolation,
    Violation,
    check_shapes,
    validate_shapes,
)
from vocab import BATTERY_CONTEXT_V1, BATTERY_VOCAB, CREDENTIALS_V2

#: The contract; a document of the source tree, not package data.
PASSPORT_MD = Path(__file__).resolve().parents[2] / "vocab" / "PASSPORT.md"
CONTEXT = [CREDENTIALS_V2, BATTERY_CONTEXT_V1]
ISSUER = "did:web:oem.example"
BATTERY = key_from_seed(bytes([2] * 32)).controller
NEW_BATTERY = key_from_seed(bytes([4] * 32)).controller
MODULE_A = key_from_seed(bytes([5] * 32)).controller
MODULE_B = key_from_seed(bytes([6] * 32)).controller
RECYCLER = "did:web:recycler.example"
BATCH = "urn:uuid:6f1c2b0e-8a43-4c1e-9d55-0f2b3c4d5e6f"
MINE_BATCH = "urn:uuid:1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
OUTPUT_BATCH = "urn:uuid:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def digest(data: bytes) -> str:
    """A PASSPORT.md digest: multibase ``u`` + base64url(0x12 0x20 ‖ sha256)."""
    multihash = bytes([0x12, 0x20]) + hashlib.sha256(data).digest()
    return "u" + base64.urlsafe_b64encode(multihash).rstrip(b"=").decode("ascii")


PREVIOUS = digest(b"the entry before")


def credential(kind: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": list(CONTEXT),
        "id": "urn:uuid:0d8c2f4e-7b1a-4c3d-9e5f-6a7b8c9d0e1f",
        "type": ["VerifiableCredential", kind],
        "issuer": ISSUER,
        "validFrom": "2026-03-01T00:00:00Z",
        "credentialSubject": subject,
    }


def element_masses() -> list[dict[str, str]]:
    return [
        {"element": "Li", "massKg": "71.0", "recycledMassKg": "4.0"},
        {"element": "Ni", "massKg": "480.0"},
        {"element": "Co", "massKg": "61.0", "recycledMassKg": "10.5"},
    ]


def raw_material_origin() -> dict[str, Any]:
    return credential("RawMaterialOriginCredential", {
        "id": MINE_BATCH,
        "type": "MaterialBatch",
        "material": "spodumene concentrate",
        "processType": "mining",
        "batchMassKg": "20000.0",
        "elementMass": [{"element": "Li", "massKg": "1200.0"}],
        "countryOfOrigin": "AU",
        "productionSite": "Greenbushes mine",
        "certification": ["IRMA 75"],
    })


def material_batch() -> dict[str, Any]:
    return credential("MaterialBatchCredential", {
        "id": BATCH,
        "type": "MaterialBatch",
        "material": "NMC811 cathode active material",
        "processType": "cathode-synthesis",
        "batchMassKg": "1000.0",
        "elementMass": element_masses(),
        "input": [{"batch": MINE_BATCH, "massKg": "850.0"}],
        "productionSite": "BPNA000000000042",
        "countryOfOrigin": "PL",
        "processLossTolerancePct": "5",
    })


def battery_manufacturing() -> dict[str, Any]:
    return credential("BatteryManufacturingCredential", {
        "id": BATTERY,
        "type": "Battery",
        "passportIdentifier": "urn:uuid:3c9a8f0e-2d4b-4e6f-8a1c-5b7d9e0f1a2b",
        "batteryIdentifier": "0AXPEA1TRC0001R5F0000123",
        "batteryCategory": "bp:ElectricVehicleBattery",
        "batteryModel": "NMC811-96S-75",
        "batteryStatus": "Original",
        "manufacturerIdentification": "BPNL000000000001",
        "manufacturerName": "Cellforge Europe GmbH",
        "manufacturingFacility": "BPNA000000000001",
        "manufacturingCountry": "DE",
        "manufacturingDate": "2026-02-01",
        "batteryChemistry": "NMC811",
        "cathodeActiveMaterial": "LiNi0.8Mn0.1Co0.1O2",
        "anodeActiveMaterial": "graphite",
        "cellFormat": "prismatic",
        "cellCount": 96,
        "moduleCount": 8,
        "ratedCapacityAh": "214.0",
        "ratedEnergyKWh": "75.0",
        "nominalVoltageV": "350.4",
        "minimumVoltageV": "240.0",
        "maximumVoltageV": "403.2",
        "batteryMassKg": "480.5",
        "lengthMm": "2100",
        "widthMm": "1400",
        "heightMm": "130",
        "operatingTemperatureMinC": "-30",
        "operatingTemperatureMaxC": "55",
        "expectedLifetimeCycles": 1500,
        "warrantyPeriodYears": 8,
        "carbonFootprintKgCO2ePerKWh": "0.170",
        "carbonFootprintPerformanceClass": "B",
        "recycledContentCobaltPct": "16.0",
        "recycledContentLithiumPct": "6.0",
        "recycledContentNickelPct": "6.0",
        "materialInput": [{"batch": BATCH, "massKg": "140.0"}],
    })


def pack_assembly() -> dict[str, Any]:
    return credential("PackAssemblyCredential", {
        "id": BATTERY,
        "type": "Battery",
        "component": [MODULE_A, MODULE_B],
        "assemblyDate": "2026-02-10",
        "assemblyFacility": "BPNA000000000002",
        "previousCredential": PREVIOUS,
    })


def vehicle_integration() -> dict[str, Any]:
    return credential("VehicleIntegrationCredential", {
        "id": BATTERY,
        "type": "Battery",
        "vehicleIdentificationNumber": "WVWZZZE1ZPP000123",
        "vehicleModel": "ID.7",
        "vehicleManufacturer": "Volkswagen AG",
        "integrationDate": "2026-02-20",
        "previousCredential": PREVIOUS,
    })


def state_of_health() -> dict[str, Any]:
    return credential("StateOfHealthCredential", {
        "id": BATTERY,
        "type": "Battery",
        "measurementTime": "2028-06-01T08:30:00Z",
        "stateOfHealthPct": "91.5",
        "capacityFadePct": "8.5",
        "remainingCapacityAh": "195.8",
        "fullCycleCount": 240,
        "thermalEventCount": 0,
        "deepDischargeCount": 1,
        "overchargeCount": 0,
        "remainingUsefulLifeCycles": 1260,
        "previousCredential": PREVIOUS,
    })


def repair() -> dict[str, Any]:
    return credential("RepairCredential", {
        "id": BATTERY,
        "type": "Battery",
        "repairDate": "2029-01-15",
        "replacement": [{
            "removedComponent": MODULE_A,
            "installedComponent": key_from_seed(bytes([7] * 32)).controller,
            "reason": "cell imbalance in module 3",
        }],
        "previousCredential": PREVIOUS,
    })


def repurposing() -> dict[str, Any]:
    return credential("RepurposingCredential", {
        "id": NEW_BATTERY,
        "type": "Battery",
        "originalBattery": BATTERY,
        "repurposingDate": "2034-05-01",
        "newApplication": "stationary energy storage",
        "batteryStatus": "Repurposed",
        "previousCredential": PREVIOUS,
    })


def shipment() -> dict[str, Any]:
    return credential("ShipmentCredential", {
        "id": BATTERY,
        "type": "Battery",
        "shipmentIdentifier": "CMR-2034-000812",
        "consignor": ISSUER,
        "consignee": RECYCLER,
        "shipmentDate": "2034-04-02",
        "shipmentPurpose": "Recycling",
        "destinationCountry": "BE",
        "previousCredential": PREVIOUS,
    })


def custody_transfer() -> dict[str, Any]:
    return credential("CustodyTransferCredential", {
        "id": BATTERY,
        "type": "Battery",
        "transferredTo": RECYCLER,
        "transferDate": "2034-04-05",
        "previousCredential": PREVIOUS,
    })


def recycling_outcome() -> dict[str, Any]:
    return credential("RecyclingOutcomeCredential", {
        "id": BATTERY,
        "type": "Battery",
        "recyclingDate": "2034-06-01",
        "recyclingFacility": "BPNA000000000099",
        "recoveredMaterial": [
            {"element": "Co", "massKg": "57.3", "recoveryRatePct": "94.0"},
            {"element": "Li", "massKg": "56.8", "recoveryRatePct": "80.0"},
        ],
        "outputBatch": [OUTPUT_BATCH],
        "batteryStatus": "Recycled",
        "previousCredential": PREVIOUS,
    })


def dismantler() -> dict[str, Any]:
    return credential("DismantlerCredential", {
        "id": RECYCLER,
        "type": "Participant",
        "holderIdentifier": "BPNL00000003CRHK",
        "activityType": ["vehicleDismantle", "batteryRecycling"],
        "allowedVehicleBrands": ["Volkswagen", "Audi"],
    })


def membership() -> dict[str, Any]:
    return credential("MembershipCredential", {
        "id": RECYCLER,
        "type": "Participant",
        "holderIdentifier": "BPNL00000003CRHK",
        "memberOf": "Catena-X",
    })


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "RawMaterialOriginCredential": raw_material_origin,
    "MaterialBatchCredential": material_batch,
    "BatteryManufacturingCredential": battery_manufacturing,
    "PackAssemblyCredential": pack_assembly,
    "VehicleIntegrationCredential": vehicle_integration,
    "StateOfHealthCredential": state_of_health,
    "RepairCredential": repair,
    "RepurposingCredential": repurposing,
    "ShipmentCredential": shipment,
    "CustodyTransferCredential": custody_transfer,
    "RecyclingOutcomeCredential": recycling_outcome,
    "DismantlerCredential": dismantler,
    "MembershipCredential": membership,
    **hub_samples.BUILDERS,  # the hub bridge's cell-level entries (hub/v1 context)
}


def with_subject(build: Callable[[], dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A valid credential with subject fields changed (a value of ``...`` removes the field)."""
    doc = build()
    for name, value in changes.items():
        if value is ...:
            del doc["credentialSubject"][name]
        else:
            doc["credentialSubject"][name] = value
    return doc


def violations_at(doc: dict[str, Any], path: str) -> list[str]:
    found = validate_shapes(doc)
    assert found, "expected a violation"
    messages = [v.message for v in found if v.path == path]
    assert messages, f"no violation at {path}: {found}"
    return messages


def passport_credential_types() -> set[str]:
    """The credential types of PASSPORT.md's table (first column)."""
    text = PASSPORT_MD.read_text("utf-8")
    return set(re.findall(r"^\| `(\w+Credential)` \|", text, flags=re.MULTILINE))


# --- valid credentials ------------------------------------------------------------------------


def test_every_credential_type_of_the_contract_has_a_builder_and_a_shape() -> None:
    shapes = Graph().parse(
        data=resources.files("vocab").joinpath("shapes/battery-passport-shapes.ttl")
        .read_text("utf-8"),
        format="turtle",
    )
    targeted = {str(t).removeprefix(BATTERY_VOCAB) for t in shapes.objects(None, SH.targetClass)}
    assert passport_credential_types() == set(BUILDERS) == targeted


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_a_valid_credential_of_each_type_conforms(kind: str) -> None:
    doc = BUILDERS[kind]()
    assert validate_shapes(doc) == []
    check_shapes(doc)


def test_the_sample_manufacturing_credential_conforms() -> None:
    """``connector/samples.py`` is what the demo issues; once it uses ``materialInput`` (not the
    retired ``inputBatch``) it must pass the shapes as it is."""
    import random

    from connector.samples import manufacturing_credential

    doc = manufacturing_credential(BATTERY, ISSUER, rng=random.Random(7))
    subject = doc["credentialSubject"]
    if "inputBatch" in subject:  # the sample predates materialInput: adapt it, then check
        subject["materialInput"] = [{"batch": b, "massKg": "1.0"} for b in subject["inputBatch"]]
        del subject["inputBatch"]
    assert validate_shapes(doc) == []


def test_optional_fields_may_be_left_out() -> None:
    doc = with_subject(state_of_health, remainingUsefulLifeCycles=..., previousCredential=...)
    assert validate_shapes(doc) == []
    doc = with_subject(material_batch, input=..., countryOfOrigin=..., processLossTolerancePct=...)
    assert validate_shapes(doc) == []


def test_counts_may_be_json_integers_or_integer_strings() -> None:
    assert validate_shapes(with_subject(state_of_health, fullCycleCount="240")) == []


def test_every_digest_prefix_is_accepted() -> None:
    """PASSPORT.md says digests start ``uEiB``; the fourth character carries two bits of the
    hash, so it is A, B, C or D. All four must pass."""
    seen: dict[str, str] = {}
    counter = 0
    while len(seen) < 4:
        value = digest(counter.to_bytes(4, "big"))
        seen.setdefault(value[3], value)
        counter += 1
    assert sorted(seen) == ["A", "B", "C", "D"]
    for value in seen.values():
        assert len(value) == 47
        assert validate_shapes(with_subject(state_of_health, previousCredential=value)) == []


def test_the_proof_is_not_part_of_the_check() -> None:
    doc = state_of_health()
    doc["proof"] = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022"}
    assert validate_shapes(doc) == []


# --- failures name the attribute ----------------------------------------------------------------


def test_a_missing_required_field_is_named() -> None:
    doc = with_subject(state_of_health, stateOfHealthPct=...)
    with pytest.raises(ShapeViolation) as caught:
        check_shapes(doc)
    error = caught.value
    assert isinstance(error, MalformedDocument)
    assert error.problem.path == "credentialSubject.stateOfHealthPct"
    assert "credentialSubject.stateOfHealthPct" in str(error)
    assert error.violations == [
        Violation(
            "credentialSubject.stateOfHealthPct",
            "missing. State of health (stateOfHealthPct) is required: a percentage from 0 to "
            '100, written as a decimal string such as "87.5".',
        )
    ]


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (state_of_health, "stateOfHealthPct", "120"),
        (state_of_health, "capacityFadePct", "-0.5"),
        (battery_manufacturing, "recycledContentCobaltPct", "100.01"),
        (recycling_outcome, "recoveredMaterial", [
            {"element": "Co", "massKg": "1.0", "recoveryRatePct": "120"}]),
    ],
)
def test_a_percentage_outside_0_to_100_fails(build: Any, field: str, value: Any) -> None:
    doc = with_subject(build, **{field: value})
    path = f"credentialSubject.{field}"
    if field == "recoveredMaterial":
        path += ".recoveryRatePct"
    (message,) = violations_at(doc, path)
    assert "too " in message
    assert "percentage from 0 to 100" in message


@pytest.mark.parametrize(
    ("build", "field", "value", "words"),
    [
        (state_of_health, "stateOfHealthPct", "ninety", "State of health"),
        (state_of_health, "fullCycleCount", "twelve", "Full cycle count"),
        (state_of_health, "fullCycleCount", "12.5", "Full cycle count"),
        (state_of_health, "measurementTime", "yesterday", "Measurement time"),
        (battery_manufacturing, "manufacturingDate", "2026-02-30", "Manufacturing date"),
        (battery_manufacturing, "batteryMassKg", "NaN kg", "Battery mass"),
        (battery_manufacturing, "cellCount", "96 cells", "Cell count"),
        # rdflib would read these as decimals / a dateTime; XSD (and other peers) would not.
        (state_of_health, "stateOfHealthPct", "NaN", "State of health"),
        (state_of_health, "stateOfHealthPct", "1e2", "State of health"),
        (state_of_health, "stateOfHealthPct", 91.5, "JSON number"),
        (state_of_health, "measurementTime", "2028-06-01", "Measurement time"),
        (battery_manufacturing, "operatingTemperatureMinC", "-INF", "Minimum operating"),
    ],
)
def test_a_mistyped_value_fails_once(build: Any, field: str, value: Any, words: str) -> None:
    """A value of the wrong datatype is reported as such, and only once: its range check fails
    too, but saying so would hide the real problem."""
    (message,) = violations_at(with_subject(build, **{field: value}), f"credentialSubject.{field}")
    assert "wrong type or form" in message
    assert words in message


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (battery_manufacturing, "manufacturerIdentification", "BPN-0001"),
        (battery_manufacturing, "manufacturingFacility", "Plant 7"),
        (state_of_health, "previousCredential", "uEiBnot-a-digest"),
        (state_of_health, "previousCredential", "zQmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"),
        (vehicle_integration, "vehicleIdentificationNumber", "WVWZZZE1ZPP00012O"),
        (membership, "holderIdentifier", "bpnl00000003crhk"),
        (battery_manufacturing, "passportIdentifier", "passport-1"),
    ],
)
def test_a_wrong_pattern_fails(build: Any, field: str, value: str) -> None:
    (message,) = violations_at(with_subject(build, **{field: value}), f"credentialSubject.{field}")
    assert "does not have the expected form" in message
    assert f"({field})" in message


@pytest.mark.parametrize("value", ["Germany", "de", "UK", "XX"])
def test_a_country_must_be_an_assigned_iso_code(value: str) -> None:
    doc = with_subject(raw_material_origin, countryOfOrigin=value)
    (message,) = violations_at(doc, "credentialSubject.countryOfOrigin")
    assert "not an allowed value" in message
    assert "Country of origin (countryOfOrigin)" in message


def test_a_nested_entry_names_its_field_and_entry() -> None:
    masses = element_masses()
    del masses[2]["massKg"]
    masses[0]["recycledMassKg"] = "80.0"  # more than its massKg of 71.0
    found = validate_shapes(with_subject(material_batch, elementMass=masses))
    assert {v.path for v in found} == {
        "credentialSubject.elementMass.massKg",
        "credentialSubject.elementMass.recycledMassKg",
    }
    by_path = {v.path: v.message for v in found}
    assert "missing (in the entry with element 'Co')" in by_path[
        "credentialSubject.elementMass.massKg"]
    assert "(in the entry with element 'Li')" in by_path[
        "credentialSubject.elementMass.recycledMassKg"]


def test_a_required_list_must_not_be_empty() -> None:
    found = validate_shapes(with_subject(battery_manufacturing, materialInput=[]))
    assert [v.path for v in found] == ["credentialSubject.materialInput"]


def test_a_reference_must_be_a_did() -> None:
    doc = with_subject(custody_transfer, transferredTo="https://recycler.example/")
    (message,) = violations_at(doc, "credentialSubject.transferredTo")
    assert "Transferred to (transferredTo)" in message


def test_a_nested_reference_must_be_an_id_not_text() -> None:
    doc = with_subject(battery_manufacturing, materialInput=[{"massKg": "1.0"}])
    assert [v.path for v in validate_shapes(doc)] == ["credentialSubject.materialInput.batch"]


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (repurposing, "batteryStatus", "Original"),
        (recycling_outcome, "batteryStatus", "Waste"),
        (shipment, "shipmentPurpose", "Recycled"),
        (raw_material_origin, "processType", "cathode-synthesis"),
        (battery_manufacturing, "batteryCategory", "bp:ToyBattery"),
    ],
)
def test_a_value_outside_its_list_fails(build: Any, field: str, value: str) -> None:
    violations_at(with_subject(build, **{field: value}), f"credentialSubject.{field}")


def test_voltages_must_be_ordered() -> None:
    doc = with_subject(battery_manufacturing, minimumVoltageV="360.0")
    (message,) = violations_at(doc, "credentialSubject.minimumVoltageV")
    assert "nominal voltage" in message


def test_a_single_valued_field_given_twice_fails() -> None:
    doc = with_subject(state_of_health, stateOfHealthPct=["91.5", "92.0"])
    (message,) = violations_at(doc, "credentialSubject.stateOfHealthPct")
    assert message.startswith("given more than once")


def test_the_subject_must_have_the_type_and_id_of_the_credential_type() -> None:
    doc = with_subject(material_batch, id=BATTERY, type="Battery")
    messages = violations_at(doc, "credentialSubject")
    assert any("of type MaterialBatch" in m for m in messages)
    doc = with_subject(state_of_health, id="did:web:not-a-battery.example")
    (message,) = violations_at(doc, "credentialSubject")
    assert "did:key" in message


def test_every_violation_is_reported() -> None:
    doc = with_subject(
        state_of_health,
        stateOfHealthPct="120",
        fullCycleCount=-1,
        measurementTime=...,
        previousCredential="not a digest",
    )
    with pytest.raises(ShapeViolation) as caught:
        check_shapes(doc)
    paths = [path for path, _ in caught.value.violations]
    assert paths == sorted(
        f"credentialSubject.{f}"
        for f in ("stateOfHealthPct", "fullCycleCount", "measurementTime", "previousCredential")
    )
    assert caught.value.problem.path == paths[0]
    for path in paths:
        assert path in str(caught.value)


# --- what is not a passport credential ---------------------------------------------------------


def test_a_credential_type_without_a_shape_is_a_violation() -> None:
    doc = state_of_health()
    doc["@context"] = [*CONTEXT, {"FirmwareUpdateCredential": BATTERY_VOCAB + "FirmwareUpdate"}]
    doc["type"] = ["VerifiableCredential", "FirmwareUpdateCredential"]
    found = validate_shapes(doc)
    assert [v.path for v in found] == ["type"]
    assert "FirmwareUpdate" in found[0].message
    assert "StateOfHealthCredential" in found[0].message  # says what would be accepted


def test_a_plain_verifiable_credential_is_a_violation() -> None:
    doc = state_of_health()
    doc["type"] = ["VerifiableCredential"]
    with pytest.raises(ShapeViolation) as caught:
        check_shapes(doc)
    assert caught.value.problem.path == "type"


def test_a_named_graph_is_refused() -> None:
    doc = state_of_health()
    doc["credentialSubject"]["@graph"] = [{"id": BATTERY, "stateOfHealthPct": "10.0"}]
    with pytest.raises(MalformedDocument, match="named graph"):
        validate_shapes(doc)


def test_json_ld_errors_propagate_unchanged() -> None:
    with pytest.raises(UndefinedTerm):
        validate_shapes(with_subject(state_of_health, stateOfHealth="91.5"))
    with pytest.raises(MalformedDocument):
        validate_shapes(["not", "a", "credential"])  # type: ignore[arg-type]


def test_ill_typed_literals_do_not_flood_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        found = validate_shapes(with_subject(battery_manufacturing, manufacturingDate="2026-02-30"))
    assert [v.path for v in found] == ["credentialSubject.manufacturingDate"]
    assert not [r for r in caplog.records if r.name.startswith("rdflib")]
    # ...while rdflib's own warnings elsewhere are left alone
    with caplog.at_level(logging.WARNING):
        Graph().parse(data='<urn:a> <urn:b> "x"^^<http://www.w3.org/2001/XMLSchema#date> .',
                      format="nt")
    assert [r for r in caplog.records if r.name.startswith("rdflib")]


def test_the_input_is_not_modified() -> None:
    doc = state_of_health()
    doc["proof"] = {"type": "DataIntegrityProof"}
    before = copy.deepcopy(doc)
    validate_shapes(doc)
    assert doc == before


def test_validation_stays_fast() -> None:
    """A guard against pathologies (the shapes graph re-parsed per call, a data graph that
    grows), not a benchmark: a check takes about 10 ms on a laptop."""
    doc = battery_manufacturing()
    validate_shapes(doc)
    timings = []
    for _ in range(10):
        start = time.perf_counter()
        validate_shapes(doc)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.2
