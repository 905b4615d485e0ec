"""A built-in hub: a pack of cells with monitors, for demos, tests and benchmarks.

Values follow ``shared/passport-model/derived/synthetic-ranges.json`` for an NMC811 pack:
cells rest at 3.6-3.7 V (the open-circuit voltage of 35-55 % state of charge), sit at
20-35 °C, and the state of charge drifts slowly. Each cell has a GB/T 34014-style unique code
and each monitor an Ed25519 did:key, all derived from the seed, so one seed gives one pack,
reading for reading.

Faults are injected per position and tick: ``overheat`` ramps a cell's temperature well past
the thermal threshold and holds it there, ``swap`` puts a different cell (another unique ID)
behind the same monitor, ``silent`` stops a monitor's readings. Each is meant to produce
exactly one event in the aggregator.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from itertools import pairwise

from connector.plugins.hub.events import (
    CellReading,
    HubMessage,
    RegisteredCell,
    sign_hub_message,
)
from credentials.did_key import key_from_seed
from credentials.keys import Ed25519Key

MAX_CELLS = 1000
#: Open-circuit voltage of an NMC811 cell by state of charge (typical curve, 2.5-4.2 V window).
_OCV_NMC = ((0.0, 3.0), (0.1, 3.45), (0.3, 3.6), (0.5, 3.68), (0.7, 3.82), (0.9, 4.02),
            (1.0, 4.17))
_TEMPERATURE_RANGE_C = (20.0, 35.0)
_SOC_RANGE = (0.35, 0.55)
# GB/T 34014 codes: characters allowed for year, month and day of production.
_YEAR = "123456789ABCDEFGHJKLMNPRSTVWXY"
_MONTH = "123456789ABC"
_DAY = "123456789ABCDEFGHJKLMNPRSTVWXY"


def ocv(soc: float) -> float:
    """Linear interpolation of the open-circuit voltage curve."""
    for (s0, v0), (s1, v1) in pairwise(_OCV_NMC):
        if soc <= s1:
            return v0 + (v1 - v0) * (max(soc, s0) - s0) / (s1 - s0)
    return _OCV_NMC[-1][1]


@dataclass(frozen=True, slots=True)
class Overheat:
    """From ``from_tick`` on, the cell heats by ``rate_c`` per tick up to ``peak_c``."""

    position: int
    from_tick: int
    rate_c: float = 3.0
    peak_c: float = 85.0


@dataclass(frozen=True, slots=True)
class Swap:
    """From ``at_tick`` on, a different cell (another unique ID) sits at ``position``."""

    position: int
    at_tick: int


@dataclass(frozen=True, slots=True)
class Silent:
    """From ``from_tick`` on, the monitor at ``position`` sends nothing."""

    position: int
    from_tick: int


Fault = Overheat | Swap | Silent


@dataclass(slots=True)
class _Cell:
    uid: str
    monitor_did: str
    soc_offset: float
    voltage_offset: float
    base_temperature: float


def _derived_seed(seed: int, *labels: object) -> bytes:
    return sha256("|".join(map(str, (seed, *labels))).encode()).digest()


class SimulatedHub:
    """One pack's hub: ``readings(at)`` gives one reading per live cell per tick."""

    def __init__(self, battery_did: str, cells: int = 192, *, seed: int = 0,
                 hub_key: Ed25519Key | None = None, faults: Iterable[Fault] = (),
                 start_seq: int = 0) -> None:
        if isinstance(cells, bool) or not isinstance(cells, int) or not 1 <= cells <= MAX_CELLS:
            raise ValueError(f"a simulated pack has 1..{MAX_CELLS} cells, not {cells!r}")
        self.battery_did = battery_did
        self.cells = cells
        self.hub_key = hub_key or key_from_seed(_derived_seed(seed, "hub"))
        self.hub_id = self.hub_key.controller
        self.tick = 0
        self.seq = start_seq
        self._rng = random.Random(seed)
        rng = self._rng
        lot = rng.randrange(10**6)
        date = f"{rng.choice(_YEAR)}{rng.choice(_MONTH)}{rng.choice(_DAY)}"
        serial0 = rng.randrange(10**6)
        self._uid_prefix = f"0AXCEA1T{lot:06d}{date}"
        self._serial0 = serial0
        self._cells = [
            _Cell(uid=self._uid(serial0 + position),
                  monitor_did=key_from_seed(_derived_seed(seed, "monitor", position)).controller,
                  soc_offset=rng.gauss(0.0, 0.004),
                  voltage_offset=rng.gauss(0.0, 0.003),
                  base_temperature=rng.uniform(22.0, 30.0))
            for position in range(cells)
        ]
        self._registered = {position: RegisteredCell(cell.uid, cell.monitor_did)
                            for position, cell in enumerate(self._cells)}
        self._soc = rng.uniform(*_SOC_RANGE)
        self._ambient = 0.0
        self._overheat: dict[int, Overheat] = {}
        self._swap: dict[int, Swap] = {}
        self._silent: dict[int, Silent] = {}
        for fault in faults:
            self._add(fault)

    def _uid(self, serial: int) -> str:
        return f"{self._uid_prefix}{serial % 10**7:07d}"

    def _add(self, fault: Fault) -> None:
        if not 0 <= fault.position < self.cells:
            raise ValueError(f"no cell at position {fault.position} in a {self.cells}-cell pack")
        tick = fault.at_tick if isinstance(fault, Swap) else fault.from_tick
        if tick < 0:
            raise ValueError("a fault starts at tick 0 or later")
        table: dict[int, Fault] = {Overheat: self._overheat, Swap: self._swap,
                                   Silent: self._silent}[type(fault)]  # type: ignore[assignment]
        table[fault.position] = fault

    def overheat(self, position: int, from_tick: int) -> SimulatedHub:
        self._add(Overheat(position, from_tick))
        return self

    def swap(self, position: int, at_tick: int) -> SimulatedHub:
        self._add(Swap(position, at_tick))
        return self

    def silent(self, position: int, from_tick: int) -> SimulatedHub:
        self._add(Silent(position, from_tick))
        return self

    def registered_cells(self) -> dict[int, RegisteredCell]:
        """Position → (cell unique ID, monitor DID) as registered when the pack was built."""
        return dict(self._registered)

    def readings(self, at: datetime) -> list[CellReading]:
        """The readings of the next tick, timestamped ``at``; advances the tick."""
        rng, tick = self._rng, self.tick
        low_soc, high_soc = _SOC_RANGE
        self._soc = min(high_soc, max(low_soc, self._soc + rng.gauss(0.0, 0.0008)))
        self._ambient = min(2.5, max(-2.5, self._ambient + rng.gauss(0.0, 0.02)))
        low_t, high_t = _TEMPERATURE_RANGE_C
        out = []
        gauss = rng.gauss
        for position, cell in enumerate(self._cells):
            silent = self._silent.get(position)
            if silent is not None and tick >= silent.from_tick:
                continue
            soc = min(1.0, max(0.0, self._soc + cell.soc_offset))
            voltage = ocv(soc) + cell.voltage_offset + gauss(0.0, 0.0015)
            temperature = min(high_t, max(low_t, cell.base_temperature + self._ambient
                                          + gauss(0.0, 0.15)))
            heat = self._overheat.get(position)
            if heat is not None and tick >= heat.from_tick:
                temperature = min(heat.peak_c,
                                  temperature + heat.rate_c * (tick - heat.from_tick + 1))
            uid = cell.uid
            swap = self._swap.get(position)
            if swap is not None and tick >= swap.at_tick:
                uid = self._uid(self._serial0 + 5_000_000 + position)
            # Valid by construction (tests validate every field), so pydantic's checks are
            # skipped: they would halve the simulator's rate in benchmarks.
            out.append(CellReading.model_construct(
                hub_id=self.hub_id, battery_did=self.battery_did, position=position,
                cell_uid=uid, monitor_did=cell.monitor_did, voltage_v=round(voltage, 4),
                temperature_c=round(temperature, 2), soc=round(soc, 4), timestamp=at,
                seq=self.seq))
            self.seq += 1
        self.tick += 1
        return out

    def message(self, readings: list[CellReading], sent_at: datetime) -> bytes:
        """One signed hub message carrying ``readings``."""
        return sign_hub_message(self.hub_key, HubMessage(hub_id=self.hub_id, sent_at=sent_at,
                                                         readings=readings))

    def messages(self, at: datetime, per_message: int = 100) -> list[bytes]:
        """The next tick's readings as signed hub messages of up to ``per_message`` each."""
        readings = self.readings(at)
        return [self.message(readings[i:i + per_message], at)
                for i in range(0, len(readings), per_message)]

    def run(self, start: datetime, ticks: int, interval: timedelta = timedelta(seconds=1)
            ) -> list[CellReading]:
        """``ticks`` ticks of readings from ``start``, ``interval`` apart."""
        out: list[CellReading] = []
        for step in range(ticks):
            out.extend(self.readings(start + step * interval))
        return out
