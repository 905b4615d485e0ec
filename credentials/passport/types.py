"""Typed battery passport credentials: one pydantic model per credential subject.

``vocab/PASSPORT.md`` is the contract; this module is its executable form. JSON keys are the
terms of ``vocab/contexts/battery-v1.jsonld`` and, for the hub bridge's cell-level entries,
``hub-v1.jsonld`` (``PassportSubject.contexts``), so a model that serialises is a credential that
expands without undefined terms; Python attributes are their snake_case spelling.

Values keep the RDF datatype the context gives them: measurements are ``Decimal`` and travel as
``xsd:decimal`` strings (``"62.0"``), because a JSON number would be read as a double by some
peers and change the canonical form that was signed; counts are JSON integers; dates and
instants are ``xsd:date`` / ``xsd:dateTime`` strings. Reading is strict (a float where a decimal
string belongs is an error, not a conversion), because a document that only our reader accepts
is a document other verifiers read differently.

Where a field corresponds to a Catena-X ``io.catenax.battery.battery_pass`` 6.1.0 payload path
(``CX``) or a Battery Pass 1.2 property (``BP``), the comment next to it says so; the names
here stay those of PASSPORT.md.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from credentials.errors import MalformedDocument
from credentials.merkle import decode_hash
from credentials.model import types_of
from credentials.passport.errors import UnknownCredentialType
from credentials.timestamps import format_datetime
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2, HUB_CONTEXT_V1, SHIPMENT_CONTEXT_V1

# --- scalar types -----------------------------------------------------------------------------

#: The xsd:decimal lexical space: no exponent, no NaN/INF, so every peer reads the same number.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
#: DID syntax of DID Core 1.0 (a DID, not a DID URL: no path, query or fragment).
_DID = re.compile(
    r"did:[a-z0-9]+:(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2}|:)*(?:[A-Za-z0-9._-]|%[0-9A-Fa-f]{2})"
)
#: RFC 8141 URN: ``urn:<NID>:<NSS>``.
_URN = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:[^\s?#]+", re.IGNORECASE)
_BPNL = re.compile(r"BPNL[0-9A-Za-z]{12}")  # the Catena-X identifier regex
_BPNA = re.compile(r"BPNA[0-9A-Z]{12}")
#: ISO 3779 vehicle identification number (I, O and Q never appear).
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
#: A digest as PASSPORT.md defines it: multibase ``u`` + base64url(0x12 0x20 ‖ sha256). The
#: third character carries the top two bits of the hash, so it is one of A-D, not always B.
_DIGEST = re.compile(r"uEi[A-D][A-Za-z0-9_-]{43}")
_ELEMENT = re.compile(r"[A-Z][a-z]?")

#: ISO 3166-1 alpha-2, officially assigned codes (249). A pattern alone would let ``XX`` or
#: ``UK`` through, and those are exactly the mistakes a customs check trips over.
ISO_COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW""".split()
)


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    raise ValueError('must be an xsd:decimal string such as "62.0" (not a JSON number)')


def _decimal_text(value: Decimal) -> str:
    # ``str`` would switch to exponent form (``1E-7``), which is not in the xsd:decimal space.
    return format(value, "f")


def _to_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a JSON integer")
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _to_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return date.fromisoformat(value)
    raise ValueError('must be an xsd:date string such as "2026-03-01"')


def _to_instant(value: object) -> datetime:
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and "T" in value:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
    if moment is None:
        raise ValueError('must be an xsd:dateTime string such as "2026-03-01T10:00:00Z"')
    if moment.tzinfo is None:
        raise ValueError("must name its time zone (an instant, not a local time)")
    return moment


def _instant_text(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _percentage(value: Decimal) -> Decimal:
    if not 0 <= value <= 100:
        raise ValueError("must be a percentage between 0 and 100")
    return value


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"must be {what}, not {value!r}")
        return value

    return AfterValidator(check)


def _country(value: str) -> str:
    if value not in ISO_COUNTRIES:
        raise ValueError(f"must be an ISO 3166-1 alpha-2 country code, not {value!r}")
    return value


