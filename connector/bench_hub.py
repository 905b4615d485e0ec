"""``bpc bench hub``: the hub bridge on one core — signed hub messages in, cell events stored,
Merkle-batched and covered by a signed passport credential out.

What counts. The issue's unit is the *event*: a cell-level fact stored once, put in a Merkle
batch, and covered by a ``CellEventBatchCredential`` appended to the pack's passport. Raw
readings are not events: the aggregator turns a 192-cell pack's readings into threshold events
plus one summary per cell per minute, about one event per 60 readings. So two paths are
measured separately and neither figure borrows from the other:

- ``events_per_s``: hub messages carrying ``EVENTS_PER_MESSAGE`` (100) pre-made events each,
  as a hub that aggregates at the edge sends them (``HubMessage.events``, signed with
  ``sign_hub_message``): cell summaries with the aggregator's fields, 1 % thermal excursions.
  ``PACKS`` (4) packs of 192 cells take turns, each pack with its own batcher and passport
  (``--events-per-message``, up to 250, and ``--packs`` change the mix). The hubs are
  registered without their cells: with cells and no readings the aggregator would (rightly)
  report every monitor lost. The messages reach the bridge as in the node
  (``intake.consume``): those that queued up while the previous group was stored form the
  next group (at most 16; all of them queue here, as at a broker with a backlog). Per message
  the bridge verifies the JWS and the schema of every event (each event validated once, its
  RFC 8785 form made then); a group's events are stored in one SQLite transaction (group
  commit: one row per message and pack holding the events' canonical JSON, a key row per
  event keyed by hub sequence number and event id), then acknowledged and batched. The node
  is started as ``bpc serve`` starts it (``serve.settle_heap``); every ``BATCH_MAX_EVENTS``
  (1000, the plugin default) of a pack close a batch, whose row is stored and whose
  credential is signed (eddsa-jcs-2022) and appended to the passport. The clock is the wall
  clock and a tick task runs every ``TICK_S`` as in the node (``plugin._tick``), so batches
  also close by age (1 s). Counted: the events the store took (``stats.events_stored``),
  timed from the first ``handle`` until the last batch credential is committed (``flush``).
  After timing, the bench checks that exactly those events are in batches whose credentials
  are in the passports, and refuses to report otherwise.
- ``readings_per_s``: the built-in simulated hubs (as many new packs, their cells registered,
  one overheating cell each), as many readings as events above, in messages of
  ``READINGS_PER_MESSAGE`` (100): verified, aggregated (60 s summary periods), with the events
  they raise stored, batched and credentialed before the clock stops. The bridge's clock
  follows the hubs' (one tick per second of hub time, replayed as fast as the bridge goes),
  so periods close as they would live.
- ``event_to_credential_p50_s`` / ``_p99_s``: per event of the ``events_per_s`` run, from the
  start of ``handle`` of the message that carried it to the commit of the batch credential that
  covers it. Measured by ``TimedBridge``, a subclass that only notes times around the bridge's
  own steps (it overrides ``store_events`` and the private ``_commit``/``_credential_for`` and
  calls them unchanged; a rename there makes the bench fail loudly, not lie). At saturation a
  pack's batch fills as fast as the bridge takes events (a pack's 1000 come with 4000 of all
  4 packs, so the delay is about 4000 events' worth of work); on a light load it closes by
  age, so the delay is then about ``batch_max_age`` + the tick, 1.25 s with the defaults,
  plus the credential.
- ``mqtt_events_per_s``: the ``events_per_s`` workload through the real broker
  (``MqttSource``: QoS 1, persistent session, ack after store). The hubs' publishing is not
  ours, so it is not timed: each round publishes up to ``MQTT_ROUND_MESSAGES`` messages while
  the bridge's session is offline (Mosquitto queues them; its default ``max_queued_messages``
  is 1000), then times the source connecting and the bridge draining them, to the last
  credential. When the broker does not answer the metric is listed under ``unavailable`` with
  the reason.

One core: the process is pinned to one CPU for the run (``os.sched_setaffinity`` on every
thread, including SQLite's worker, where the platform allows it; ``machine.pinned_cpu``).
The broker is a separate process and not pinned.

References in the same run (DESIGN.md: ratios are ours / reference, bigger is better),
measured before, between and after the phases (median of the three):

- ``ed25519_verify_per_s``: raw PyNaCl verifications of a 64-byte message. A hub message is
  one signature over many events, so ``events_per_s_vs_ed25519_verify`` can exceed 1; how far
  it does says what the rest of the path costs per event.
- ``sqlite_insert_rows_per_s``: plain ``sqlite3`` inserting rows shaped like stored events
  (migration 6's ``hub_events`` columns and indexes, a 600-byte event JSON, one row per
  event) in transactions of as many rows as a message carries events, WAL with
  ``synchronous = FULL`` as the store opens it; ``events_per_s_vs_sqlite_insert`` is the share
  of it the whole pipeline keeps. Kept as it was so the ratio stays comparable across
  commits; note its keys are sequential (``UUID(int=serial)``) where real event ids are
  random, which is what made migration 6's layout cost a random index page per event and
  why migration 7 keys events by (sequence number, id): this reference is a floor for row
  writes, not for random-key ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey
from rich.console import Console
from rich.table import Table

from connector.app import IDENTITY, STORE, create_app
from connector.bench import machine_info, met_mark
from connector.bench_dsp import percentile
from connector.bench_nodes import PASSPHRASE_ENV, broker_unreachable, free_port
from connector.config import NodeConfig
from connector.passports import start_sample_passport
from connector.plugins.hub.batching import ClosedBatch
from connector.plugins.hub.bridge import CELL_EVENT_BATCH, HubBridge
from connector.plugins.hub.events import CellEvent, EventKind, HubMessage, sign_hub_message
from connector.plugins.hub.intake import consume
from connector.plugins.hub.simulator import SimulatedHub
from connector.plugins.hub.sources.base import SourceMessage
from connector.serve import RunningNode, running_node, settle_heap
from connector.store import HubBatch, Store
from credentials.did_key import mint_battery_did

AREA = "hub"
DEFAULT_EVENTS = 100_000
EVENTS_PER_MESSAGE = 100
READINGS_PER_MESSAGE = 100
#: An event takes ~870 bytes of the JWS: 250 stay under the bridge's 256 KiB message limit.
MAX_EVENTS_PER_MESSAGE = 250
PACKS = 4
CELLS = 192
BATCH_MAX_EVENTS = 1000
BATCH_MAX_AGE = timedelta(seconds=1)
SUMMARY_PERIOD = timedelta(seconds=60)
TICK_S = 0.25
THERMAL_SHARE = 0.01
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
MQTT_ROUND_MESSAGES = 500
MQTT_ROUND_TIMEOUT_S = 300.0
REFERENCE_SECONDS = 0.3
_PAGE = 1000

#: Targets of the issue: at least / at most.
METRIC_FLOORS = {"events_per_s": 50_000.0}
METRIC_CEILINGS = {"event_to_credential_p99_s": 2.0}

#: name → (unit, what it counts); names are stable across commits.
METRICS: dict[str, tuple[str, str]] = {
    "events_per_s": (
        "events/s", "events stored + Merkle-batched + credentialed, hub messages of "
        "{events_per_message} events, {packs} packs, batches of {batch_max_events}"),
    "readings_per_s": (
        "readings/s", "readings verified + aggregated (messages of {readings_per_message}), "
        "their events stored, batched and credentialed"),
    "event_to_credential_p50_s": ("s", "handle start → batch credential committed, per event"),
    "event_to_credential_p99_s": ("s", "handle start → batch credential committed, per event"),
    "mqtt_events_per_s": (
        "events/s", "the events_per_s workload through Mosquitto (QoS 1, ack after store); "
        "publishing not timed"),
    "ed25519_verify_per_s": ("verifies/s", "reference: raw PyNaCl verify, 64-byte message"),
    "sqlite_insert_rows_per_s": (
        "rows/s", "reference: sqlite3 inserts of event-shaped rows, {events_per_message} per "
        "transaction, WAL + synchronous=FULL"),
}

#: (ratio, ours, reference): ours / reference, bigger is better.
HUB_RATIOS = (
    ("events_per_s_vs_ed25519_verify", "events_per_s", "ed25519_verify_per_s"),
    ("readings_per_s_vs_ed25519_verify", "readings_per_s", "ed25519_verify_per_s"),
    ("events_per_s_vs_sqlite_insert", "events_per_s", "sqlite_insert_rows_per_s"),
    ("mqtt_events_per_s_vs_ed25519_verify", "mqtt_events_per_s", "ed25519_verify_per_s"),
    ("mqtt_events_per_s_vs_events_per_s", "mqtt_events_per_s", "events_per_s"),
)


# --- references -----------------------------------------------------------------------------


def ed25519_verify_rate(seconds: float = REFERENCE_SECONDS) -> float:
    """Raw PyNaCl verifications per second of a 64-byte message."""
    key = SigningKey(bytes(range(32)))
    message = b"m" * 64
    signature = key.sign(message).signature
    verify = key.verify_key.verify
    count = 0
    began = time.perf_counter()
    while True:
        for _ in range(256):
            verify(message, signature)
        count += 256
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return count / elapsed


#: Migration 6's ``hub_events`` table (connector/store/schema_sqlite.py), copied; see the
#: module docstring for why the reference keeps it.
_REFERENCE_DDL = """
CREATE TABLE hub_events (
    event_id TEXT PRIMARY KEY NOT NULL, hub_id TEXT NOT NULL, battery_did TEXT NOT NULL,
    kind TEXT NOT NULL, position INTEGER, observed_at INTEGER NOT NULL, event TEXT NOT NULL,
    received_at INTEGER NOT NULL, batch_id TEXT
) STRICT;
CREATE INDEX hub_events_unbatched ON hub_events (battery_did, observed_at)
    WHERE batch_id IS NULL;
