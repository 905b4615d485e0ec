"""Trace: where a battery's cobalt came from, by SPARQL over the RDF view, with shares
worked out by hand on the chain of ``test_passport_mass_balance.hand_built``."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from rdflib import Graph
from test_passport_mass_balance import (
    BATTERY,
    CATHODE,
    MINE_A,
    MINE_B,
    MISSING,
    RECYCLED,
    REFINED,
    hand_built,
    subject,
    variant,
)

from credentials.passport.material_graph import MaterialGraph
from credentials.passport.synthetic import synthetic_batch_graph
from credentials.passport.trace import trace


def test_where_the_cobalt_came_from() -> None:
    # D's 20 kg of Co: 16 kg via refiner R (A 120/160, B 40/160 of R's cobalt) and 4 kg from
    # recycler Y, so A 12 kg = 60 %, B 4 kg = 20 %, Y 4 kg = 20 %.
    result = trace(MaterialGraph.from_credentials(hand_built()), BATTERY, "Co")
    assert (result.battery, result.element, result.element_mass_kg) == (BATTERY, "Co", 20)
    found = {s.batch: s for s in result.sources}
    assert set(found) == {MINE_A, MINE_B, RECYCLED}
    assert [(s.batch, s.share_pct, s.element_mass_kg) for s in result.sources] == [
        (MINE_A, 60, 12), (MINE_B, 20, 4), (RECYCLED, 20, 4)]
    assert sum(s.share_pct for s in result.sources) == Decimal(100)
    a, b, y = found[MINE_A], found[MINE_B], found[RECYCLED]
    assert (a.country, a.site, a.certifications, a.process_type) == (
        "CD", "Kolwezi, CD", ("RMI RMAP conformant",), "mining")
    assert (b.country, b.certifications) == ("AU", ("IRMA 75", "ISO 14001"))
    assert (y.country, y.certifications, y.process_type) == ("DE", (), "recycling")
    assert a.path == (BATTERY, CATHODE, REFINED, MINE_A)
    assert y.path == (BATTERY, CATHODE, RECYCLED)
    assert all(s.resolved for s in result.sources)
    # It passed through the cathode material (all of it) and the refiner (80 %).
    assert [(n.batch, n.share_pct) for n in result.intermediaries] == [
        (CATHODE, 100), (REFINED, 80)]
    [refiner] = result.refiners
    assert (refiner.batch, refiner.country, refiner.certifications) == (
        REFINED, "FI", ("RMI RMAP conformant",))
    assert result.shares_by_country() == {"CD": 60, "AU": 20, "DE": 20}
    assert result.untraced_inputs == ()


def test_other_elements() -> None:
    graph = MaterialGraph.from_credentials(hand_built())
    # Ni: 18 of 20 kg via R, all of R's nickel from B; 2 kg from Y.
    nickel = trace(graph, BATTERY, "Ni")
    assert [(s.batch, s.share_pct) for s in nickel.sources] == [(MINE_B, 90), (RECYCLED, 10)]
    # No lead anywhere: nothing to attribute.
    lead = trace(graph, BATTERY, "Pb")
    assert (lead.element_mass_kg, lead.sources) == (0, ())


def test_trace_runs_on_any_rdf_graph() -> None:
    """The RDF round-tripped through Turtle answers the same: trace needs only the bp: terms."""
    turtle = MaterialGraph.from_credentials(hand_built()).to_rdf().serialize(format="turtle")
    result = trace(Graph().parse(data=turtle, format="turtle"), BATTERY)
    assert [(s.batch, s.share_pct) for s in result.sources] == [
        (MINE_A, 60), (MINE_B, 20), (RECYCLED, 20)]


def test_unknown_input_stops_the_trace_at_its_consumer() -> None:
    def unknown(credentials: list) -> None:
        subject(credentials, REFINED)["input"].append({"batch": MISSING, "massKg": "10"})

    result = trace(MaterialGraph.from_credentials(variant(unknown)), BATTERY)
    # R's cobalt can no longer be split: R itself is the furthest known source.
    assert [(s.batch, s.share_pct, s.resolved) for s in result.sources] == [
        (REFINED, 80, False), (RECYCLED, 20, True)]
    assert sum(s.share_pct for s in result.sources) == 100


def test_battery_input_without_credential_is_untraced() -> None:
    def unknown(credentials: list) -> None:
        subject(credentials, BATTERY)["materialInput"].append({"batch": MISSING, "massKg": "5"})

    result = trace(MaterialGraph.from_credentials(variant(unknown)), BATTERY)
    assert result.untraced_inputs == (MISSING,)
    assert result.element_mass_kg == 20
    assert sum(s.share_pct for s in result.sources) == 100


def test_cycle_does_not_hang_and_is_noted() -> None:
    def loop(credentials: list) -> None:
        subject(credentials, REFINED)["input"].append({"batch": CATHODE, "massKg": "10"})

    result = trace(MaterialGraph.from_credentials(variant(loop)), BATTERY)
    assert [(s.batch, s.resolved) for s in result.sources] == [(CATHODE, False)]
    assert result.notes and CATHODE in result.notes[0]


def test_unknown_battery_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        trace(MaterialGraph.from_credentials(hand_built()), "did:key:z6MkNobody")


def test_synthetic_trace_shares_sum_to_100() -> None:
    graph = MaterialGraph.from_credentials(synthetic_batch_graph(300, random.Random(11),
                                                                 batteries=5))
    for battery in graph.batteries:
        for element in ("Co", "Li", "Ni"):
            result = trace(graph, battery, element)
            assert result.sources
            assert abs(sum(s.share_pct for s in result.sources) - 100) < Decimal("1e-20")
            assert all(s.resolved and s.process_type in {"mining", "recycling", "refining"}
                       for s in result.sources)
            assert all(s.country for s in result.sources)
