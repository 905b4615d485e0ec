"""Where did this battery's cobalt come from? Provenance of one element of one battery.

The walk is SPARQL over the RDF view of the batches (``MaterialGraph.rdf``, or any graph in
the ``bp:`` vocabulary, e.g. one loaded from expanded credentials): the property path
``bp:materialInput/bp:batch/(bp:input/bp:batch)*`` finds every batch upstream of the battery,
so the question is answered by the same query whoever built the graph. The shares are then
computed in Python from the masses along the path (``graph_algorithms.element_flows``), because
proportional splitting over a DAG is arithmetic SPARQL 1.1 cannot express. For a consistent
graph the sources' shares add up to 100 %.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from rdflib import RDF, Graph, Literal, URIRef
from rdflib.term import Node

from credentials.passport.decimals import DECIMAL_CONTEXT, HUNDRED, ZERO, parse_decimal
from credentials.passport.graph_algorithms import element_flows, strongly_connected
from credentials.passport.material_graph import BP, MaterialGraph

_PREFIX = f"PREFIX bp: <{BP}>\nPREFIX rdf: <{RDF}>\n"
#: Every batch upstream of ?root.
_UPSTREAM = "?root bp:materialInput/bp:batch/(bp:input/bp:batch)* ?node ."

#: Edges of the ancestry: the root's materialInput entries and every upstream batch's inputs.
#: DISTINCT: a batch reached along two paths must not have its inputs counted twice (the
#: entry blank node keeps two genuine entries apart).
EDGES_QUERY = _PREFIX + f"""
SELECT DISTINCT ?consumer ?entry ?source ?used WHERE {{
  {{ ?root bp:materialInput ?entry . BIND(?root AS ?consumer) }}
  UNION
  {{ {_UPSTREAM.replace("?node", "?consumer")} ?consumer bp:input ?entry . }}
  ?entry bp:batch ?source .
  OPTIONAL {{ ?entry bp:massKg ?used }}
}}"""

#: Facts of every upstream batch.
NODES_QUERY = _PREFIX + f"""
SELECT ?node ?class ?process ?material ?mass ?country ?site WHERE {{
  {_UPSTREAM}
  OPTIONAL {{ ?node rdf:type ?class }}
  OPTIONAL {{ ?node bp:processType ?process }}
  OPTIONAL {{ ?node bp:material ?material }}
  OPTIONAL {{ ?node bp:batchMassKg ?mass }}
  OPTIONAL {{ ?node bp:countryOfOrigin ?country }}
  OPTIONAL {{ ?node bp:productionSite ?site }}
}}"""

#: Each upstream batch's mass of ?wanted (bound by the caller). The element is compared in a
#: FILTER, not bound in the pattern: rdflib orders a pattern by its bound terms, and a bound
#: element would start the join from every entry of that element in the whole graph.
ELEMENTS_QUERY = _PREFIX + f"""
SELECT DISTINCT ?node ?entry ?elementMass WHERE {{
  {_UPSTREAM}
  ?node bp:elementMass ?entry .
  ?entry bp:element ?element ; bp:massKg ?elementMass .
  FILTER(STR(?element) = STR(?wanted))
}}"""

CERTIFICATIONS_QUERY = _PREFIX + f"""
SELECT DISTINCT ?node ?certification WHERE {{
  {_UPSTREAM}
  ?node bp:certification ?certification .
}}"""


@dataclass(frozen=True, slots=True)
class TraceNode:
    """A batch upstream of the battery and the part of the battery's element that came
    from it (a source) or passed through it (an intermediary)."""

    batch: str
    process_type: str | None
    material: str | None
    country: str | None
    site: str | None
    certifications: tuple[str, ...]
    element_mass_kg: Decimal
    share_pct: Decimal
    #: battery -> ... -> batch along the consumers that carried the most.
    path: tuple[str, ...]
    #: False when provenance stops here although the batch is not a leaf (an input without
    #: a credential or without masses, or a cycle): the batch is then the furthest source
    #: known, not the origin.
    resolved: bool = True


@dataclass(frozen=True, slots=True)
class TraceResult:
    battery: str
    element: str
    #: The battery's element mass from the inputs that could be traced.
    element_mass_kg: Decimal
    #: Where the element came from (mines, recyclers, primary refiners): shares sum to 100.
    sources: tuple[TraceNode, ...]
    #: Batches it passed through (refiners, precursor, cathode material), with their share.
    intermediaries: tuple[TraceNode, ...]
    #: The battery's own inputs that hold no data (no credential, no masses): how much of
    #: the element they contributed is unknown, so they are outside the 100 %.
    untraced_inputs: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def refiners(self) -> tuple[TraceNode, ...]:
        return tuple(n for n in (*self.intermediaries, *self.sources)
                     if n.process_type == "refining")

    def shares_by_country(self) -> dict[str | None, Decimal]:
        """Sources' shares summed per country of origin (None: not stated)."""
        out: dict[str | None, Decimal] = defaultdict(lambda: ZERO)
        for source in self.sources:
            out[source.country] += source.share_pct
        return dict(out)


@dataclass(slots=True)
class _Facts:
    classes: set[str] = field(default_factory=set)
    process: str | None = None
    material: str | None = None
    mass: Decimal | None = None
    mass_problem: bool = False
    country: str | None = None
    site: str | None = None
    element_entries: dict[Node, Decimal] = field(default_factory=dict)
    certifications: set[str] = field(default_factory=set)

    @property
    def known(self) -> bool:
        """A batch whose masses can be drawn on: it states a positive batch mass."""
        return self.mass is not None and not self.mass_problem

    @property
    def element_mass(self) -> Decimal:
        return sum(self.element_entries.values(), ZERO)