CREATE INDEX hub_events_batch ON hub_events (batch_id) WHERE batch_id IS NOT NULL;
"""


def sqlite_insert_rate(directory: Path, seconds: float = REFERENCE_SECONDS,
                       rows_per_transaction: int = EVENTS_PER_MESSAGE) -> float:
    """Plain sqlite3 inserts per second of event-shaped rows (see the module docstring)."""
    path = directory / f"reference-{uuid.uuid4().hex[:8]}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_REFERENCE_DDL)
        event = json.dumps({"details": "x" * 500, "kind": "cell-summary"})
        hub, battery = "did:key:z6Mk" + "h" * 44, "did:key:z6Mk" + "b" * 44
        count, serial = 0, 0
        began = time.perf_counter()
        while True:
            rows = []
            for _ in range(rows_per_transaction):
                serial += 1
                rows.append((f"urn:uuid:{uuid.UUID(int=serial)}", hub, battery, "cell-summary",
                             serial % CELLS, serial, event, serial))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO hub_events (event_id, hub_id, battery_did, kind, "
                             "position, observed_at, event, received_at) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
            conn.execute("COMMIT")
            count += rows_per_transaction
            elapsed = time.perf_counter() - began
            if elapsed >= seconds:
                return count / elapsed
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- one core -------------------------------------------------------------------------------


@contextlib.contextmanager
def one_core() -> Iterator[int | None]:
    """Pin every thread of this process (and so the threads they start) to one CPU; the CPU,
    or ``None`` where the platform cannot. The previous affinity is restored on exit."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)

    def pin(mask: set[int]) -> None:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), mask)

    try:
        pin({cpu})
    except OSError:
        yield None
        return
    try:
        yield cpu
    finally:
        pin(set(allowed))