DecimalValue = Annotated[
    Decimal,
    PlainValidator(_to_decimal, json_schema_input_type=str),
    PlainSerializer(_decimal_text, return_type=str),
]
Mass = Annotated[DecimalValue, AfterValidator(_non_negative)]
PositiveDecimal = Annotated[DecimalValue, AfterValidator(_positive)]
Percentage = Annotated[DecimalValue, AfterValidator(_percentage)]
Count = Annotated[int, PlainValidator(_to_count, json_schema_input_type=int)]
PositiveCount = Annotated[Count, AfterValidator(_at_least_one)]
XsdDate = Annotated[
    date,
    PlainValidator(_to_date, json_schema_input_type=str),
    PlainSerializer(date.isoformat, return_type=str),
]
Instant = Annotated[
    datetime,
    PlainValidator(_to_instant, json_schema_input_type=str),
    PlainSerializer(_instant_text, return_type=str),
]
Text = Annotated[str, Field(min_length=1)]
Did = Annotated[str, _pattern(_DID, "a DID (did:<method>:<id>)")]
Urn = Annotated[str, _pattern(_URN, "a URN (urn:<nid>:<nss>)")]
Bpnl = Annotated[str, _pattern(_BPNL, "a Catena-X legal-entity BPN (BPNL + 12 letters or digits)")]
Bpna = Annotated[str, _pattern(_BPNA, "a Catena-X address BPN (BPNA + 12 of 0-9A-Z)")]
Country = Annotated[str, AfterValidator(_country)]
Vin = Annotated[str, _pattern(_VIN, "a 17-character ISO 3779 vehicle identification number")]
Digest = Annotated[str, _pattern(_DIGEST, "a credential digest (multibase u + sha2-256 multihash)")]
Element = Annotated[str, _pattern(_ELEMENT, "a chemical element symbol such as Li or Ni")]

BatteryStatus = Literal["Original", "Repurposed", "Reused", "Waste", "Recycled"]
ShipmentPurpose = Literal["Repair", "Repurposing", "Recycling"]

#: A did:key (multibase base58btc): what batteries, cells and hubs are identified by.
_DID_KEY = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]+")
#: A credential named by its PASSPORT.md digest or by its id (an absolute URI).
_CREDENTIAL_REFERENCE = re.compile(
    r"uEi[A-D][A-Za-z0-9_-]{42}[AQgw]|[A-Za-z][A-Za-z0-9+.-]*:\S+"
)


def _merkle_root(value: str) -> str:
    # The Merkle module's own decoder: one root has exactly one accepted spelling.
    try:
        decode_hash(value)
    except ValueError as exc:
        raise ValueError(
            f"must be a 32-byte Merkle root as 43 characters of base64url without padding ({exc})"
        ) from exc
    return value


DidKey = Annotated[str, _pattern(_DID_KEY, "a did:key (did:key:z...)")]
MerkleRoot = Annotated[str, AfterValidator(_merkle_root)]
CredentialReference = Annotated[
    str,
    _pattern(_CREDENTIAL_REFERENCE, "a credential digest (uEi...) or a credential id (a URI)"),
]

#: Kinds of hub events a ``CellEventBatchCredential`` counts (PASSPORT.md, cell-level entries).
HubEventKind = Literal[
    "thermal-excursion",
    "over-voltage",
    "under-voltage",
    "deep-discharge",
    "cell-id-mismatch",
    "monitor-lost",
    "cell-summary",
    "state-of-health",
    "cell-replaced",
]
HUB_EVENT_KINDS: tuple[str, ...] = get_args(HubEventKind)
CellConfigurationState = Literal["verified", "unverified"]

#: PASSPORT.md: ``processLossTolerancePct`` of a batch "default 5".
DEFAULT_LOSS_TOLERANCE_PCT = Decimal("5")


# --- base models ------------------------------------------------------------------------------


