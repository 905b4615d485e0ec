"""Raw cell readings in, passport events out: threshold events at once, summaries per period.

Pure: time comes only from the readings' timestamps and from ``tick(now)``; nothing here
reads a clock. One aggregator serves any number of hubs; a hub registered with
``register()`` also gets cell-ID checks and monitor-lost detection.

What comes out, per cell position:

- a threshold event (thermal excursion, over-/under-voltage, deep discharge) when a reading
  *starts* an excursion; the excursion ends only when the value is back inside the threshold
  by the hysteresis margin, so a value jittering around the threshold makes one event, not
  one per reading;
- ``cell-id-mismatch`` when a reading names another cell than the one registered at its
  position (once per foreign cell; a return of the registered cell re-arms it);
- ``monitor-lost`` when a registered position has sent nothing for ``lost_after``
  (once per silence; its next reading re-arms it);
- ``cell-summary`` per cell (position and unique ID) and period: min / max / mean of voltage,
  temperature and state of charge, the reading count and the time above the thermal
  threshold (readings above it times the nominal reading interval).

Periods are aligned to multiples of ``period`` since the Unix epoch (UTC) and close when the
hub's watermark (its newest reading timestamp, or a later ``tick(now)``) passes their end by
``reorder_window``.

Out-of-order readings (the contract the tests pin down):

- a reading older than its cell's newest (late) still counts in its period's summary while
  that period is open; once the period has closed it is dropped and counted in
  ``stats.late_dropped``;
- a late reading never changes a cell's excursion or ID state, so a reordered stream cannot
  make an excursion flap; but a late reading that breaches a threshold while the cell is
  *not* in that excursion is reported (``details.late = true``): a short excursion that a
  reordering would otherwise hide is never lost;
- a reading whose hub sequence number was already counted in its open period is a duplicate
  and is ignored (``stats.duplicates``). Events carry ids derived from the reading that raised
  them, so a duplicate that slips through raises an event with an id already seen, which the
  batcher drops.

Measured values in event details are fixed-point integers: millivolts (``*_mv``),
millidegrees Celsius (``*_mc``) and per mille of state of charge (``*_permille``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connector.plugins.hub.events import CellEvent, CellReading, EventKind, RegisteredCell

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Thresholds(BaseModel):
    """When a reading is an event. Defaults for an NMC811 traction cell.

    - ``thermal_max_c`` 60 °C: the top of the idle range in synthetic-ranges.json
      (``idle_temperature_range_C.upper`` 50-60 °C) and the usual discharge limit in NMC
      cell data sheets; the Annex VII "time in extreme temperatures" counts above it.
    - ``over_voltage_v`` 4.25 V: 50 mV above the 4.2 V top of the NMC811 window
      (``cell_voltage_window_V``), beyond sensor noise and balancing; DIN DKE SPEC 99100
      defines an overcharge event as voltage above the maximum voltage.
    - ``under_voltage_v`` 2.8 V: the BMS cut-off most NMC packs use, 0.3 V above the 2.5 V
      bottom of the window.
    - ``deep_discharge_soc`` 5 %: the bottom of ``SoC_pct_snapshot`` (5-100 %) in normal use;
      DIN's deep-discharge definition is voltage below the minimum voltage, which
      ``under_voltage_v`` covers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thermal_max_c: float = Field(60.0, allow_inf_nan=False)
    thermal_hysteresis_c: float = Field(2.0, ge=0, allow_inf_nan=False)
    over_voltage_v: float = Field(4.25, gt=0, allow_inf_nan=False)
    under_voltage_v: float = Field(2.8, gt=0, allow_inf_nan=False)
    voltage_hysteresis_v: float = Field(0.05, ge=0, allow_inf_nan=False)
    deep_discharge_soc: float = Field(0.05, ge=0, le=1, allow_inf_nan=False)
    soc_hysteresis: float = Field(0.02, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.under_voltage_v + self.voltage_hysteresis_v >= (
                self.over_voltage_v - self.voltage_hysteresis_v):
            raise ValueError("under_voltage_v and over_voltage_v overlap (with hysteresis)")
        return self


@dataclass(slots=True)
class AggregatorStats:
    readings: int = 0
    duplicates: int = 0
    late: int = 0
    late_dropped: int = 0


@dataclass(slots=True)
class _Bucket:
    """One cell's running figures for one period."""

    count: int = 0
    v_min: float = float("inf")
    v_max: float = float("-inf")
    v_sum: float = 0.0
    t_min: float = float("inf")
    t_max: float = float("-inf")
    t_sum: float = 0.0
    s_min: float = float("inf")
    s_max: float = float("-inf")
    s_sum: float = 0.0
    above: int = 0
    min_seq: int = -1

    def add(self, r: CellReading, hot: bool) -> None:
        v, t, s = r.voltage_v, r.temperature_c, r.soc
        self.count += 1
        self.v_sum += v
        self.t_sum += t
        self.s_sum += s
        if v < self.v_min:
            self.v_min = v
        if v > self.v_max:
            self.v_max = v
        if t < self.t_min:
            self.t_min = t
        if t > self.t_max:
            self.t_max = t
        if s < self.s_min:
            self.s_min = s
        if s > self.s_max:
            self.s_max = s
        if hot:
            self.above += 1
        if self.min_seq < 0 or r.seq < self.min_seq:
            self.min_seq = r.seq


@dataclass(slots=True)
class _Period:
    start: datetime
    end: datetime
    buckets: dict[tuple[int, str], _Bucket] = field(default_factory=dict)
    seqs: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _CellState:
    newest: datetime | None = None  # newest reading applied to the excursion / ID state
    last_seen: datetime | None = None
    last_seq: int = 0
    active: set[EventKind] = field(default_factory=set)
    foreign_uid: str | None = None
    lost: bool = False


@dataclass(slots=True)
class _Hub:
    hub_id: str
    battery_did: str | None = None
    registered: dict[int, RegisteredCell] | None = None
    cells: dict[int, _CellState] = field(default_factory=dict)
    periods: dict[datetime, _Period] = field(default_factory=dict)
    current: _Period | None = None
    closed_before: datetime | None = None  # every period ending at or before this is closed
    watermark: datetime | None = None
    origin: datetime | None = None  # first moment this hub was heard of (lost-monitor baseline)
    next_check: datetime | None = None


_EXCURSIONS = (EventKind.THERMAL_EXCURSION, EventKind.OVER_VOLTAGE, EventKind.UNDER_VOLTAGE,
               EventKind.DEEP_DISCHARGE)


class CellAggregator:
    """Feed readings (``feed``), let time pass (``tick``); both return the events raised."""

    def __init__(self, thresholds: Thresholds | None = None,
                 period: timedelta = timedelta(seconds=60), *,
                 reading_interval: timedelta = timedelta(seconds=1),
                 lost_after: timedelta | None = None,
                 reorder_window: timedelta = timedelta(seconds=5)) -> None:
        if period <= timedelta(0) or reading_interval <= timedelta(0):
            raise ValueError("period and reading_interval must be positive")
        if reorder_window < timedelta(0):
            raise ValueError("reorder_window cannot be negative")
        self.thresholds = thresholds or Thresholds()
        self.period = period
        self.reading_interval = reading_interval
        self.lost_after = lost_after if lost_after is not None else 3 * reading_interval
        if self.lost_after <= timedelta(0):
            raise ValueError("lost_after must be positive")
        self.reorder_window = reorder_window
        self.stats = AggregatorStats()
        self._hubs: dict[str, _Hub] = {}
        th = self.thresholds
        self._t_max, self._v_over, self._v_under = (th.thermal_max_c, th.over_voltage_v,
                                                    th.under_voltage_v)
        self._soc_min = th.deep_discharge_soc

    # registration ---------------------------------------------------------------------------

    def register(self, hub_id: str, battery_did: str,
                 cells: Mapping[int, RegisteredCell]) -> None:
        """Tell the aggregator which cell and monitor belong at each position of a hub."""
        hub = self._hubs.get(hub_id) or _Hub(hub_id)
        hub.battery_did = battery_did
        hub.registered = dict(cells)
        self._hubs[hub_id] = hub

    # feeding --------------------------------------------------------------------------------

    def feed(self, reading: CellReading) -> list[CellEvent]:
        """Take one reading; the threshold and ID events it raises, and any period or lost
        monitor its timestamp closes."""
        hub = self._hubs.get(reading.hub_id)
        if hub is None:
            hub = self._hubs[reading.hub_id] = _Hub(reading.hub_id, reading.battery_did)
        self.stats.readings += 1
        ts = reading.timestamp
        events: list[CellEvent] = []

        # 1. summaries: the reading's period, unless closed already
        period = hub.current
        if period is None or not period.start <= ts < period.end:
            period = self._period_for(hub, ts)
        if period is not None and reading.seq in period.seqs:
            self.stats.duplicates += 1
            return events

        cell = hub.cells.get(reading.position)
        if cell is None:
            cell = hub.cells[reading.position] = _CellState()
        late = cell.newest is not None and ts <= cell.newest
        hot = reading.temperature_c > self._t_max
        if period is None:
            self.stats.late_dropped += 1
        else:
            period.seqs.add(reading.seq)
            key = (reading.position, reading.cell_uid)
            bucket = period.buckets.get(key)
            if bucket is None:
                bucket = period.buckets[key] = _Bucket()
            bucket.add(reading, hot)

        # 2. liveness
        if cell.last_seen is None or ts > cell.last_seen:
            cell.last_seen = ts
        if reading.seq > cell.last_seq:
            cell.last_seq = reading.seq
        if hub.origin is None:
            hub.origin = ts

        # 3. excursions and identity
        if late:
            self.stats.late += 1
            self._late_breaches(hub, cell, reading, events)
        else:
            cell.newest = ts
            cell.lost = False
            if (cell.active or hot or reading.voltage_v > self._v_over
                    or reading.voltage_v < self._v_under or reading.soc < self._soc_min):
                self._excursions(hub, cell, reading, events)
            if hub.registered is not None:
                self._identity(hub, cell, reading, events)

        # 4. time passes
        if hub.watermark is None or ts > hub.watermark:
            hub.watermark = ts
            if hub.next_check is None or ts >= hub.next_check:
                self._advance(hub, events)
        return events

    def feed_many(self, readings: Iterable[CellReading]) -> list[CellEvent]:
        events: list[CellEvent] = []
        for reading in readings:
            events.extend(self.feed(reading))
        return events

    def tick(self, now: datetime) -> list[CellEvent]:
        """Let the clock reach ``now``: closes due periods and detects lost monitors."""
        events: list[CellEvent] = []
        for hub in self._hubs.values():
            if hub.origin is None:
                hub.origin = now
            if hub.watermark is None or now > hub.watermark:
                hub.watermark = now
            self._advance(hub, events)
        return events

    def flush(self) -> list[CellEvent]:
        """Close every open period now (shutdown): their summaries, partial as they are."""
        events: list[CellEvent] = []
        for hub in self._hubs.values():
            for start in sorted(hub.periods):
                self._close(hub, hub.periods.pop(start), events)
            hub.current = None
        return events

    def retire(self, hub_id: str) -> list[CellEvent]:
        """Forget a hub that stopped on purpose (a pack off the bench): its open periods
        close now, partial as they are, and its monitors are not reported lost."""
        hub = self._hubs.pop(hub_id, None)
        if hub is None:
            return []
        events: list[CellEvent] = []
        for start in sorted(hub.periods):
            self._close(hub, hub.periods.pop(start), events)
        return events

    # internals ------------------------------------------------------------------------------

    def _period_for(self, hub: _Hub, ts: datetime) -> _Period | None:
        offset = (ts - _EPOCH) // self.period
        start = _EPOCH + offset * self.period
        end = start + self.period
        if hub.closed_before is not None and end <= hub.closed_before:
            return None
        period = hub.periods.get(start)
        if period is None:
            period = hub.periods[start] = _Period(start, end)
        if hub.current is None or start >= hub.current.start:
            hub.current = period
        return period

    def _event(self, hub: _Hub, kind: EventKind, reading: CellReading | None, *,
               position: int, cell_uid: str, seq: int, observed_at: datetime,
               details: dict[str, Any]) -> CellEvent:
        battery_did = reading.battery_did if reading is not None else hub.battery_did
        assert battery_did is not None  # a hub is known by a reading or by registration
        return CellEvent.create(kind=kind, hub_id=hub.hub_id, battery_did=battery_did,
                                position=position, cell_uid=cell_uid, seq=seq,
                                observed_at=observed_at, details=details)

    def _breaches(self, reading: CellReading) -> dict[EventKind, dict[str, Any]]:
        th = self.thresholds
        out: dict[EventKind, dict[str, Any]] = {}
        if reading.temperature_c > th.thermal_max_c:
            out[EventKind.THERMAL_EXCURSION] = {
                "temperature_mc": _milli(reading.temperature_c),
                "threshold_mc": _milli(th.thermal_max_c)}
        if reading.voltage_v > th.over_voltage_v:
            out[EventKind.OVER_VOLTAGE] = {"voltage_mv": _milli(reading.voltage_v),
                                           "threshold_mv": _milli(th.over_voltage_v)}
        if reading.voltage_v < th.under_voltage_v:
            out[EventKind.UNDER_VOLTAGE] = {"voltage_mv": _milli(reading.voltage_v),
                                            "threshold_mv": _milli(th.under_voltage_v)}
        if reading.soc < th.deep_discharge_soc:
            out[EventKind.DEEP_DISCHARGE] = {"soc_permille": _milli(reading.soc),
                                             "threshold_permille": _milli(th.deep_discharge_soc)}
        return out

    def _recovered(self, kind: EventKind, reading: CellReading) -> bool:
        th = self.thresholds
        if kind is EventKind.THERMAL_EXCURSION:
            return reading.temperature_c < th.thermal_max_c - th.thermal_hysteresis_c
        if kind is EventKind.OVER_VOLTAGE:
            return reading.voltage_v < th.over_voltage_v - th.voltage_hysteresis_v
        if kind is EventKind.UNDER_VOLTAGE:
            return reading.voltage_v > th.under_voltage_v + th.voltage_hysteresis_v
        return reading.soc > th.deep_discharge_soc + th.soc_hysteresis

    def _threshold_event(self, hub: _Hub, kind: EventKind, reading: CellReading,
                         details: dict[str, Any]) -> CellEvent:
        return self._event(hub, kind, reading, position=reading.position,
                           cell_uid=reading.cell_uid, seq=reading.seq,
                           observed_at=reading.timestamp,
                           details={**details, "monitor_did": reading.monitor_did})

    def _excursions(self, hub: _Hub, cell: _CellState, reading: CellReading,
                    events: list[CellEvent]) -> None:
        breaches = self._breaches(reading)
        for kind in _EXCURSIONS:
            if kind in cell.active:
                if kind not in breaches and self._recovered(kind, reading):
                    cell.active.discard(kind)
            elif kind in breaches:
                cell.active.add(kind)
                events.append(self._threshold_event(hub, kind, reading, breaches[kind]))

    def _late_breaches(self, hub: _Hub, cell: _CellState, reading: CellReading,
                       events: list[CellEvent]) -> None:
        for kind, details in self._breaches(reading).items():
            if kind not in cell.active:
                events.append(self._threshold_event(hub, kind, reading,
                                                    {**details, "late": True}))

    def _identity(self, hub: _Hub, cell: _CellState, reading: CellReading,
                  events: list[CellEvent]) -> None:
        assert hub.registered is not None
        registered = hub.registered.get(reading.position)
        if registered is not None and registered.cell_uid == reading.cell_uid:
            cell.foreign_uid = None
            return
        if cell.foreign_uid == reading.cell_uid:
            return  # this foreign cell was reported already
        cell.foreign_uid = reading.cell_uid
        events.append(self._event(
            hub, EventKind.CELL_ID_MISMATCH, reading, position=reading.position,
            cell_uid=reading.cell_uid, seq=reading.seq, observed_at=reading.timestamp,
            details={
                "registered_cell_uid": registered.cell_uid if registered else None,
                "observed_cell_uid": reading.cell_uid,
                "registered_monitor_did": registered.monitor_did if registered else None,
                "monitor_did": reading.monitor_did,
            }))

    def _advance(self, hub: _Hub, events: list[CellEvent]) -> None:
        """Close the periods the watermark has passed; look for silent monitors."""
        mark = hub.watermark
        assert mark is not None
        hub.next_check = mark + self.reading_interval
        horizon = mark - self.reorder_window
        for start in sorted(s for s, p in hub.periods.items() if p.end <= horizon):
            period = hub.periods.pop(start)
            if hub.current is period:
                hub.current = None
            self._close(hub, period, events)
        # every period ending at or before the horizon is closed from now on
        closed = _EPOCH + ((horizon - _EPOCH) // self.period) * self.period
        if hub.closed_before is None or closed > hub.closed_before:
            hub.closed_before = closed
        if hub.registered is not None:
            self._lost(hub, mark, events)

    def _lost(self, hub: _Hub, mark: datetime, events: list[CellEvent]) -> None:
        assert hub.registered is not None and hub.origin is not None
        for position in sorted(hub.registered):
            cell = hub.cells.get(position)
            if cell is None:
                cell = hub.cells[position] = _CellState()
            if cell.lost:
                continue
            since = cell.last_seen or hub.origin
            if mark - since < self.lost_after:
                continue
            cell.lost = True
            registered = hub.registered[position]
            events.append(self._event(
                hub, EventKind.MONITOR_LOST, None, position=position,
                cell_uid=registered.cell_uid, seq=cell.last_seq,
                observed_at=since + self.lost_after,
                details={"monitor_did": registered.monitor_did,
                         "last_seen": _iso(cell.last_seen) if cell.last_seen else None,
                         "lost_after_ms": _ms(self.lost_after)}))

    def _close(self, hub: _Hub, period: _Period, events: list[CellEvent]) -> None:
        interval_s = self.reading_interval.total_seconds()
        th_mc = _milli(self.thresholds.thermal_max_c)
        for (position, uid), b in sorted(period.buckets.items()):
            events.append(CellEvent.create(
                kind=EventKind.CELL_SUMMARY, hub_id=hub.hub_id,
                battery_did=hub.battery_did,
                position=position, cell_uid=uid, seq=b.min_seq, observed_at=period.end,
                details={
                    "period_start": _iso(period.start),
                    "period_end": _iso(period.end),
                    "readings": b.count,
                    "voltage_mv": _stats(b.v_min, b.v_max, b.v_sum / b.count),
                    "temperature_mc": _stats(b.t_min, b.t_max, b.t_sum / b.count),
                    "soc_permille": _stats(b.s_min, b.s_max, b.s_sum / b.count),
                    "seconds_above_thermal": round(b.above * interval_s),
                    "thermal_threshold_mc": th_mc,
                }))

def _milli(value: float) -> int:
    return round(value * 1000)


def _stats(low: float, high: float, mean: float) -> dict[str, int]:
    return {"min": _milli(low), "max": _milli(high), "mean": _milli(mean)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)
