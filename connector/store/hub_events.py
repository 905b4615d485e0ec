"""Hub events in the SQL store (migration 7): a row per message and pack, a key row per event.

Why not a row per event keyed by its id (migration 6): a hub message brings ~100 events and is
stored in one transaction, so at 50,000 events a second that is 500 commits a second, and what
a commit costs on SQLite (WAL) and PostgreSQL is mostly the pages it dirties. Event ids are
name-based UUIDs, effectively random, so a primary key on them dirtied one index page per
event (~4 KiB written, twice with the checkpoint): measured 20-40 µs per event on the bench
machine before anything else was done. So:

- ``hub_event_groups``: one row per stored message and pack, ``events`` the JSON array of its
  events as the bridge's encoder wrote it (RFC 8785 text), stored as text (no JSONB parse).
  The store checks that it is storable text and an array, not every value again: the bridge
  checked every event when it verified the message.
- ``hub_event_keys``: per event its hub sequence number, id, group row and place in it, and
  the batch that covers it. The primary key is ``(seq, event_id)``: a hub numbers its readings
  in order, so new events land together at the end of the index. It is still uniqueness by
  event id: an id determines the sequence number it was derived from (``events.event_id_for``).

Batching sets ``batch_id`` only where it is still NULL (one statement, ``UPDATE … FROM
(VALUES …)`` by primary key), so two batches, two workers or a recovery race can never both
take an event. Listing by batch uses the partial index ``(batch_id, event_id)``, written when a
batch takes its events (its entries sit together); unbatched events have a partial index of
their own, small because batches close within seconds.

Finding an event by id alone (``get_hub_event``: proofs) has no index of its own, by design:
it probes the ``(batch_id, event_id)`` entries of each stored batch (``hub_batches``) and
scans the unbatched ones, O(batches) index probes (~1 µs each on SQLite) instead of a random
page per event at ingest.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from connector.store.codec import (
    Dialect,
    check_int,
    check_key,
    check_text,
    check_time,
    decode_time,
    encode_time,
)
from connector.store.errors import InvalidRecord
from connector.store.records import HubEvent, HubEventGroup, HubEventRef

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]

_CHUNK = 500
"""Rows per multi-row statement (3 parameters each; SQLite allows 32766)."""
_INT64_MAX = 2**63 - 1
_KEY_COLUMNS = "k.seq, k.event_id, k.group_id, k.item, k.batch_id"


def _check_group(group: HubEventGroup) -> None:
    if not isinstance(group, HubEventGroup):
        raise InvalidRecord(f"hub_event_groups: expected a HubEventGroup, got "
                            f"{type(group).__name__}")
    check_key(group.hub_id, "hub_event_groups.hub_id")
    check_key(group.battery_did, "hub_event_groups.battery_did")
    check_time(group.received_at, "hub_event_groups.received_at")
    ids, seqs = group.event_ids, group.seqs
    if not ids or len(ids) != len(seqs):
        raise InvalidRecord("hub_event_groups: one sequence number per event id, at least one")
    if not all(type(e) is str and e for e in ids):
        raise InvalidRecord("hub_event_keys.event_id: non-empty strings only")
    check_text("\n".join(ids), "hub_event_keys.event_id")
    if not all(type(s) is int for s in seqs) or min(seqs) < 0 or max(seqs) > _INT64_MAX:
        raise InvalidRecord("hub_event_keys.seq: integers from 0 that fit 64 bits only")
    text = check_text(group.events, "hub_event_groups.events")
    if not (text.startswith("[") and text.endswith("]")):
        raise InvalidRecord("hub_event_groups.events: a JSON array of the events")


async def add_group(fetch: Fetch, dialect: Dialect, group: HubEventGroup) -> list[str]:
    """Store the group's events not stored before; the ids inserted (see the module)."""
    _check_group(group)
    rows = await fetch(
        "INSERT INTO hub_event_groups (hub_id, battery_did, events, received_at) "
        "VALUES ($1, $2, $3, $4) RETURNING id", group.hub_id, group.battery_did, group.events,
        encode_time(group.received_at, dialect))
    group_id = rows[0]["id"]
    inserted: list[str] = []
    keys = list(zip(group.seqs, group.event_ids, strict=True))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        params: list[object] = [group_id]
        marks = []
        for item, (seq, event_id) in enumerate(chunk, start=start):
            n = len(params)
            marks.append(f"(${n + 1}, ${n + 2}, $1, ${n + 3})")
            params += (seq, event_id, item)
        found = await fetch(
            "INSERT INTO hub_event_keys (seq, event_id, group_id, item) VALUES "
            f"{', '.join(marks)} ON CONFLICT DO NOTHING RETURNING event_id", *params)
        inserted.extend(row["event_id"] for row in found)
    if not inserted:  # a redelivery: nothing refers to the row
        await fetch("DELETE FROM hub_event_groups WHERE id = $1", group_id)
    return inserted