class _Model(BaseModel):
    """JSON keys are the context's terms; anything else is refused, because an unknown key in a
    signed credential is either an undefined JSON-LD term or data nobody downstream reads."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in credentials: aliases as keys, absent optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_unique_elements(items: list[ElementMass] | list[RecoveredMaterial]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.element in seen:
            raise ValueError(f"element {item.element} is listed twice")
        seen.add(item.element)


class ElementMass(_Model):
    """How much of one element a batch holds; the unit mass balance traces.

    CX 6.1.0 gives only shares (``materials.active.<element>.recycled``, percent), not masses;
    masses are what lets a verifier add batches up.
    """

    type: Literal["ElementMass"] | None = None
    element: Element
    mass_kg: Mass
    #: PASSPORT.md: optional, default "0"; absent stays absent so a parsed document serialises
    #: back to the same JSON. Read ``recycled_kg`` for the value with the default applied.
    recycled_mass_kg: Mass | None = None

    @property
    def recycled_kg(self) -> Decimal:
        return Decimal(0) if self.recycled_mass_kg is None else self.recycled_mass_kg

    @model_validator(mode="after")
    def _recycled_within_mass(self) -> Self:
        if self.recycled_kg > self.mass_kg:
            raise ValueError("recycledMassKg must not exceed massKg")
        return self


class BatchInput(_Model):
    """One edge of the batch graph: how much of an upstream batch went into this output."""

    type: Literal["BatchInput"] | None = None
    batch: Urn
    mass_kg: Mass


class RecoveredMaterial(_Model):
    """What a recycler got back of one element (BP Circularity recovery data)."""

    type: Literal["RecoveredMaterial"] | None = None
    element: Element
    mass_kg: Mass
    recovery_rate_pct: Percentage


class ComponentReplacement(_Model):
    """A swapped module or cell; both sides are DIDs so each keeps its own history."""

    type: Literal["ComponentReplacement"] | None = None
    removed_component: Did
    installed_component: Did
    reason: Text


class PassportSubject(_Model):
    """A credential subject of one of the passport's credential types.

    The two class attributes tie a model to its place in the contract, so a subject alone is
    enough to build its credential (``build_credential``) and a credential's type alone is
    enough to pick the model that reads it (``parse_credential``).
    """

    credential_type: ClassVar[str]
    subject_type: ClassVar[str]
    #: The ``@context`` of a credential of this type: the battery context, and for the hub
    #: bridge's entries the hub context after it (``battery/v1`` is published, never edited).
    contexts: ClassVar[tuple[str, ...]] = (CREDENTIALS_V2, BATTERY_CONTEXT_V1)

    id: str
    type: str | list[str]

    @field_validator("type")
    @classmethod
    def _names_the_subject_type(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if cls.subject_type not in names:
            raise ValueError(f"must be (or include) {cls.subject_type!r}")
        return value


class BatterySubject(PassportSubject):
    """A passport entry: its subject is the battery (or pack) DID, and every entry after the
    first links to the digest of the one before it."""

    subject_type = "Battery"

    id: Did
    type: str | list[str] = "Battery"
    previous_credential: Digest | None = None


class BatchSubject(PassportSubject):
    """A material batch: not a passport entry but a node of the mass-balance graph."""

    subject_type = "MaterialBatch"

    id: Urn
    type: str | list[str] = "MaterialBatch"
    material: Text
    batch_mass_kg: PositiveDecimal
    element_mass: Annotated[list[ElementMass], Field(min_length=1)]
    production_site: Text
    input: list[BatchInput] | None = None
    process_loss_tolerance_pct: Percentage | None = None

    @property
    def loss_tolerance_pct(self) -> Decimal:
        if self.process_loss_tolerance_pct is None:
            return DEFAULT_LOSS_TOLERANCE_PCT
        return self.process_loss_tolerance_pct

    @model_validator(mode="after")
    def _elements_fit_in_the_batch(self) -> Self:
        _check_unique_elements(self.element_mass)
        if sum((e.mass_kg for e in self.element_mass), Decimal(0)) > self.batch_mass_kg:
            raise ValueError("the element masses add up to more than batchMassKg")
        return self


class ParticipantSubject(PassportSubject):
    """A value-chain participant (Catena-X SSI credential shape: ``id`` + ``holderIdentifier``)."""

    subject_type = "Participant"

    id: Did
    type: str | list[str] = "Participant"
    holder_identifier: Bpnl


# --- material batches -------------------------------------------------------------------------


class RawMaterialOrigin(BatchSubject):
    """A mine's or refiner's batch: where responsible sourcing (Art. 52) starts.

    BP SupplyChainDueDiligence covers the due-diligence report; CX 6.1.0 has no batch origin.
    """

    credential_type = "RawMaterialOriginCredential"

    process_type: Literal["mining", "refining"]
    country_of_origin: Country
    certification: list[Text] | None = None


class MaterialBatch(BatchSubject):
    """A processed batch (precursor, cathode active material, refined or recycled salt)."""

    credential_type = "MaterialBatchCredential"

    process_type: Literal["cathode-synthesis", "precursor-synthesis", "recycling", "refining"]
    country_of_origin: Country | None = None

    @model_validator(mode="after")
    def _recycling_output_is_all_recycled(self) -> Self:
        # PASSPORT.md: a recycler's output batch has no input and is 100 % recycled, which is
        # what lets mass balance treat it as a leaf with a known recycled share.
        if self.process_type == "recycling":
            if self.input:
                raise ValueError("a recycling output batch has no input")
            for element in self.element_mass:
                if element.recycled_kg != element.mass_kg:
                    raise ValueError(
                        f"recycledMassKg of {element.element} must equal its massKg in a "
                        "recycling output batch"
                    )
        return self


# --- battery passport entries -----------------------------------------------------------------


class BatteryManufacturing(BatterySubject):
    """The cell maker's (or OEM's) first passport entry: the battery's static data."""

    credential_type = "BatteryManufacturingCredential"

    passport_identifier: Urn  # CX metadata.passportIdentifier; BP batteryPassportIdentifier
    battery_identifier: Text  # CX identification.idDmc (GB/T 34014 code); BP productIdentifier
    battery_category: Text  # @vocab value; CX identification.category; BP batteryCategory
    battery_model: Text  # CX identification.identification.type.manufacturerPartId
    battery_status: BatteryStatus  # CX sustainability.status; BP batteryStatus
    manufacturer_identification: Bpnl  # CX operation.manufacturer.manufacturer
    manufacturer_name: Text  # BP manufacturerInformation
    manufacturing_facility: Bpna  # CX operation.manufacturer.facility[].facility
    manufacturing_country: Country  # BP manufacturingPlace
    manufacturing_date: XsdDate  # CX operation.manufacturer.manufacturingDate
    battery_chemistry: Text  # CX identification.chemistry
    cathode_active_material: Text  # CX materials.composition[]; BP MaterialComposition
    anode_active_material: Text  # CX materials.composition[]
    cell_format: Text
    cell_count: PositiveCount
    module_count: Count
    rated_capacity_ah: PositiveDecimal  # CX performance.rated.capacity.value
    rated_energy_kwh: PositiveDecimal = Field(alias="ratedEnergyKWh")  # CX perf.rated.energy
    nominal_voltage_v: PositiveDecimal  # CX performance.rated.voltage.nominal
    minimum_voltage_v: PositiveDecimal  # CX performance.rated.voltage.min
    maximum_voltage_v: PositiveDecimal  # CX performance.rated.voltage.max
    battery_mass_kg: PositiveDecimal  # CX characteristics.physicalDimension.weight
    length_mm: PositiveDecimal  # CX characteristics.physicalDimension.length
    width_mm: PositiveDecimal  # CX characteristics.physicalDimension.width
    height_mm: PositiveDecimal  # CX characteristics.physicalDimension.height
    operating_temperature_min_c: DecimalValue  # CX performance.rated.temperature.lower
    operating_temperature_max_c: DecimalValue  # CX performance.rated.temperature.upper
    expected_lifetime_cycles: Count  # CX performance.rated.lifetime.cycleLifeTesting.cycles
    warranty_period_years: Count  # CX characteristics.warranty.lifeValue (+ lifeUnit)
    carbon_footprint_kg_co2e_per_kwh: Mass = Field(  # CX sustainability.carbonFootprint[].value
        alias="carbonFootprintKgCO2ePerKWh"
    )
    carbon_footprint_performance_class: Text  # CX sustainability.carbonFootprint[].performanceClass
    recycled_content_cobalt_pct: Percentage  # CX materials.active.cobalt.recycled
    recycled_content_lithium_pct: Percentage  # CX materials.active.lithium.recycled
    recycled_content_nickel_pct: Percentage  # CX materials.active.nickel.recycled
    recycled_content_lead_pct: Percentage | None = None  # CX materials.active.lead.recycled
    #: Replaces the old ``inputBatch`` list of URNs: the masses make the battery the last node
    #: of the mass-balance graph. No CX 6.1.0 counterpart.
    material_input: Annotated[list[BatchInput], Field(min_length=1)]

    @model_validator(mode="after")
    def _voltage_window(self) -> Self:
        if not self.minimum_voltage_v <= self.nominal_voltage_v <= self.maximum_voltage_v:
            raise ValueError("voltages must satisfy minimum <= nominal <= maximum")
        return self


