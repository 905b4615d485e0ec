"""The hub bridge's pipeline: signed hub messages in, cell events stored exactly once, Merkle
batch credentials appended to each pack's passport.

Per message (from any source: MQTT, replay, the simulated hub):

1. verify it (``events.verify_hub_message``: size, signature by a registered hub, schema,
   clocks); a refused message is counted by reason, logged and acknowledged — it can never
   become valid, and holding it would stop the stream;
2. turn readings into events (``aggregate.CellAggregator``: threshold events at once, ID
   mismatches, lost monitors, per-period summaries) and add the events the hub raised itself;
3. store the events in one transaction (``add_hub_events``: their canonical JSON as one row
   per pack, a key row per event; idempotent by event id, so a redelivered message adds
   nothing) — and a cell whose ID no longer matches is marked
   ``unverified`` in the same transaction;
4. only then acknowledge the message: until the events are durable the broker keeps it, so a
   crash loses nothing (MQTT QoS 1 redelivers), and a slow signer means no acks, which is
   the backpressure;
5. new events go to the pack's ``Batcher``; a batch that closes (size or age) is stored with
   the events it covers, and its ``CellEventBatchCredential`` (Merkle root, tree size, counts)
   is appended to the pack's passport by the node (its custodian). A mismatch also appends a
   ``CellConfigurationCredential`` marking the pack unverified at once.

Tamper lock: while a position shows another cell than registered, the pack's cell data
(performance & health) is refused through the node's ``bpc_access_restriction`` hook (catalog,
negotiation and data plane), until ``replace_cell`` registers the new cell on the strength of
a technician's ``ServiceTechnicianCredential`` from a trusted issuer and appends the
``CellReplacementCredential`` linking old and new cell. (The lock is kept in memory for the
hot path and read back from the store every ``LOCK_REFRESH_S`` by the tick, so a replica that
did not see the mismatch, or the replacement, follows within seconds.)

Restart: events stored but not yet batched are batched again (``recover``), and batches
whose credential was not appended are appended then, so every event ends in exactly one
credential. The aggregator's open periods live in memory: a restart loses the partial
summaries of the current period (the readings are the hub's; the threshold events are
stored), which is said in ``status``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from connector.passports import PassportAppendError, append_to_passport
from connector.plugins.hub.aggregate import CellAggregator, Thresholds
from connector.plugins.hub.batching import Batcher, ClosedBatch
from connector.plugins.hub.events import (
    CellEvent,
    EventKind,
    HubLimits,
    HubMessageError,
    RegisteredCell,
    event_digest,
    verify_hub_message,
)
from connector.plugins.hub.sources.base import SourceMessage
from connector.store import (
    AlreadyExists,
    CredentialRecord,
    HubBatch,
    HubCell,
    HubEvent,
    HubEventGroup,
    HubEventRef,
    Store,
    StoreError,
    new_id,
)
from credentials.data_integrity import JCS
from credentials.did_key import public_key_of_did_key
from credentials.keys import Ed25519Key, PublicKey
from credentials.merkle import MerkleTree, encode_hash
from credentials.passport.chain import credential_digest
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.types import HUB_CONTEXTS
from credentials.timestamps import format_datetime

log = logging.getLogger(__name__)

CELL_EVENT_BATCH = "CellEventBatchCredential"
CELL_CONFIGURATION = "CellConfigurationCredential"
CELL_REPLACEMENT = "CellReplacementCredential"
TECHNICIAN_TYPE = "ServiceTechnicianCredential"
_PAGE = 1000
LOCKED_LEVELS = frozenset({"performance-health"})
"""Access levels of a pack's data locked while its cell configuration is unverified."""
RETRY_S = 1.0
"""How often batches whose credential could not be appended are tried again."""
LOCK_REFRESH_S = 2.0
"""How often the tamper lock is read back from the store (another replica may have set or
cleared it)."""


class ReplacementRefused(Exception):
    """A cell replacement the node will not register: HTTP status, code and why."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class RetireRefused(Exception):
    """A pack's hub that may not leave the bridge yet (a cell is unverified)."""


