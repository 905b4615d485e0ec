"""Access levels per attribute: our terms and the matrix's attribute names, against the matrix.

The expected levels are read from the bundled CSV here, independently of ``vocab.access``, so a
test fails if the module and the matrix disagree, not only if the module changes.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from importlib import resources

import pytest
from rdflib import Graph, URIRef

from vocab import BATTERY_VOCAB, access
from vocab.access import (
    AccessLevel,
    MatrixRow,
    UnknownAttribute,
    access_level,
    attributes,
    matrix_row,
    terms,
)

GROUPS = {
    "public": AccessLevel.PUBLIC,
    "legitimate_interest": AccessLevel.LEGITIMATE_INTEREST,
    "legitimate_interest_and_commission": AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION,
    "authorities": AccessLevel.AUTHORITIES,
}


def matrix() -> list[dict[str, str]]:
    text = resources.files("vocab").joinpath("data/access-matrix.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def level_of_row(attribute: str) -> AccessLevel:
    (row,) = [r for r in matrix() if r["attribute"] == attribute]
    return GROUPS[row["access_group"]]


def ontology() -> Graph:
    text = resources.files("vocab").joinpath("ontology/battery-passport.ttl").read_text("utf-8")
    return Graph().parse(data=text, format="turtle")


def test_the_bundled_matrix_is_the_93_attribute_longlist() -> None:
    rows = matrix()
    assert [int(r["ll_no"]) for r in rows] == list(range(1, 94))
    assert {r["access_group"] for r in rows} == set(GROUPS)


@pytest.mark.parametrize(
    ("attribute", "matrix_attribute"),
    [
        ("stateOfHealthPct", "State of certified energy (SOCE)"),
        ("capacityFadePct", "Capacity fade"),
        ("fullCycleCount", "Number of full charging and discharging cycles"),
        ("deepDischargeCount", "Number of deep discharge events"),
        ("batteryIdentifier", "Battery identifier"),
        ("passportIdentifier", "Battery passport identifier"),
        ("carbonFootprintKgCO2ePerKWh", "Battery carbon footprint per Functional Unit"),
        ("carbonFootprintPerformanceClass", "Carbon footprint performance class"),
        ("cathodeActiveMaterial", "Materials used in cathode, anode and electrolyte"),
        ("cellCount", "Dismantling information: Manuals for the removal and the disassembly of "
                      "the battery pack"),
        ("batteryStatus", "Battery status"),
        ("recycledContentCobaltPct", "Pre-consumer recycled cobalt share"),
        ("ratedCapacityAh", "Rated capacity"),
    ],
)
def test_our_terms_have_the_level_of_their_row(attribute: str, matrix_attribute: str) -> None:
    assert matrix_row(attribute).attribute == matrix_attribute
    assert access_level(attribute) is level_of_row(matrix_attribute)


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("stateOfHealthPct", AccessLevel.LEGITIMATE_INTEREST),
        ("State of certified energy", AccessLevel.LEGITIMATE_INTEREST),
        ("Dismantling information", AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION),
        ("carbonFootprintKgCO2ePerKWh", AccessLevel.PUBLIC),
        ("battery carbon footprint per functional unit", AccessLevel.PUBLIC),
        ("batteryIdentifier", AccessLevel.PUBLIC),
        ("Results of test reports proving compliance", AccessLevel.AUTHORITIES),
    ],
)
def test_known_attributes(attribute: str, expected: AccessLevel) -> None:
    assert access_level(attribute) is expected


@pytest.mark.parametrize(
    "spelling",
    [
        "batteryIdentifier",
        "BATTERYIDENTIFIER",
        "bp:batteryIdentifier",
        BATTERY_VOCAB + "batteryIdentifier",
        "Battery identifier",
        "  battery   IDENTIFIER ",
    ],
)
def test_spellings_of_one_attribute(spelling: str) -> None:
    assert matrix_row(spelling).number == 2


@pytest.mark.parametrize("row", matrix(), ids=lambda r: r["ll_no"])
def test_every_matrix_attribute_resolves_to_its_own_row(row: dict[str, str]) -> None:
    found = matrix_row(row["attribute"])
    assert found.number == int(row["ll_no"])
    assert found.level is GROUPS[row["access_group"]]
    assert found.catenax_path == row["catenax_battery_pass_6_1_0_path"]


def test_a_short_form_shared_by_two_rows_is_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {
        1: MatrixRow(1, "Expected lifetime: cycles", AccessLevel.PUBLIC, "", ""),
        2: MatrixRow(2, "Expected lifetime: years", AccessLevel.LEGITIMATE_INTEREST, "", ""),
        3: MatrixRow(3, "Battery identifier (item)", AccessLevel.PUBLIC, "", ""),
    }
    monkeypatch.setattr(access, "_read_rows", lambda: rows)
    monkeypatch.setattr(access, "_read_term_rows", lambda: {"batteryIdentifier": 3})
    access._table.cache_clear()
    try:
        with pytest.raises(UnknownAttribute):
            access_level("expected lifetime")
        assert access_level("Expected lifetime: years") is AccessLevel.LEGITIMATE_INTEREST
        assert matrix_row("battery identifier").number == 3
    finally:
        access._table.cache_clear()


@pytest.mark.parametrize("name", ["stateOfHealth", "bp:nothing", "", "Battery", "dismantling"])
def test_an_unknown_attribute_raises(name: str) -> None:
    with pytest.raises(UnknownAttribute) as caught:
        access_level(name)
    assert isinstance(caught.value, KeyError)
    assert repr(name) in str(caught.value)
    assert caught.value.attribute == name


def test_an_unknown_attribute_suggests_close_names() -> None:
    with pytest.raises(UnknownAttribute, match="did you mean 'stateOfHealthPct'"):
        access_level("stateOfHealth")


def test_attributes_partition_our_terms_by_level() -> None:
    listed = {level: attributes(level) for level in AccessLevel}
    assert sum(len(names) for names in listed.values()) == len(terms())
    assert set().union(*listed.values()) == set(terms())
    assert "stateOfHealthPct" in listed[AccessLevel.LEGITIMATE_INTEREST]
    assert "batteryIdentifier" in listed[AccessLevel.PUBLIC]
    assert "cathodeActiveMaterial" in listed[AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION]
    assert listed[AccessLevel.AUTHORITIES] == ()
    for names in listed.values():
        assert list(names) == sorted(names)
    assert attributes("public") == listed[AccessLevel.PUBLIC]


def test_levels_are_strings_with_ontology_individuals() -> None:
    assert [str(level) for level in AccessLevel] == [
        "public",
        "legitimate-interest",
        "legitimate-interest-and-commission",
        "authorities",
    ]
    assert AccessLevel.LEGITIMATE_INTEREST_AND_COMMISSION.iri == (
        BATTERY_VOCAB + "LegitimateInterestAndCommission"
    )
    graph = ontology()
    for level in AccessLevel:
        assert (URIRef(level.iri), None, None) in graph
    assert AccessLevel.from_matrix("legitimate_interest") is AccessLevel.LEGITIMATE_INTEREST


def test_the_ontology_annotations_agree_with_the_matrix() -> None:
    """The row mapping lives in the ontology (bp:accessMatrixRow); the level it repeats for
    RDF readers (bp:accessLevel) must be the level of that row."""
    graph = ontology()
    rows = {int(r["ll_no"]): GROUPS[r["access_group"]] for r in matrix()}
    row_of = URIRef(BATTERY_VOCAB + "accessMatrixRow")
    level_of = URIRef(BATTERY_VOCAB + "accessLevel")
    annotated = 0
    for subject, row in graph.subject_objects(row_of):
        (level,) = graph.objects(subject, level_of)
        assert str(level) == rows[int(str(row))].iri, subject
        annotated += 1
    assert annotated == len(terms())


def test_the_tables_load_lazily() -> None:
    code = (
        "import sys\n"
        "import vocab.access\n"
        "assert 'rdflib' not in sys.modules, 'imported rdflib at import time'\n"
        "vocab.access.access_level('batteryIdentifier')\n"
        "assert 'rdflib' in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