class PackAssembly(BatterySubject):
    """A pack assembler's entry: which module/cell DIDs the pack DID is made of."""

    credential_type = "PackAssemblyCredential"

    component: Annotated[list[Did], Field(min_length=1)]
    assembly_date: XsdDate
    assembly_facility: Text  # CX operation.manufacturer.facility[] of the assembler


class VehicleIntegration(BatterySubject):
    """The OEM's entry binding the battery to a vehicle."""

    credential_type = "VehicleIntegrationCredential"

    vehicle_identification_number: Vin
    vehicle_model: Text
    vehicle_manufacturer: Text
    integration_date: XsdDate  # nearest: CX operation.intoServiceDate; BP puttingIntoService


class StateOfHealth(BatterySubject):
    """A BMS reading (Art. 14 / Annex VII): what second-life buyers and recyclers judge by.

    CX 6.1.0 carries no SoH value (nearest: ``performance.dynamic.energy.soce``, BP
    ``stateOfCertifiedEnergy``) and keeps negative events as documents, not counts.
    """

    credential_type = "StateOfHealthCredential"

    measurement_time: Instant  # CX performance.dynamic.*.time
    state_of_health_pct: Percentage
    capacity_fade_pct: Percentage  # CX performance.dynamic.capacity.fade; BP capacityFade
    remaining_capacity_ah: Mass  # CX performance.dynamic.capacity.capacity; BP remainingCapacity
    full_cycle_count: Count  # CX performance.dynamic.fullCycles; BP numberOfFullCycles
    thermal_event_count: Count  # CX performance.dynamic.negativeEvents[] (documents)
    deep_discharge_count: Count  # BP batteryCondition.negativeEvents[] (free text)
    overcharge_count: Count  # BP batteryCondition.negativeEvents[] (free text)
    remaining_useful_life_cycles: Count | None = None