def cell_id(hub_id: str, position: int) -> str:
    return f"{hub_id}#{position}"


@dataclass
class BridgeStats:
    """What the bridge did since it started (``status`` and, later, metrics)."""

    messages: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    events_stored: int = 0
    duplicates: int = 0
    batches: int = 0
    credentials: int = 0
    credential_failures: int = 0
    last_credential_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "rejected": dict(self.rejected),
                "eventsStored": self.events_stored, "duplicates": self.duplicates,
                "batches": self.batches, "credentials": self.credentials,
                "credentialFailures": self.credential_failures,
                "lastCredentialError": self.last_credential_error}


class HubBridge:
    """One node's bridge (see the module docstring)."""

    def __init__(self, app: web.Application, *, store: Store, key: Ed25519Key,
                 clock: Callable[[], datetime], thresholds: Thresholds | None = None,
                 summary_period: timedelta = timedelta(seconds=60),
                 reading_interval: timedelta = timedelta(seconds=1),
                 batch_max_events: int = 1000,
                 batch_max_age: timedelta = timedelta(seconds=1),
                 limits: HubLimits | None = None) -> None:
        self._app = app
        self._store = store
        self._key = key
        self._clock = clock
        self._limits = limits or HubLimits()
        self._batch_max_events = batch_max_events
        self._batch_max_age = batch_max_age
        self.aggregator = CellAggregator(thresholds, summary_period,
                                         reading_interval=reading_interval)
        self._batchers: dict[str, Batcher] = {}
        self._hubs: dict[str, str] = {}  # hub DID → pack DID
        self._keys: dict[str, PublicKey] = {}
        self.stats = BridgeStats()
        self._retry_credentials = False
        self._next_retry = 0.0
        #: pack DID → positions whose cell configuration is unverified (the access lock; the
        #: store's ``hub_cells`` is the truth, read back by ``refresh_locks``).
        self.unverified: dict[str, set[int]] = {}
        self._next_lock_refresh = 0.0
        self._locked_meanwhile: list[tuple[str, int]] = []

    # --- registration -------------------------------------------------------------------------

    async def register_pack(self, hub_id: str, battery_did: str,
                            cells: Mapping[int, RegisteredCell]) -> None:
        """Make ``hub_id`` known as the hub of ``battery_did``. Cells already registered in
        the store keep what is stored (a replacement there wins over the hub's old list)."""
        async with self._store.transaction() as tx:
            for position, cell in cells.items():
                try:
                    await tx.put_hub_cell(HubCell(
                        id=cell_id(hub_id, position), hub_id=hub_id, battery_did=battery_did,
                        position=position, cell_uid=cell.cell_uid, cell_did=cell.monitor_did))
                except AlreadyExists:
                    continue
        async with self._store.read() as reader:
            stored = await reader.list_hub_cells(hub_id=hub_id, limit=_PAGE)
        self.aggregator.register(hub_id, battery_did, {
            c.position: RegisteredCell(c.cell_uid, c.cell_did) for c in stored})
        locked = {c.position for c in stored if c.configuration == "unverified"}
        if locked:
            self.unverified.setdefault(battery_did, set()).update(locked)
        self._hubs[hub_id] = battery_did
        self._keys[hub_id] = public_key_of_did_key(hub_id)

    async def register_known_packs(self) -> int:
        """Register every pack whose cells are in the store (``POST /management/hub/packs``
        or an earlier run); how many hubs."""
        hubs: dict[str, str] = {}
        after: str | None = None
        async with self._store.read() as reader:
            while True:
                page = await reader.list_hub_cells(after=after, limit=_PAGE)
                hubs.update((c.hub_id, c.battery_did) for c in page)
                if len(page) < _PAGE:
                    break
                after = page[-1].id
        for hub_id, battery_did in hubs.items():
            await self.register_pack(hub_id, battery_did, {})
        return len(hubs)

    def _hub_key(self, hub_id: str) -> PublicKey | None:
        return self._keys.get(hub_id)

    # --- messages ----------------------------------------------------------------------------

    async def handle(self, message: SourceMessage) -> int:
        """Process one source message; the number of new events (``handle_many``)."""
        return await self.handle_many([message])

    async def handle_many(self, messages: Sequence[SourceMessage]) -> int:
        """Process messages that queued up together (``intake.message_groups``): each is
        verified on its own, their events are stored in ONE transaction (group commit: one
        flush to disk for all), then every message is acknowledged in arrival order — the
        refused ones too, which can never become valid. The number of new events."""
        now = self._clock()
        events: list[CellEvent] = []
        for message in messages:
            self.stats.messages += 1
            try:
                verified = verify_hub_message(message.payload, self._hub_key, now=now,
                                              limits=self._limits)
            except HubMessageError as exc:
                self.stats.rejected[str(exc.reason)] += 1
                log.warning("hub message on %s refused: %s", message.topic, exc)
                continue
            events.extend(self.aggregator.feed_many(verified.readings))
            events.extend(verified.events)
        events.extend(self.aggregator.tick(now))
        fresh = await self.store_events(events, now)
        for message in messages:
            await message.ack()
        await self._batch(fresh, now)
        return len(fresh)

    async def tick(self) -> int:
        """Let time pass: period summaries, lost monitors, batches that are old enough."""
        now = self._clock()
        fresh = await self.store_events(self.aggregator.tick(now), now)
        await self._batch(fresh, now)
        closed = 0
        for battery_did, batcher in list(self._batchers.items()):
            batch = batcher.due(now)
            if batch is not None:
                await self._commit(battery_did, batch)
                closed += 1
        if self._retry_credentials and time.monotonic() >= self._next_retry:
            closed += await self.retry_credentials()
        if time.monotonic() >= self._next_lock_refresh:
            await self.refresh_locks()
        return closed + len(fresh)

    async def refresh_locks(self) -> None:
        """Rebuild the access lock from the store: the cells marked unverified there, by
        whichever replica saw the mismatch, and none that a replacement (on any replica)
        cleared. Every ``LOCK_REFRESH_S`` from ``tick``, so replicas agree within seconds."""
        self._next_lock_refresh = time.monotonic() + LOCK_REFRESH_S
        self._locked_meanwhile = []  # locks this process sets while the store is read
        locked: dict[str, set[int]] = {}
        after: str | None = None
        async with self._store.read() as reader:
            while True:
                page = await reader.list_hub_cells(configuration="unverified", after=after,
                                                   limit=_PAGE)
                for cell in page:
                    locked.setdefault(cell.battery_did, set()).add(cell.position)
                if len(page) < _PAGE:
                    break
                after = page[-1].id
        for battery_did, position in self._locked_meanwhile:
            locked.setdefault(battery_did, set()).add(position)
        self.unverified = locked

    async def retry_credentials(self) -> int:
        """Append the credentials of stored batches that have none yet (the node was not yet
        the pack's custodian, the pack was not registered, the store was down)."""
        self._retry_credentials = False
        self._next_retry = time.monotonic() + RETRY_S
        async with self._store.read() as reader:
            pending = await reader.list_hub_batches(uncredentialed=True, limit=_PAGE)
        done = 0
        for record in pending:
            done += await self._credential_for(record)
        return done

    async def store_events(self, events: list[CellEvent], now: datetime) -> list[CellEvent]:
        """Store ``events`` once; the ones that were new. A cell ID mismatch marks the cell
        unverified in the same transaction."""
        if not events:
            return []
        groups: dict[tuple[str, str], list[CellEvent]] = {}
        for event in events:
            groups.setdefault((event.hub_id, event.battery_did), []).append(event)
        # Each group's events as one JSON array of their canonical forms, made when each
        # event was validated: the store keeps that text (connector.store.hub_events).
        records = [HubEventGroup(
            hub_id=hub_id, battery_did=battery_did, received_at=now,
            event_ids=tuple(e.event_id for e in group), seqs=tuple(e.seq for e in group),
            events=(b"[" + b",".join([e.canonical() for e in group]) + b"]").decode())
            for (hub_id, battery_did), group in groups.items()]
        async with self._store.transaction() as tx:
            inserted: set[str] = set()
            for record in records:
                inserted.update(await tx.add_hub_events(record))
            for event in events:
                if event.event_id in inserted and event.kind == EventKind.CELL_ID_MISMATCH:
                    await self._mark_unverified(tx, event)
        fresh = [e for e in events if e.event_id in inserted]
        self.stats.events_stored += len(fresh)
        self.stats.duplicates += len(events) - len(fresh)
        for event in fresh:
            if event.kind == EventKind.CELL_ID_MISMATCH:
                self.unverified.setdefault(event.battery_did, set()).add(event.position)
                self._locked_meanwhile.append((event.battery_did, event.position))
                await self._append_marker(event)
        return fresh

    def restriction(self, battery_did: str | None, access_level: str) -> str | None:
        """The access lock: a pack's cell data (performance & health) while a cell position
        shows another cell than the one registered, until an authorised replacement."""
        positions = self.unverified.get(battery_did or "")
        if not positions or access_level not in LOCKED_LEVELS:
            return None
        listed = ", ".join(str(p) for p in sorted(positions))
        return (f"the cell configuration of {battery_did} is unverified (position {listed} "
                "shows another cell than registered); its cell data is locked until an "
                "authorised technician registers the replacement")

    async def _mark_unverified(self, tx: Any, event: CellEvent) -> None:
        cell = await tx.get_hub_cell(cell_id(event.hub_id, event.position), for_update=True)
        if cell is None or cell.configuration == "unverified":
            return
        await tx.put_hub_cell(replace(cell, configuration="unverified",
                                      observed_uid=event.cell_uid))

    # --- authorised replacement ---------------------------------------------------------------

    async def replace_cell(self, hub_id: str, position: int, *, new_cell_uid: str,
                           new_cell_did: str, technician_credential: dict[str, Any],
                           verifier: Any, trust: Any) -> CredentialRecord:
        """Register the cell now at ``position`` as an authorised replacement: the technician
        proves the role with a credential from an issuer the node trusts for
        ``ServiceTechnicianCredential``; the pack's passport gets a ``CellReplacementCredential``
        linking the old and new cell, and the lock on its cell data lifts."""
        async with self._store.read() as reader:
            cell = await reader.get_hub_cell(cell_id(hub_id, position))
        if cell is None:
            raise ReplacementRefused(404, "unknown-cell", f"no cell {position} of hub {hub_id}")
        if cell.configuration != "unverified":
            raise ReplacementRefused(409, "not-unverified", f"cell {position} of "
                                     f"{cell.battery_did} shows its registered cell: nothing "
                                     "to replace")
        if new_cell_uid != cell.observed_uid:
            raise ReplacementRefused(400, "wrong-cell", f"the cell the hub sees at position "
                                     f"{position} is {cell.observed_uid}, not {new_cell_uid}")
        technician = await self._technician(technician_credential, verifier, trust)
        subject = {"id": cell.battery_did, "type": "Battery", "position": position,
                   "oldCellDid": cell.cell_did, "newCellDid": new_cell_did,
                   "oldCellUid": cell.cell_uid, "newCellUid": new_cell_uid,
                   "technician": technician,
                   "technicianCredential": credential_digest(technician_credential),
                   "replacedAt": format_datetime(self._clock())}
        try:
            appended = await append_to_passport(self._app, cell.battery_did, lambda previous:
                                                self._sign(CELL_REPLACEMENT, subject, previous))
        except (PassportAppendError, ValueError) as exc:
            raise ReplacementRefused(409, "not-appended", str(exc)) from exc
        async with self._store.transaction() as tx:
            current = await tx.get_hub_cell(cell.id, for_update=True)
            assert current is not None
            await tx.put_hub_cell(replace(current, cell_uid=new_cell_uid, cell_did=new_cell_did,
                                          configuration="verified", observed_uid=None))
        self.unverified.get(cell.battery_did, set()).discard(position)
        await self.register_pack(hub_id, cell.battery_did, {})
        return appended

    async def _technician(self, credential: dict[str, Any], verifier: Any, trust: Any) -> str:
        from credentials.model import issuer_id, types_of
        from credentials.verifier import VerifyOptions

        result = await verifier.verify_credential(credential, VerifyOptions(now=self._clock()))
        if not result.verified:
            reasons = "; ".join(p.message for p in result.problems)
            raise ReplacementRefused(422, "technician-not-verified",
                                     f"the technician's credential did not verify: {reasons}")
        if TECHNICIAN_TYPE not in types_of(credential):
            raise ReplacementRefused(422, "not-a-technician",
                                     f"the credential is not a {TECHNICIAN_TYPE}")
        issuer = issuer_id(credential)
        if not trust.trusts(issuer, TECHNICIAN_TYPE):
            raise ReplacementRefused(422, "untrusted-issuer", f"{issuer} is not trusted to "
                                     f"issue {TECHNICIAN_TYPE} (bpc trust add)")
        subject = credential.get("credentialSubject")
        technician = subject.get("id") if isinstance(subject, dict) else None
        if not isinstance(technician, str) or not technician.startswith("did:"):
            raise ReplacementRefused(422, "no-technician", "the credential names no "
                                     "technician DID (credentialSubject.id)")
        return technician

    # --- batches and credentials -------------------------------------------------------------

    def _batcher(self, battery_did: str) -> Batcher:
        batcher = self._batchers.get(battery_did)
        if batcher is None:
            batcher = self._batchers[battery_did] = Batcher(self._batch_max_events,
                                                            self._batch_max_age)
        return batcher

    async def _batch(self, events: list[CellEvent], now: datetime) -> None:
        for event in events:
            closed = self._batcher(event.battery_did).add(event, now)
            if closed is not None:
                await self._commit(event.battery_did, closed)

    async def _commit(self, battery_did: str, batch: ClosedBatch) -> None:
        """Store the batch with the events it covers, then append its credential.

        Events another worker's batch took meanwhile (a redelivery after a lost ack) are left
        to that batch: the root is then rebuilt over the events this one really covers."""
        events = list(batch.events)
        record = self._record(battery_did, events, batch.root_b64, batch.closed_at)
        async with self._store.transaction() as tx:
            taken = set(await tx.assign_hub_batch(
                record.id, [HubEventRef(e.seq, e.event_id) for e in events]))
            if len(taken) != len(events):
                events = [e for e in events if e.event_id in taken]
                if not events:
                    return
                root = encode_hash(MerkleTree([e.digest() for e in events]).root)
                record = replace(self._record(battery_did, events, root, batch.closed_at),
                                 id=record.id)
            record = await tx.put_hub_batch(record)
        self.stats.batches += 1
        await self._credential_for(record, Counter(str(e.kind) for e in events))

    @staticmethod
    def _record(battery_did: str, events: list[CellEvent], root: str,
                closed_at: datetime) -> HubBatch:
        return HubBatch(
            id=new_id(), battery_did=battery_did, hub_id=events[0].hub_id, merkle_root=root,
            tree_size=len(events), event_ids=tuple(e.event_id for e in events),
            first_event_at=min(e.observed_at for e in events),
            last_event_at=max(e.observed_at for e in events), closed_at=closed_at)

    async def _credential_for(self, record: HubBatch,
                              counts: Counter[str] | None = None) -> int:
        """Append the batch's credential (``counts``: its event kinds, when the caller has the
        events in memory; otherwise they are read back)."""
        if counts is None:
            counts = Counter(str(e.kind) for e in await self._events_of(record))
        configuration = await self._configuration(record.battery_did)
        subject: dict[str, Any] = {
            "id": record.battery_did, "type": "Battery", "hub": record.hub_id,
            "merkleRoot": record.merkle_root, "treeSize": record.tree_size,
            "firstEventAt": format_datetime(record.first_event_at),
            "lastEventAt": format_datetime(record.last_event_at),
            "eventCounts": [{"eventKind": kind, "count": n} for kind, n in sorted(counts.items())],
            "cellConfiguration": configuration,
        }
        try:
            appended = await append_to_passport(
                self._app, record.battery_did, lambda previous: self._sign(
                    CELL_EVENT_BATCH, subject, previous))
        except (PassportAppendError, ValueError, StoreError) as exc:
            # not the custodian yet, a broken chain, or another writer took the position
            # (two workers appending to one pack): the batch is stored, retried on a tick
            self.stats.credential_failures += 1
            self.stats.last_credential_error = str(exc)
            self._retry_credentials = True
            log.warning("batch %s of %s stays without credential for now: %s", record.id,
                        record.battery_did, exc)
            return 0
        async with self._store.transaction() as tx:
            current = await tx.get_hub_batch(record.id)
            if current is not None:
                await tx.put_hub_batch(replace(current, credential_digest=appended.digest))
        self.stats.credentials += 1
        return 1

    async def _append_marker(self, event: CellEvent) -> None:
        async with self._store.read() as reader:
            cell = await reader.get_hub_cell(cell_id(event.hub_id, event.position))
        expected = cell.cell_uid if cell is not None else ""
        subject = {"id": event.battery_did, "type": "Battery",
                   "cellConfiguration": "unverified", "position": event.position,
                   "expectedCellUid": expected, "observedCellUid": event.cell_uid,
                   "observedAt": format_datetime(event.observed_at), "eventId": event.event_id}
        try:
            await append_to_passport(self._app, event.battery_did, lambda previous: self._sign(
                CELL_CONFIGURATION, subject, previous))
        except (PassportAppendError, ValueError) as exc:
            self.stats.credential_failures += 1
            self.stats.last_credential_error = str(exc)
            log.warning("tamper marker for %s not appended: %s", event.battery_did, exc)

    def _sign(self, kind: str, subject: dict[str, Any], previous: str | None) -> dict[str, Any]:
        linked = {**subject, "previousCredential": previous} if previous else subject
        document = {"@context": list(HUB_CONTEXTS), "id": f"urn:uuid:{new_id().split(':')[-1]}",
                    "type": ["VerifiableCredential", kind], "issuer": self._key.controller,
                    "validFrom": format_datetime(self._clock()), "credentialSubject": linked}
        # The shape is this module's code (a test runs SHACL over every kind it signs).
        signed = issue_passport_credential(document, self._key, suite=JCS, shapes_tested=True)
        assert isinstance(signed, dict)
        return signed

    async def _configuration(self, battery_did: str) -> str:
        async with self._store.read() as reader:
            unverified = await reader.list_hub_cells(battery_did=battery_did,
                                                     configuration="unverified", limit=1)
        return "unverified" if unverified else "verified"

    async def _events_of(self, record: HubBatch) -> list[HubEvent]:
        async with self._store.read() as reader:
            found = {e.event_id: e for e in await reader.list_hub_events(
                batch_id=record.id, limit=max(record.tree_size, 1))}
        return [found[event_id] for event_id in record.event_ids if event_id in found]

    # --- restart -----------------------------------------------------------------------------

    async def recover(self) -> int:
        """Batch what was stored but not batched, and append missing credentials."""
        now = self._clock()
        recovered = 0
        async with self._store.read() as reader:
            pending = await reader.list_hub_batches(uncredentialed=True, limit=_PAGE)
            loose: list[HubEvent] = []
            after: str | None = None
            while True:
                page = await reader.list_hub_events(unbatched=True, after=after, limit=_PAGE)
                loose.extend(page)
                if len(page) < _PAGE:
                    break
                after = page[-1].event_id
        for record in pending:
            await self._credential_for(record)
            recovered += 1
        events = [CellEvent.model_validate(e.event) for e in loose]
        await self._batch(sorted(events, key=lambda e: e.observed_at), now)
        for battery_did, batcher in list(self._batchers.items()):
            batch = batcher.flush(now)
            if batch is not None:
                await self._commit(battery_did, batch)
                recovered += 1
        return recovered + len(events)

    async def retire_blocker(self, hub_id: str) -> str | None:
        """Why the hub may not leave the bridge now (``None``: it may)."""
        async with self._store.read() as reader:
            unverified = await reader.list_hub_cells(hub_id=hub_id, configuration="unverified",
                                                     limit=1)
        if unverified:
            return (f"cell {unverified[0].position} of {unverified[0].battery_did} is "
                    "unverified: register the authorised replacement first")
        return None

    async def retire_pack(self, hub_id: str) -> int:
        """Take a hub off the bridge on purpose (its pack leaves the bench, or custody moves
        on): its open periods close, and its pack's batch closes and is credentialed now, so
        every event it raised is in the passport before another node holds it. Messages the
        hub still sends are then refused as from an unknown hub. How many events it took.

        Refused (``RetireRefused``) while a cell of the hub is unverified: taking the pack off
        the bridge must not lift the tamper lock; a technician's replacement does."""
        blocker = await self.retire_blocker(hub_id)
        if blocker is not None:
            raise RetireRefused(blocker)
        battery_did = self._hubs.pop(hub_id, None)
        self._keys.pop(hub_id, None)
        now = self._clock()
        fresh = await self.store_events(self.aggregator.retire(hub_id), now)
        await self._batch(fresh, now)
        batcher = self._batchers.pop(battery_did, None) if battery_did else None
        batch = batcher.flush(now) if batcher is not None else None
        if battery_did is not None and batch is not None:
            await self._commit(battery_did, batch)
        # the registry goes too, so a restart does not register the hub again and report
        # its (silent) monitors lost
        async with self._store.transaction() as tx:
            await tx.delete_hub_cells(hub_id)
        return len(fresh)

    async def flush(self) -> None:
        """Close every open batch now (shutdown, tests)."""
        now = self._clock()
        for battery_did, batcher in list(self._batchers.items()):
            batch = batcher.flush(now)
            if batch is not None:
                await self._commit(battery_did, batch)

    # --- proofs and status -------------------------------------------------------------------

    async def prove(self, event_id: str) -> dict[str, Any] | None:
        """The event, its inclusion proof and its batch credential (``None``: unknown); the
        proof is rebuilt from the stored events in leaf order, so nothing but the events and
        the batch need be kept."""
        async with self._store.read() as reader:
            event = await reader.get_hub_event(event_id)
            batch = (await reader.get_hub_batch(event.batch_id)
                     if event is not None and event.batch_id else None)
            credential = (await reader.get_credential(batch.credential_digest)
                          if batch is not None and batch.credential_digest else None)
        if event is None:
            return None
        answer: dict[str, Any] = {"event": event.event, "batch": None, "proof": None,
                                  "credential": None}
        if batch is None:
            return answer
        events = await self._events_of(batch)
        tree = MerkleTree([event_digest(e.event) for e in events])
        index = batch.event_ids.index(event_id)
        answer["batch"] = {"id": batch.id, "merkleRoot": batch.merkle_root,
                           "treeSize": batch.tree_size, "credentialDigest":
                           batch.credential_digest}
        answer["proof"] = tree.inclusion(index).to_json()
        if encode_hash(tree.root) != batch.merkle_root:  # the store disagrees with itself
            raise RuntimeError(f"batch {batch.id}: stored events do not give its root")
        answer["credential"] = credential.credential if credential is not None else None
        return answer

    async def status(self) -> dict[str, Any]:
        async with self._store.read() as reader:
            unverified = await reader.list_hub_cells(configuration="unverified", limit=_PAGE)
            uncredentialed = await reader.list_hub_batches(uncredentialed=True, limit=_PAGE)
        return {
            "hubs": [{"hub": hub, "battery": battery} for hub, battery in self._hubs.items()],
            "stats": self.stats.to_json(),
            "openBatches": {battery: len(b) for battery, b in self._batchers.items()},
            "batchesWithoutCredential": len(uncredentialed),
            "unverifiedCells": [{"battery": c.battery_did, "position": c.position,
                                 "expectedCellUid": c.cell_uid, "observedCellUid": c.observed_uid}
                                for c in unverified],
            "aggregator": {"lateDropped": self.aggregator.stats.late_dropped},
            "at": self._clock().astimezone(UTC).isoformat(),
        }


__all__ = ["BridgeStats", "HubBridge", "ReplacementRefused", "RetireRefused", "cell_id"]
