"""Carbon footprint and recycled content as declared in the manufacturing entry, held against
the EU recycled-content minimums of Art. 8 (from 18 August 2031 and from 18 August 2036).

Both come from public attributes (Annex XIII 1(c), 1(e)). The page shows the *declared*
shares: the mass-balance evidence behind them reads batch credentials whose element masses
are restricted (``bpc passport trace`` and the restricted sections are where that lives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from credentials.passport.recycled_content import RECYCLED_CONTENT_MINIMUMS

from .disclosure import RECYCLED_TERMS
from .entries import PageEntry, verified

ELEMENT_NAMES = {"Co": "Cobalt", "Li": "Lithium", "Ni": "Nickel", "Pb": "Lead"}
(FIRST_DATE, FIRST_MINIMUMS), (SECOND_DATE, SECOND_MINIMUMS) = RECYCLED_CONTENT_MINIMUMS


@dataclass(frozen=True, slots=True)
class CarbonFootprint:
    kg_co2e_per_kwh: Decimal
    performance_class: str | None
    #: Per kWh times the rated energy, when both are declared.
    total_kg_co2e: Decimal | None


@dataclass(frozen=True, slots=True)
class RecycledRow:
    element: str
    name: str
    declared_pct: Decimal | None
    minimum_first_pct: Decimal | None
    minimum_second_pct: Decimal | None

    @property
    def meets_first(self) -> bool | None:
        return _meets(self.declared_pct, self.minimum_first_pct)

    @property
    def meets_second(self) -> bool | None:
        return _meets(self.declared_pct, self.minimum_second_pct)


def _meets(declared: Decimal | None, minimum: Decimal | None) -> bool | None:
    return None if declared is None or minimum is None else declared >= minimum


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _manufacturing(entries: Sequence[PageEntry]) -> dict[str, Any] | None:
    made = verified(entries, "BatteryManufacturingCredential")
    return made[-1].subject if made else None


def carbon_footprint(entries: Sequence[PageEntry]) -> CarbonFootprint | None:
    subject = _manufacturing(entries)
    if subject is None:
        return None
    per_kwh = _decimal(subject.get("carbonFootprintKgCO2ePerKWh"))
    if per_kwh is None:
        return None
    energy = _decimal(subject.get("ratedEnergyKWh"))
    performance = subject.get("carbonFootprintPerformanceClass")
    return CarbonFootprint(per_kwh, performance if isinstance(performance, str) else None,
                           None if energy is None else (per_kwh * energy).quantize(Decimal(1)))


def recycled_content(entries: Sequence[PageEntry]) -> list[RecycledRow]:
    subject = _manufacturing(entries) or {}
    return [RecycledRow(element, ELEMENT_NAMES[element], _decimal(subject.get(term)),
                        FIRST_MINIMUMS.get(element), SECOND_MINIMUMS.get(element))
            for element, term in RECYCLED_TERMS.items()]


def minimum_dates() -> tuple[date, date]:
    return FIRST_DATE, SECOND_DATE


__all__ = ["CarbonFootprint", "RecycledRow", "carbon_footprint", "minimum_dates",
           "recycled_content"]