def _text(value: Node | None) -> str | None:
    return str(value) if value is not None else None


def _decimal(value: Node | None, problems: list[str]) -> Decimal | None:
    if value is None:
        return None
    lexical = str(value) if isinstance(value, Literal) else None
    return parse_decimal(lexical, "value", problems)


def trace(graph: MaterialGraph | Graph, battery_did: str, element: str = "Co") -> TraceResult:
    """The sources of ``element`` in a battery with country, site and certifications, and
    the share of the battery's element mass each contributed.

    Raises ``KeyError`` if the graph says nothing about the battery's inputs."""
    rdf = graph.rdf if isinstance(graph, MaterialGraph) else graph
    root = URIRef(battery_did)
    bindings: Mapping[str, Any] = {"root": root, "wanted": Literal(element)}
    with localcontext(DECIMAL_CONTEXT):
        draws_raw: dict[str, list[tuple[str, Decimal | None]]] = defaultdict(list)
        for row in rdf.query(EDGES_QUERY, initBindings=bindings):
            consumer, _entry, source, used = row
            problems: list[str] = []
            draws_raw[str(consumer)].append((str(source), _decimal(used, problems)))
        if battery_did not in draws_raw and (root, RDF.type, BP.Battery) not in rdf:
            raise KeyError(f"the graph holds no materialInput of {battery_did}")
        facts: dict[str, _Facts] = defaultdict(_Facts)
        for row in rdf.query(NODES_QUERY, initBindings=bindings):
            node, cls, process, material, mass, country, site = row
            record = facts[str(node)]
            if cls is not None:
                record.classes.add(str(cls))
            record.process = record.process or _text(process)
            record.material = record.material or _text(material)
            record.country = record.country or _text(country)
            record.site = record.site or _text(site)
            if mass is not None and record.mass is None:
                problems = []
                record.mass = _decimal(mass, problems)
                record.mass_problem = bool(problems) or record.mass == 0
        for row in rdf.query(ELEMENTS_QUERY, initBindings=bindings):
            node, entry, element_mass = row
            problems = []
            value = _decimal(element_mass, problems)
            if value is None:
                facts[str(node)].mass_problem = True
            else:
                facts[str(node)].element_entries[entry] = value
        for row in rdf.query(CERTIFICATIONS_QUERY, initBindings=bindings):
            node, certification = row
            facts[str(node)].certifications.add(str(certification))
        return _shares(battery_did, element, draws_raw, facts)


def _shares(battery: str, element: str,
            draws_raw: Mapping[str, list[tuple[str, Decimal | None]]],
            facts: Mapping[str, _Facts]) -> TraceResult:
    """Proportional split of the battery's element over its ancestry (Python, Decimal)."""
    draws: dict[str, tuple[tuple[str, Decimal], ...]] = {}
    traceable: set[str] = set()
    untraced: list[str] = []
    for consumer, entries in draws_raw.items():
        usable: list[tuple[str, Decimal]] = []
        blocked = False
        for source, used in entries:
            record = facts.get(source)
            if used is None or record is None or not record.known:
                blocked = True
                if consumer == battery:
                    untraced.append(source)
                continue
            assert record.mass is not None
            usable.append((source, used / record.mass))
        draws[consumer] = tuple(usable)
        if not blocked:
            traceable.add(consumer)

    def successors(node: str) -> list[str]:
        return [source for source, _ in draws.get(node, ())]

    in_cycle: set[str] = set()
    for component in strongly_connected(list(draws), successors):
        if len(component) > 1 or component[0] in successors(component[0]):
            in_cycle.update(component)
    expandable = traceable - in_cycle

    def element_mass(node: str, _element: str) -> Decimal:
        record = facts.get(node)
        return record.element_mass if record is not None else ZERO

    flows = element_flows(battery, draws, element_mass, (element,),
                          expandable.__contains__)
    total = flows.available.get(battery, {}).get(element, ZERO)
    sources: list[TraceNode] = []
    intermediaries: list[TraceNode] = []
    for node in flows.order[1:]:
        mass = flows.flow[node].get(element, ZERO)
        if mass == 0:
            continue
        record = facts[node]
        terminal = flows.is_terminal(node, element)
        leaf = node not in draws_raw
        trace_node = TraceNode(
            batch=node, process_type=record.process, material=record.material,
            country=record.country, site=record.site,
            certifications=tuple(sorted(record.certifications)), element_mass_kg=mass,
            share_pct=mass / total * HUNDRED, path=flows.path(battery, node, element),
            resolved=leaf or not terminal,
        )
        (sources if terminal else intermediaries).append(trace_node)
    notes = []
    if in_cycle:
        notes.append("cycle among " + ", ".join(sorted(in_cycle)))
    return TraceResult(
        battery=battery, element=element, element_mass_kg=total,
        sources=tuple(sorted(sources, key=lambda n: (-n.share_pct, n.batch))),
        intermediaries=tuple(sorted(intermediaries, key=lambda n: (-n.share_pct, n.batch))),
        untraced_inputs=tuple(dict.fromkeys(untraced)), notes=tuple(notes),
    )
