"""The nodes and edges of a material graph: a batch or battery as its credential states it,
and the ``BatchInput`` mass that links a batch to what was made from it
(``vocab/PASSPORT.md``, section "Mass balance").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from credentials.passport.decimals import ZERO

#: PASSPORT.md: ``processLossTolerancePct`` defaults to "5".
DEFAULT_TOLERANCE_PCT = Decimal(5)
#: Battery subject fields that declare a recycled share (samples.py names; Pb by analogy).
DECLARED_SHARE_FIELDS: Mapping[str, str] = {
    "Co": "recycledContentCobaltPct",
    "Li": "recycledContentLithiumPct",
    "Ni": "recycledContentNickelPct",
    "Pb": "recycledContentLeadPct",
}

BATCH_CREDENTIAL_TYPES: frozenset[str] = frozenset(
    {"RawMaterialOriginCredential", "MaterialBatchCredential"}
)
BATTERY_CREDENTIAL_TYPE = "BatteryManufacturingCredential"
MINING = "mining"
RECYCLING = "recycling"


class NodeKind(StrEnum):
    BATCH = "MaterialBatch"
    BATTERY = "Battery"


@dataclass(frozen=True, slots=True)
class Edge:
    """``mass_kg`` of batch ``source`` went into ``target`` (a batch or a battery)."""

    source: str
    target: str
    mass_kg: Decimal


@dataclass(frozen=True, slots=True)
class ElementAmount:
    mass_kg: Decimal
    #: None when the credential does not say (PASSPORT.md default "0"; a recycler's leaf
    #: batch without it is read as all recycled, see ``MaterialNode.effective_recycled``).
    recycled_mass_kg: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MaterialNode:
    """A batch or battery as its credential states it. Fields that did not parse are None
    (or missing from ``elements``/``inputs``) and the reason is a malformed finding."""

    id: str
    kind: NodeKind
    credential_type: str
    material: str | None = None
    process_type: str | None = None
    batch_mass_kg: Decimal | None = None
    elements: Mapping[str, ElementAmount] = field(default_factory=dict)
    inputs: tuple[Edge, ...] = ()
    country: str | None = None
    site: str | None = None
    certifications: tuple[str, ...] = ()
    #: As declared; None means the default of 5 %.
    declared_tolerance_pct: Decimal | None = None
    #: A battery's declared recycled shares, by element.
    declared_recycled_pct: Mapping[str, Decimal] = field(default_factory=dict)
    #: batchMassKg and every element mass parsed: consumers can compute what they drew.
    usable: bool = True
    #: Every input entry parsed: the process can be balanced and traced through.
    inputs_complete: bool = True

    @property
    def tolerance_pct(self) -> Decimal:
        if self.declared_tolerance_pct is None:
            return DEFAULT_TOLERANCE_PCT
        return self.declared_tolerance_pct

    @property
    def is_leaf(self) -> bool:
        """A batch with no inputs: a mine's batch or a recycler's output (or an origin
        credential whose feed is not credentialed)."""
        return self.kind is NodeKind.BATCH and not self.inputs and self.inputs_complete

    def element_mass(self, element: str) -> Decimal:
        amount = self.elements.get(element)
        return amount.mass_kg if amount is not None else ZERO

    def effective_recycled(self, element: str) -> Decimal:
        """The recycled mass this batch claims, capped at its element mass. PASSPORT.md:
        recycler outputs are all recycled, so a recycling leaf that omits the field counts
        as 100 %; any other batch that omits it claims 0."""
        amount = self.elements.get(element)
        if amount is None:
            return ZERO
        if amount.recycled_mass_kg is None:
            return amount.mass_kg if self.is_leaf and self.process_type == RECYCLING else ZERO
        return min(amount.recycled_mass_kg, amount.mass_kg)
