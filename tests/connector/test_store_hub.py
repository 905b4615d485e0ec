"""The hub tables on SQLite and PostgreSQL (migrations 6 and 7): events stored exactly once
(a redelivered message adds nothing), batch assignment only of unbatched events, lookups by
id, battery and batch, and migration 6's rows moved into migration 7's tables."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from connector.store import (
    HubBatch,
    HubCell,
    HubEventGroup,
    HubEventRef,
    InvalidRecord,
    Store,
    schema_postgres,
    schema_sqlite,
)
from tests.connector.test_store import T0, OpenStore, open_new, raw_execute, store  # noqa: F401

HUB = "did:key:z6MkHub"
PACK = "did:key:z6MkPack"
OTHER_PACK = "did:key:z6MkOtherPack"


def event_json(n: int, battery: str = PACK) -> dict[str, Any]:
    return {"battery_did": battery, "cell_uid": f"CELL-{n % 7}", "details": {"n": n},
            "event_id": f"ev-{n:04d}", "hub_id": HUB, "kind": "cell-summary",
            "observed_at": (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            "position": n % 7, "seq": n}


def group(numbers: list[int], battery: str = PACK) -> HubEventGroup:
    events = [event_json(n, battery) for n in numbers]
    return HubEventGroup(hub_id=HUB, battery_did=battery, received_at=T0,
                         event_ids=tuple(e["event_id"] for e in events),
                         seqs=tuple(numbers), events=json.dumps(events))


def refs(numbers: range | list[int]) -> list[HubEventRef]:
    return [HubEventRef(n, f"ev-{n:04d}") for n in numbers]


async def test_events_are_stored_once_even_when_redelivered(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        first = await tx.add_hub_events(group(list(range(1200))))  # several statements
    async with store.transaction() as tx:
        again = await tx.add_hub_events(group([*range(1100, 1200), 5000]))
        nothing = await tx.add_hub_events(group([3, 4]))
    assert sorted(first) == [f"ev-{n:04d}" for n in range(1200)]
    assert again == ["ev-5000"] and nothing == []
    async with store.read() as reader:
        stored = await reader.get_hub_event("ev-0042")
        unbatched = await reader.list_hub_events(unbatched=True, limit=2000)
        missing = await reader.get_hub_event("ev-9999")
    assert stored is not None and missing is None
    assert stored.event == event_json(42)
    assert (stored.hub_id, stored.battery_did, stored.kind, stored.position) == (
        HUB, PACK, "cell-summary", 0)
    assert stored.observed_at == T0 + timedelta(seconds=42) and stored.received_at == T0
    assert stored.batch_id is None
    assert len(unbatched) == 1201
    assert [e.event_id for e in unbatched] == sorted(e.event_id for e in unbatched)


async def test_only_unbatched_events_join_a_batch(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        await tx.add_hub_events(group(list(range(10))))
        assert sorted(await tx.assign_hub_batch("b1", refs(range(6)))) == [
            f"ev-{n:04d}" for n in range(6)]
        # a second batch cannot take events the first one covers
        assert sorted(await tx.assign_hub_batch("b2", refs(range(4, 10)))) == [
            f"ev-{n:04d}" for n in range(6, 10)]
        # an unknown event (or a known id under another sequence number) is not taken
        assert await tx.assign_hub_batch("b3", [HubEventRef(99, "ev-0099"),
                                                HubEventRef(1, "ev-0002")]) == []
    async with store.read() as reader:
        in_b1 = await reader.list_hub_events(batch_id="b1")
        in_b2 = await reader.list_hub_events(batch_id="b2")
        left = await reader.list_hub_events(unbatched=True)
    assert [e.event_id for e in in_b1] == [f"ev-{n:04d}" for n in range(6)]
    assert [e.event_id for e in in_b2] == [f"ev-{n:04d}" for n in range(6, 10)]
    assert all(e.batch_id == "b1" for e in in_b1)
    assert left == []


async def test_batched_events_are_found_by_id_battery_and_page(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        await tx.add_hub_events(group(list(range(20))))
        await tx.add_hub_events(group(list(range(100, 105)), OTHER_PACK))
        await tx.assign_hub_batch("b1", refs(range(20)))
        await tx.put_hub_batch(HubBatch(
            id="b1", battery_did=PACK, hub_id=HUB, merkle_root="root", tree_size=20,
            event_ids=tuple(f"ev-{n:04d}" for n in range(20)), first_event_at=T0,
            last_event_at=T0, closed_at=T0))
    async with store.read() as reader:
        found = await reader.get_hub_event("ev-0013")
        other = await reader.get_hub_event("ev-0102")
        first = await reader.list_hub_events(battery_did=PACK, limit=8)
        rest = await reader.list_hub_events(battery_did=PACK, after=first[-1].event_id)
        theirs = await reader.list_hub_events(battery_did=OTHER_PACK)
    assert found is not None and found.batch_id == "b1" and found.event == event_json(13)
    assert other is not None and other.batch_id is None and other.battery_did == OTHER_PACK
    assert [e.event_id for e in first + rest] == [f"ev-{n:04d}" for n in range(20)]
    assert [e.event_id for e in theirs] == [f"ev-{n:04d}" for n in range(100, 105)]


async def test_malformed_groups_are_refused_and_change_nothing(store: Store) -> None:  # noqa: F811
    good = group([1, 2])
    bad = [
        HubEventGroup(hub_id=HUB, battery_did=PACK, received_at=T0, event_ids=("ev-0001",),
                      seqs=(1, 2), events=good.events),
        HubEventGroup(hub_id=HUB, battery_did=PACK, received_at=T0, event_ids=("ev-0001",),
                      seqs=(-1,), events=good.events),
        HubEventGroup(hub_id=HUB, battery_did=PACK, received_at=T0, event_ids=("",),
                      seqs=(1,), events=good.events),
        HubEventGroup(hub_id=HUB, battery_did=PACK, received_at=T0, event_ids=("ev-0001",),
                      seqs=(1,), events='{"not": "an array"}'),
        HubEventGroup(hub_id=HUB, battery_did=PACK, received_at=T0, event_ids=("ev-0001",),
                      seqs=(1,), events='["\x00"]'),
    ]
    for record in bad:
        with pytest.raises(InvalidRecord):
            async with store.transaction() as tx:
                await tx.add_hub_events(record)
    async with store.read() as reader:
        assert await reader.list_hub_events() == []


async def test_migration_7_moves_the_events_of_migration_6(
        store_url: str, open_new: OpenStore, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    import connector.store.postgres as postgres_module
    import connector.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "MIGRATIONS", schema_sqlite.MIGRATIONS[:6])
    monkeypatch.setattr(postgres_module, "MIGRATIONS", schema_postgres.MIGRATIONS[:6])
    old = await open_new()
    assert await old.schema_version() == 6
    sqlite = old.backend == "sqlite"
    at = "1893499200000000" if sqlite else "'2030-01-01T12:00:00Z'"
    for n, batch in ((1, "'b1'"), (2, "NULL")):
        text = json.dumps(event_json(n)).replace("'", "''")
        await raw_execute(old, store_url, (
            "INSERT INTO hub_events (event_id, hub_id, battery_did, kind, position, "
            f"observed_at, event, received_at, batch_id) VALUES ('ev-{n:04d}', '{HUB}', "
            f"'{PACK}', 'cell-summary', {n}, {at}, '{text}', {at}, {batch})"))
    monkeypatch.undo()
    new = await open_new()
    assert await new.schema_version() == len(schema_sqlite.MIGRATIONS) == 7
    async with new.transaction() as tx:
        await tx.put_hub_batch(HubBatch(
            id="b1", battery_did=PACK, hub_id=HUB, merkle_root="root", tree_size=1,
            event_ids=("ev-0001",), first_event_at=T0, last_event_at=T0, closed_at=T0))
        assert await tx.add_hub_events(group([1, 2, 3])) == ["ev-0003"]  # still once
    async with new.read() as reader:
        moved = await reader.get_hub_event("ev-0001")
        loose = await reader.list_hub_events(unbatched=True)
    assert moved is not None and moved.event == event_json(1) and moved.batch_id == "b1"
    assert moved.received_at == T0
    assert [e.event_id for e in loose] == ["ev-0002", "ev-0003"]


async def test_cells_and_batches_round_trip(store: Store) -> None:  # noqa: F811
    cell = HubCell(id=f"{HUB}#3", hub_id=HUB, battery_did=PACK, position=3,
                   cell_uid="CELL-0003", cell_did="did:key:z6MkCell3")
    batch = HubBatch(id="b1", battery_did=PACK, hub_id=HUB, merkle_root="root", tree_size=2,
                     event_ids=("ev-0001", "ev-0002"), first_event_at=T0,
                     last_event_at=T0 + timedelta(seconds=1), closed_at=T0)
    async with store.transaction() as tx:
        stored = await tx.put_hub_cell(cell)
        await tx.put_hub_cell(HubCell(id=f"{HUB}#4", hub_id=HUB, battery_did=PACK, position=4,
                                      cell_uid="CELL-0004", cell_did="did:key:z6MkCell4",
                                      configuration="unverified", observed_uid="CELL-9999"))
        saved = await tx.put_hub_batch(batch)
        await tx.put_hub_batch(HubBatch(**{**{f: getattr(saved, f) for f in saved.__slots__},
                                           "credential_digest": "uEiDdigest"}))
        await tx.put_hub_batch(HubBatch(id="b2", battery_did=PACK, hub_id=HUB,
                                        merkle_root="r2", tree_size=1, event_ids=("ev-0003",),
                                        first_event_at=T0, last_event_at=T0, closed_at=T0))
    async with store.read() as reader:
        assert await reader.get_hub_cell(f"{HUB}#3") == stored
        unverified = await reader.list_hub_cells(battery_did=PACK, configuration="unverified")
        pending = await reader.list_hub_batches(uncredentialed=True)
        first = await reader.get_hub_batch("b1")
    assert [c.position for c in unverified] == [4]
    assert [b.id for b in pending] == ["b2"]
    assert first is not None and first.event_ids == ("ev-0001", "ev-0002")
    assert first.credential_digest == "uEiDdigest"