class Repair(BatterySubject):
    """Repair keeps the passport (status stays or becomes ``Reused``); components swapped are
    named so the cell-level history follows the new part."""

    credential_type = "RepairCredential"

    repair_date: XsdDate
    replacement: Annotated[list[ComponentReplacement], Field(min_length=1)]


class Repurposing(BatterySubject):
    """First entry of a new passport (Art. 77(6)): ``id`` is the new battery DID.

    ``previousCredential`` is required here, unlike on other first entries: it is the link to
    the last entry of the original passport. CX models the link as ``metadata.predecessor``.
    """

    credential_type = "RepurposingCredential"

    previous_credential: Digest
    original_battery: Did
    repurposing_date: XsdDate
    new_application: Text
    battery_status: Literal["Repurposed"]  # CX sustainability.status

    @model_validator(mode="after")
    def _new_battery(self) -> Self:
        if self.original_battery == self.id:
            raise ValueError("a repurposed battery gets a new DID: id equals originalBattery")
        return self


class Shipment(BatterySubject):
    """A cross-border movement of a used battery; the purpose decides product vs waste
    (Basel e-waste guidelines, BattReg Annex XIV)."""

    credential_type = "ShipmentCredential"

    shipment_identifier: Text
    consignor: Did
    consignee: Did
    shipment_date: XsdDate
    shipment_purpose: ShipmentPurpose
    destination_country: Country


class CustodyTransfer(BatterySubject):
    """Hands the right to append to this passport to ``transferredTo``."""

    credential_type = "CustodyTransferCredential"

    transferred_to: Did
    transfer_date: XsdDate


class RecyclingOutcome(BatterySubject):
    """The last entry (Art. 77(8)): what was recovered and which output batches carry it."""

    credential_type = "RecyclingOutcomeCredential"

    recycling_date: XsdDate
    recycling_facility: Text
    recovered_material: Annotated[list[RecoveredMaterial], Field(min_length=1)]
    output_batch: Annotated[list[Urn], Field(min_length=1)]
    battery_status: Literal["Recycled"]  # CX sustainability.status

    @model_validator(mode="after")
    def _unique_elements(self) -> Self:
        _check_unique_elements(self.recovered_material)
        return self


# --- cell-level entries of the hub bridge -----------------------------------------------------

HUB_CONTEXTS = (CREDENTIALS_V2, BATTERY_CONTEXT_V1, HUB_CONTEXT_V1)


class EventCount(_Model):
    """How many events of one kind a batch holds; kinds that did not occur are left out, so
    one batch has one spelling."""

    type: Literal["EventCount"] | None = None
    event_kind: HubEventKind
    count: PositiveCount


class CellEventBatch(BatterySubject):
    """One closed batch of a hub's events: the passport carries only the Merkle root (RFC 9162,
    ``credentials.merkle``), and each event is proven later by its inclusion proof.

    CX 6.1.0 keeps negative events as documents (``performance.dynamic.negativeEvents``); a
    batch commits to every cell-level event without putting the telemetry in the passport.
    """

    credential_type = "CellEventBatchCredential"
    contexts = HUB_CONTEXTS

    hub: DidKey
    merkle_root: MerkleRoot
    tree_size: PositiveCount
    first_event_at: Instant
    last_event_at: Instant
    event_counts: Annotated[list[EventCount], Field(min_length=1)]
    cell_configuration: CellConfigurationState | None = None

    @model_validator(mode="after")
    def _counts_cover_the_tree(self) -> Self:
        kinds = [entry.event_kind for entry in self.event_counts]
        repeated = sorted({kind for kind in kinds if kinds.count(kind) > 1})
        if repeated:
            raise ValueError(f"event kind {', '.join(repeated)} is counted more than once")
        total = sum(entry.count for entry in self.event_counts)
        if total != self.tree_size:
            raise ValueError(f"the event counts add up to {total}, not treeSize {self.tree_size}")
        if self.first_event_at > self.last_event_at:
            raise ValueError("firstEventAt must not be after lastEventAt")
        return self


class CellReplacement(BatterySubject):
    """An authorised service technician registered a new cell at a position: the old and the
    new cell each keep their DID (and so their own history), and the credential that
    authorised the technician is named so an auditor can ask for it."""

    credential_type = "CellReplacementCredential"
    contexts = HUB_CONTEXTS

    position: Count
    old_cell_did: DidKey
    new_cell_did: DidKey
    old_cell_uid: Text
    new_cell_uid: Text
    technician: Did
    technician_credential: CredentialReference
    replaced_at: Instant
    reason: Text | None = None

    @model_validator(mode="after")
    def _a_different_cell(self) -> Self:
        if self.old_cell_did == self.new_cell_did:
            raise ValueError("newCellDid must differ from oldCellDid")
        if self.old_cell_uid == self.new_cell_uid:
            raise ValueError("newCellUid must differ from oldCellUid")
        return self


