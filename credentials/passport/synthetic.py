"""Synthetic supply chains for tests and benchmarks (``bpc bench passport``): unsigned batch
and battery credentials for a consistent NMC811 chain of any size, reproducible from a seed.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any

from credentials.did_key import key_from_seed
from credentials.passport.decimals import DECIMAL_CONTEXT, ONE, ZERO
from credentials.passport.material_graph import MaterialGraph
from credentials.passport.material_graph_analysis import recycled_share_bounds
from credentials.passport.material_nodes import (
    BATTERY_CREDENTIAL_TYPE,
    DECLARED_SHARE_FIELDS,
    MINING,
    RECYCLING,
)
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2

_GRAM = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class _Source:
    element: str
    material: str
    concentrations: Mapping[str, tuple[float, float]]
    places: tuple[tuple[str, str], ...]
    mass_kg: tuple[int, int]


_MINES: tuple[tuple[_Source, float], ...] = (
    (_Source("Ni", "nickel mixed hydroxide precipitate",
             {"Ni": (0.35, 0.42), "Co": (0.02, 0.04)},
             (("ID", "Morowali HPAL"), ("ID", "Weda Bay"), ("AU", "Murrin Murrin"),
              ("PH", "Coral Bay"), ("CA", "Sudbury"), ("NC", "Goro")), (20_000, 80_000)), 0.38),
    (_Source("Co", "cobalt hydroxide concentrate", {"Co": (0.28, 0.34)},
             (("CD", "Kolwezi"), ("CD", "Likasi"), ("CD", "Tenke"), ("AU", "Kalgoorlie"),
              ("MA", "Bou Azzer")), (20_000, 60_000)), 0.17),
    (_Source("Li", "spodumene concentrate", {"Li": (0.026, 0.030)},
             (("AU", "Greenbushes"), ("AU", "Pilgangoora"), ("BR", "Jequitinhonha"),
              ("CL", "Salar de Atacama"), ("AR", "Hombre Muerto")), (60_000, 160_000)), 0.30),
    (_Source("Mn", "manganese ore", {"Mn": (0.38, 0.48)},
             (("ZA", "Kalahari"), ("GA", "Moanda"), ("AU", "Groote Eylandt")),
             (20_000, 60_000)), 0.15),
)
#: Refined product, places, mass loss range, declared tolerance: reagents carry no
#: credentials, so the contract's balance (output <= inputs) holds on the traced masses only.
_REFINERIES: Mapping[str, tuple[str, tuple[tuple[str, str], ...], tuple[float, float], str]] = {
    "Ni": ("nickel sulfate", (("FI", "Harjavalta"), ("JP", "Niihama"), ("ID", "Morowali"),
                              ("CN", "Jinchang")), (0.05, 0.15), "20"),
    "Co": ("cobalt sulfate", (("FI", "Kokkola"), ("BE", "Olen"), ("CN", "Quzhou")),
           (0.05, 0.15), "20"),
    "Li": ("lithium hydroxide monohydrate", (("DE", "Bitterfeld"), ("AU", "Kwinana"),
                                             ("CN", "Yichun"), ("CL", "Antofagasta")),
           (0.60, 0.72), "80"),
    "Mn": ("manganese sulfate", (("ZA", "Nelspruit"), ("BE", "Tessenderlo"),
                                 ("CN", "Guiyang")), (0.05, 0.15), "20"),
}
_RECYCLERS: tuple[tuple[str, Mapping[str, tuple[float, float]]], ...] = (
    ("recycled nickel-cobalt-manganese sulfate",
     {"Ni": (0.16, 0.20), "Co": (0.02, 0.025), "Mn": (0.02, 0.025)}),
    ("recycled lithium carbonate", {"Li": (0.17, 0.185)}),
)
_RECYCLING_PLACES = (("DE", "Salzgitter"), ("NO", "Fredrikstad"), ("BE", "Hoboken"),
                     ("PL", "Zawiercie"), ("FR", "Dunkerque"), ("SE", "Vasteras"))
_CATHODE_PLACES = (("PL", "Nysa"), ("FI", "Hamina"), ("DE", "Schwarzheide"),
                   ("HU", "Ivancsa"), ("KR", "Gwangyang"))
_CERTIFICATIONS = ("IRMA 75", "RMI RMAP conformant", "ISO 14001", "ISO 45001",
                   "ResponsibleSteel", "Cobalt Industry Responsible Assessment Framework")
#: A draw smaller than this is not made: tiny element masses rounded to grams would break
#: the tolerance arithmetic by a rounding step.
_MIN_DRAW_KG = Decimal(10)


def _q(value: Decimal) -> Decimal:
    return value.quantize(_GRAM, rounding=ROUND_DOWN)


def _dec(rng: random.Random, low: float, high: float) -> Decimal:
    return Decimal(f"{rng.uniform(low, high):.6f}")


@dataclass(slots=True)
class _Batch:
    id: str
    mass: Decimal
    elements: dict[str, Decimal]
    recycled: dict[str, Decimal]
    remaining: Decimal


class _Generator:
    """Builds a consistent supply chain tier by tier; every number it writes is a gram-
    rounded Decimal and every later computation uses exactly the written values, so the
    checker redoing the arithmetic reaches the same verdicts."""

    def __init__(self, rng: random.Random, start: date) -> None:
        self.rng = rng
        self.start = start
        self.credentials: list[dict[str, Any]] = []
        self.pools: dict[str, list[_Batch]] = defaultdict(list)

    def urn(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def emit(self, credential_type: str, subject: dict[str, Any], issuer: str,
             day: int) -> None:
        issued = datetime.combine(self.start + timedelta(days=day), datetime.min.time(), UTC)
        self.credentials.append({
            "@context": [CREDENTIALS_V2, BATTERY_CONTEXT_V1],
            "id": self.urn(),
            "type": ["VerifiableCredential", credential_type],
            "issuer": issuer,
            "validFrom": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": subject,
        })

    def draw(self, pool: str, *, fraction: tuple[float, float] | None = None,
             wanted: Decimal | None = None,
             element: str | None = None) -> tuple[_Batch, Decimal] | None:
        """Take from one batch with stock left: a random fraction of its stock, or enough
        for ``wanted`` kg (of ``element`` when given) capped at 90 % of it. None if the pool
        has nothing worth drawing."""
        batches = self.pools[pool]
        if not batches:
            return None
        for _attempt in range(8):
            batch = self.rng.choice(batches)
            if batch.remaining >= _MIN_DRAW_KG * 2:
                break
        else:
            candidates = [b for b in batches if b.remaining >= _MIN_DRAW_KG * 2]
            if not candidates:
                return None
            batch = self.rng.choice(candidates)
        if wanted is not None:
            if element is not None:
                content = batch.elements.get(element, ZERO)
                if content == 0:
                    return None
                wanted = wanted * batch.mass / content
            amount = min(wanted, batch.remaining * Decimal("0.9"))
        else:
            assert fraction is not None
            amount = batch.remaining * _dec(self.rng, *fraction)
        amount = _q(amount)
        if amount < _MIN_DRAW_KG:
            return None
        batch.remaining -= amount
        return batch, amount

    def place(self, places: Sequence[tuple[str, str]]) -> tuple[str, str, str]:
        country, site = self.rng.choice(places)
        slug = site.lower().replace(" ", "-")
        return country, f"{site}, {country}", f"did:web:{slug}.{country.lower()}.example"

    def certifications(self, low: int, high: int) -> list[str]:
        return self.rng.sample(_CERTIFICATIONS, self.rng.randint(low, high))

    def produce(self, pool: str, credential_type: str, process: str, material: str,
                drawn: Sequence[tuple[_Batch, Decimal]], loss: tuple[float, float],
                retention: tuple[float, float], tolerance: str | None,
                places: Sequence[tuple[str, str]], day: int, *,
                origin_fields: bool) -> None:
        """One process step: output mass and element masses within the declared loss
        tolerance, recycled masses proportional to what the inputs supply."""
        available: dict[str, Decimal] = defaultdict(Decimal)
        recyclable: dict[str, Decimal] = defaultdict(Decimal)
        for batch, amount in drawn:
            share = amount / batch.mass
            for element, mass in batch.elements.items():
                available[element] += mass * share
                recyclable[element] += batch.recycled.get(element, ZERO) * share
        total_in = sum((amount for _, amount in drawn), ZERO)
        mass = _q(total_in * (ONE - _dec(self.rng, *loss)))
        elements: dict[str, Decimal] = {}
        recycled: dict[str, Decimal] = {}
        for element, supply in available.items():
            keep = _dec(self.rng, *retention)
            elements[element] = _q(supply * keep)
            if recyclable[element]:
                recycled[element] = _q(recyclable[element] * keep)
        batch_id = self.urn()
        country, site, issuer = self.place(places)
        subject: dict[str, Any] = {
            "id": batch_id, "type": "MaterialBatch", "material": material,
            "processType": process, "batchMassKg": format(mass, "f"),
            "elementMass": [_element_entry(e, m, recycled.get(e)) for e, m in elements.items()],
            "input": [{"batch": b.id, "massKg": format(a, "f")} for b, a in drawn],
            "productionSite": site, "countryOfOrigin": country,
        }
        if tolerance is not None:
            subject["processLossTolerancePct"] = tolerance
        if origin_fields:
            subject["certification"] = self.certifications(0, 2)
        self.emit(credential_type, subject, issuer, day)
        self.pools[pool].append(_Batch(batch_id, mass, elements, recycled, mass))


def _element_entry(element: str, mass: Decimal, recycled: Decimal | None) -> dict[str, str]:
    entry = {"element": element, "massKg": format(mass, "f")}
    if recycled is not None:
        entry["recycledMassKg"] = format(recycled, "f")
    return entry


def _tier_counts(n_batches: int) -> dict[str, int]:
    mines = max(4, round(n_batches * 0.22))
    refiners = max(4, round(n_batches * 0.22))
    recyclers = max(2, round(n_batches * 0.08))
    precursors = max(1, round(n_batches * 0.20))
    cathodes = n_batches - mines - refiners - recyclers - precursors
    return {"mines": mines, "refiners": refiners, "recyclers": recyclers,
            "precursors": precursors, "cathodes": cathodes}


def synthetic_batch_graph(n_batches: int, rng: random.Random, *,
                          batteries: int | None = None,
                          start: date = date(2026, 1, 5)) -> list[dict[str, Any]]:
    """Unsigned credential dicts for a consistent NMC811 supply chain: mines -> refiners ->
    precursor (virgin + recycled Ni/Co/Mn) -> cathode active material (+ virgin and recycled
    lithium) -> batteries. Exactly ``n_batches`` batch credentials plus ``batteries``
    ``BatteryManufacturingCredential``s (default n_batches // 10); ``check`` finds nothing
    in it, and each battery declares the recycled shares the graph supports (rounded down).
    Same rng seed, same output."""
    counts = _tier_counts(n_batches)
    if counts["cathodes"] < 1:
        raise ValueError(f"{n_batches} batches are too few for every tier; use 14 or more")
    with localcontext(DECIMAL_CONTEXT):
        return _synthesise(counts, n_batches // 10 if batteries is None else batteries,
                           _Generator(rng, start))


def _synthesise(counts: Mapping[str, int], batteries: int,
                gen: _Generator) -> list[dict[str, Any]]:
    rng = gen.rng
    weights = [w for _, w in _MINES]
    # Every kind of mine and refinery at least once, the rest by weight.
    mine_kinds = [s for s, _ in _MINES] + rng.choices(
        [s for s, _ in _MINES], weights, k=counts["mines"] - len(_MINES))
    for source in mine_kinds:
        country, site, issuer = gen.place(source.places)
        mass = Decimal(rng.randint(*source.mass_kg))
        elements = {e: _q(mass * _dec(rng, *c)) for e, c in source.concentrations.items()}
        batch_id = gen.urn()
        gen.emit("RawMaterialOriginCredential", {
            "id": batch_id, "type": "MaterialBatch", "material": source.material,
            "processType": MINING, "batchMassKg": format(mass, "f"),
            "elementMass": [_element_entry(e, m, None) for e, m in elements.items()],
            "countryOfOrigin": country, "productionSite": site,
            "certification": gen.certifications(0, 3),
        }, issuer, rng.randrange(0, 60))
        gen.pools[f"ore-{source.element}"].append(_Batch(batch_id, mass, elements, {}, mass))
    refined_kinds = [s.element for s, _ in _MINES] + rng.choices(
        [s.element for s, _ in _MINES], weights, k=counts["refiners"] - len(_MINES))
    for element in refined_kinds:
        material, places, loss, tolerance = _REFINERIES[element]
        drawn = [d for d in (gen.draw(f"ore-{element}", fraction=(0.15, 0.45))
                             for _ in range(rng.randint(1, 3))) if d]
        drawn = _merge(drawn)
        if drawn:
            gen.produce(element, "RawMaterialOriginCredential", "refining", material, drawn,
                        loss, (0.97, 0.995), tolerance, places, 60 + rng.randrange(60),
                        origin_fields=True)
        else:  # the ore is used up: a refinery batch from uncredentialed feed
            _primary_refined(gen, element, material, places)
    for position in range(counts["recyclers"]):
        # Both products at least once; then 60 % mixed sulfate, 40 % lithium carbonate.
        lithium = position == 1 or (position > 1 and rng.random() < 0.4)
        material, concentrations = _RECYCLERS[int(lithium)]
        mass = Decimal(rng.randint(2_000, 10_000))
        elements = {e: _q(mass * _dec(rng, *c)) for e, c in concentrations.items()}
        batch_id = gen.urn()
        country, site, issuer = gen.place(_RECYCLING_PLACES)
        gen.emit("MaterialBatchCredential", {
            "id": batch_id, "type": "MaterialBatch", "material": material,
            "processType": RECYCLING, "batchMassKg": format(mass, "f"),
            "elementMass": [_element_entry(e, m, m) for e, m in elements.items()],
            "productionSite": site, "countryOfOrigin": country,
        }, issuer, rng.randrange(0, 120))
        pool = "recycled-Li" if "Li" in elements else "recycled-NiCoMn"
        gen.pools[pool].append(_Batch(batch_id, mass, elements, dict(elements), mass))
    for _ in range(counts["precursors"]):
        _precursor(gen)
    for _ in range(counts["cathodes"]):
        _cathode(gen)
    battery_ids = [_battery(gen) for _ in range(batteries)]
    _declare_battery_shares(gen.credentials, battery_ids)
    return gen.credentials


def _merge(drawn: Sequence[tuple[_Batch, Decimal]]) -> list[tuple[_Batch, Decimal]]:
    """Two draws from one batch become one input entry (as a plant would record it)."""
    merged: dict[str, tuple[_Batch, Decimal]] = {}
    for batch, amount in drawn:
        previous = merged.get(batch.id)
        merged[batch.id] = (batch, amount + (previous[1] if previous else ZERO))
    return list(merged.values())


def _primary_refined(gen: _Generator, element: str, material: str,
                     places: Sequence[tuple[str, str]]) -> None:
    mass = Decimal(gen.rng.randint(5_000, 20_000))
    elements = {element: _q(mass * _dec(gen.rng, 0.2, 0.4))}
    batch_id = gen.urn()
    country, site, issuer = gen.place(places)
    gen.emit("RawMaterialOriginCredential", {
        "id": batch_id, "type": "MaterialBatch", "material": material,
        "processType": "refining", "batchMassKg": format(mass, "f"),
        "elementMass": [_element_entry(e, m, None) for e, m in elements.items()],
        "countryOfOrigin": country, "productionSite": site,
        "certification": gen.certifications(0, 2),
    }, issuer, 90)
    gen.pools[element].append(_Batch(batch_id, mass, elements, {}, mass))


def _precursor(gen: _Generator) -> None:
    """NMC811 hydroxide precursor: Ni sulfate, then Co and Mn to about 8:1:1, and often a
    share of recycled mixed sulfate."""
    rng = gen.rng
    drawn = [d for d in (gen.draw("Ni", fraction=(0.10, 0.30)) for _ in range(rng.randint(1, 2)))
             if d]
    nickel = sum((b.elements.get("Ni", ZERO) * a / b.mass for b, a in drawn), ZERO)
    cobalt = sum((b.elements.get("Co", ZERO) * a / b.mass for b, a in drawn), ZERO)
    if nickel and rng.random() < 0.7 and gen.pools["recycled-NiCoMn"]:
        share = _dec(rng, 0.05, 0.35)
        recycled = gen.draw("recycled-NiCoMn", wanted=nickel * share / (ONE - share),
                            element="Ni")
        if recycled:
            drawn.append(recycled)
            nickel += recycled[0].elements["Ni"] * recycled[1] / recycled[0].mass
            cobalt += recycled[0].elements["Co"] * recycled[1] / recycled[0].mass
    for element, have in (("Co", cobalt), ("Mn", ZERO)):
        need = nickel / 8 - have
        if need > 0:
            extra = gen.draw(element, wanted=need, element=element)
            if extra:
                drawn.append(extra)
    drawn = _merge(drawn)
    if not drawn:
        _primary_refined(gen, "Ni", "nickel sulfate", _REFINERIES["Ni"][1])
        return
    gen.produce("pCAM", "MaterialBatchCredential", "precursor-synthesis",
                "NMC811 hydroxide precursor", drawn, (0.08, 0.20), (0.975, 0.999), "25",
                _CATHODE_PLACES, 150 + rng.randrange(60), origin_fields=False)


def _cathode(gen: _Generator) -> None:
    """NMC811 cathode active material: precursor plus lithium (Li:Ni about 7.1:48), part of
    it often recycled lithium carbonate."""
    rng = gen.rng
    drawn = [d for d in (gen.draw("pCAM", fraction=(0.10, 0.35))
                         for _ in range(rng.randint(1, 2))) if d]
    nickel = sum((b.elements.get("Ni", ZERO) * a / b.mass for b, a in drawn), ZERO)
    lithium = nickel * Decimal("0.148")
    if lithium and rng.random() < 0.6 and gen.pools["recycled-Li"]:
        share = _dec(rng, 0.03, 0.20)
        recycled = gen.draw("recycled-Li", wanted=lithium * share, element="Li")
        if recycled:
            drawn.append(recycled)
            lithium -= recycled[0].elements["Li"] * recycled[1] / recycled[0].mass
    if lithium > 0:
        virgin = gen.draw("Li", wanted=lithium, element="Li")
        if virgin:
            drawn.append(virgin)
    drawn = _merge(drawn)
    if not drawn:
        _primary_refined(gen, "Li", "lithium hydroxide monohydrate", _REFINERIES["Li"][1])
        return
    tolerance = rng.choice([None, "5", "6"])
    gen.produce("CAM", "MaterialBatchCredential", "cathode-synthesis",
                "NMC811 cathode active material", drawn, (0.0, 0.04), (0.985, 0.999),
                tolerance, _CATHODE_PLACES, 220 + rng.randrange(60), origin_fields=False)


def _battery(gen: _Generator) -> str:
    rng = gen.rng
    energy = _dec(rng, 60, 85).quantize(Decimal("0.1"))
    # synthetic-ranges.json: an NMC811 pack holds 0.60-0.75 kg Ni per kWh.
    nickel = energy * _dec(rng, 0.60, 0.75)
    parts = rng.randint(1, 2)
    drawn = [d for d in (gen.draw("CAM", wanted=nickel / parts, element="Ni")
                         for _ in range(parts)) if d]
    did = key_from_seed(rng.randbytes(32)).controller
    made = gen.start + timedelta(days=300 + rng.randrange(120))
    gen.emit(BATTERY_CREDENTIAL_TYPE, {
        "id": did, "type": "Battery", "batteryChemistry": "NMC811",
        "cathodeActiveMaterial": "LiNi0.8Mn0.1Co0.1O2", "ratedEnergyKWh": format(energy, "f"),
        "manufacturingDate": made.isoformat(),
        "materialInput": [{"batch": b.id, "massKg": format(a, "f")} for b, a in _merge(drawn)],
    }, "did:web:cellforge.example", 300)
    return did


def _declare_battery_shares(credentials: list[dict[str, Any]], battery_ids: list[str]) -> None:
    """Each battery declares what the graph supports, rounded down to 0.1 %."""
    graph = MaterialGraph.from_credentials(credentials)
    analysis = graph.analysis
    wanted = set(battery_ids)
    for credential in credentials:
        subject = credential["credentialSubject"]
        if subject["id"] not in wanted:
            continue
        for element in ("Co", "Li", "Ni"):
            share = recycled_share_bounds(subject["id"], element, analysis)[0]
            if share is not None:
                subject[DECLARED_SHARE_FIELDS[element]] = format(
                    share.quantize(Decimal("0.1"), rounding=ROUND_DOWN), "f")
