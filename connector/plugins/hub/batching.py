"""Events into batches: one Merkle root per batch, an inclusion proof per event.

The bridge issues one credential per closed batch carrying the batch's Merkle root
(``credentials.merkle``), instead of one signature per event; each event is stored with its
inclusion proof, which anyone holding the event JSON and the credential can check offline
with ``verify_event_inclusion``.

A batch closes when it holds ``max_events`` (at once, in ``add``) or when its first event is
``max_age`` old (in ``add`` or ``due``, whichever the caller runs first), so a quiet hub's
events wait at most about ``max_age`` plus the caller's polling interval. Pure: the caller
passes ``now``; a clock that steps backwards restarts the age of the open batch rather than
keeping it open until the clock catches up.

Leaves are in arrival order (a proof carries its index), so events out of time order batch
like any others. An event whose id is in the open batch or among the last
``dedup_capacity`` batched ids is a duplicate (a redelivery) and is dropped, counted in
``duplicates``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from connector.plugins.hub.events import CellEvent, event_digest
from credentials.errors import CredentialsError
from credentials.merkle import InclusionProof, MerkleTree, decode_hash, encode_hash

CloseReason = Literal["size", "age", "flush"]


@dataclass(frozen=True, eq=False)
class ClosedBatch:
    """A closed batch: its events in leaf order, their Merkle tree and when and why it closed."""

    number: int
    opened_at: datetime
    closed_at: datetime
    reason: CloseReason
    events: tuple[CellEvent, ...]
    tree: MerkleTree = field(repr=False)
    _index: dict[str, int] = field(repr=False)

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def root_b64(self) -> str:
        """The root as a credential carries it (base64url, no padding)."""
        return encode_hash(self.tree.root)

    def __len__(self) -> int:
        return len(self.events)

    def inclusion(self, event_id: str) -> InclusionProof:
        """The proof of one event (``KeyError`` when it is not in this batch)."""
        return self.tree.inclusion(self._index[event_id])

    def proof_for(self, event_id: str) -> dict[str, Any]:
        """The JSON proof of one event: ``{leafIndex, treeSize, inclusionPath}``."""
        return self.inclusion(event_id).to_json()

    def proofs(self) -> dict[str, dict[str, Any]]:
        """Every event's JSON proof, by event id."""
        return {event.event_id: self.proof_for(event.event_id) for event in self.events}


class Batcher:
    """Collects events; ``add`` and ``due`` hand back a batch when one closes."""

    def __init__(self, max_events: int = 1000, max_age: timedelta = timedelta(seconds=1), *,
                 dedup_capacity: int = 100_000) -> None:
        if max_events < 1:
            raise ValueError("a batch holds at least one event")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if dedup_capacity < 0:
            raise ValueError("dedup_capacity cannot be negative")
        self.max_events = max_events
        self.max_age = max_age
        self.dedup_capacity = dedup_capacity
        self.duplicates = 0
        self.batches_closed = 0
        self._events: list[CellEvent] = []
        self._ids: dict[str, int] = {}
        self._opened_at: datetime | None = None
        self._recent: deque[str] = deque()
        self._recent_ids: set[str] = set()

    def __len__(self) -> int:
        """Events in the open batch."""
        return len(self._events)

    @property
    def opened_at(self) -> datetime | None:
        return self._opened_at

    def add(self, event: CellEvent, now: datetime) -> ClosedBatch | None:
        """Add an event; the batch that closed now, if any.

        An open batch already too old closes first and the event starts the next one; a
        batch that reaches ``max_events`` with this event closes at once.
        """
        closed = self.due(now)
        if event.event_id in self._ids or event.event_id in self._recent_ids:
            self.duplicates += 1
            return closed
        if not self._events:
            self._opened_at = now
        self._ids[event.event_id] = len(self._events)
        self._events.append(event)
        if closed is None and len(self._events) >= self.max_events:
            closed = self._close(now, "size")
        return closed

    def due(self, now: datetime) -> ClosedBatch | None:
        """Close the open batch if it is full or ``max_age`` old."""
        if not self._events:
            return None
        assert self._opened_at is not None
        if now < self._opened_at:  # the clock stepped back: age from here
            self._opened_at = now
        if len(self._events) >= self.max_events:
            return self._close(now, "size")
        if now - self._opened_at >= self.max_age:
            return self._close(now, "age")
        return None

    def flush(self, now: datetime) -> ClosedBatch | None:
        """Close the open batch whatever its size and age (shutdown)."""
        return self._close(now, "flush") if self._events else None

    def _close(self, now: datetime, reason: CloseReason) -> ClosedBatch:
        events, index = tuple(self._events), self._ids
        assert self._opened_at is not None
        tree = MerkleTree([event.digest() for event in events])
        batch = ClosedBatch(self.batches_closed, self._opened_at, now, reason, events, tree,
                            index)
        self.batches_closed += 1
        self._events, self._ids, self._opened_at = [], {}, None
        self._remember(index)
        return batch

    def _remember(self, ids: dict[str, int]) -> None:
        if not self.dedup_capacity:
            return
        recent, recent_ids = self._recent, self._recent_ids
        recent.extend(ids)
        recent_ids.update(ids)
        while len(recent) > self.dedup_capacity:
            recent_ids.discard(recent.popleft())


def verify_event_inclusion(event: dict[str, Any], proof: dict[str, Any],
                           root: bytes | str, *, size: int | None = None) -> bool:
    """Offline check: ``event`` (its JSON form) is a leaf of the batch whose root is ``root``.

    ``root`` is the 32 raw bytes or their base64url form from the batch credential; pass the
    credential's batch ``size`` too to pin the leaf's position (a path alone does not bind
    the tree size, see ``credentials.merkle.verify_inclusion``); inclusion itself is proven
    by the root either way. Anything malformed (event, proof or root) gives ``False``,
    never an exception.
    """
    try:
        parsed = InclusionProof.from_json(proof)
        root_bytes = decode_hash(root) if isinstance(root, str) else bytes(root)
        leaf = event_digest(event)
    except (CredentialsError, ValueError, TypeError):
        return False
    if size is not None and parsed.tree_size != size:
        return False
    return parsed.verify(leaf, root_bytes)
