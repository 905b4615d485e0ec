"""The material graph: batches and batteries as nodes, ``BatchInput`` entries as edges with
their masses (``vocab/PASSPORT.md``, section "Mass balance"), and its RDF view.

An edge ``input batch -> output`` carries the ``massKg`` of a ``BatchInput`` (outputs are
batches via ``input``, or batteries via ``materialInput``). The graph is built once from
credentials and never changes, so its analysis (``material_graph_analysis``) and its RDF
view are computed once and reused. SPARQL over the RDF view is for questions people ask one
at a time (``credentials.passport.trace``), never per node.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

from rdflib import RDF, XSD, BNode, Graph, Literal, Namespace, URIRef

from credentials.passport.mass_balance_findings import MassBalanceFinding
from credentials.passport.material_credentials import parse_material_credentials
from credentials.passport.material_graph_analysis import (
    MaterialGraphAnalysis,
    analyse_material_graph,
)
from credentials.passport.material_nodes import (
    DECLARED_SHARE_FIELDS,
    Edge,
    MaterialNode,
    NodeKind,
)
from vocab import BATTERY_VOCAB

#: The vocabulary namespace; the RDF view uses its terms exactly as PASSPORT.md names them.
BP = Namespace(BATTERY_VOCAB)


class MaterialGraph:
    """Batches and batteries as nodes, ``BatchInput`` entries as edges with their masses.

    Build it with ``from_credentials``; it never changes afterwards, which is what lets the
    analysis (cycles, recycled fractions) and the RDF view be computed once and reused.
    """

    def __init__(self, nodes: Mapping[str, MaterialNode],
                 parse_findings: Sequence[MassBalanceFinding] = ()) -> None:
        self.nodes: Mapping[str, MaterialNode] = dict(nodes)
        self.parse_findings: tuple[MassBalanceFinding, ...] = tuple(parse_findings)
        consumers: dict[str, list[Edge]] = defaultdict(list)
        for node in self.nodes.values():
            for edge in node.inputs:
                consumers[edge.source].append(edge)
        #: Per input id (known or not): the edges drawing on it, in credential order.
        self.consumers: Mapping[str, tuple[Edge, ...]] = {
            k: tuple(v) for k, v in consumers.items()
        }

    @classmethod
    def from_credentials(cls, credentials: Iterable[dict[str, Any]]) -> MaterialGraph:
        """Nodes from ``RawMaterialOriginCredential``, ``MaterialBatchCredential`` and
        ``BatteryManufacturingCredential``; other credentials (the rest of a passport,
        participants) are skipped, so a caller may pass everything it holds."""
        nodes, findings = parse_material_credentials(credentials)
        return cls(nodes, findings)

    @property
    def batteries(self) -> tuple[str, ...]:
        return tuple(k for k, n in self.nodes.items() if n.kind is NodeKind.BATTERY)

    @property
    def batches(self) -> tuple[str, ...]:
        return tuple(k for k, n in self.nodes.items() if n.kind is NodeKind.BATCH)

    # ---- RDF view

    def to_rdf(self) -> Graph:
        """The same facts as an ``rdflib.Graph`` in the ``bp:`` vocabulary, built directly
        (no JSON-LD): ``<batch> a bp:MaterialBatch; bp:input [ bp:batch <urn>; bp:massKg
        "…"^^xsd:decimal ]``, element masses likewise, batteries with ``bp:materialInput``.
        Values that did not parse are left out, as the malformed finding says."""
        graph = Graph()
        graph.bind("bp", BP)
        triples: list[tuple[Any, Any, Any, Graph]] = []

        def add(s: Any, p: Any, o: Any) -> None:
            triples.append((s, p, o, graph))

        for node in self.nodes.values():
            subject = URIRef(node.id)
            add(subject, RDF.type, BP[node.kind.value])
            for name, value in (("material", node.material), ("processType", node.process_type),
                                ("countryOfOrigin", node.country),
                                ("productionSite", node.site)):
                if value is not None:
                    add(subject, BP[name], Literal(value))
            if node.batch_mass_kg is not None:
                add(subject, BP.batchMassKg, _decimal_literal(node.batch_mass_kg))
            if node.declared_tolerance_pct is not None:
                add(subject, BP.processLossTolerancePct,
                    _decimal_literal(node.declared_tolerance_pct))
            for certification in node.certifications:
                add(subject, BP.certification, Literal(certification))
            for element, amount in node.elements.items():
                entry = BNode()
                add(subject, BP.elementMass, entry)
                add(entry, BP.element, Literal(element))
                add(entry, BP.massKg, _decimal_literal(amount.mass_kg))
                if amount.recycled_mass_kg is not None:
                    add(entry, BP.recycledMassKg, _decimal_literal(amount.recycled_mass_kg))
            link = BP.materialInput if node.kind is NodeKind.BATTERY else BP.input
            for edge in node.inputs:
                entry = BNode()
                add(subject, link, entry)
                add(entry, BP.batch, URIRef(edge.source))
                add(entry, BP.massKg, _decimal_literal(edge.mass_kg))
            for element, pct in node.declared_recycled_pct.items():
                add(subject, BP[DECLARED_SHARE_FIELDS[element]], _decimal_literal(pct))
        graph.addN(triples)
        return graph

    @cached_property
    def rdf(self) -> Graph:
        """``to_rdf()``, built on first use and kept (do not modify it)."""
        return self.to_rdf()

    # ---- analysis

    @cached_property
    def analysis(self) -> MaterialGraphAnalysis:
        """Cycles, draws, recycled fractions and battery totals, computed on first use."""
        return analyse_material_graph(self.nodes)


def _decimal_literal(value: Decimal) -> Literal:
    return Literal(format(value, "f"), datatype=XSD.decimal)
