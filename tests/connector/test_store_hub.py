"""Migration 6's hub tables on SQLite and PostgreSQL: events stored exactly once (a
redelivered message adds nothing), batch assignment only of unbatched events, cells and
batches round trip with their filters."""

from __future__ import annotations

from datetime import timedelta

from connector.store import HubBatch, HubCell, HubEvent, Store
from tests.connector.test_store import T0, open_new, store  # noqa: F401

HUB = "did:key:z6MkHub"
PACK = "did:key:z6MkPack"


def event(n: int, **changes: object) -> HubEvent:
    fields: dict[str, object] = dict(
        event_id=f"ev-{n:04d}", hub_id=HUB, battery_did=PACK, kind="cell-summary",
        position=n % 7, observed_at=T0 + timedelta(seconds=n), event={"n": n},
        received_at=T0)
    fields.update(changes)
    return HubEvent(**fields)  # type: ignore[arg-type]


async def test_events_are_stored_once_even_when_redelivered(store: Store) -> None:  # noqa: F811
    batch = [event(n) for n in range(1200)]  # more than one multi-row chunk
    async with store.transaction() as tx:
        first = await tx.add_hub_events(batch)
    async with store.transaction() as tx:
        again = await tx.add_hub_events([*batch[1100:], event(5000)])
    assert sorted(first) == [e.event_id for e in batch]
    assert again == ["ev-5000"]
    async with store.read() as reader:
        stored = await reader.get_hub_event("ev-0042")
        unbatched = await reader.list_hub_events(unbatched=True, limit=2000)
    assert stored == batch[42]
    assert len(unbatched) == 1201


async def test_only_unbatched_events_join_a_batch(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        await tx.add_hub_events([event(n) for n in range(10)])
        assert sorted(await tx.assign_hub_batch("b1", [f"ev-{n:04d}" for n in range(6)])) == [
            f"ev-{n:04d}" for n in range(6)]
        # a second batch cannot take events the first one covers
        assert sorted(await tx.assign_hub_batch("b2", [f"ev-{n:04d}" for n in range(4, 10)])) \
            == [f"ev-{n:04d}" for n in range(6, 10)]
    async with store.read() as reader:
        in_b1 = await reader.list_hub_events(batch_id="b1")
        in_b2 = await reader.list_hub_events(batch_id="b2")
        left = await reader.list_hub_events(unbatched=True)
    assert [e.event_id for e in in_b1] == [f"ev-{n:04d}" for n in range(6)]
    assert [e.event_id for e in in_b2] == [f"ev-{n:04d}" for n in range(6, 10)]
    assert left == []


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
