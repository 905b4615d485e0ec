"""Graph algorithms shared by mass balance and ``trace``: strongly connected components, a
concrete cycle through one, and how a root's element mass splits over its ancestry. They
work on any graph given as node ids and a successor function, and are linear in its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from credentials.passport.decimals import ONE, ZERO


def strongly_connected(nodes: Iterable[str],
                       successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion (a 10,000-deep chain must not overflow the
    stack). Components come out successors first, i.e. inputs before their consumers."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors(root)))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors(child))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def cycle_path(component: Sequence[str],
               successors: Callable[[str], Iterable[str]]) -> tuple[str, ...]:
    """One concrete cycle through the first member of a strongly connected component
    (shortest, by breadth-first search), as evidence a person can follow."""
    start = component[0]
    members = set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in successors(node):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return tuple(reversed(path))
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return tuple(component)


@dataclass(slots=True)
class Flows:
    """How the element mass a root (a battery) drew splits over its ancestry."""

    #: Ancestry in topological order, root first: every node after all its consumers.
    order: list[str]
    #: Per node and element: element mass that reaches the root from or through this node.
    flow: dict[str, dict[str, Decimal]]
    #: Per node: element mass available from its inputs (only for nodes traced through).
    available: dict[str, dict[str, Decimal]]
    #: Per (node, element): the consumer that passed on the largest part of its flow.
    best_consumer: dict[tuple[str, str], str]

    def is_terminal(self, node: str, element: str) -> bool:
        """Provenance of ``element`` stops here: a leaf, a node not traced through, or one
        whose inputs hold none of the element it declares."""
        return self.available.get(node, {}).get(element, ZERO) == 0

    def path(self, root: str, node: str, element: str) -> tuple[str, ...]:
        """root -> ... -> node along the consumers that carried the most."""
        path = [node]
        while path[-1] != root and len(path) <= len(self.order):
            path.append(self.best_consumer[(path[-1], element)])
        return tuple(reversed(path))


def element_flows(
    root: str,
    draws: Mapping[str, Sequence[tuple[str, Decimal]]],
    element_mass: Callable[[str, str], Decimal],
    elements: Sequence[str],
    expandable: Callable[[str], bool],
) -> Flows:
    """Split a root's element mass over its ancestry in proportion to what each input
    supplied (element mass of the input x share of it used). ``draws`` maps a node to its
    (input, share used); ``expandable`` says which nodes to trace through and must exclude
    cycle members (the walk relies on an acyclic expansion). Linear in the ancestry size."""
    postorder: list[str] = []
    seen = {root}
    work = [(root, iter(draws.get(root, ())))]
    while work:
        node, children = work[-1]
        for source, _share in children:
            if source not in seen:
                seen.add(source)
                grand = draws.get(source, ()) if expandable(source) else ()
                work.append((source, iter(grand)))
                break
        else:
            work.pop()
            postorder.append(node)
    order = postorder[::-1]
    flow: dict[str, dict[str, Decimal]] = {node: {} for node in order}
    available: dict[str, dict[str, Decimal]] = {}
    best: dict[tuple[str, str], tuple[Decimal, str]] = {}
    for node in order:
        if node != root and not expandable(node):
            continue
        children = draws.get(node, ())
        if not children:
            continue
        node_available = {
            element: sum((element_mass(source, element) * share for source, share in children),
                         ZERO)
            for element in elements
        }
        available[node] = node_available
        node_flow = flow[node]
        for element in elements:
            total = node_available[element]
            if total == 0:
                continue
            factor = ONE if node == root else node_flow.get(element, ZERO) / total
            if factor == 0:
                continue
            for source, share in children:
                supplied = element_mass(source, element) * share
                if supplied == 0:
                    continue
                part = supplied * factor
                source_flow = flow[source]
                source_flow[element] = source_flow.get(element, ZERO) + part
                key = (source, element)
                if key not in best or part > best[key][0]:
                    best[key] = (part, node)
    return Flows(order, flow, available, {k: v[1] for k, v in best.items()})
