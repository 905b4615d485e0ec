"""Realistic battery passport credentials for the demo, the benchmarks and the tests.

Every builder returns an *unsigned* VCDM 2.0 credential made through
``credentials.passport.types.build_credential``, so a sample is valid against the typed models
by construction. Builders are deterministic for a given ``rng`` and ``issued``.

Numbers come from ``shared/passport-model/derived/synthetic-ranges.json`` (an NMC811 pack of a
passenger car; the values used are copied below, since ``shared/`` does not ship with the
package) and from stoichiometry. Material batches balance: each derived batch takes from its
inputs exactly what its formula needs, so that the mass-balance rules of ``vocab/PASSPORT.md``
hold for the samples (output mass within the declared process loss of the input mass, element
masses never more than what came in, recycled masses propagated in proportion).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from credentials.did_key import key_from_seed
from credentials.passport.types import (
    BatchInput,
    BatchSubject,
    BatteryManufacturing,
    ComponentReplacement,
    CustodyTransfer,
    Dismantler,
    ElementMass,
    FunctionalityTest,
    MaterialBatch,
    Membership,
    PackAssembly,
    PassportSubject,
    RawMaterialOrigin,
    RecoveredMaterial,
    RecyclingOutcome,
    Repair,
    Repurposing,
    Shipment,
    ShipmentPurpose,
    StateOfHealth,
    TestResult,
    TreatmentFacilityAuthorisation,
    VehicleIntegration,
    build_credential,
    parse_credential,
)

# --- values from shared/passport-model/derived/synthetic-ranges.json -------------------------

#: chemistries.NMC811.cathode_active_material_kg_per_kWh
CAM_KG_PER_KWH = (1.3, 1.6)
#: chemistries.NMC811.element_content_kg_per_kWh
ELEMENT_KG_PER_KWH = {"Li": (0.09, 0.12), "Ni": (0.60, 0.75), "Co": (0.07, 0.09),
                      "Mn": (0.07, 0.09)}
#: chemistries.NMC811.cycle_life_to_80pct_FEC
CYCLE_LIFE_FEC = (1000, 2000)
#: dynamic_behaviour: first_year_loss_pct, subsequent_loss_pct_per_year_private_car,
#: FEC_per_year.private_car, deep_discharge_events_count, overcharge_events_count,
#: recycle_if_SoH_below_pct
FIRST_YEAR_LOSS_PCT = (2.0, 4.0)
YEARLY_LOSS_PCT = (1.0, 2.5)
FEC_PER_YEAR = (40, 120)
DEEP_DISCHARGES = (0, 3)
OVERCHARGES = (0, 1)
RECYCLE_BELOW_SOH_PCT = 65

#: Standard atomic weights (IUPAC, rounded), for the element shares of each compound.
ATOMIC_MASS = {"H": 1.008, "Li": 6.94, "O": 15.999, "S": 32.06, "Mn": 54.938, "Co": 58.933,
               "Ni": 58.693}
#: The elements batches are traced by: the EU recycled-content metals plus manganese.
TRACKED = ("Li", "Ni", "Co", "Mn")


def _shares(formula: Mapping[str, float]) -> dict[str, float]:
    total = sum(ATOMIC_MASS[atom] * count for atom, count in formula.items())
    return {atom: ATOMIC_MASS[atom] * count / total for atom, count in formula.items()
            if atom in TRACKED}


@dataclass(frozen=True, slots=True)
class Material:
    """A batch material: tracked element mass shares and how it is made."""

    name: str
    shares: Mapping[str, float]
    process_type: str
    #: Share of each element of the inputs that reaches the output (the rest is process loss).
    element_yield: float = 0.98
    #: Declared processLossTolerancePct: covers water, sulphate and gangue leaving the process,
    #: which is why it is far above 5 % for chemical conversions.
    loss_tolerance_pct: int = 5
    country: str | None = None
    site: str = ""


SPODUMENE = Material("spodumene concentrate (SC6, 6 % Li2O)",
                     {"Li": 0.06 * 2 * ATOMIC_MASS["Li"] / (2 * ATOMIC_MASS["Li"] + 15.999)},
                     "mining", country="AU", site="Pilbara hard-rock mine, concentrator 2")
LITHIUM_HYDROXIDE = Material("lithium hydroxide monohydrate",
                             _shares({"Li": 1, "O": 2, "H": 3}), "refining",
                             element_yield=0.88, loss_tolerance_pct=90, country="AU",
                             site="Kwinana lithium hydroxide refinery")
NICKEL_SULPHATE = Material("nickel sulphate hexahydrate",
                           _shares({"Ni": 1, "S": 1, "O": 10, "H": 12}), "refining",
                           country="FI", site="Harjavalta nickel refinery")
COBALT_SULPHATE = Material("cobalt sulphate heptahydrate",
                           _shares({"Co": 1, "S": 1, "O": 11, "H": 14}), "refining",
                           country="CD", site="Kokkola cobalt refinery")
MANGANESE_SULPHATE = Material("manganese sulphate monohydrate",
                              _shares({"Mn": 1, "S": 1, "O": 5, "H": 2}), "refining",
                              country="ZA", site="Nelspruit manganese sulphate plant")
PRECURSOR = Material("NMC811 precursor (Ni0.8Mn0.1Co0.1(OH)2)",
                     _shares({"Ni": 0.8, "Mn": 0.1, "Co": 0.1, "O": 2, "H": 2}),
                     "precursor-synthesis", loss_tolerance_pct=70,
                     site="Hoboken pCAM co-precipitation line 1")
CATHODE = Material("NMC811 cathode active material",
                   _shares({"Li": 1, "Ni": 0.8, "Mn": 0.1, "Co": 0.1, "O": 2}),
                   "cathode-synthesis", loss_tolerance_pct=35,
                   site="Nysa cathode calcination line 3")

RAW_MATERIALS = {m.name: m for m in (SPODUMENE, LITHIUM_HYDROXIDE, NICKEL_SULPHATE,
                                     COBALT_SULPHATE, MANGANESE_SULPHATE)}
#: What a hydrometallurgical recycler sells, per element it recovers.
RECYCLED_PRODUCTS = {"Li": LITHIUM_HYDROXIDE, "Ni": NICKEL_SULPHATE, "Co": COBALT_SULPHATE,
                     "Mn": MANGANESE_SULPHATE}

CERTIFICATIONS = ("IRMA 75", "RMI RMAP conformant", "ISO 14001:2015", "ISO 45001:2018",
                  "Copper Mark")
#: Catena-X brand names as used in DismantlerCredential samples.
VEHICLE_BRANDS = ("Alfa Romeo", "Alpina", "Audi", "BMW", "Cupra", "Fiat", "Mercedes-Benz",
                  "MINI", "Opel", "Peugeot", "Renault", "Skoda", "Volkswagen", "Volvo")
#: (manufacturer, model, ISO 3780 world manufacturer identifier)
VEHICLES = (("Volkswagen AG", "ID.4 Pro", "WVG"), ("BMW AG", "iX3", "WBY"),
            ("Renault SAS", "Megane E-Tech", "VF1"), ("Volvo Car Corporation", "EX40", "YV1"))
SECOND_LIFE_APPLICATIONS = ("stationary storage: residential PV buffer",
                            "stationary storage: EV fast-charger buffer",
                            "stationary storage: grid frequency regulation")
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_BPN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- small helpers ----------------------------------------------------------------------------


def _decimal(rng: random.Random, low: float, high: float, digits: int = 1) -> str:
    return f"{rng.uniform(low, high):.{digits}f}"


def _round(value: Decimal | float, places: int, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=rounding)


def _floor(value: Decimal, places: int = 3) -> Decimal:
    """Element masses round down, so an output never claims more than came in."""
    return _round(value, places, ROUND_FLOOR)


def _urn(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _did(rng: random.Random) -> str:
    """A did:key for a component or participant the sample does not sign for."""
    return key_from_seed(rng.randbytes(32)).controller


def _bpn(rng: random.Random, prefix: str = "BPNL") -> str:
    return prefix + "".join(rng.choice(_BPN_CHARS) for _ in range(12))


def _issued(issued: datetime | None) -> datetime:
    return issued or datetime.now(UTC).replace(microsecond=0)


def _before(issued: datetime, rng: random.Random, max_days: int) -> date:
    return issued.date() - timedelta(days=rng.randrange(0, max_days + 1))


def _credential(subject: PassportSubject, issuer_did: str, rng: random.Random,
                issued: datetime, previous: str | None = None) -> dict[str, Any]:
    return build_credential(subject, issuer=issuer_did, valid_from=issued, previous=previous,
                            credential_id=_urn(rng))


# --- material batches -------------------------------------------------------------------------


def _batch(document: Mapping[str, Any]) -> BatchSubject:
    subject = parse_credential(dict(document))
    if not isinstance(subject, BatchSubject):
        raise ValueError(f"{subject.credential_type} is not a material batch")
    return subject


def _plain_elements(material: Material, mass: Decimal, recycled: bool) -> list[ElementMass]:
    out = []
    for element, share in material.shares.items():
        kg = _floor(mass * Decimal(str(share)))
        out.append(ElementMass(element=element, mass_kg=kg,
                               recycled_mass_kg=kg if recycled else None))
    return out


def _derive(inputs: Sequence[Mapping[str, Any]], product: Material, rng: random.Random,
            batch_mass_kg: Decimal | str | None) -> tuple[Decimal, list[BatchInput],
                                                          list[ElementMass]]:
    """Output mass, inputs taken and element masses of a batch made from ``inputs``.

    Each input supplies the product element it is richest in (a sulphate its metal, the
    precursor its nickel and with it the cobalt and manganese); inputs supplying the same
    element share the demand in proportion to what they hold.
    """
    if not inputs:
        raise ValueError(f"{product.name} is made from input batches; none given")
    batches = [_batch(doc) for doc in inputs]
    groups: dict[str, list[tuple[BatchSubject, Decimal]]] = {}
    for batch in batches:
        held = {e.element: e.mass_kg for e in batch.element_mass if e.mass_kg > 0}
        supplied = [e for e in product.shares if e in held]
        if not supplied:
            raise ValueError(f"input {batch.id} holds none of {sorted(product.shares)}")
        key = max(supplied, key=lambda e: held[e] / batch.batch_mass_kg)
        groups.setdefault(key, []).append((batch, held[key]))
    yield_ = Decimal(str(product.element_yield))
    limit = min(sum(kg for _, kg in group) * yield_ / Decimal(str(product.shares[element]))
                for element, group in groups.items())
    if batch_mass_kg is None:
        mass = _round(limit * Decimal(str(rng.uniform(0.5, 0.9))), 1)
    else:
        mass = Decimal(str(batch_mass_kg))
        if mass > limit:
            raise ValueError(f"the inputs make at most {limit:.1f} kg of {product.name}")
    taken: list[BatchInput] = []
    totals = {e: [Decimal(0), Decimal(0)] for e in product.shares}
    for element, group in groups.items():
        need = mass * Decimal(str(product.shares[element])) / yield_
        held_total = sum(kg for _, kg in group)
        for batch, _ in group:
            kg = min(_round(need / held_total * batch.batch_mass_kg, 1), batch.batch_mass_kg)
            taken.append(BatchInput(batch=batch.id, mass_kg=kg))
            share = kg / batch.batch_mass_kg
            for e in batch.element_mass:
                if e.element in totals:
                    totals[e.element][0] += share * e.mass_kg * yield_
                    totals[e.element][1] += share * e.recycled_kg * yield_
    elements = [ElementMass(element=e, mass_kg=_floor(kg),
                            recycled_mass_kg=_floor(rec) if rec > 0 else None)
                for e, (kg, rec) in totals.items() if kg > 0]
    used = sum((t.mass_kg for t in taken), Decimal(0))
    low = used * (1 - Decimal(product.loss_tolerance_pct) / 100)
    if not low <= mass <= used:
        raise ValueError(f"{mass} kg of {product.name} from {used} kg of inputs breaks the "
                         f"declared {product.loss_tolerance_pct} % process loss")
    return mass, taken, elements


def raw_material_batch(
    issuer_did: str,
    *,
    material: str = COBALT_SULPHATE.name,
    inputs: Sequence[Mapping[str, Any]] = (),
    batch_mass_kg: Decimal | str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``RawMaterialOriginCredential``: a mine's or refiner's batch.

    ``material`` is a name of ``RAW_MATERIALS``. A refined batch made from tracked mine batches
    (``inputs``, e.g. lithium hydroxide from spodumene) takes its masses from them; otherwise
    the batch is 5-25 t with element masses from its formula.
    """
    rng = rng or random.Random()
    issued = _issued(issued)
    product = RAW_MATERIALS[material]
    if inputs:
        mass, taken, elements = _derive(inputs, product, rng, batch_mass_kg)
    else:
        mass = Decimal(str(batch_mass_kg)) if batch_mass_kg is not None else _round(
            rng.uniform(5_000, 25_000), 1)
        taken, elements = [], _plain_elements(product, mass, recycled=False)
    subject = RawMaterialOrigin(
        id=_urn(rng),
        material=product.name,
        process_type=product.process_type,
        batch_mass_kg=mass,
        element_mass=elements,
        country_of_origin=product.country or "AU",
        production_site=product.site,
        certification=sorted(rng.sample(CERTIFICATIONS, 2)),
        input=taken or None,
        process_loss_tolerance_pct=Decimal(product.loss_tolerance_pct) if taken else None,
    )
    return _credential(subject, issuer_did, rng, issued)


