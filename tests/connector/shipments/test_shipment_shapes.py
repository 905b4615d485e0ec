"""The shipment evidence credentials against ``vocab/shapes/shipment-shapes.ttl``: the samples
conform, and a spoiled field is reported by its shape's message. The check runs on the RDF
meaning (strict offline JSON-LD), like the passport shapes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest
from pyshacl import validate
from rdflib import Graph

from connector import samples
from connector.shipments.attestation import attestation_credential
from connector.store import AgreementRecord
from credentials.jsonld import canonize_rdfc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BATTERY = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
ISSUER = "did:web:authority.example"
AGREEMENT = AgreementRecord(id="urn:uuid:0b7a2c64-3f7e-4a52-a2b4-f1f0c1d2e3f4",
                            asset_id="urn:asset:x", provider_did="did:web:fleet.example",
                            consumer_did="did:web:recycler.example",
                            agreement={"permission": [{"action": "use"}]}, signed_at=NOW)


def conforms(document: dict[str, Any]) -> tuple[bool, str]:
    shapes = Graph().parse(data=resources.files("vocab").joinpath(
        "shapes/shipment-shapes.ttl").read_text("utf-8"), format="turtle")
    data = Graph().parse(data=canonize_rdfc(document), format="nquads")
    ok, _, text = validate(data, shacl_graph=shapes, inference="none")
    return bool(ok), str(text)


SAMPLES = {
    "test": lambda: samples.functionality_test(BATTERY, ISSUER, rng=random.Random(1),
                                               issued=NOW),
    "authorisation": lambda: samples.treatment_facility_authorisation(
        "did:web:recycler.example", ISSUER, rng=random.Random(2), issued=NOW),
    "attestation": lambda: attestation_credential(AGREEMENT, ISSUER, NOW,
                                                  NOW + timedelta(days=7)),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_samples_conform(name: str) -> None:
    ok, report = conforms(SAMPLES[name]())
    assert ok, report


@pytest.mark.parametrize(("name", "field", "value", "words"), [
    ("test", "testResult", "maybe", "pass or fail"),
    ("test", "stateOfHealthPct", "140.0", "between 0 and 100"),
    ("authorisation", "facilityCountry", "Germany", "alpha-2"),
    ("authorisation", "authorisedOperation", ["Recycled"], "Repair, Repurposing, Recycling"),
    ("attestation", "policyDigest", "sha256:abc", "multibase SHA-256"),
])
def test_a_spoiled_field_is_named(name: str, field: str, value: Any, words: str) -> None:
    document = SAMPLES[name]()
    document["credentialSubject"][field] = value
    ok, report = conforms(document)
    assert not ok and words in report