class CellConfiguration(BatterySubject):
    """The tamper marker: a position showed another cell unique ID than the registered one
    (``unverified``), or that was cleared without a replacement (``verified``). A separate
    entry, not a batch field, so the passport is marked at once and the marking names the
    position and both IDs (PASSPORT.md explains the choice)."""

    credential_type = "CellConfigurationCredential"
    contexts = HUB_CONTEXTS

    cell_configuration: CellConfigurationState
    position: Count
    expected_cell_uid: Text
    observed_cell_uid: Text
    observed_at: Instant
    event_id: Text

    @model_validator(mode="after")
    def _observation_fits_the_state(self) -> Self:
        matches = self.observed_cell_uid == self.expected_cell_uid
        if self.cell_configuration == "unverified" and matches:
            raise ValueError("an unverified configuration observed another cell than expected: "
                             "observedCellUid equals expectedCellUid")
        if self.cell_configuration == "verified" and not matches:
            raise ValueError("a verified configuration observed the expected cell: "
                             "observedCellUid differs from expectedCellUid")
        return self


# --- participants -----------------------------------------------------------------------------


class Dismantler(ParticipantSubject):
    """Catena-X ``DismantlerCredential`` (the policy operand ``Dismantler`` checks it).

    Catena-X samples carry ``activityType`` as one string; PASSPORT.md makes it a list.
    """

    credential_type = "DismantlerCredential"

    activity_type: Annotated[list[Text], Field(min_length=1)]
    allowed_vehicle_brands: list[Text] | None = None


class Membership(ParticipantSubject):
    """Catena-X ``MembershipCredential`` (the policy operand ``Membership`` checks it)."""

    credential_type = "MembershipCredential"

    member_of: Text


# --- shipment declarations (connector/shipments) ---------------------------------------------
#
# The evidence a shipment declaration bundles so a customs officer can tell a used battery that
# is a product from one that is waste (Basel e-waste guidelines; BattReg Annex XIV). Their terms
# are in ``shipment/v1`` (used after ``battery/v1``, whose terms they reuse). They are kept out
# of ``CREDENTIAL_TYPES``: they are not entries of the hash-linked passport chain but evidence
# issued by others (a tester, a competent authority, the parties of an agreement) that travels
# with the consignment; ``SHIPMENT_CREDENTIAL_TYPES`` and ``parse_shipment_credential`` read them.

SHIPMENT_CONTEXTS = (CREDENTIALS_V2, BATTERY_CONTEXT_V1, SHIPMENT_CONTEXT_V1)
TestResult = Literal["pass", "fail"]
#: An absolute URI (agreement and credential ids: ``urn:uuid:…``, ``https://…``).
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
AbsoluteUri = Annotated[str, _pattern(_ABSOLUTE_URI, "an absolute URI such as urn:uuid:…")]
#: UN numbers of lithium batteries in transport (ADR/IMDG): cells and batteries alone, packed
#: with or contained in equipment, and vehicles powered by them.
_UN_NUMBER = re.compile(r"UN(3480|3481|3090|3091|3171|3536)")


class FunctionalityTest(BatterySubject):
    """The functionality test of one battery (Basel: "evidence of evaluation/testing ... for
    every item"; Annex XIV(3)): measured state of health, when, by whom, how, and the verdict.

    Issued by the tester (its node); ``tester`` names the person or facility that ran it when
    that is not the issuer itself.
    """

    credential_type = "FunctionalityTestCredential"
    contexts = SHIPMENT_CONTEXTS

    state_of_health_pct: Percentage
    tested_at: Instant
    tester: Did
    test_method: Text
    test_result: TestResult


class TreatmentFacilityAuthorisation(PassportSubject):
    """A competent authority's permit for a treatment facility: which operations (repair,
    repurposing, recycling) it may carry out on used batteries, under which permit, where."""

    credential_type = "TreatmentFacilityAuthorisationCredential"
    subject_type = "Participant"
    contexts = SHIPMENT_CONTEXTS

    id: Did
    type: str | list[str] = "Participant"
    facility_name: Text
    facility_country: Country
    permit_identifier: Text
    authorised_operation: Annotated[list[ShipmentPurpose], Field(min_length=1)]