def _material_batch(product: Material, inputs: Sequence[Mapping[str, Any]], issuer_did: str,
                    rng: random.Random | None, issued: datetime | None,
                    batch_mass_kg: Decimal | str | None, country: str | None) -> dict[str, Any]:
    rng = rng or random.Random()
    issued = _issued(issued)
    mass, taken, elements = _derive(inputs, product, rng, batch_mass_kg)
    subject = MaterialBatch(
        id=_urn(rng),
        material=product.name,
        process_type=product.process_type,
        batch_mass_kg=mass,
        element_mass=elements,
        input=taken,
        production_site=product.site,
        country_of_origin=country,
        process_loss_tolerance_pct=Decimal(product.loss_tolerance_pct),
    )
    return _credential(subject, issuer_did, rng, issued)


def precursor_batch(
    inputs: Sequence[Mapping[str, Any]],
    issuer_did: str,
    *,
    batch_mass_kg: Decimal | str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``MaterialBatchCredential`` of NMC811 precursor (pCAM), co-precipitated from
    nickel, cobalt and manganese sulphate batches (credentials, virgin or recycled)."""
    return _material_batch(PRECURSOR, inputs, issuer_did, rng, issued, batch_mass_kg, "BE")


def cam_batch(
    inputs: Sequence[Mapping[str, Any]],
    issuer_did: str,
    *,
    batch_mass_kg: Decimal | str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``MaterialBatchCredential`` of NMC811 cathode active material (LiNi0.8Mn0.1
    Co0.1O2: Li 7.1, Ni 48.3, Mn 5.6, Co 6.1 % by mass), calcined from a precursor batch and
    lithium hydroxide batches. Without ``batch_mass_kg`` it uses 50-90 % of what the inputs
    allow."""
    return _material_batch(CATHODE, inputs, issuer_did, rng, issued, batch_mass_kg, "PL")


def recycled_batch(
    issuer_did: str,
    *,
    element: str = "Ni",
    element_mass_kg: Decimal | str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``MaterialBatchCredential`` with ``processType`` ``recycling``: a recycler's
    salt of ``element`` (no input, every element mass recycled, as PASSPORT.md requires)."""
    rng = rng or random.Random()
    issued = _issued(issued)
    product = RECYCLED_PRODUCTS[element]
    share = Decimal(str(product.shares[element]))
    kg = Decimal(str(element_mass_kg)) if element_mass_kg is not None else _round(
        rng.uniform(200, 1_500), 1)
    mass = _round(kg / share, 1, ROUND_FLOOR) + Decimal("0.1")
    subject = MaterialBatch(
        id=_urn(rng),
        material=f"recycled {product.name}",
        process_type="recycling",
        batch_mass_kg=mass,
        element_mass=[ElementMass(element=element, mass_kg=_floor(Decimal(kg)),
                                  recycled_mass_kg=_floor(Decimal(kg)))],
        production_site="Hydrometallurgical battery recycling plant, Salzgitter",
        country_of_origin="DE",
    )
    return _credential(subject, issuer_did, rng, issued)


def nmc811_material_chain(
    issuer_did: str,
    *,
    recycled: bool = True,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> list[dict[str, Any]]:
    """The batches behind one NMC811 cathode batch, inputs before outputs, the CAM batch last.

    Spodumene → lithium hydroxide; nickel, cobalt, manganese sulphates (with recycled nickel
    and cobalt sulphate and recycled lithium hydroxide when ``recycled``) → precursor → CAM.
    One issuer signs everything, which keeps the sample usable with one test key.
    """
    rng = rng or random.Random()
    issued = _issued(issued)
    ore = raw_material_batch(issuer_did, material=SPODUMENE.name, rng=rng, issued=issued,
                             batch_mass_kg=_round(rng.uniform(100_000, 150_000), 1))
    lithium = raw_material_batch(issuer_did, material=LITHIUM_HYDROXIDE.name, inputs=[ore],
                                 rng=rng, issued=issued)
    # Nickel is 80 % of the precursor's metals: its sulphate batch is the largest.
    sulphates = [
        raw_material_batch(issuer_did, material=NICKEL_SULPHATE.name, rng=rng, issued=issued,
                           batch_mass_kg=_round(rng.uniform(30_000, 45_000), 1)),
        raw_material_batch(issuer_did, material=COBALT_SULPHATE.name, rng=rng, issued=issued),
        raw_material_batch(issuer_did, material=MANGANESE_SULPHATE.name, rng=rng,
                           issued=issued),
    ]
    recycled_inputs: list[dict[str, Any]] = []
    if recycled:
        recycled_inputs = [
            recycled_batch(issuer_did, element="Ni", element_mass_kg="900.0", rng=rng,
                           issued=issued),
            recycled_batch(issuer_did, element="Co", element_mass_kg="250.0", rng=rng,
                           issued=issued),
        ]
    precursor = precursor_batch([*sulphates, *recycled_inputs], issuer_did, rng=rng,
                                issued=issued)
    lithium_inputs = [lithium]
    if recycled:
        lithium_inputs.append(recycled_batch(issuer_did, element="Li", element_mass_kg="60.0",
                                             rng=rng, issued=issued))
    cathode = cam_batch([precursor, *lithium_inputs], issuer_did, rng=rng, issued=issued)
    return [ore, lithium, *sulphates, *recycled_inputs, precursor, *lithium_inputs[1:], cathode]


def recycled_content_pct(batch_credential: Mapping[str, Any]) -> dict[str, Decimal]:
    """Recycled share of each element of a batch, in percent (rounded down to 0.1)."""
    return {e.element: _round(e.recycled_kg / e.mass_kg * 100, 1, ROUND_FLOOR)
            for e in _batch(batch_credential).element_mass if e.mass_kg > 0}


# --- passport entries -------------------------------------------------------------------------


def manufacturing_credential(
    battery_did: str,
    issuer_did: str,
    *,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    cathode_batch: Mapping[str, Any] | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``BatteryManufacturingCredential`` with 37 subject fields.

    ``materialInput`` takes 1.3-1.6 kg of cathode active material per kWh from
    ``cathode_batch`` (whose recycled shares then become the recycled-content claims), or
    from a made-up batch URN when none is given.
    """
    rng = rng or random.Random()
    issued = _issued(issued)
    made = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 300))
    cells = rng.randrange(90, 109)
    energy = rng.uniform(60, 85)
    capacity_ah = energy * 1000 / (cells * 3.65)
    serial = f"{rng.randrange(10**6, 10**7)}"
    credential_id = _urn(rng)  # drawn in the same order as before materialInput existed
    made = min(made, issued.date())  # not made after it was certified
    fields: dict[str, Any] = {
        "id": battery_did,
        "type": "Battery",
        "passportIdentifier": _urn(rng),
        "batteryIdentifier": f"0AXPEA1TRC{serial}R5F0000123"[:24],
        "batteryCategory": "ElectricVehicleBattery",
        "batteryModel": f"NMC811-{cells}S-{energy:.0f}",
        "batteryStatus": "Original",
        "manufacturerIdentification": f"BPNL{rng.randrange(10**11, 10**12):012d}",
        "manufacturerName": "Cellforge Europe GmbH",
        "manufacturingFacility": f"BPNA{rng.randrange(10**11, 10**12):012d}",
        "manufacturingCountry": rng.choice(["DE", "PL", "HU", "SE"]),
        "manufacturingDate": made.isoformat(),
        "batteryChemistry": "NMC811",
        "cathodeActiveMaterial": "LiNi0.8Mn0.1Co0.1O2",
        "anodeActiveMaterial": "graphite",
        "cellFormat": rng.choice(["prismatic", "pouch", "cylindrical 4680"]),
        "cellCount": cells,
        "moduleCount": rng.choice([4, 6, 8, 12]),
        "ratedCapacityAh": f"{capacity_ah:.1f}",
        "ratedEnergyKWh": f"{energy:.1f}",
        "nominalVoltageV": f"{cells * 3.65:.1f}",
        "minimumVoltageV": f"{cells * 2.5:.1f}",
        "maximumVoltageV": f"{cells * 4.2:.1f}",
        "batteryMassKg": _decimal(rng, 300, 700),
        "lengthMm": _decimal(rng, 1800, 2400, 0),
        "widthMm": _decimal(rng, 1200, 1600, 0),
        "heightMm": _decimal(rng, 110, 160, 0),
        "operatingTemperatureMinC": _decimal(rng, -40, -20, 0),
        "operatingTemperatureMaxC": _decimal(rng, 50, 60, 0),
        "expectedLifetimeCycles": rng.randrange(1000, 2001),
        "warrantyPeriodYears": 8,
        "carbonFootprintKgCO2ePerKWh": _decimal(rng, 0.08, 0.25, 3),
        "carbonFootprintPerformanceClass": rng.choice(["A", "B", "C"]),
        "recycledContentCobaltPct": _decimal(rng, 10, 26),
        "recycledContentLithiumPct": _decimal(rng, 4, 12),
        "recycledContentNickelPct": _decimal(rng, 4, 15),
    }
    cam_kg = _round(energy * rng.uniform(*CAM_KG_PER_KWH), 1)
    if cathode_batch is None:
        batch_id = _urn(rng)
    else:
        batch_id = _batch(cathode_batch).id
        shares = recycled_content_pct(cathode_batch)
        for element, term in (("Co", "recycledContentCobaltPct"),
                              ("Li", "recycledContentLithiumPct"),
                              ("Ni", "recycledContentNickelPct")):
            fields[term] = str(shares.get(element, Decimal("0.0")))
    fields["materialInput"] = [{"batch": batch_id, "massKg": str(cam_kg)}]
    subject = BatteryManufacturing.model_validate(fields)
    return build_credential(subject, issuer=issuer_did, valid_from=issued, previous=previous,
                            credential_id=credential_id)


