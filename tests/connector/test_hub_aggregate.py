"""The cell aggregator: threshold events once per excursion, identity, liveness, summaries,
and what out-of-order and duplicate readings do."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from connector.plugins.hub.aggregate import CellAggregator, Thresholds
from connector.plugins.hub.events import CellEvent, CellReading, EventKind, RegisteredCell
from connector.plugins.hub.simulator import SimulatedHub
from credentials.did_key import key_from_seed

K = EventKind
HUB = key_from_seed(b"\x11" * 32).controller
BATTERY = key_from_seed(b"\x44" * 32).controller
MONITORS = [key_from_seed(bytes([i]) * 32).controller for i in range(1, 5)]
UIDS = [f"0AXCEA1T000001K29000000{i}" for i in range(4)]
REGISTERED = {i: RegisteredCell(UIDS[i], MONITORS[i]) for i in range(4)}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # a period boundary
S = timedelta(seconds=1)
_seq = itertools.count()


def reading(position=0, at=0.0, *, t=25.0, v=3.65, soc=0.5, seq=None, uid=None):
    return CellReading(hub_id=HUB, battery_did=BATTERY, position=position,
                       cell_uid=uid or UIDS[position], monitor_did=MONITORS[position],
                       voltage_v=v, temperature_c=t, soc=soc, timestamp=T0 + at * S,
                       seq=next(_seq) if seq is None else seq)


def aggregator(registered=True, **kwargs) -> CellAggregator:
    agg = CellAggregator(**kwargs)
    if registered:
        agg.register(HUB, BATTERY, REGISTERED)
    return agg


def kinds(events: list[CellEvent]) -> list[EventKind]:
    return [e.kind for e in events]


def non_summary(events):
    return [e for e in events if e.kind is not K.CELL_SUMMARY]


# The simulator's faults -----------------------------------------------------------------

def test_injected_faults_produce_exactly_the_expected_events():
    battery = key_from_seed(b"\x55" * 32).controller
    hub = SimulatedHub(battery, 192, seed=42).overheat(5, 10).swap(7, 20).silent(9, 30)
    agg = CellAggregator()
    agg.register(hub.hub_id, battery, hub.registered_cells())
    events = agg.feed_many(hub.run(T0, 180))
    events += agg.flush()
    alarms = non_summary(events)
    assert Counter(kinds(alarms)) == {K.THERMAL_EXCURSION: 1, K.CELL_ID_MISMATCH: 1,
                                      K.MONITOR_LOST: 1}
    by_kind = {e.kind: e for e in alarms}
    heat = by_kind[K.THERMAL_EXCURSION]
    assert heat.position == 5 and heat.details["temperature_mc"] > 60_000
    assert heat.details["monitor_did"] == hub.registered_cells()[5].monitor_did
    swap = by_kind[K.CELL_ID_MISMATCH]
    assert swap.position == 7 and swap.observed_at == T0 + 20 * S
    assert swap.details["registered_cell_uid"] == hub.registered_cells()[7].cell_uid
    assert swap.cell_uid == swap.details["observed_cell_uid"] != hub.registered_cells()[7].cell_uid
    lost = by_kind[K.MONITOR_LOST]
    assert lost.position == 9 and lost.observed_at == T0 + 32 * S  # last seen at 29 s, + 3 s
    assert lost.details == {"monitor_did": hub.registered_cells()[9].monitor_did,
                            "last_seen": "2026-03-01T12:00:29Z", "lost_after_ms": 3000}
    summaries = [e for e in events if e.kind is K.CELL_SUMMARY]
    # three whole minutes closed: 192 cells each, but cell 9 only in the first, and cell 7
    # twice in the first minute (the registered cell, then the foreign one)
    assert len(summaries) == 192 * 3 - 2 + 1
    seconds_hot = sum(e.details["seconds_above_thermal"] for e in summaries if e.position == 5)
    assert 150 <= seconds_hot <= 170
    assert len({e.event_id for e in events}) == len(events)


def test_replaying_the_same_stream_gives_the_same_events():
    def run():
        hub = SimulatedHub(BATTERY, 20, seed=1).overheat(3, 5)
        agg = CellAggregator()
        agg.register(hub.hub_id, BATTERY, hub.registered_cells())
        return [e.digest() for e in agg.feed_many(hub.run(T0, 130))]

    assert run() == run()


# Threshold events -----------------------------------------------------------------------

def test_a_temperature_jittering_around_the_threshold_is_one_excursion():
    agg = aggregator(registered=False)
    temps = [59.0, 60.5, 59.5, 60.2, 58.5, 61.0, 58.1]  # never below 58 (hysteresis 2 °C)
    events = [e for i, t in enumerate(temps) for e in agg.feed(reading(0, i, t=t))]
    assert kinds(events) == [K.THERMAL_EXCURSION]
    assert events[0].observed_at == T0 + 1 * S
    assert events[0].details == {"temperature_mc": 60_500, "threshold_mc": 60_000,
                                 "monitor_did": MONITORS[0]}
    # back below threshold - hysteresis ends it; the next crossing is a new excursion
    assert agg.feed(reading(0, 7, t=57.9)) == []
    again = agg.feed(reading(0, 8, t=60.1))
    assert kinds(again) == [K.THERMAL_EXCURSION] and again[0].event_id != events[0].event_id


@pytest.mark.parametrize(("values", "kind", "detail"), [
    ({"v": 4.3}, K.OVER_VOLTAGE, {"voltage_mv": 4300, "threshold_mv": 4250}),
    ({"v": 2.7}, K.UNDER_VOLTAGE, {"voltage_mv": 2700, "threshold_mv": 2800}),
    ({"soc": 0.03}, K.DEEP_DISCHARGE, {"soc_permille": 30, "threshold_permille": 50}),
])
def test_each_threshold_raises_one_event_per_excursion(values, kind, detail):
    agg = aggregator(registered=False)
    events = []
    for i in range(10):
        events += agg.feed(reading(1, i, **values))
    assert kinds(events) == [kind]
    assert {k: events[0].details[k] for k in detail} == detail
    assert events[0].position == 1 and events[0].cell_uid == UIDS[1]


def test_under_voltage_and_deep_discharge_together_are_two_events():
    events = aggregator().feed(reading(2, 0, v=2.6, soc=0.01))
    assert sorted(kinds(events)) == sorted([K.UNDER_VOLTAGE, K.DEEP_DISCHARGE])


def test_thresholds_are_configurable_and_validated():
    agg = aggregator(thresholds=Thresholds(thermal_max_c=45.0))
    assert kinds(agg.feed(reading(0, 0, t=46.0))) == [K.THERMAL_EXCURSION]
    assert Thresholds().thermal_max_c == 60.0 and Thresholds().over_voltage_v == 4.25
    for bad in ({"under_voltage_v": 4.3}, {"thermal_max_c": float("nan")},
                {"thermal_hysteresis_c": -1}, {"deep_discharge_soc": 1.5}, {"colour": 1}):
        with pytest.raises(ValidationError):
            Thresholds(**bad)


@pytest.mark.parametrize("kwargs", [
    {"period": timedelta(0)}, {"reading_interval": timedelta(seconds=-1)},
    {"lost_after": timedelta(0)}, {"reorder_window": timedelta(seconds=-1)},
])
def test_aggregator_arguments_are_validated(kwargs):
    with pytest.raises(ValueError):
        CellAggregator(**kwargs)


# Identity -------------------------------------------------------------------------------

def test_cell_id_mismatch_once_per_foreign_cell():
    agg = aggregator()
    foreign, other = "0AXCEA1T000001K290009999", "0AXCEA1T000001K290008888"
    events = []
    for i, uid in enumerate([UIDS[0], foreign, foreign, foreign, other, other, UIDS[0],
                             foreign]):
        events += agg.feed(reading(0, i, uid=uid))
    mismatches = [e for e in events if e.kind is K.CELL_ID_MISMATCH]
    assert [e.details["observed_cell_uid"] for e in mismatches] == [foreign, other, foreign]
    assert [e.observed_at for e in mismatches] == [T0 + 1 * S, T0 + 4 * S, T0 + 7 * S]
    assert all(e.details["registered_cell_uid"] == UIDS[0] for e in mismatches)


def test_a_position_the_hub_never_registered_is_a_mismatch():
    agg = CellAggregator()
    agg.register(HUB, BATTERY, {0: REGISTERED[0]})
    events = agg.feed(reading(3, 0))
    assert kinds(events) == [K.CELL_ID_MISMATCH]
    assert events[0].details["registered_cell_uid"] is None


def test_an_unregistered_hub_gets_thresholds_and_summaries_only():
    agg = aggregator(registered=False)
    events = agg.feed_many([reading(0, i, uid="0AXCEA1T000001K290007777") for i in range(3)])
    events += agg.feed(reading(0, 3, t=70.0, uid="0AXCEA1T000001K290007777"))
    events += agg.tick(T0 + 600 * S)
    assert Counter(kinds(events)) == {K.THERMAL_EXCURSION: 1, K.CELL_SUMMARY: 1}


# Liveness -------------------------------------------------------------------------------

def test_monitor_lost_after_three_reading_intervals_by_default_and_once():
    agg = aggregator()
    events = []
    for i in range(4):
        events += agg.feed_many([reading(p, i) for p in range(4)])
    for i in range(4, 10):  # position 2 falls silent
        events += agg.feed_many([reading(p, i) for p in (0, 1, 3)])
    lost = [e for e in events if e.kind is K.MONITOR_LOST]
    assert len(lost) == 1 and lost[0].position == 2
    assert lost[0].observed_at == T0 + 6 * S
    assert lost[0].cell_uid == UIDS[2]
    # it comes back, then falls silent again: a second, distinct event
    events = agg.feed_many([reading(p, 10) for p in range(4)])
    events += agg.tick(T0 + 20 * S)
    lost_again = [e for e in events if e.kind is K.MONITOR_LOST]
    assert len(lost_again) == 4  # everyone is silent after 10 s
    assert lost[0].event_id not in {e.event_id for e in lost_again}


def test_lost_after_is_configurable_and_tick_alone_detects_silence():
    agg = aggregator(lost_after=timedelta(seconds=30))
    agg.feed_many([reading(p, 0) for p in range(4)])
    assert non_summary(agg.tick(T0 + 29 * S)) == []
    lost = agg.tick(T0 + 30 * S)
    assert sorted(e.position for e in lost if e.kind is K.MONITOR_LOST) == [0, 1, 2, 3]
    assert non_summary(agg.tick(T0 + 90 * S)) == []  # reported once


def test_a_registered_monitor_never_heard_of_is_lost_too():
    agg = CellAggregator()
    agg.register(HUB, BATTERY, REGISTERED)
    assert agg.tick(T0) == []
    lost = agg.tick(T0 + 3 * S)
    assert len(lost) == 4
    assert all(e.details["last_seen"] is None and e.seq == 0 for e in lost)


# Summaries ------------------------------------------------------------------------------

def test_summary_figures():
    agg = aggregator(registered=False, reorder_window=timedelta(seconds=2))
    temps, volts = [25.0, 61.0, 62.0, 30.0], [3.6, 3.7, 3.65, 3.61]
    seqs = [100, 101, 102, 103]
    for i, (t, v, seq) in enumerate(zip(temps, volts, seqs, strict=True)):
        agg.feed(reading(0, 10 + i, t=t, v=v, soc=0.4 + i / 100, seq=seq))
    assert agg.tick(T0 + 61 * S) == []  # the period ends at 60 s, plus 2 s to reorder
    summaries = agg.tick(T0 + 62 * S)
    summary = next(e for e in summaries if e.kind is K.CELL_SUMMARY)
    assert summary.observed_at == T0 + 60 * S and summary.seq == 100
    assert summary.details == {
        "period_start": "2026-03-01T12:00:00Z", "period_end": "2026-03-01T12:01:00Z",
        "readings": 4,
        "voltage_mv": {"min": 3600, "max": 3700, "mean": 3640},
        "temperature_mc": {"min": 25_000, "max": 62_000, "mean": 44_500},
        "soc_permille": {"min": 400, "max": 430, "mean": 415},
        "seconds_above_thermal": 2, "thermal_threshold_mc": 60_000,
    }
    assert summary.digest()  # integers only: the JCS fast path


def test_periods_close_on_reading_time_and_flush_closes_the_rest():
    agg = aggregator(registered=False, period=timedelta(seconds=10),
                     reorder_window=timedelta(0))
    events = agg.feed_many([reading(0, i) for i in range(25)])
    summaries = [e for e in events if e.kind is K.CELL_SUMMARY]
    assert [e.details["readings"] for e in summaries] == [10, 10]
    rest = agg.flush()
    assert [e.details["readings"] for e in rest] == [5]
    assert agg.flush() == []


def test_a_swapped_cell_gets_its_own_summary():
    agg = aggregator()
    agg.feed_many([reading(0, i) for i in range(3)])
    agg.feed_many([reading(0, i, uid="0AXCEA1T000001K290009999") for i in range(3, 5)])
    summaries = [e for e in agg.flush() if e.kind is K.CELL_SUMMARY]
    assert sorted((e.cell_uid, e.details["readings"]) for e in summaries) == [
        ("0AXCEA1T000001K290000000", 3), ("0AXCEA1T000001K290009999", 2)]


# Out of order and duplicates ------------------------------------------------------------

def test_reordered_readings_within_the_window_count_in_their_period():
    agg = aggregator(registered=False, reorder_window=timedelta(seconds=5))
    order = [0, 2, 1, 4, 3, 59, 57, 61, 58, 63]  # 57 and 58 arrive after 59 and 61
    for i in order:
        agg.feed(reading(0, i, t=20.0 + i / 10))
    summary = [e for e in agg.flush() if e.kind is K.CELL_SUMMARY]
    first = next(e for e in summary if e.details["period_start"] == "2026-03-01T12:00:00Z")
    assert first.details["readings"] == 8
    assert agg.stats.late == 4 and agg.stats.late_dropped == 0


def test_readings_later_than_the_window_are_dropped_from_summaries():
    agg = aggregator(registered=False, reorder_window=timedelta(seconds=5))
    agg.feed(reading(0, 30))
    events = agg.feed(reading(0, 66))  # closes the first minute
    assert [e.details["readings"] for e in events if e.kind is K.CELL_SUMMARY] == [1]
    assert agg.feed(reading(0, 40)) == []
    assert agg.stats.late_dropped == 1
    assert [e.details["readings"] for e in agg.flush()] == [1]


def test_a_late_reading_does_not_end_or_restart_an_excursion():
    agg = aggregator()
    events = agg.feed(reading(0, 5, t=65.0))
    events += agg.feed(reading(0, 4, t=30.0))  # older and cool: does not end the excursion
    events += agg.feed(reading(0, 6, t=64.0))
    events += agg.feed(reading(0, 3, t=66.0))  # older and hot: the excursion is running
    assert kinds(events) == [K.THERMAL_EXCURSION]


def test_a_late_breach_while_normal_is_reported_not_lost():
    agg = aggregator()
    events = agg.feed(reading(0, 5, t=30.0))
    events += agg.feed(reading(0, 4, t=70.0, seq=4444))  # a short excursion, delivered late
    assert kinds(events) == [K.THERMAL_EXCURSION]
    assert events[0].details["late"] is True and events[0].observed_at == T0 + 4 * S
    assert events[0].seq == 4444
    assert agg.feed(reading(0, 6, t=30.0)) == []  # the state was not changed by it


def test_a_late_reading_does_not_flap_the_identity_state():
    agg = aggregator()
    foreign = "0AXCEA1T000001K290009999"
    events = agg.feed(reading(0, 5, uid=foreign))
    events += agg.feed(reading(0, 4))  # older, the registered cell: ignored for identity
    events += agg.feed(reading(0, 6, uid=foreign))
    assert kinds(events) == [K.CELL_ID_MISMATCH]


def test_duplicate_readings_are_ignored():
    agg = aggregator()
    first = reading(0, 1, t=70.0)
    events = agg.feed(first) + agg.feed(first) + agg.feed(first.model_copy())
    assert kinds(events) == [K.THERMAL_EXCURSION]
    assert agg.stats.duplicates == 2 and agg.stats.readings == 3
    summary = [e for e in agg.flush() if e.kind is K.CELL_SUMMARY]
    assert summary[0].details["readings"] == 1


def test_a_duplicate_after_its_period_closed_raises_an_already_known_event_id():
    agg = aggregator(registered=False, reorder_window=timedelta(0))
    hot = reading(0, 1, t=70.0)
    first = agg.feed(hot)
    agg.feed(reading(0, 2, t=30.0))
    agg.feed(reading(0, 61, t=30.0))  # closes the first minute: its seqs are forgotten
    again = agg.feed(hot)
    assert kinds(again) == [K.THERMAL_EXCURSION]
    assert again[0].event_id == first[0].event_id  # so the batcher drops it