# --- the bridge, timed ----------------------------------------------------------------------

_ARRIVAL: ContextVar[float | None] = ContextVar("bench_hub_arrival", default=None)


class TimedBridge(HubBridge):
    """A ``HubBridge`` that notes when each event arrived and when its credential committed,
    and where the time goes; what the bridge does is unchanged (every override calls the
    bridge's own method with the same arguments and returns what it returns)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrived: dict[str, float] = {}
        self.delays_s: list[float] = []
        self.spent_s: Counter[str] = Counter()

    async def handle_many(self, messages: Sequence[SourceMessage]) -> int:
        token = _ARRIVAL.set(time.perf_counter())
        try:
            return await super().handle_many(messages)
        finally:
            _ARRIVAL.reset(token)

    async def store_events(self, events: list[CellEvent], now: datetime) -> list[CellEvent]:
        began = time.perf_counter()
        fresh = await super().store_events(events, now)
        self.spent_s["store_events"] += time.perf_counter() - began
        arrival = _ARRIVAL.get()
        at = began if arrival is None else arrival  # raised by a tick: it arrives now
        for event in fresh:
            self.arrived[event.event_id] = at
        return fresh

    async def _commit(self, battery_did: str, batch: ClosedBatch) -> None:
        began = time.perf_counter()
        try:
            await super()._commit(battery_did, batch)
        finally:
            self.spent_s["batch_commit"] += time.perf_counter() - began

    async def _credential_for(self, record: HubBatch,
                              counts: Counter[str] | None = None) -> int:
        began = time.perf_counter()
        done = await super()._credential_for(record, counts)
        committed = time.perf_counter()
        self.spent_s["credential"] += committed - began
        if done:
            for event_id in record.event_ids:
                arrival = self.arrived.pop(event_id, None)
                if arrival is not None:
                    self.delays_s.append(committed - arrival)
        return done


class SetClock:
    """A clock the bench moves (the readings phase follows the hubs' time)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _wall_clock() -> datetime:
    return datetime.now(UTC)


# --- workloads ------------------------------------------------------------------------------


def _summary_details(rng: random.Random, start: datetime, end: datetime) -> dict[str, Any]:
    def stats(low: int, spread: int) -> dict[str, int]:
        base = low + rng.randrange(spread)
        return {"min": base, "max": base + rng.randrange(1, 60), "mean": base + 25}

    return {"period_start": start.isoformat().replace("+00:00", "Z"),
            "period_end": end.isoformat().replace("+00:00", "Z"), "readings": 60,
            "voltage_mv": stats(3600, 80), "temperature_mc": stats(22_000, 8000),
            "soc_permille": stats(350, 200), "seconds_above_thermal": 0,
            "thermal_threshold_mc": 60_000}


def hub_events(hub: SimulatedHub, count: int, *, end: datetime,
               rng: random.Random) -> list[CellEvent]:
    """``count`` events an edge-aggregating hub raises: one cell summary per cell per period
    (1 % thermal excursions instead), periods of 60 s (shorter when that would reach back
    more than 12 h, the bridge refuses timestamps older than 24 h), the last ending at
    ``end``."""
    cells = hub.registered_cells()
    periods = max(1, math.ceil(count / hub.cells))
    period = min(SUMMARY_PERIOD, timedelta(hours=12) / periods)
    out: list[CellEvent] = []
    for index in range(count):
        number, position = divmod(index, hub.cells)
        period_end = end - (periods - 1 - number) * period
        seq = number * hub.cells * 60 + position
        common = {"hub_id": hub.hub_id, "battery_did": hub.battery_did, "position": position,
                  "cell_uid": cells[position].cell_uid, "seq": seq, "observed_at": period_end}
        if rng.random() < THERMAL_SHARE:
            out.append(CellEvent.create(kind=EventKind.THERMAL_EXCURSION, **common, details={
                "temperature_mc": 60_000 + rng.randrange(1, 20_000),
                "threshold_mc": 60_000}))
        else:
            out.append(CellEvent.create(kind=EventKind.CELL_SUMMARY, **common,
                                        details=_summary_details(rng, period_end - period,
                                                                 period_end)))
    return out


def event_messages(hubs: list[SimulatedHub], count: int, *, seed: int = 0,
                   per_message: int = EVENTS_PER_MESSAGE) -> list[tuple[str, bytes]]:
    """``count`` events spread over ``hubs`` as signed messages of ``per_message`` events,
    the hubs taking turns; (topic, message) pairs."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    per_hub: list[list[tuple[str, bytes]]] = []
    for index, hub in enumerate(hubs):
        share = count // len(hubs) + (1 if index < count % len(hubs) else 0)
        events = hub_events(hub, share, end=now, rng=rng)
        per_hub.append([(batch_topic(hub.hub_id), sign_hub_message(hub.hub_key, HubMessage(
            hub_id=hub.hub_id, sent_at=now, events=events[i:i + per_message])))
            for i in range(0, len(events), per_message)])
    out: list[tuple[str, bytes]] = []
    for turn in range(max((len(m) for m in per_hub), default=0)):
        out.extend(messages[turn] for messages in per_hub if turn < len(messages))
    return out


def batch_topic(hub_id: str) -> str:
    return f"bpc/hubs/{hub_id}/batch"


# --- the node -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bench_node(workdir: Path) -> AsyncIterator[RunningNode]:
    """A node on loopback with a SQLite store in ``workdir`` (``PASSPHRASE_ENV`` set)."""
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=workdir / "data",
                        store=f"sqlite:///{workdir / 'node.db'}",
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1.0,
                        log_level="WARNING")
    async with running_node(config, create_app(config)) as node:
        settle_heap()  # as `bpc serve` does once the node is up
        yield node


async def new_pack(node: RunningNode, seed: int) -> SimulatedHub:
    """A pack whose passport the node started (so it is the custodian), and its hub."""
    battery, _ = mint_battery_did()
    await start_sample_passport(node.app, battery, seed=seed)
    return SimulatedHub(battery, CELLS, seed=seed)


async def _bridge(node: RunningNode, hubs: list[SimulatedHub],
                  clock: Callable[[], datetime], *, monitors: bool) -> TimedBridge:
    """The bridge with ``hubs`` registered; with ``monitors``, their cells too. A hub that
    sends events only is registered without cells: with them, the aggregator (rightly)
    reports every monitor lost after ``lost_after`` without readings."""
    bridge = TimedBridge(node.app, store=node.app[STORE], key=node.app[IDENTITY].signing_key,
                         clock=clock, summary_period=SUMMARY_PERIOD,
                         batch_max_events=BATCH_MAX_EVENTS, batch_max_age=BATCH_MAX_AGE)
    for hub in hubs:
        await bridge.register_pack(hub.hub_id, hub.battery_did,
                                   hub.registered_cells() if monitors else {})
    return bridge


async def check_credentialed(store: Store, batteries: Iterable[str], expected: int) -> int:
    """Raise unless exactly ``expected`` events of these packs are stored, each in a batch
    whose credential is in the pack's passport; the number of batches."""
    covered = batches = 0
    async with store.read() as reader:
        for battery in batteries:
            if await reader.list_hub_events(battery_did=battery, unbatched=True, limit=1):
                raise RuntimeError(f"events of {battery} were stored but not batched")
            digests: set[str] = set()
            after: str | None = None
            while True:
                page = await reader.list_hub_batches(battery_did=battery, after=after,
                                                     limit=_PAGE)
                for batch in page:
                    if batch.credential_digest is None:
                        raise RuntimeError(f"batch {batch.id} has no credential")
                    digests.add(batch.credential_digest)
                    covered += batch.tree_size
                batches += len(page)
                if len(page) < _PAGE:
                    break
                after = page[-1].id
            appended = {r.digest for r in await reader.passport(battery)
                        if CELL_EVENT_BATCH in r.types}
            if digests != appended:
                raise RuntimeError(f"the passport of {battery} holds {len(appended)} batch "
                                   f"credentials, its batches name {len(digests)}")
    if covered != expected:
        raise RuntimeError(f"{covered} events are under credentials, {expected} were counted")
    return batches


# --- phases ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """What one timed run did."""

    elapsed_s: float
    cpu_s: float
    messages: int
    events: int
    batches: int
    credentials: int
    readings: int = 0
    delays_s: list[float] = field(default_factory=list, repr=False)
    spent_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        other = self.elapsed_s - sum(self.spent_s.get(k, 0.0)
                                     for k in ("store_events", "batch_commit"))
        breakdown = {
            "verify_aggregate_merkle_s": other,
            "store_events_s": self.spent_s.get("store_events", 0.0),
            "batch_store_s": (self.spent_s.get("batch_commit", 0.0)
                              - self.spent_s.get("credential", 0.0)),
            "credential_s": self.spent_s.get("credential", 0.0),
        }
        return {"elapsed_s": round(self.elapsed_s, 3), "cpu_s": round(self.cpu_s, 3),
                "messages": self.messages, "readings": self.readings, "events": self.events,
                "batches": self.batches, "credentials": self.credentials,
                "breakdown_s": {k: round(v, 3) for k, v in breakdown.items()}}


async def _ticks(bridge: HubBridge, stop: asyncio.Event) -> None:
    """The node's tick task (``plugin._tick``), stopping between ticks, never inside one."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_S)
            return
        await bridge.tick()


async def _drive(bridge: TimedBridge, messages: AsyncIterable[SourceMessage],
                 *, tick: bool) -> tuple[float, float, int]:
    """Handle every message, then close the open batches; (wall s, CPU s, messages)."""
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticks(bridge, stop)) if tick else None
    handled = 0
    began, cpu = time.perf_counter(), time.process_time()
    try:  # as the node's plugin does it: groups of what queued up (intake.consume)
        handled = await consume(bridge, messages)
    finally:
        stop.set()
        if ticker is not None:
            await ticker
    await bridge.flush()
    return time.perf_counter() - began, time.process_time() - cpu, handled


async def _each(items: Iterable[SourceMessage]) -> AsyncIterator[SourceMessage]:
    for item in items:
        yield item


def _check_bridge(bridge: TimedBridge, what: str) -> None:
    stats = bridge.stats
    if stats.rejected or stats.credential_failures or stats.duplicates:
        raise RuntimeError(f"{what}: the bridge refused or lost something: {stats.to_json()}")
    if bridge.arrived:
        raise RuntimeError(f"{what}: {len(bridge.arrived)} events got no credential time "
                           "(did HubBridge._credential_for change?)")


async def _phase_result(node: RunningNode, bridge: TimedBridge, hubs: list[SimulatedHub],
                        elapsed: float, cpu: float, messages: int, what: str,
                        readings: int = 0) -> Phase:
    _check_bridge(bridge, what)
    batches = await check_credentialed(node.app[STORE], [h.battery_did for h in hubs],
                                       bridge.stats.events_stored)
    return Phase(elapsed, cpu, messages, bridge.stats.events_stored, batches,
                 bridge.stats.credentials, readings, bridge.delays_s, dict(bridge.spent_s))


async def events_phase(node: RunningNode, count: int, packs: int, *,
                       per_message: int = EVENTS_PER_MESSAGE, seed: int = 100) -> Phase:
    """The ``events_per_s`` run (see the module docstring)."""
    hubs = [await new_pack(node, seed + i) for i in range(packs)]
    now = datetime.now(UTC)
    messages = [SourceMessage(topic=topic, payload=raw, received_at=now)
                for topic, raw in event_messages(hubs, count, seed=seed,
                                                 per_message=per_message)]
    bridge = await _bridge(node, hubs, _wall_clock, monitors=False)
    elapsed, cpu, handled = await _drive(bridge, _each(messages), tick=True)
    if bridge.stats.events_stored != count:
        raise RuntimeError(f"{count} events sent, {bridge.stats.events_stored} stored")
    if len(bridge.delays_s) != count:
        raise RuntimeError(f"{len(bridge.delays_s)} delays for {count} events")
    return await _phase_result(node, bridge, hubs, elapsed, cpu, handled, "events")


async def readings_phase(node: RunningNode, count: int, packs: int, seed: int = 200) -> Phase:
    """The ``readings_per_s`` run (see the module docstring)."""
    hubs = [(await new_pack(node, seed + i)).overheat(i % CELLS, from_tick=5)
            for i in range(packs)]
    ticks = max(1, math.ceil(count / (packs * CELLS)))
    start = datetime.now(UTC).replace(microsecond=0)
    timed: list[tuple[datetime, SourceMessage]] = []
    for tick in range(ticks):
        at = start + timedelta(seconds=tick)
        for hub in hubs:
            for raw in hub.messages(at, per_message=READINGS_PER_MESSAGE):
                timed.append((at, SourceMessage(topic=batch_topic(hub.hub_id), payload=raw,
                                                received_at=at)))
    readings = sum(hub.seq for hub in hubs)  # one sequence number per reading, from 0
    clock = SetClock(start)
    bridge = await _bridge(node, hubs, clock, monitors=True)

    async def follow() -> AsyncIterator[SourceMessage]:
        for at, message in timed:
            clock.at = at
            yield message
        clock.at += 2 * SUMMARY_PERIOD  # the last periods close, as time goes on
        await bridge.tick()

    elapsed, cpu, handled = await _drive(bridge, follow(), tick=False)
    bridge.delays_s.clear()  # hub time, not wall time: not a latency
    return await _phase_result(node, bridge, hubs, elapsed, cpu, handled, "readings",
                               readings=readings)


async def mqtt_phase(node: RunningNode, count: int, packs: int, *, host: str, port: int,
                     per_message: int = EVENTS_PER_MESSAGE, seed: int = 300) -> Phase | str:
    """The ``mqtt_events_per_s`` run; a string says why it could not be measured."""
    from connector.plugins.hub.sources.mqtt import (
        MqttPublisher,
        MqttSettings,
        MqttSource,
        MqttSourceError,
        forget_session,
    )

    problem = broker_unreachable(host, port)
    if problem is not None:
        return problem
    hubs = [await new_pack(node, seed + i) for i in range(packs)]
    payloads = event_messages(hubs, count, seed=seed, per_message=per_message)
    settings = MqttSettings(host=host, port=port,
                            client_id=f"bpc-bench-hub-{uuid.uuid4().hex[:12]}",
                            topics=tuple(batch_topic(h.hub_id) for h in hubs),
                            session_expiry_s=600, connect_timeout_s=5.0)
    publisher = MqttSettings(host=host, port=port, connect_timeout_s=5.0)
    bridge = await _bridge(node, hubs, _wall_clock, monitors=False)
    elapsed = cpu = 0.0
    handled = 0
    try:
        first = MqttSource(settings)  # the persistent session and its subscriptions
        await first.start()
        await first.close()
        for start in range(0, len(payloads), MQTT_ROUND_MESSAGES):
            chunk = payloads[start:start + MQTT_ROUND_MESSAGES]
            async with MqttPublisher(publisher) as hub_side:  # the hubs' work: not timed
                await hub_side.publish_many(chunk)
            source = MqttSource(settings)

            async def delivered(source: MqttSource = source, expected: int = len(chunk)
                                ) -> AsyncIterator[SourceMessage]:
                got = 0
                async with contextlib.aclosing(source.messages()) as stream:
                    async for message in stream:
                        yield message
                        got += 1
                        if got == expected:
                            return

            try:
                wall, used, done = await asyncio.wait_for(
                    _drive(bridge, delivered(), tick=True), MQTT_ROUND_TIMEOUT_S)
            except TimeoutError:
                return (f"the broker delivered too few of {len(chunk)} messages within "
                        f"{MQTT_ROUND_TIMEOUT_S:.0f} s (its max_queued_messages too low?)")
            finally:
                await source.close()
            elapsed, cpu, handled = elapsed + wall, cpu + used, handled + done
    except MqttSourceError as exc:
        return f"MQTT: {exc}"
    finally:
        with contextlib.suppress(MqttSourceError, OSError):
            await forget_session(settings)
    if bridge.stats.events_stored != count:
        raise RuntimeError(f"{count} events published, {bridge.stats.events_stored} stored")
    bridge.delays_s.clear()  # reported for the direct run only
    return await _phase_result(node, bridge, hubs, elapsed, cpu, handled, "mqtt")


# --- the benchmark --------------------------------------------------------------------------


async def _measure(events: int, packs: int, per_message: int, mqtt: bool, host: str,
                   port: int, seconds: float,
                   ) -> tuple[dict[str, float], dict[str, Phase], dict[str, str]]:
    references: dict[str, list[float]] = {"ed25519_verify_per_s": [],
                                          "sqlite_insert_rows_per_s": []}
    phases: dict[str, Phase] = {}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bpc-bench-hub-") as tmp:
        workdir = Path(tmp)

        def reference() -> None:
            references["ed25519_verify_per_s"].append(ed25519_verify_rate(seconds))
            references["sqlite_insert_rows_per_s"].append(
                sqlite_insert_rate(workdir, seconds, rows_per_transaction=per_message))

        reference()
        async with bench_node(workdir) as node:
            phases["events"] = await events_phase(node, events, packs,
                                                  per_message=per_message)
            reference()
            phases["readings"] = await readings_phase(node, events, packs)
            if not mqtt:
                unavailable["mqtt_events_per_s"] = "not measured: --no-mqtt"
            else:
                measured = await mqtt_phase(node, events, packs, host=host, port=port,
                                            per_message=per_message)
                if isinstance(measured, str):
                    unavailable["mqtt_events_per_s"] = measured
                else:
                    phases["mqtt"] = measured
        reference()
    figures = {name: sorted(values)[len(values) // 2] for name, values in references.items()}
    ev = phases["events"]
    figures["events_per_s"] = ev.events / ev.elapsed_s
    figures["readings_per_s"] = phases["readings"].readings / phases["readings"].elapsed_s
    figures["event_to_credential_p50_s"] = percentile(ev.delays_s, 50)
    figures["event_to_credential_p99_s"] = percentile(ev.delays_s, 99)
    if "mqtt" in phases:
        figures["mqtt_events_per_s"] = phases["mqtt"].events / phases["mqtt"].elapsed_s
    return figures, phases, unavailable


def hub_benchmark(*, events: int = DEFAULT_EVENTS, packs: int = PACKS,
                  events_per_message: int = EVENTS_PER_MESSAGE, mqtt: bool = True,
                  mqtt_host: str = MQTT_HOST, mqtt_port: int = MQTT_PORT,
                  reference_seconds: float = REFERENCE_SECONDS) -> dict[str, Any]:
    """Run the benchmark on a temporary node; the result follows DESIGN.md (Benchmarks), plus
    ``unavailable`` (metric → why not measured), ``targets``, ``workload`` and ``phases``
    (what each run did and where its time went)."""
    if events < 1 or packs < 1 or not 1 <= events_per_message <= MAX_EVENTS_PER_MESSAGE:
        raise ValueError(f"at least one event and one pack, 1..{MAX_EVENTS_PER_MESSAGE} "
                         "events per message")
    packs = min(packs, events)
    previous = os.environ.get(PASSPHRASE_ENV)
    os.environ[PASSPHRASE_ENV] = secrets.token_urlsafe(24)
    try:
        with one_core() as cpu:
            figures, phases, unavailable = asyncio.run(
                _measure(events, packs, events_per_message, mqtt, mqtt_host, mqtt_port,
                         reference_seconds))
    finally:
        if previous is None:
            os.environ.pop(PASSPHRASE_ENV, None)
        else:
            os.environ[PASSPHRASE_ENV] = previous
    workload = {"events": events, "readings": phases["readings"].readings, "packs": packs,
                "cells_per_pack": CELLS, "events_per_message": events_per_message,
                "readings_per_message": READINGS_PER_MESSAGE,
                "batch_max_events": BATCH_MAX_EVENTS,
                "batch_max_age_s": BATCH_MAX_AGE.total_seconds(), "tick_s": TICK_S,
                "summary_period_s": SUMMARY_PERIOD.total_seconds(),
                "store": "sqlite (WAL, synchronous=FULL)",
                "mqtt_round_messages": MQTT_ROUND_MESSAGES}
    metrics: dict[str, dict[str, Any]] = {}
    for name, (unit, note) in METRICS.items():
        if name in figures:
            digits = 4 if unit == "s" else 1
            metrics[name] = {"value": round(figures[name], digits), "unit": unit,
                             "note": note.format(**workload)}
    ratios = {name: round(figures[ours] / figures[ref], 4) for name, ours, ref in HUB_RATIOS
              if ours in figures and ref in figures}
    targets: dict[str, dict[str, Any]] = {}
    for name, floor in METRIC_FLOORS.items():
        targets[name] = {"at_least": floor, "met": figures[name] >= floor}
    for name, ceiling in METRIC_CEILINGS.items():
        targets[name] = {"at_most": ceiling, "met": figures[name] <= ceiling}
    return {
        "area": AREA,
        "machine": {**machine_info(), "pinned_cpu": cpu},
        "metrics": metrics,
        "ratios": ratios,
        "unavailable": unavailable,
        "targets": targets,
        "workload": workload,
        "phases": {name: phase.to_json() for name, phase in phases.items()},
    }


# --- the table ------------------------------------------------------------------------------


def _target(name: str, value: float | None) -> tuple[str, str]:
    if name in METRIC_FLOORS:
        floor = METRIC_FLOORS[name]
        return f">= {floor:,.0f}", "" if value is None else met_mark(value >= floor)
    if name in METRIC_CEILINGS:
        ceiling = METRIC_CEILINGS[name]
        return f"<= {ceiling}", "" if value is None else met_mark(value <= ceiling)
    return "", ""


def render_hub_table(report: dict[str, Any], console: Console) -> None:
    """Metrics with their targets, ratios, what each run did, and what was not measured."""
    metrics = Table("metric", "value", "unit", "target", "met",
                    title=f"bpc bench {report['area']}")
    unavailable: dict[str, str] = report.get("unavailable", {})
    for name, (unit, _) in METRICS.items():
        metric = report["metrics"].get(name)
        if metric is None:
            if name in unavailable:
                target, _ = _target(name, None)
                metrics.add_row(name, "[dim]n/a[/dim]", unit, target, "[dim]n/a[/dim]")
            continue
        value = metric["value"]
        target, met = _target(name, value)
        metrics.add_row(name, f"{value:,.3f}" if unit == "s" else f"{value:,.1f}", unit,
                        target, met)
    console.print(metrics)
    for name in ("events_per_s", "readings_per_s", "event_to_credential_p99_s"):
        unit, note = METRICS[name]
        console.print(f"[bold]{name}[/bold]: {note.format(**report['workload'])}",
                      soft_wrap=True)
    ratios = Table("ratio (bigger is better)", "value")
    for name, value in report["ratios"].items():
        ratios.add_row(name, f"{value:.3f}")
    console.print(ratios)
    runs: dict[str, dict[str, Any]] = report["phases"]
    phases = Table("what each run did", *runs, title="runs (wall seconds split by step)")
    for label, key in (("messages", "messages"), ("readings", "readings"),
                       ("events", "events"), ("batches", "batches"),
                       ("credentials", "credentials")):
        phases.add_row(label, *(f"{run[key]:,}" for run in runs.values()))
    phases.add_row("wall s", *(f"{run['elapsed_s']:.2f}" for run in runs.values()))
    phases.add_row("cpu s", *(f"{run['cpu_s']:.2f}" for run in runs.values()))
    for label, key in (("  verify + aggregate + merkle", "verify_aggregate_merkle_s"),
                       ("  store events", "store_events_s"),
                       ("  store batch rows", "batch_store_s"),
                       ("  sign + append credentials", "credential_s")):
        phases.add_row(label, *(f"{run['breakdown_s'][key]:.2f}" for run in runs.values()))
    console.print(phases)
    for name, reason in unavailable.items():
        console.print(f"[yellow]unavailable[/yellow] {name}: {reason}", soft_wrap=True)
    machine, workload = report["machine"], report["workload"]
    pinned = machine.get("pinned_cpu")
    console.print(f"{machine['cpus']} CPUs, Python {machine['python']}, "
                  + (f"pinned to CPU {pinned}" if pinned is not None else "not pinned")
                  + f"; {workload['packs']} packs of {workload['cells_per_pack']} cells, "
                  f"batches of {workload['batch_max_events']}, {workload['store']}",
                  soft_wrap=True)


__all__ = [
    "HUB_RATIOS",
    "METRICS",
    "METRIC_CEILINGS",
    "METRIC_FLOORS",
    "Phase",
    "TimedBridge",
    "check_credentialed",
    "ed25519_verify_rate",
    "event_messages",
    "hub_benchmark",
    "render_hub_table",
    "sqlite_insert_rate",
]