def pack_assembly(
    pack_did: str,
    issuer_did: str,
    components: Sequence[str] | None = None,
    *,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``PackAssemblyCredential``: the pack DID and the module DIDs it is built of
    (4-12 made-up module DIDs when ``components`` is not given)."""
    rng = rng or random.Random()
    issued = _issued(issued)
    modules = list(components) if components else [
        _did(rng) for _ in range(rng.choice([4, 6, 8, 12]))]
    subject = PackAssembly(
        id=pack_did,
        component=modules,
        assembly_date=_before(issued, rng, 10),
        assembly_facility=f"{_bpn(rng, 'BPNA')} pack assembly hall 2",
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def vehicle_integration(
    battery_did: str,
    issuer_did: str,
    *,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``VehicleIntegrationCredential`` (an EU passenger car, ISO 3779 VIN)."""
    rng = rng or random.Random()
    issued = _issued(issued)
    manufacturer, model, wmi = rng.choice(VEHICLES)
    vin = wmi + "".join(rng.choice(_VIN_CHARS) for _ in range(14))
    subject = VehicleIntegration(
        id=battery_did,
        vehicle_identification_number=vin,
        vehicle_model=model,
        vehicle_manufacturer=manufacturer,
        integration_date=_before(issued, rng, 5),
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def state_of_health(
    battery_did: str,
    issuer_did: str,
    *,
    cycles: int | None = None,
    age_years: float | None = None,
    rated_capacity_ah: Decimal | str = "205.0",
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``StateOfHealthCredential`` for a private car ``age_years`` old (default
    1-8 y) with ``cycles`` full equivalent cycles (default 40-120 per year).

    SoH follows the synthetic-ranges trajectory: 2-4 % lost in the first year, 1-2.5 % a year
    after; remaining useful life counts the cycles left until SoH 65 %, where recycling
    starts.
    """
    rng = rng or random.Random()
    issued = _issued(issued)
    years = age_years if age_years is not None else rng.uniform(1, 8)
    full_cycles = cycles if cycles is not None else int(years * rng.uniform(*FEC_PER_YEAR))
    loss = rng.uniform(*FIRST_YEAR_LOSS_PCT) * min(years, 1.0)
    loss += max(years - 1, 0) * rng.uniform(*YEARLY_LOSS_PCT)
    loss += full_cycles * 20 / rng.uniform(*CYCLE_LIFE_FEC) / 2  # cycling wear on top
    soh = _round(max(100 - loss, 40.0), 1)
    fade = 100 - soh
    remaining: int | None = None  # unknown until some fade has been seen
    if fade > 0 and full_cycles > 0:
        per_cycle = fade / full_cycles
        remaining = max(int((soh - RECYCLE_BELOW_SOH_PCT) / per_cycle), 0)
    subject = StateOfHealth(
        id=battery_did,
        measurement_time=issued - timedelta(minutes=rng.randrange(1, 60 * 24)),
        state_of_health_pct=soh,
        capacity_fade_pct=fade,
        remaining_capacity_ah=_round(Decimal(str(rated_capacity_ah)) * soh / 100, 1),
        full_cycle_count=full_cycles,
        thermal_event_count=1 if rng.random() < 0.02 else 0,
        deep_discharge_count=rng.randint(*DEEP_DISCHARGES),
        overcharge_count=rng.choices(range(OVERCHARGES[0], OVERCHARGES[1] + 1),
                                     weights=[9, 1])[0],
        remaining_useful_life_cycles=remaining,
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def repair(
    battery_did: str,
    issuer_did: str,
    *,
    replacements: Sequence[tuple[str, str]] | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``RepairCredential``; ``replacements`` are (removed, installed) module DIDs
    (one made-up pair when not given)."""
    rng = rng or random.Random()
    issued = _issued(issued)
    pairs = list(replacements) if replacements else [(_did(rng), _did(rng))]
    reasons = ("cell voltage deviation above 50 mV", "module swelling after coolant leak",
               "cell unique ID mismatch reported by the hub")
    subject = Repair(
        id=battery_did,
        repair_date=_before(issued, rng, 7),
        replacement=[ComponentReplacement(removed_component=old, installed_component=new,
                                          reason=rng.choice(reasons)) for old, new in pairs],
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def repurposing(
    new_battery_did: str,
    original_battery_did: str,
    issuer_did: str,
    *,
    previous: str,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``RepurposingCredential``: first entry of the second-life passport, linked
    by ``previous`` to the digest of the original passport's last entry."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = Repurposing(
        id=new_battery_did,
        previous_credential=previous,
        original_battery=original_battery_did,
        repurposing_date=_before(issued, rng, 14),
        new_application=rng.choice(SECOND_LIFE_APPLICATIONS),
        battery_status="Repurposed",
    )
    return _credential(subject, issuer_did, rng, issued)


def shipment(
    battery_did: str,
    issuer_did: str,
    consignee_did: str,
    *,
    purpose: ShipmentPurpose = "Recycling",
    destination_country: str = "DE",
    consignor_did: str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``ShipmentCredential``; the consignor defaults to the issuer."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = Shipment(
        id=battery_did,
        shipment_identifier=f"CMR-{issued:%Y}-{rng.randrange(10**6, 10**7)}",
        consignor=consignor_did or issuer_did,
        consignee=consignee_did,
        shipment_date=_before(issued, rng, 3),
        shipment_purpose=purpose,
        destination_country=destination_country,
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def custody_transfer(
    battery_did: str,
    issuer_did: str,
    transferred_to: str,
    *,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``CustodyTransferCredential``: from the next entry on, only
    ``transferred_to`` may append to the passport."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = CustodyTransfer(id=battery_did, transferred_to=transferred_to,
                              transfer_date=_before(issued, rng, 2))
    return _credential(subject, issuer_did, rng, issued, previous)


def battery_element_content(energy_kwh: float, rng: random.Random) -> dict[str, Decimal]:
    """Element masses of an NMC811 pack of ``energy_kwh`` (synthetic-ranges kg per kWh)."""
    return {e: _round(energy_kwh * rng.uniform(low, high), 3)
            for e, (low, high) in ELEMENT_KG_PER_KWH.items()}


def recycling_outcome(
    battery_did: str,
    issuer_did: str,
    output_batches: Sequence[Mapping[str, Any]],
    *,
    battery_content_kg: Mapping[str, Decimal],
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    """An unsigned ``RecyclingOutcomeCredential``: recovered masses are the element masses of
    ``output_batches`` (recycling ``MaterialBatchCredential``s), recovery rates those masses
    over ``battery_content_kg``."""
    rng = rng or random.Random()
    issued = _issued(issued)
    recovered: dict[str, Decimal] = {}
    outputs = [_batch(doc) for doc in output_batches]
    for batch in outputs:
        for e in batch.element_mass:
            recovered[e.element] = recovered.get(e.element, Decimal(0)) + e.mass_kg
    materials = []
    for element, kg in recovered.items():
        rate = _round(kg / Decimal(battery_content_kg[element]) * 100, 1, ROUND_FLOOR)
        materials.append(RecoveredMaterial(element=element, mass_kg=kg, recovery_rate_pct=rate))
    subject = RecyclingOutcome(
        id=battery_did,
        recycling_date=_before(issued, rng, 10),
        recycling_facility="Hydrometallurgical battery recycling plant, Salzgitter",
        recovered_material=materials,
        output_batch=[batch.id for batch in outputs],
        battery_status="Recycled",
    )
    return _credential(subject, issuer_did, rng, issued, previous)


def recycle_battery(
    battery_did: str,
    issuer_did: str,
    *,
    energy_kwh: float = 75.0,
    rng: random.Random | None = None,
    issued: datetime | None = None,
    previous: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A recycling outcome and its output batches, consistent with each other.

    Recovery rates are drawn around the EU 2027 material-recovery targets (Co, Ni 90 %+,
    Li 50 %+; BattReg Annex XII C).
    """
    rng = rng or random.Random()
    issued = _issued(issued)
    content = battery_element_content(energy_kwh, rng)
    rates = {"Li": (0.50, 0.85), "Ni": (0.90, 0.98), "Co": (0.90, 0.98), "Mn": (0.60, 0.90)}
    outputs = [
        recycled_batch(issuer_did, element=e,
                       element_mass_kg=_floor(content[e] * Decimal(str(rng.uniform(*rates[e])))),
                       rng=rng, issued=issued)
        for e in TRACKED
    ]
    outcome = recycling_outcome(battery_did, issuer_did, outputs, battery_content_kg=content,
                                rng=rng, issued=issued, previous=previous)
    return outcome, outputs


# --- participants -----------------------------------------------------------------------------


def dismantler(
    participant_did: str,
    issuer_did: str,
    *,
    bpnl: str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned Catena-X ``DismantlerCredential`` for a vehicle dismantler."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = Dismantler(
        id=participant_did,
        holder_identifier=bpnl or _bpn(rng),
        activity_type=["vehicleDismantle"],
        allowed_vehicle_brands=sorted(rng.sample(VEHICLE_BRANDS, 3)),
    )
    return _credential(subject, issuer_did, rng, issued)


def membership(
    participant_did: str,
    issuer_did: str,
    *,
    bpnl: str | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned Catena-X ``MembershipCredential``."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = Membership(id=participant_did, holder_identifier=bpnl or _bpn(rng),
                         member_of="Catena-X")
    return _credential(subject, issuer_did, rng, issued)


# --- shipment evidence (connector/shipments) -------------------------------------------------

TEST_METHODS = ("IEC 62660-1 capacity test at 25 °C, C/3 discharge",
                "BMS read-out and HPPC pulse test (5 s, 2C)",
                "UN ECE R100 insulation and capacity check")


def functionality_test(
    battery_did: str,
    issuer_did: str,
    *,
    state_of_health_pct: Decimal | str | None = None,
    result: TestResult = "pass",
    tester_did: str | None = None,
    tested: datetime | None = None,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``FunctionalityTestCredential`` (shipment evidence, Basel condition 2): a
    state of health of 65-90 % unless given, tested up to 3 days before ``issued``; the tester
    defaults to the issuer."""
    rng = rng or random.Random()
    issued = _issued(issued)
    soh = (Decimal(str(state_of_health_pct)) if state_of_health_pct is not None
           else _round(rng.uniform(65.0, 90.0), 1))
    subject = FunctionalityTest(
        id=battery_did,
        state_of_health_pct=soh,
        tested_at=tested or issued - timedelta(minutes=rng.randrange(10, 3 * 24 * 60)),
        tester=tester_did or issuer_did,
        test_method=rng.choice(TEST_METHODS),
        test_result=result,
    )
    return build_credential(subject, issuer=issuer_did, valid_from=issued,
                            credential_id=_urn(rng))


def treatment_facility_authorisation(
    facility_did: str,
    authority_did: str,
    *,
    operations: Sequence[ShipmentPurpose] = ("Repair", "Repurposing", "Recycling"),
    country: str = "DE",
    name: str = "Recycler treatment facility",
    valid_years: int = 5,
    rng: random.Random | None = None,
    issued: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``TreatmentFacilityAuthorisationCredential``: a competent authority's permit
    for ``operations`` at ``facility_did``, valid ``valid_years`` from ``issued``."""
    rng = rng or random.Random()
    issued = _issued(issued)
    subject = TreatmentFacilityAuthorisation(
        id=facility_did,
        facility_name=name,
        facility_country=country,
        permit_identifier=f"{country}-BATT-{rng.randrange(10**5, 10**6)}",
        authorised_operation=list(operations),
    )
    return build_credential(subject, issuer=authority_did, valid_from=issued,
                            valid_until=issued + timedelta(days=365 * valid_years),
                            credential_id=_urn(rng))


__all__ = [
    "CAM_KG_PER_KWH",
    "ELEMENT_KG_PER_KWH",
    "RAW_MATERIALS",
    "RECYCLED_PRODUCTS",
    "Material",
    "battery_element_content",
    "cam_batch",
    "custody_transfer",
    "dismantler",
    "functionality_test",
    "manufacturing_credential",
    "membership",
    "nmc811_material_chain",
    "pack_assembly",
    "precursor_batch",
    "raw_material_batch",
    "recycle_battery",
    "recycled_batch",
    "recycled_content_pct",
    "recycling_outcome",
    "repair",
    "repurposing",
    "shipment",
    "state_of_health",
    "treatment_facility_authorisation",
    "vehicle_integration",
]
