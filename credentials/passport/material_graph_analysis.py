"""What is derived once per material graph: its cycles, which nodes can be traced through
and what they draw from their inputs, the recycled (and unresolved) fraction of every element
in every node, and what each battery drew. Linear in the size of the graph: strongly
connected components once, then recycled fractions once per node in topological order.

Unresolved provenance (unknown or malformed inputs, cycles) is carried as its own fraction,
never silently counted as recycled or dropped from a share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from credentials.passport.decimals import DECIMAL_CONTEXT, HUNDRED, ONE, ZERO
from credentials.passport.graph_algorithms import cycle_path, strongly_connected
from credentials.passport.material_nodes import RECYCLING, MaterialNode, NodeKind


@dataclass(frozen=True, slots=True)
class MaterialGraphAnalysis:
    """Everything derived once per graph (memoised; the graph is immutable)."""

    cycles: tuple[tuple[str, ...], ...]
    in_cycle: frozenset[str]
    #: Nodes traced through: inputs all parsed, known and usable, and not in a cycle.
    expandable: frozenset[str]
    #: Per expandable node (and every battery): (input batch, share of it used).
    draws: Mapping[str, tuple[tuple[str, Decimal], ...]]
    #: Per battery: inputs that cannot be drawn on (no credential, malformed, unparsed entry).
    unresolved_inputs: Mapping[str, tuple[str, ...]]
    #: Per node and element: (recycled fraction, unresolved fraction) of its element content.
    fractions: Mapping[str, Mapping[str, tuple[Decimal, Decimal]]]
    #: Per battery and element: (element mass, recycled mass, unresolved mass) drawn.
    battery_totals: Mapping[str, Mapping[str, tuple[Decimal, Decimal, Decimal]]]


def analyse_material_graph(nodes: Mapping[str, MaterialNode]) -> MaterialGraphAnalysis:
    """The analysis of the graph these nodes form (edges are their ``inputs``)."""
    with localcontext(DECIMAL_CONTEXT):
        return _analyse(nodes)


def _analyse(nodes: Mapping[str, MaterialNode]) -> MaterialGraphAnalysis:
    def successors(node_id: str) -> list[str]:
        return [e.source for e in nodes[node_id].inputs if e.source in nodes]

    components = strongly_connected(nodes, successors)
    cycles: list[tuple[str, ...]] = []
    in_cycle: set[str] = set()
    for component in components:
        single = component[0]
        if len(component) > 1 or single in successors(single):
            cycles.append(cycle_path(component, successors))
            in_cycle.update(component)

    expandable: set[str] = set()
    draws: dict[str, tuple[tuple[str, Decimal], ...]] = {}
    unresolved_inputs: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        usable_draws: list[tuple[str, Decimal]] = []
        blocked: list[str] = []
        for edge in node.inputs:
            source = nodes.get(edge.source)
            if source is None or not source.usable or source.batch_mass_kg is None:
                blocked.append(edge.source)
            else:
                usable_draws.append((edge.source, edge.mass_kg / source.batch_mass_kg))
        if node.kind is NodeKind.BATTERY:
            if not node.inputs_complete:  # an entry did not parse: its mass is unknown
                blocked.append(node.id)
            draws[node.id] = tuple(usable_draws)
            unresolved_inputs[node.id] = tuple(blocked)
        elif (node.inputs and node.inputs_complete and not blocked
              and node.id not in in_cycle):
            draws[node.id] = tuple(usable_draws)
            expandable.add(node.id)

    fractions: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    totals: dict[str, dict[str, tuple[Decimal, Decimal, Decimal]]] = {}
    for component in components:
        # Within a cycle the batches are opaque, so they go first; a battery last.
        for node_id in sorted(component, key=lambda n: nodes[n].kind is NodeKind.BATTERY):
            node = nodes[node_id]
            if node.kind is NodeKind.BATTERY:
                totals[node_id] = _blend(draws[node_id], nodes, fractions, None)
                fractions[node_id] = {
                    e: (r / m, u / m) if m else (ZERO, ZERO)
                    for e, (m, r, u) in totals[node_id].items()
                }
            elif not node.usable:
                continue
            elif node_id in expandable:
                blend = _blend(draws[node_id], nodes, fractions, node.elements)
                fractions[node_id] = {
                    e: (r / m, u / m) if m else (ZERO, ONE if node.element_mass(e) else ZERO)
                    for e, (m, r, u) in blend.items()
                }
            elif node.is_leaf:
                fractions[node_id] = {e: (_leaf_fraction(node, e), ZERO) for e in node.elements}
            else:
                fractions[node_id] = {e: (ZERO, ONE) for e in node.elements}
    return MaterialGraphAnalysis(tuple(cycles), frozenset(in_cycle), frozenset(expandable), draws,
                     unresolved_inputs, fractions, totals)


def _leaf_fraction(node: MaterialNode, element: str) -> Decimal:
    """Recycled fraction of a leaf: mined (and other primary) batches 0; a recycler's
    output its declared recycled mass (all of it when undeclared)."""
    mass = node.element_mass(element)
    if node.process_type != RECYCLING or mass == 0:
        return ZERO
    return node.effective_recycled(element) / mass


def _blend(
    draws: Sequence[tuple[str, Decimal]],
    nodes: Mapping[str, MaterialNode],
    fractions: Mapping[str, Mapping[str, tuple[Decimal, Decimal]]],
    only: Mapping[str, Any] | None,
) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """(element mass, recycled mass, unresolved mass) drawn from inputs, per element (all
    elements the inputs hold, or only those in ``only``)."""
    out: dict[str, list[Decimal]] = {e: [ZERO, ZERO, ZERO] for e in only or ()}
    for source_id, share in draws:
        source = nodes[source_id]
        source_fractions = fractions.get(source_id, {})
        for element, amount in source.elements.items():
            if only is not None and element not in only:
                continue
            drawn = amount.mass_kg * share
            recycled, unresolved = source_fractions.get(element, (ZERO, ONE))
            acc = out.setdefault(element, [ZERO, ZERO, ZERO])
            acc[0] += drawn
            acc[1] += recycled * drawn
            acc[2] += unresolved * drawn
    return {e: (v[0], v[1], v[2]) for e, v in out.items()}


def recycled_share_bounds(battery: str, element: str, analysis: MaterialGraphAnalysis
                          ) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(traced share, lowest, highest possible share) in %; all None if the battery drew
    none of the element and nothing is unresolved."""
    mass, recycled, unresolved = analysis.battery_totals[battery].get(
        element, (ZERO, ZERO, ZERO))
    blocked = bool(analysis.unresolved_inputs.get(battery))
    if mass == 0:
        return (None, ZERO, HUNDRED) if blocked else (None, None, None)
    share = recycled / mass * HUNDRED
    if blocked:
        return share, ZERO, HUNDRED
    return share, share, (recycled + unresolved) / mass * HUNDRED
