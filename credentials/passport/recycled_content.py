"""Recycled content of a battery and the EU minimums it must meet.

``recycled_content`` propagates recycled shares proportionally from the leaves (mined batches
0 %, recycler outputs their declared recycled mass) through every process to a battery, with
the batches the recycled mass came from and through as evidence. ``compare_with_minimums``
holds the shares against Regulation (EU) 2023/1542, Art. 8. Unresolved provenance is never
counted as recycled: it widens the bracket ``min_pct``..``max_pct`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum

from credentials.passport.decimals import DECIMAL_CONTEXT, ONE, ZERO
from credentials.passport.graph_algorithms import element_flows
from credentials.passport.material_graph import MaterialGraph
from credentials.passport.material_graph_analysis import recycled_share_bounds
from credentials.passport.material_nodes import NodeKind

#: Elements with an EU recycled-content minimum (Regulation (EU) 2023/1542, Art. 8).
REGULATED_ELEMENTS: tuple[str, ...] = ("Co", "Li", "Ni", "Pb")


@dataclass(frozen=True, slots=True)
class RecycledContribution:
    """A batch on the way to the battery: how much of the battery's element (and of its
    recycled element) came from or through it, and the route that carried most of it."""

    batch: str
    process_type: str | None
    element_mass_kg: Decimal
    recycled_mass_kg: Decimal
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecycledShare:
    """The recycled share of one element in one battery, with the evidence.

    ``share_pct`` is what the graph traces. When part of the provenance is unresolved
    (unknown or malformed inputs, cycles) ``min_pct``/``max_pct`` bracket the true share:
    unresolved material counted as 0 % and as 100 % recycled."""

    element: str
    element_mass_kg: Decimal
    recycled_mass_kg: Decimal
    share_pct: Decimal | None
    min_pct: Decimal | None
    max_pct: Decimal | None
    #: Leaves (recycler outputs) the recycled mass came from.
    sources: tuple[RecycledContribution, ...] = ()
    #: Intermediate batches the recycled mass passed through.
    via: tuple[RecycledContribution, ...] = ()
    #: Batches where provenance stops although they are not leaves (their ids).
    unresolved: tuple[str, ...] = ()
    unresolved_mass_kg: Decimal | None = ZERO
    declared_pct: Decimal | None = None

    @property
    def resolved(self) -> bool:
        return not self.unresolved


def recycled_content(graph: MaterialGraph, battery_did: str,
                     elements: Sequence[str] = REGULATED_ELEMENTS) -> dict[str, RecycledShare]:
    """Recycled share of each element in a battery, propagated proportionally from the
    leaves (mined batches 0 %, recycler outputs their declared recycled mass, 100 % when
    undeclared) through every process. Intermediate batches' own recycled claims are not
    trusted here (``check`` verifies them); the share follows the masses.

    Raises ``KeyError`` if no ``BatteryManufacturingCredential`` names the battery."""
    node = graph.nodes.get(battery_did)
    if node is None or node.kind is not NodeKind.BATTERY:
        raise KeyError(f"no BatteryManufacturingCredential for {battery_did}")
    with localcontext(DECIMAL_CONTEXT):
        analysis = graph.analysis
        nodes = graph.nodes

        def element_mass(node_id: str, element: str) -> Decimal:
            return nodes[node_id].element_mass(element)

        flows = element_flows(battery_did, analysis.draws, element_mass, elements,
                              analysis.expandable.__contains__)
        blocked = analysis.unresolved_inputs.get(battery_did, ())
        out: dict[str, RecycledShare] = {}
        for element in elements:
            mass, recycled, unresolved_mass = analysis.battery_totals[battery_did].get(
                element, (ZERO, ZERO, ZERO))
            share, low, high = recycled_share_bounds(battery_did, element, analysis)
            sources: list[RecycledContribution] = []
            via: list[RecycledContribution] = []
            unresolved: list[str] = list(blocked)
            for node_id in flows.order[1:]:
                flow = flows.flow[node_id].get(element, ZERO)
                if flow == 0:
                    continue
                fraction, unknown = analysis.fractions[node_id].get(element, (ZERO, ONE))
                terminal = flows.is_terminal(node_id, element)
                if terminal and unknown:
                    unresolved.append(node_id)
                if fraction == 0:
                    continue
                contribution = RecycledContribution(
                    node_id, nodes[node_id].process_type, flow, flow * fraction,
                    flows.path(battery_did, node_id, element))
                (sources if terminal else via).append(contribution)
            out[element] = RecycledShare(
                element=element, element_mass_kg=mass, recycled_mass_kg=recycled,
                share_pct=share, min_pct=low, max_pct=high,
                sources=tuple(sorted(sources, key=lambda c: (-c.recycled_mass_kg, c.batch))),
                via=tuple(via), unresolved=tuple(unresolved),
                unresolved_mass_kg=None if blocked else unresolved_mass,
                declared_pct=node.declared_recycled_pct.get(element),
            )
        return out


# --------------------------------------------------------------------------------------------
# EU minimums


#: Regulation (EU) 2023/1542 Art. 8(2) and 8(3): minimum recycled share, % by element.
RECYCLED_CONTENT_MINIMUMS: tuple[tuple[date, Mapping[str, Decimal]], ...] = (
    (date(2031, 8, 18), {"Co": Decimal(16), "Li": Decimal(6), "Ni": Decimal(6),
                         "Pb": Decimal(85)}),
    (date(2036, 8, 18), {"Co": Decimal(26), "Li": Decimal(12), "Ni": Decimal(15),
                         "Pb": Decimal(85)}),
)


class VerdictStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    #: Before 18 Aug 2031 there is no minimum; the share is still reported.
    NOT_YET_REQUIRED = "not-yet-required"
    #: The battery contains none of the element.
    NOT_APPLICABLE = "not-applicable"
    #: Unresolved provenance: the share could be on either side of the minimum.
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True, slots=True)
class ElementVerdict:
    element: str
    status: VerdictStatus
    share_pct: Decimal | None
    #: The minimum in force on the date (None before 2031).
    minimum_pct: Decimal | None
    #: When that minimum (or, before 2031, the first one) applies from.
    applies_from: date | None
    #: The minimum that applies from that date when none is in force yet.
    upcoming_minimum_pct: Decimal | None
    evidence: RecycledShare | None

    @property
    def passed(self) -> bool:
        return self.status in (VerdictStatus.PASS, VerdictStatus.NOT_YET_REQUIRED,
                               VerdictStatus.NOT_APPLICABLE)


def compare_with_minimums(shares: Mapping[str, RecycledShare], *, on: date
                          ) -> list[ElementVerdict]:
    """A verdict per regulated element (Co, Li, Ni, Pb) against the Art. 8 minimum in force
    ``on`` the given date. With unresolved provenance the bracket decides: pass only if even
    the lowest possible share meets the minimum, fail only if even the highest misses it."""
    in_force: tuple[date, Mapping[str, Decimal]] | None = None
    for start, minimums in RECYCLED_CONTENT_MINIMUMS:
        if on >= start:
            in_force = (start, minimums)
    verdicts: list[ElementVerdict] = []
    for element in REGULATED_ELEMENTS:
        share = shares.get(element)
        value = share.share_pct if share is not None else None
        if in_force is None:
            start, upcoming = RECYCLED_CONTENT_MINIMUMS[0]
            verdicts.append(ElementVerdict(
                element, VerdictStatus.NOT_YET_REQUIRED, value, None, start,
                upcoming.get(element), share))
            continue
        start, minimums = in_force
        minimum = minimums.get(element)
        if share is None or share.max_pct is None or minimum is None:
            status = VerdictStatus.NOT_APPLICABLE
        elif share.min_pct is not None and share.min_pct >= minimum:
            status = VerdictStatus.PASS
        elif share.max_pct < minimum:
            status = VerdictStatus.FAIL
        else:
            status = VerdictStatus.INDETERMINATE
        verdicts.append(ElementVerdict(element, status, value, minimum, start, None, share))
    return verdicts
