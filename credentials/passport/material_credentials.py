"""Reading batch and battery credentials as plain JSON into material-graph nodes.

The caller has verified the credentials; running JSON-LD per credential would make 10,000
batches take minutes. Bad data never raises: a missing field or a mass that is not a number
becomes a ``malformed-credential`` finding, and the field is left out of the node (None, or
missing from ``elements``/``inputs``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Any

from credentials.passport.decimals import DECIMAL_CONTEXT, HUNDRED, brief_repr, parse_decimal
from credentials.passport.mass_balance_findings import MassBalanceFinding, MassBalanceFindingType
from credentials.passport.material_nodes import (
    BATCH_CREDENTIAL_TYPES,
    BATTERY_CREDENTIAL_TYPE,
    DECLARED_SHARE_FIELDS,
    Edge,
    ElementAmount,
    MaterialNode,
    NodeKind,
)


def parse_material_credentials(
    credentials: Iterable[dict[str, Any]],
) -> tuple[dict[str, MaterialNode], list[MassBalanceFinding]]:
    """Nodes from ``RawMaterialOriginCredential``, ``MaterialBatchCredential`` and
    ``BatteryManufacturingCredential`` by id, and the findings about bad or conflicting data;
    other credentials (the rest of a passport, participants) are skipped."""
    nodes: dict[str, MaterialNode] = {}
    subjects: dict[str, Any] = {}
    findings: list[MassBalanceFinding] = []
    with localcontext(DECIMAL_CONTEXT):
        for index, credential in enumerate(credentials):
            for subject_, node, problems in _parse_credential(credential, index):
                if problems:
                    findings.append(_malformed(node.id if node else None, index,
                                               problems, node))
                if node is None:
                    continue
                if node.id in nodes:
                    if subjects[node.id] != subject_:
                        findings.append(MassBalanceFinding(
                            MassBalanceFindingType.DUPLICATE_NODE, (node.id,),
                            f"{node.id}: described by more than one credential with "
                            "different content; the first one is used",
                            {"credential_index": index},
                        ))
                    continue
                nodes[node.id] = node
                subjects[node.id] = subject_
    return nodes, findings


def _reference(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id", value.get("@id"))
    return value if isinstance(value, str) and value else None


def _optional_string(subject: Mapping[str, Any], name: str, problems: list[str], *,
                     required: bool) -> str | None:
    value = subject.get(name)
    if isinstance(value, str) and value:
        return value
    if value is not None or required:
        problems.append(f"{name} is {'missing' if value is None else brief_repr(value)}; "
                        "expected a non-empty string")
    return None


def _types(document: Mapping[str, Any]) -> list[str]:
    value = document.get("type")
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str)]


def _parse_credential(
    credential: Any, index: int
) -> list[tuple[Any, MaterialNode | None, list[str]]]:
    """(subject, node or None, problems) per relevant subject of one credential."""
    if not isinstance(credential, Mapping):
        return [(None, None, [f"credential is {type(credential).__name__}, not an object"])]
    types = _types(credential)
    if BATTERY_CREDENTIAL_TYPE in types:
        kind, credential_type = NodeKind.BATTERY, BATTERY_CREDENTIAL_TYPE
    else:
        batch_types = [t for t in types if t in BATCH_CREDENTIAL_TYPES]
        if not batch_types:
            return []
        kind, credential_type = NodeKind.BATCH, batch_types[0]
    subjects = credential.get("credentialSubject")
    if isinstance(subjects, Mapping):
        subjects = [subjects]
    if not isinstance(subjects, list) or not subjects:
        return [(None, None, ["credentialSubject is missing or not an object"])]
    out: list[tuple[Any, MaterialNode | None, list[str]]] = []
    for subject in subjects:
        problems: list[str] = []
        if not isinstance(subject, Mapping):
            out.append((subject, None, ["credentialSubject is not an object"]))
            continue
        node_id = _reference(subject.get("id"))
        if node_id is None:
            out.append((subject, None, ["credentialSubject.id is missing"]))
            continue
        if kind is NodeKind.BATTERY:
            node = _parse_battery(node_id, subject, problems)
        else:
            node = _parse_batch(node_id, credential_type, subject, problems)
        out.append((subject, node, problems))
    return out


def _parse_inputs(node_id: str, value: Any, name: str, problems: list[str], *,
                  required: bool) -> tuple[tuple[Edge, ...], bool]:
    if value is None:
        if required:
            problems.append(f"{name} is missing")
            return (), False
        return (), True
    if not isinstance(value, list):
        problems.append(f"{name} is {brief_repr(value)}, not a list")
        return (), False
    edges: list[Edge] = []
    complete = True
    for position, entry in enumerate(value):
        path = f"{name}[{position}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{path} is {brief_repr(entry)}, not an object")
            complete = False
            continue
        source = _reference(entry.get("batch"))
        if source is None:
            problems.append(f"{path}.batch is missing or not an id")
        mass = parse_decimal(entry.get("massKg"), f"{path}.massKg", problems)
        if source is None or mass is None:
            complete = False
            continue
        edges.append(Edge(source, node_id, mass))
    return tuple(edges), complete


def _parse_batch(node_id: str, credential_type: str, subject: Mapping[str, Any],
                 problems: list[str]) -> MaterialNode:
    origin = credential_type == "RawMaterialOriginCredential"
    material = _optional_string(subject, "material", problems, required=True)
    process_type = _optional_string(subject, "processType", problems, required=True)
    country = _optional_string(subject, "countryOfOrigin", problems, required=origin)
    site = _optional_string(subject, "productionSite", problems, required=True)
    usable = True
    batch_mass = parse_decimal(subject.get("batchMassKg"), "batchMassKg", problems,
                               positive=True)
    if batch_mass is None:
        usable = False
    elements: dict[str, ElementAmount] = {}
    raw_elements = subject.get("elementMass")
    if not isinstance(raw_elements, list):
        problems.append(f"elementMass is {brief_repr(raw_elements)}, not a list")
        usable = False
        raw_elements = []
    for position, entry in enumerate(raw_elements):
        path = f"elementMass[{position}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{path} is {brief_repr(entry)}, not an object")
            usable = False
            continue
        element = entry.get("element")
        if not isinstance(element, str) or not element:
            problems.append(f"{path}.element is {brief_repr(element)}, not an element symbol")
            usable = False
            continue
        if element in elements:
            problems.append(f"{path}: element {element} is listed twice")
            usable = False
            continue
        mass = parse_decimal(entry.get("massKg"), f"{path}.massKg", problems)
        recycled = None
        if entry.get("recycledMassKg") is not None:
            recycled = parse_decimal(entry.get("recycledMassKg"), f"{path}.recycledMassKg",
                                     problems)
            if recycled is None:
                usable = False
        if mass is None:
            usable = False
            continue
        elements[element] = ElementAmount(mass, recycled)
    inputs, complete = _parse_inputs(node_id, subject.get("input"), "input", problems,
                                     required=False)
    tolerance = None
    if subject.get("processLossTolerancePct") is not None:
        tolerance = parse_decimal(subject.get("processLossTolerancePct"),
                                  "processLossTolerancePct", problems)
        if tolerance is not None and tolerance > HUNDRED:
            problems.append(f"processLossTolerancePct is {tolerance}; it must be 0-100")
            tolerance = None
    return MaterialNode(
        id=node_id, kind=NodeKind.BATCH, credential_type=credential_type, material=material,
        process_type=process_type, batch_mass_kg=batch_mass, elements=elements, inputs=inputs,
        country=country, site=site, certifications=_certifications(subject, problems),
        declared_tolerance_pct=tolerance, usable=usable, inputs_complete=complete,
    )


def _certifications(subject: Mapping[str, Any], problems: list[str]) -> tuple[str, ...]:
    value = subject.get("certification")
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        problems.append(f"certification is {brief_repr(value)}, not a list of strings")
        return ()
    return tuple(values)


def _parse_battery(node_id: str, subject: Mapping[str, Any],
                   problems: list[str]) -> MaterialNode:
    inputs, complete = _parse_inputs(node_id, subject.get("materialInput"), "materialInput",
                                     problems, required=True)
    declared: dict[str, Decimal] = {}
    for element, name in DECLARED_SHARE_FIELDS.items():
        if subject.get(name) is not None:
            pct = parse_decimal(subject.get(name), name, problems)
            if pct is not None:
                declared[element] = pct
    return MaterialNode(id=node_id, kind=NodeKind.BATTERY,
                        credential_type=BATTERY_CREDENTIAL_TYPE, inputs=inputs,
                        declared_recycled_pct=declared, usable=False,
                        inputs_complete=complete)


def _malformed(node_id: str | None, index: int, problems: list[str],
               node: MaterialNode | None) -> MassBalanceFinding:
    name = node_id or f"credential[{index}]"
    consequence = ""
    if node is not None and node.kind is NodeKind.BATCH and not node.usable:
        consequence = "; its consumers cannot be traced through it"
    elif node is not None and not node.inputs_complete:
        consequence = "; it cannot be balanced or traced through"
    return MassBalanceFinding(
        MassBalanceFindingType.MALFORMED_CREDENTIAL, (name,),
        f"{name}: " + "; ".join(problems) + consequence,
        {"credential_index": index, "problems": list(problems)},
    )