class ContractAgreement(PassportSubject):
    """One party's signed attestation of a Dataspace Protocol contract agreement: DSP
    agreements carry no signatures, so each party signs what it agreed to (the JCS digest of
    the agreement's ODRL document) and the counterparty's attestation proves the other side."""

    credential_type = "ContractAgreementCredential"
    subject_type = "ContractAgreement"
    contexts = SHIPMENT_CONTEXTS

    id: AbsoluteUri
    type: str | list[str] = "ContractAgreement"
    agreement_provider: Did
    agreement_consumer: Did
    agreement_target: Text
    policy_digest: Digest
    agreement_signed_at: Instant


class PackagingDeclaration(_Model):
    """Basel condition 4: protection against damage in transport (ADR P903 for intact
    lithium batteries, P908/P909/P911 for damaged or defective ones)."""

    type: Literal["PackagingDeclaration"] | None = None
    un_number: Annotated[str, _pattern(_UN_NUMBER, "a lithium battery UN number (UN3480, …)")]
    packing_instruction: Text
    protected_against_damage: bool


class ConsignmentItem(_Model):
    """One battery of a consignment: its passport summary, declared purpose and packaging."""

    type: Literal["ConsignmentItem"] | None = None
    battery_did: Did
    passport_head: Digest | None = None
    battery_chemistry: Text | None = None
    battery_mass_kg: PositiveDecimal | None = None
    shipment_purpose: ShipmentPurpose
    functionality_test: AbsoluteUri | None = None
    packaging: PackagingDeclaration


