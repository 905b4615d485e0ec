"""Mass balance over material batches: are the masses and recycled shares a battery claims
backed by the batches it was made from? (``vocab/PASSPORT.md``, section "Mass balance".)

``check`` balances every process and every batch: conservation of batch and element mass
within the declared loss tolerance, double counting of a batch by its consumers, inputs no
credential describes, recycled masses and battery shares the inputs cannot supply, and
cycles. All arithmetic is ``decimal.Decimal`` on the ``xsd:decimal`` strings. Bad data never
raises: it is a finding, and whatever cannot be checked because of it is named by it.

The graph, the recycled-content propagation and the EU minimums live in their own modules;
``MaterialGraph``, ``recycled_content`` and ``compare_with_minimums`` are re-exported here for
callers that import the whole mass balance from one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from credentials.passport.decimals import DECIMAL_CONTEXT, HUNDRED, ONE, ZERO
from credentials.passport.mass_balance_findings import MassBalanceFinding, MassBalanceFindingType
from credentials.passport.material_graph import MaterialGraph
from credentials.passport.material_graph_analysis import (
    MaterialGraphAnalysis,
    recycled_share_bounds,
)
from credentials.passport.material_nodes import RECYCLING, Edge, MaterialNode, NodeKind
from credentials.passport.recycled_content import compare_with_minimums, recycled_content

__all__ = ["MaterialGraph", "check", "compare_with_minimums", "recycled_content"]

#: Slack for quotients (share of a batch used): they are rounded at 34 digits while declared
#: masses have a handful of decimals, so a microgram is far below anything a credential states.
EPSILON_KG = Decimal("1e-9")
#: A battery's declared recycled share (e.g. "16.0") may be rounded half-up to one decimal.
DECLARED_PCT_SLACK = Decimal("0.05")
_GRAM = Decimal("0.001")


def check(graph: MaterialGraph) -> list[MassBalanceFinding]:
    """Every mass-balance fault in the graph, parse findings first. Never raises for bad
    data: what cannot be checked because of it is named by the finding about that data."""
    with localcontext(DECIMAL_CONTEXT):
        analysis = graph.analysis
        findings = list(graph.parse_findings)
        nodes = graph.nodes
        for input_id, edges in graph.consumers.items():
            if input_id not in nodes:
                findings.append(_unknown_input(input_id, edges))
        for node in nodes.values():
            if node.kind is NodeKind.BATCH and node.usable:
                findings.extend(_check_batch(node, nodes))
        for input_id, edges in graph.consumers.items():
            source = nodes.get(input_id)
            if source is not None and source.batch_mass_kg is not None:
                finding = _double_counted(source, edges)
                if finding is not None:
                    findings.append(finding)
        for cycle in analysis.cycles:
            findings.append(_cycle(cycle, nodes))
        for battery in graph.batteries:
            findings.extend(_check_battery_claims(nodes[battery], analysis))
        return findings


def _unknown_input(input_id: str, edges: Sequence[Edge]) -> MassBalanceFinding:
    consumers = tuple(dict.fromkeys(e.target for e in edges))
    return MassBalanceFinding(
        MassBalanceFindingType.UNKNOWN_INPUT, (input_id, *consumers),
        f"{input_id}: no credential describes this batch, yet "
        f"{', '.join(consumers)} claim{'s' if len(consumers) == 1 else ''} "
        f"{_kg(sum((e.mass_kg for e in edges), ZERO))} of it; their masses and recycled "
        "content cannot be traced through it",
        {"claims": [{"consumer": e.target, "mass_kg": e.mass_kg} for e in edges]},
    )


def _kg(value: Decimal) -> str:
    return f"{value.quantize(_GRAM) if value.adjusted() < 24 else value:f} kg"


def _check_batch(node: MaterialNode, nodes: Mapping[str, MaterialNode]
                 ) -> list[MassBalanceFinding]:
    out: list[MassBalanceFinding] = []
    assert node.batch_mass_kg is not None  # usable
    output = node.batch_mass_kg
    tolerance = node.tolerance_pct
    keep = ONE - tolerance / HUNDRED
    element_total = sum((a.mass_kg for a in node.elements.values()), ZERO)
    if element_total > output + EPSILON_KG:
        out.append(MassBalanceFinding(
            MassBalanceFindingType.ELEMENT_NOT_CONSERVED, (node.id,),
            f"{node.id}: its element masses add up to {_kg(element_total)}, more than the "
            f"batch's {_kg(output)}",
            {"batch_mass_kg": output, "element_mass_sum_kg": element_total},
        ))
    for element, amount in node.elements.items():
        if amount.recycled_mass_kg is not None and amount.recycled_mass_kg > amount.mass_kg:
            out.append(_overstated(node, element, amount.recycled_mass_kg, amount.mass_kg,
                                   f"more than its {_kg(amount.mass_kg)} of {element}", []))
    if node.is_leaf:
        if node.process_type != RECYCLING:
            for element, amount in node.elements.items():
                recycled = amount.recycled_mass_kg
                if recycled and recycled <= amount.mass_kg:  # else already reported above
                    out.append(_overstated(
                        node, element, recycled, ZERO,
                        f"but a {node.process_type or 'primary'} batch with no inputs has "
                        "no recycled material", []))
        return out
    if not node.inputs_complete:
        return out
    input_total = sum((e.mass_kg for e in node.inputs), ZERO)
    inputs_evidence = [{"batch": e.source, "mass_kg": e.mass_kg} for e in node.inputs]
    if output > input_total + EPSILON_KG or output < input_total * keep - EPSILON_KG:
        excess = output > input_total
        out.append(MassBalanceFinding(
            MassBalanceFindingType.MASS_NOT_CONSERVED,
            (node.id, *dict.fromkeys(e.source for e in node.inputs)),
            f"{node.id}: batchMassKg {_kg(output)} "
            + (f"exceeds the {_kg(input_total)} of inputs it was made from" if excess else
               f"is below the {_kg(input_total * keep)} its {_kg(input_total)} of inputs "
               f"must yield with a loss tolerance of {tolerance} %"),
            {"batch_mass_kg": output, "input_mass_kg": input_total,
             "loss_tolerance_pct": tolerance, "minimum_output_kg": input_total * keep,
             "inputs": inputs_evidence},
        ))
    sources = [(e, nodes.get(e.source)) for e in node.inputs]
    if any(s is None or not s.usable or s.batch_mass_kg is None for _, s in sources):
        return out  # unknown-input / malformed findings say why
    draws = []
    for edge, source in sources:
        assert source is not None and source.batch_mass_kg is not None
        draws.append((edge, source, edge.mass_kg / source.batch_mass_kg))

    def evidence(element: str) -> list[dict[str, Any]]:
        return [{"batch": source.id, "mass_kg": edge.mass_kg,
                 "batch_mass_kg": source.batch_mass_kg, "share_used": share,
                 "element_mass_kg": source.element_mass(element) * share,
                 "recycled_mass_kg": source.effective_recycled(element) * share}
                for edge, source, share in draws]

    for element, amount in node.elements.items():
        available = ZERO
        recyclable = ZERO
        for _edge, source, share in draws:
            if element in source.elements:
                available += source.element_mass(element) * share
                recyclable += source.effective_recycled(element) * share
        if amount.mass_kg > available + EPSILON_KG or (
                amount.mass_kg < available * keep - EPSILON_KG):
            excess = amount.mass_kg > available
            out.append(MassBalanceFinding(
                MassBalanceFindingType.ELEMENT_NOT_CONSERVED,
                (node.id, *dict.fromkeys(e.source for e in node.inputs)),
                f"{node.id}: declares {_kg(amount.mass_kg)} of {element} but "
                + (f"its inputs supply only {_kg(available)}" if excess else
                   f"its inputs supply {_kg(available)}, so at least "
                   f"{_kg(available * keep)} must remain with a loss tolerance of "
                   f"{tolerance} %"),
                {"element_mass_kg": amount.mass_kg, "available_kg": available,
                 "loss_tolerance_pct": tolerance, "inputs": evidence(element)},
                element,
            ))
        recycled = amount.recycled_mass_kg
        if recycled is not None and recycled <= amount.mass_kg and (
                recycled > recyclable + EPSILON_KG):
            out.append(_overstated(node, element, recycled, recyclable,
                                   f"but its inputs supply only {_kg(recyclable)} of recycled "
                                   f"{element}", evidence(element)))
    return out


def _overstated(node: MaterialNode, element: str, claimed: Decimal, supported: Decimal,
                why: str, drawn: list[dict[str, Any]]) -> MassBalanceFinding:
    return MassBalanceFinding(
        MassBalanceFindingType.RECYCLED_SHARE_OVERSTATED,
        (node.id, *dict.fromkeys(e.source for e in node.inputs)),
        f"{node.id}: claims {_kg(claimed)} of recycled {element} {why}",
        {"recycled_mass_kg": claimed, "supported_kg": supported, "inputs": drawn},
        element,
    )


def _double_counted(source: MaterialNode, edges: Sequence[Edge]) -> MassBalanceFinding | None:
    assert source.batch_mass_kg is not None
    claimed = sum((e.mass_kg for e in edges), ZERO)
    if claimed <= source.batch_mass_kg + EPSILON_KG:
        return None
    consumers = tuple(dict.fromkeys(e.target for e in edges))
    return MassBalanceFinding(
        MassBalanceFindingType.DOUBLE_COUNTED, (source.id, *consumers),
        f"{source.id}: its consumers {', '.join(consumers)} claim {_kg(claimed)} of it, "
        f"more than its batchMassKg {_kg(source.batch_mass_kg)}",
        {"batch_mass_kg": source.batch_mass_kg, "claimed_kg": claimed,
         "claims": [{"consumer": e.target, "mass_kg": e.mass_kg} for e in edges]},
    )


def _cycle(cycle: tuple[str, ...], nodes: Mapping[str, MaterialNode]) -> MassBalanceFinding:
    edges = []
    for position, consumer in enumerate(cycle):
        source = cycle[(position + 1) % len(cycle)]
        mass = sum((e.mass_kg for e in nodes[consumer].inputs if e.source == source), ZERO)
        edges.append({"consumer": consumer, "input": source, "mass_kg": mass})
    route = " <- ".join((*cycle, cycle[0]))
    return MassBalanceFinding(
        MassBalanceFindingType.CYCLE, cycle,
        f"{cycle[0]} is its own ancestor ({route}); batches in the cycle are not traced "
        "through",
        {"edges": edges},
    )


def _check_battery_claims(battery: MaterialNode, analysis: MaterialGraphAnalysis
                          ) -> list[MassBalanceFinding]:
    out = []
    for element, declared in battery.declared_recycled_pct.items():
        bounds = recycled_share_bounds(battery.id, element, analysis)
        share, _low, high = bounds
        if high is None or declared <= high + DECLARED_PCT_SLACK:
            continue
        out.append(MassBalanceFinding(
            MassBalanceFindingType.RECYCLED_SHARE_OVERSTATED, (battery.id,),
            f"{battery.id}: declares {declared} % recycled {element}, but its inputs support "
            f"at most {high:.2f} %",
            {"declared_pct": declared, "traced_pct": share, "max_pct": high,
             "element_mass_kg": analysis.battery_totals[battery.id].get(
                 element, (ZERO, ZERO, ZERO))[0]},
            element,
        ))
    return out