async def assign_batch(fetch: Fetch, batch_id: str, refs: Sequence[HubEventRef]) -> list[str]:
    """Let ``batch_id`` cover those of ``refs`` no batch covers yet; their ids."""
    batch = check_key(batch_id, "batch_id")
    taken: list[str] = []
    for start in range(0, len(refs), _CHUNK):
        params: list[object] = [batch]
        marks = []
        for seq, event_id in refs[start:start + _CHUNK]:
            params += (check_int(seq, "seq"), check_key(event_id, "event_id"))
            marks.append(f"(CAST(${len(params) - 1} AS BIGINT), ${len(params)})")
        rows = await fetch(
            f"UPDATE hub_event_keys SET batch_id = $1 FROM (VALUES {', '.join(marks)}) AS v "
            "WHERE hub_event_keys.seq = v.column1 AND hub_event_keys.event_id = v.column2 "
            "AND hub_event_keys.batch_id IS NULL RETURNING hub_event_keys.event_id", *params)
        taken.extend(row["event_id"] for row in rows)
    return taken


def _instant(text: object) -> datetime:
    if not isinstance(text, str):
        raise InvalidRecord(f"a stored hub event has no observed_at: {text!r}")
    return datetime.fromisoformat(text)


async def _events(fetch: Fetch, dialect: Dialect, keys: list[dict[str, Any]]
                  ) -> list[HubEvent]:
    """The events the key rows name, reading (and parsing) each group row once."""
    wanted = sorted({row["group_id"] for row in keys})
    groups: dict[int, tuple[dict[str, Any], list[Any]]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        marks = ", ".join(f"${i}" for i in range(1, len(chunk) + 1))
        for row in await fetch("SELECT id, hub_id, battery_did, events, received_at FROM "
                               f"hub_event_groups WHERE id IN ({marks})", *chunk):
            groups[row["id"]] = (row, json.loads(row["events"]))
    out = []
    for key in keys:
        group, items = groups[key["group_id"]]
        event = items[key["item"]]
        out.append(HubEvent(
            event_id=key["event_id"], hub_id=group["hub_id"], battery_did=group["battery_did"],
            kind=str(event.get("kind", "")), position=event.get("position"),
            observed_at=_instant(event.get("observed_at")), event=event,
            received_at=decode_time(group["received_at"], dialect), batch_id=key["batch_id"]))
    return out


async def get_event(fetch: Fetch, dialect: Dialect, event_id: str) -> HubEvent | None:
    """The stored event ``event_id`` (see the module: O(batches) probes)."""
    key = check_key(event_id, "event_id")
    rows = await fetch(
        f"SELECT {_KEY_COLUMNS} FROM hub_batches b CROSS JOIN hub_event_keys k "
        "WHERE k.batch_id = b.id AND k.event_id = $1 "
        f"UNION ALL SELECT {_KEY_COLUMNS} FROM hub_event_keys k "
        "WHERE k.batch_id IS NULL AND k.event_id = $1", key)
    if not rows:
        return None
    return (await _events(fetch, dialect, rows[:1]))[0]


async def list_events(fetch: Fetch, dialect: Dialect, *, battery_did: str | None,
                      batch_id: str | None, unbatched: bool, after: str | None,
                      limit: int) -> list[HubEvent]:
    """Events by id, filtered; by battery alone it reads every key row of the store (demo and
    test use: the bridge lists by batch or unbatched)."""
    params: list[object] = []
    clauses = []
    join = ""
    if battery_did is not None:
        params.append(check_text(battery_did, "battery_did"))
        join = " JOIN hub_event_groups g ON g.id = k.group_id"
        clauses.append(f"g.battery_did = ${len(params)}")
    if batch_id is not None:
        params.append(check_text(batch_id, "batch_id"))
        clauses.append(f"k.batch_id = ${len(params)}")
    if unbatched:
        clauses.append("k.batch_id IS NULL")
    if after is not None:
        params.append(check_key(after, "after"))
        clauses.append(f"k.event_id > ${len(params)}")
    params.append(limit)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await fetch(f"SELECT {_KEY_COLUMNS} FROM hub_event_keys k{join}{where} "
                       f"ORDER BY k.event_id LIMIT ${len(params)}", *params)
    return await _events(fetch, dialect, rows)