class ShipmentDeclarationSubject(PassportSubject):
    """The shipper's declaration (Basel condition 3): the consignment, its receiving facility,
    the contract it moves under and, per battery, what it is shipped for."""

    credential_type = "ShipmentDeclarationCredential"
    subject_type = "Consignment"
    contexts = SHIPMENT_CONTEXTS

    id: Urn
    type: str | list[str] = "Consignment"
    consignor: Did
    consignee: Did
    destination_country: Country
    contract_agreement: AbsoluteUri
    policy_digest: Digest
    holder_declaration: Text
    consignment_item: Annotated[list[ConsignmentItem], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_item_per_battery(self) -> Self:
        batteries = [item.battery_did for item in self.consignment_item]
        repeated = sorted({b for b in batteries if batteries.count(b) > 1})
        if repeated:
            raise ValueError(f"battery {', '.join(repeated)} is listed more than once")
        return self


#: Credential type name → the model of its subject, for the shipment evidence above.
SHIPMENT_CREDENTIAL_TYPES: dict[str, type[PassportSubject]] = {
    model.credential_type: model
    for model in (FunctionalityTest, TreatmentFacilityAuthorisation, ContractAgreement,
                  ShipmentDeclarationSubject)
}


# --- registry, building and reading -----------------------------------------------------------

#: Credential type name → the model of its subject.
CREDENTIAL_TYPES: dict[str, type[PassportSubject]] = {
    model.credential_type: model
    for model in (
        RawMaterialOrigin,
        MaterialBatch,
        BatteryManufacturing,
        PackAssembly,
        VehicleIntegration,
        StateOfHealth,
        Repair,
        Repurposing,
        Shipment,
        CustodyTransfer,
        RecyclingOutcome,
        Dismantler,
        Membership,
        CellEventBatch,
        CellReplacement,
        CellConfiguration,
    )
}

CONTEXTS = (CREDENTIALS_V2, BATTERY_CONTEXT_V1)


def _moment(value: datetime, what: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return format_datetime(value)


def build_credential(
    subject: PassportSubject,
    *,
    issuer: str,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    previous: str | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """The unsigned VCDM 2.0 credential carrying ``subject``, ready for ``issue_credential``.

    ``previous`` (a digest) becomes ``credentialSubject.previousCredential``; it only exists on
    passport entries, so passing it with a batch or participant subject is an error rather
    than a silently dropped link. ``issuer`` is not checked here: issuing checks it against
    the signing key, and templates (``bpc vc issue``) may carry a placeholder.
    """
    if previous is not None:
        if not isinstance(subject, BatterySubject):
            raise MalformedDocument(
                f"{subject.credential_type} is not a passport entry and has no "
                "previousCredential",
                path="credentialSubject.previousCredential",
            )
        linked = {**subject.to_json(), "previousCredential": previous}
        try:
            subject = type(subject).model_validate(linked, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise _malformed(exc) from exc
    valid_from = valid_from or datetime.now(UTC)
    credential: dict[str, Any] = {
        "@context": list(subject.contexts),
        "id": credential_id or f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", subject.credential_type],
        "issuer": issuer,
        "validFrom": _moment(valid_from, "valid_from"),
    }
    if valid_until is not None:
        credential["validUntil"] = _moment(valid_until, "valid_until")
    credential["credentialSubject"] = subject.to_json()
    return credential


def _malformed(exc: ValidationError, prefix: str = "credentialSubject") -> MalformedDocument:
    """The first validation error as a MalformedDocument naming the JSON path that failed."""
    first = exc.errors()[0]
    path = prefix
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    reason = first["msg"].removeprefix("Value error, ")
    message = f"{path}: {reason}"
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more problems)"
    return MalformedDocument(message, path=path)


def credential_type_of(document: dict[str, Any]) -> str:
    """The one passport credential type a credential names after ``VerifiableCredential``."""
    names = [t for t in types_of(document) if t != "VerifiableCredential"]
    known = [t for t in names if t in CREDENTIAL_TYPES]
    if len(known) != 1:
        raise UnknownCredentialType(
            f"expected exactly one passport credential type, found {names!r}", path="type"
        )
    return known[0]


def parse_credential(document: dict[str, Any]) -> PassportSubject:
    """Typed reading of a passport credential's subject, chosen by its credential type.

    Reads signed and unsigned credentials alike (the proof is not looked at: verify first);
    raises ``UnknownCredentialType`` for a type outside the contract and ``MalformedDocument``
    naming the failing attribute for a subject that breaks it.
    """
    if not isinstance(document, dict):
        raise MalformedDocument("a credential must be a JSON object")
    contexts = document.get("@context")
    if not isinstance(contexts, list) or BATTERY_CONTEXT_V1 not in contexts:
        raise MalformedDocument(
            f"a passport credential uses the context {BATTERY_CONTEXT_V1}", path="@context"
        )
    if "VerifiableCredential" not in types_of(document):
        raise MalformedDocument("type must include VerifiableCredential", path="type")
    model = CREDENTIAL_TYPES[credential_type_of(document)]
    missing = [url for url in model.contexts if url not in contexts]
    if missing:
        raise MalformedDocument(
            f"a {model.credential_type} uses the context {', '.join(missing)}", path="@context"
        )
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        raise MalformedDocument(
            "a passport credential has exactly one credentialSubject object",
            path="credentialSubject",
        )
    try:
        return model.model_validate(subject, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _malformed(exc) from exc


def parse_shipment_credential(document: dict[str, Any]) -> PassportSubject:
    """Typed reading of a shipment credential's subject (``SHIPMENT_CREDENTIAL_TYPES``);
    ``UnknownCredentialType`` or ``MalformedDocument`` naming the failing attribute."""
    if not isinstance(document, dict):
        raise MalformedDocument("a credential must be a JSON object")
    names = [t for t in types_of(document) if t != "VerifiableCredential"]
    known = [t for t in names if t in SHIPMENT_CREDENTIAL_TYPES]
    if len(known) != 1:
        raise UnknownCredentialType(
            f"expected exactly one shipment credential type, found {names!r}", path="type")
    model = SHIPMENT_CREDENTIAL_TYPES[known[0]]
    contexts = document.get("@context")
    missing = [url for url in model.contexts
               if not isinstance(contexts, list) or url not in contexts]
    if missing:
        raise MalformedDocument(
            f"a {model.credential_type} uses the context {', '.join(missing)}", path="@context")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        raise MalformedDocument("a shipment credential has exactly one credentialSubject "
                                "object", path="credentialSubject")
    try:
        return model.model_validate(subject, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _malformed(exc) from exc


__all__ = [
    "CONTEXTS",
    "CREDENTIAL_TYPES",
    "DEFAULT_LOSS_TOLERANCE_PCT",
    "HUB_CONTEXTS",
    "HUB_EVENT_KINDS",
    "ISO_COUNTRIES",
    "SHIPMENT_CONTEXTS",
    "SHIPMENT_CREDENTIAL_TYPES",
    "BatchInput",
    "BatchSubject",
    "BatteryManufacturing",
    "BatteryStatus",
    "BatterySubject",
    "CellConfiguration",
    "CellConfigurationState",
    "CellEventBatch",
    "CellReplacement",
    "ComponentReplacement",
    "ConsignmentItem",
    "ContractAgreement",
    "CredentialReference",
    "CustodyTransfer",
    "DidKey",
    "Dismantler",
    "ElementMass",
    "EventCount",
    "FunctionalityTest",
    "HubEventKind",
    "MaterialBatch",
    "Membership",
    "PackAssembly",
    "PackagingDeclaration",
    "ParticipantSubject",
    "PassportSubject",
    "RawMaterialOrigin",
    "RecoveredMaterial",
    "RecyclingOutcome",
    "Repair",
    "Repurposing",
    "Shipment",
    "ShipmentDeclarationSubject",
    "ShipmentPurpose",
    "StateOfHealth",
    "TestResult",
    "TreatmentFacilityAuthorisation",
    "UnknownCredentialType",
    "VehicleIntegration",
    "build_credential",
    "credential_type_of",
    "parse_credential",
    "parse_shipment_credential",
]
