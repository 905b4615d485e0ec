"""The battery passport ontology: complete for the context, documented, aligned, access-annotated.

The context (``vocab/contexts/battery-v1.jsonld``) and the ontology must describe the same
terms: a term in the context without a declaration is a credential field nobody documented; a
property in the ontology missing from the context is a field no credential can carry.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, SKOS

from vocab import BATTERY_VOCAB

#: The contract; a document of the source tree, not package data.
PASSPORT_MD = Path(__file__).resolve().parents[2] / "vocab" / "PASSPORT.md"
ONTOLOGY_IRI = URIRef("https://w3id.org/battery-passport-connector/vocab")
BP = BATTERY_VOCAB
XSD = "http://www.w3.org/2001/XMLSchema#"  # a string: pytest trips over rdflib's XSD object
ACCESS_LEVEL = URIRef(BP + "accessLevel")
ACCESS_ROW = URIRef(BP + "accessMatrixRow")
LEVELS = {URIRef(BP + n) for n in
          ("Public", "LegitimateInterest", "LegitimateInterestAndCommission", "Authorities")}
VC = URIRef("https://www.w3.org/2018/credentials#VerifiableCredential")
SAMM_URN = re.compile(r"urn:samm:(io\.[A-Za-z0-9_.-]+):(\d+\.\d+\.\d+)#([A-Za-z][A-Za-z0-9_]*)")


@cache
def ontology() -> Graph:
    text = resources.files("vocab").joinpath("ontology/battery-passport.ttl").read_text("utf-8")
    return Graph().parse(data=text, format="turtle")


@cache
def context_terms() -> dict[str, Any]:
    """Term name -> definition, for every term of the battery and hub contexts (prefixes left
    out); the hub context holds passport terms too, added after battery/v1 was published."""
    context: dict[str, Any] = {}
    for name in ("contexts/battery-v1.jsonld", "contexts/hub-v1.jsonld"):
        text = resources.files("vocab").joinpath(name).read_text("utf-8")
        context.update(json.loads(text)["@context"])
    return {
        name: definition
        for name, definition in context.items()
        if not name.startswith("@")
        and not (isinstance(definition, str) and definition.endswith(("#", "/")))
    }


def expand(value: str) -> str:
    for prefix, iri in (("bp:", BP), ("xsd:", XSD)):
        if value.startswith(prefix):
            return iri + value.removeprefix(prefix)
    return value


def declared(kind: URIRef) -> set[str]:
    return {
        str(s).removeprefix(BP)
        for s in ontology().subjects(RDF.type, kind)
        if isinstance(s, URIRef) and str(s).startswith(BP)
    }


def properties() -> set[str]:
    return declared(OWL.DatatypeProperty) | declared(OWL.ObjectProperty)


def deprecated() -> set[str]:
    return {str(s).removeprefix(BP) for s in ontology().subjects(OWL.deprecated, Literal(True))}


def enumeration_classes() -> set[str]:
    """Classes whose members are named individuals (status values, access levels ...)."""
    graph = ontology()
    return {
        str(cls).removeprefix(BP)
        for individual in graph.subjects(RDF.type, OWL.NamedIndividual)
        for cls in graph.objects(individual, RDF.type)
        if cls != OWL.NamedIndividual
    }


# --- the ontology document ------------------------------------------------------------------------


def test_the_ontology_parses_and_names_itself() -> None:
    graph = ontology()
    assert (ONTOLOGY_IRI, RDF.type, OWL.Ontology) in graph
    assert graph.value(ONTOLOGY_IRI, RDFS.label) is not None


def test_the_header_cites_the_public_models() -> None:
    sources = {str(o) for o in ontology().objects(ONTOLOGY_IRI, DCTERMS.source)}
    for aspect in (
        "urn:samm:io.catenax.battery.battery_pass:6.1.0#BatteryPass",
        "urn:samm:io.BatteryPass.Performance:1.2.1#PerformanceAndDurability",
        "urn:samm:io.BatteryPass.GeneralProductInformation:1.2.0#GeneralProductInformation",
        "urn:samm:io.admin-shell.idta.batterypass.product_condition:1.0.1#ProductCondition",
    ):
        assert aspect in sources
    for source in sources:
        assert SAMM_URN.fullmatch(source), source


# --- the ontology and the context describe the same terms --------------------------------------


def test_every_context_term_is_declared() -> None:
    names = properties() | declared(OWL.Class) | declared(OWL.NamedIndividual)
    missing = sorted(set(context_terms()) - names)
    assert not missing, f"terms of battery-v1.jsonld without a declaration: {missing}"


def test_every_property_and_type_of_the_ontology_is_a_context_term() -> None:
    """Deprecated terms (``inputBatch``) and enumeration classes are exempt: the first are kept
    to document old credentials, the second are never written in a credential."""
    expected = (properties() - deprecated()) | (declared(OWL.Class) - enumeration_classes())
    missing = sorted(expected - set(context_terms()))
    assert not missing, f"declared but not in battery-v1.jsonld: {missing}"


@pytest.mark.parametrize("term", sorted(context_terms()))
def test_context_and_ontology_agree_on_each_term(term: str) -> None:
    definition = context_terms()[term]
    iri = expand(definition if isinstance(definition, str) else definition["@id"])
    assert iri == BP + term, "a term's IRI is the vocabulary IRI of its name"
    graph = ontology()
    subject = URIRef(iri)
    if isinstance(definition, str):  # a class or a value term
        kinds = set(graph.objects(subject, RDF.type))
        assert kinds & {OWL.Class, OWL.NamedIndividual}, kinds
        return
    coercion = definition.get("@type")
    if coercion in (None, "@id", "@vocab"):
        assert (subject, RDF.type, OWL.ObjectProperty) in graph
    else:
        assert (subject, RDF.type, OWL.DatatypeProperty) in graph
        assert graph.value(subject, RDFS.range) == URIRef(expand(coercion))
    if coercion == "@vocab":  # its values are named individuals of its range
        members = set(graph.subjects(RDF.type, graph.value(subject, RDFS.range)))
        assert members


def test_value_terms_are_members_of_their_enumeration() -> None:
    graph = ontology()
    for cls, values in (
        ("BatteryStatus", {"Original", "Repurposed", "Reused", "Remanufactured", "Waste",
                           "Recycled"}),
        ("ShipmentPurpose", {"Repair", "Repurposing", "Recycling"}),
    ):
        members = {str(s).removeprefix(BP) for s in graph.subjects(RDF.type, URIRef(BP + cls))}
        assert members == values
        assert values <= set(context_terms())


def test_credential_types_are_those_of_the_contract() -> None:
    text = PASSPORT_MD.read_text("utf-8")
    in_contract = set(re.findall(r"^\| `(\w+Credential)` \|", text, flags=re.MULTILINE))
    graph = ontology()
    credential_classes = {str(s).removeprefix(BP) for s in graph.subjects(RDFS.subClassOf, VC)}
    assert credential_classes == in_contract
    assert len(in_contract) == 16


# --- each property is documented, typed and access-annotated ----------------------------------

UNITS = {
    "Pct": "percent",
    "Kg": "kilograms",
    "Ah": "ampere-hours",
    "KWh": "kWh",
    "V": "volts",
    "Mm": "millimetres",
    "C": "Celsius",
    "Count": "a count",
}


@pytest.mark.parametrize("name", sorted(properties()))
def test_each_property_is_documented(name: str) -> None:
    graph = ontology()
    subject = URIRef(BP + name)
    label = graph.value(subject, RDFS.label)
    comment = graph.value(subject, RDFS.comment)
    assert isinstance(label, Literal) and label.language == "en"
    assert isinstance(comment, Literal) and comment.language == "en"
    assert graph.value(subject, RDFS.domain) is not None
    assert graph.value(subject, RDFS.range) is not None
    for suffix, unit in UNITS.items():
        if name.endswith(suffix) and not name.endswith("PerKWh"):
            assert unit in str(comment), f"{name}: the comment should state the unit ({unit})"


@pytest.mark.parametrize("name", sorted(properties()))
def test_each_property_has_one_access_level(name: str) -> None:
    graph = ontology()
    subject = URIRef(BP + name)
    levels = list(graph.objects(subject, ACCESS_LEVEL))
    rows = list(graph.objects(subject, ACCESS_ROW))
    assert len(levels) == 1 and levels[0] in LEVELS
    assert len(rows) == 1 and 1 <= int(str(rows[0])) <= 93


@pytest.mark.parametrize(
    "name",
    ["transferredTo", "consignee", "massKg", "batchMassKg", "elementMass", "thermalEventCount",
     "remainingUsefulLifeCycles", "vehicleIdentificationNumber", "holderIdentifier"],
)
def test_extension_attributes_say_which_matrix_row_they_borrow(name: str) -> None:
    comment = str(ontology().value(URIRef(BP + name), RDFS.comment))
    assert re.search(r"closest row \d+ \"[^\"]+\", because ", comment), comment


def test_alignments_name_samm_elements_of_the_cited_models() -> None:
    graph = ontology()
    cited = {
        SAMM_URN.fullmatch(str(s)).group(1, 2)  # type: ignore[union-attr]
        for s in graph.objects(ONTOLOGY_IRI, DCTERMS.source)
    }
    targets = list(graph.objects(None, SKOS.closeMatch)) + [
        o for s, o in graph.subject_objects(RDFS.seeAlso) if str(o).startswith("urn:")
    ]
    assert len(targets) > 100
    for target in targets:
        match = SAMM_URN.fullmatch(str(target))
        assert match, target
        assert match.group(1, 2) in cited, f"{target}: its model is not cited in the header"


def test_measurements_closely_match_the_catena_x_and_battery_pass_models() -> None:
    graph = ontology()
    matches = {str(o) for o in graph.objects(URIRef(BP + "stateOfHealthPct"), SKOS.closeMatch)}
    assert "urn:samm:io.catenax.battery.battery_pass:6.1.0#soce" in matches
    assert "urn:samm:io.BatteryPass.Performance:1.2.1#stateOfCertifiedEnergy" in matches
