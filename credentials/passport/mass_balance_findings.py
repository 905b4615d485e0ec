"""What mass balance reports: the kinds of fault and one finding with its evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class MassBalanceFindingType(StrEnum):
    MASS_NOT_CONSERVED = "mass-not-conserved"
    ELEMENT_NOT_CONSERVED = "element-not-conserved"
    DOUBLE_COUNTED = "double-counted"
    UNKNOWN_INPUT = "unknown-input"
    RECYCLED_SHARE_OVERSTATED = "recycled-share-overstated"
    CYCLE = "cycle"
    #: A field is missing or not what the contract says (e.g. a mass that is not a decimal).
    MALFORMED_CREDENTIAL = "malformed-credential"
    #: Two credentials describe the same batch or battery differently; the first one is used.
    DUPLICATE_NODE = "duplicate-node"


@dataclass(frozen=True, slots=True)
class MassBalanceFinding:
    """One fault. ``nodes`` names the node at fault first, then the others involved (inputs,
    consumers, cycle members); ``evidence`` holds the masses the verdict rests on, as Decimals,
    so a reader can redo the arithmetic."""

    type: MassBalanceFindingType
    nodes: tuple[str, ...]
    message: str
    evidence: dict[str, Any] = field(default_factory=dict, hash=False)
    element: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": str(self.type), "nodes": list(self.nodes),
                               "message": self.message, "evidence": _jsonable(self.evidence)}
        if self.element is not None:
            out["element"] = self.element
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
