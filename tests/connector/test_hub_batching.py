"""Batches: closing by size or age, Merkle roots and proofs, offline checks, duplicates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from connector.plugins.hub.batching import Batcher, verify_event_inclusion
from connector.plugins.hub.bench_core import bench_core
from connector.plugins.hub.events import CellEvent, EventKind
from credentials.did_key import key_from_seed
from credentials.merkle import merkle_root

HUB = key_from_seed(b"\x11" * 32).controller
BATTERY = key_from_seed(b"\x44" * 32).controller
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def event(seq: int, *, position: int = 0, at: datetime = T0, **details) -> CellEvent:
    return CellEvent.create(kind=EventKind.THERMAL_EXCURSION, hub_id=HUB, battery_did=BATTERY,
                            position=position, cell_uid="0AXCEA1T000001K290000001", seq=seq,
                            observed_at=at, details={"temperature_mc": 61_000, **details})


def test_a_batch_closes_when_full():
    batcher = Batcher(max_events=3)
    assert batcher.add(event(1), T0) is None
    assert batcher.add(event(2), T0 + MS) is None
    batch = batcher.add(event(3), T0 + 2 * MS)
    assert batch is not None and batch.reason == "size" and len(batch) == 3
    assert [e.seq for e in batch.events] == [1, 2, 3]
    assert batch.opened_at == T0 and batch.closed_at == T0 + 2 * MS and batch.number == 0
    assert batch.root == merkle_root([e.digest() for e in batch.events])
    assert len(batcher) == 0 and batcher.opened_at is None
    assert batcher.add(event(4), T0 + 3 * MS) is None
    assert batcher.flush(T0 + 4 * MS).number == 1


def test_a_batch_closes_when_old_whichever_comes_first():
    batcher = Batcher(max_events=1000, max_age=timedelta(seconds=1))
    batcher.add(event(1), T0)
    batcher.add(event(2), T0 + 500 * MS)
    assert batcher.due(T0 + 999 * MS) is None
    batch = batcher.due(T0 + 1000 * MS)
    assert batch is not None and batch.reason == "age" and len(batch) == 2
    assert batcher.due(T0 + 5000 * MS) is None  # nothing open


def test_adding_to_an_overdue_batch_closes_it_and_starts_the_next():
    batcher = Batcher(max_events=10, max_age=timedelta(seconds=1))
    batcher.add(event(1), T0)
    batch = batcher.add(event(2), T0 + 2000 * MS)
    assert batch is not None and batch.reason == "age" and [e.seq for e in batch.events] == [1]
    assert len(batcher) == 1 and batcher.opened_at == T0 + 2000 * MS


def test_max_events_one_never_loses_an_event():
    batcher = Batcher(max_events=1, max_age=timedelta(seconds=1))
    closed = [batcher.add(event(1), T0)]
    closed.append(batcher.add(event(2), T0 + 5000 * MS))  # nothing open: closes at once
    assert [len(b) for b in closed if b] == [1, 1]


def test_a_clock_stepping_back_restarts_the_age():
    batcher = Batcher(max_age=timedelta(seconds=1))
    batcher.add(event(1), T0)
    assert batcher.due(T0 - timedelta(hours=1)) is None
    assert batcher.due(T0 - timedelta(hours=1) + 999 * MS) is None
    assert batcher.due(T0 - timedelta(hours=1) + 1000 * MS).reason == "age"


def test_every_event_proves_offline_against_the_root():
    batcher = Batcher(max_events=37)
    events = [event(i, position=i % 7) for i in range(37)]
    batch = None
    for e in events:
        batch = batcher.add(e, T0) or batch
    assert batch is not None
    proofs = batch.proofs()
    assert set(proofs) == {e.event_id for e in events}
    for e in events:
        # what a verifier holds: the stored event and proof JSON, the credential's root
        stored_event = json.loads(json.dumps(e.to_json()))
        stored_proof = json.loads(json.dumps(batch.proof_for(e.event_id)))
        assert verify_event_inclusion(stored_event, stored_proof, batch.root_b64, size=37)
        assert verify_event_inclusion(stored_event, stored_proof, batch.root)
        assert batch.inclusion(e.event_id).verify(e.digest(), batch.root)


def test_tampering_and_mismatches_fail_the_offline_check():
    batcher = Batcher(max_events=5)
    batch = None
    for i in range(5):
        batch = batcher.add(event(i), T0) or batch
    other = Batcher(max_events=2)
    other.add(event(100), T0)
    other_batch = other.add(event(101), T0)
    e0, e1 = batch.events[0], batch.events[1]
    doc, proof = e0.to_json(), batch.proof_for(e0.event_id)
    assert verify_event_inclusion(doc, proof, batch.root_b64)
    tampered = json.loads(json.dumps(doc))
    tampered["details"]["temperature_mc"] = 59_000
    bad_cases = [
        (tampered, proof, batch.root_b64),
        ({**doc, "extra": 1}, proof, batch.root_b64),
        (e1.to_json(), proof, batch.root_b64),  # another event's proof
        (doc, batch.proof_for(e1.event_id), batch.root_b64),
        (doc, proof, other_batch.root_b64),  # another batch's root
        (doc, {**proof, "leafIndex": 1}, batch.root_b64),
        (doc, {**proof, "inclusionPath": proof["inclusionPath"][:-1]}, batch.root_b64),
        (doc, {**proof, "inclusionPath": "x"}, batch.root_b64),
        (doc, {}, batch.root_b64),
        (doc, proof, "not a hash"),
        (doc, proof, b"short"),
        ({"x": float("nan")}, proof, batch.root_b64),
        ("not a dict", proof, batch.root_b64),
    ]
    for case in bad_cases:
        assert verify_event_inclusion(*case) is False, case
    assert verify_event_inclusion(doc, proof, batch.root_b64, size=6) is False
    with pytest.raises(KeyError):
        batch.proof_for(event(999).event_id)


def test_duplicates_are_dropped_within_the_window():
    batcher = Batcher(max_events=3, dedup_capacity=4)
    assert batcher.add(event(1), T0) is None
    assert batcher.add(event(1), T0) is None  # same id in the open batch
    assert len(batcher) == 1 and batcher.duplicates == 1
    batcher.add(event(2), T0)
    batch = batcher.add(event(3), T0)
    assert [e.seq for e in batch.events] == [1, 2, 3]
    assert batcher.add(event(2), T0) is None  # in a closed batch, still remembered
    assert batcher.duplicates == 2 and len(batcher) == 0
    for seq in (4, 5, 6):
        batcher.add(event(seq), T0)  # 4, 5, 6 close a batch: 1 and 2 leave the window
    batcher.add(event(1), T0)
    assert len(batcher) == 1 and batcher.duplicates == 2


def test_no_dedup_window():
    batcher = Batcher(max_events=1, dedup_capacity=0)
    assert batcher.add(event(1), T0) is not None
    assert batcher.add(event(1), T0) is not None


def test_events_out_of_time_order_batch_like_any_others():
    batcher = Batcher(max_events=4)
    times = [T0 + 3 * MS, T0, T0 + 2 * MS, T0 + MS]
    batch = None
    for seq, at in enumerate(times):
        batch = batcher.add(event(seq, at=at), T0) or batch
    assert [e.observed_at for e in batch.events] == times  # leaves in arrival order
    for e in batch.events:
        assert verify_event_inclusion(e.to_json(), batch.proof_for(e.event_id), batch.root)


@pytest.mark.parametrize("kwargs", [{"max_events": 0}, {"max_age": timedelta(0)},
                                    {"dedup_capacity": -1}])
def test_batcher_arguments_are_validated(kwargs):
    with pytest.raises(ValueError):
        Batcher(**kwargs)


def test_flush_and_due_on_an_empty_batcher():
    batcher = Batcher()
    assert batcher.flush(T0) is None and batcher.due(T0) is None


def test_bench_core_runs_and_reports_every_rate():
    results = bench_core(400)
    assert set(results) == {
        "simulate_aggregate", "aggregate", "sign_hub_message", "verify_hub_message",
        "sign_verify", "merkle_batch_1000", "ed25519_verify_raw", "ed25519_verify_message"}
    assert all(value > 0 for value in results.values())
