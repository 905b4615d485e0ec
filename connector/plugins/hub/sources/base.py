"""What every hub-bridge event source hands the pipeline: raw messages with an explicit ack.

A source (the MQTT broker, a recorded JSONL stream) delivers ``SourceMessage``s: the topic,
the raw payload bytes and when it arrived. The pipeline acknowledges a message with
``await message.ack()`` only after it has durably stored what the message carried, so a crash
between delivery and storage costs a redelivery (tolerated: the store is idempotent by event
id), never a lost event. Sources know nothing about payload schemas or signing.

``LagTracker`` keeps the gauge the bridge exports: how many messages were received but not yet
acknowledged, and how old the oldest of them is. When the signer falls behind, that number
climbs to the source's in-flight bound and stays there while the broker buffers the rest.

``parse_topic`` reads the topic scheme ``bpc/hubs/{hub_id}/cells/{position}`` and
``bpc/hubs/{hub_id}/batch`` shared by every source (positions in canonical decimal, so one cell
has exactly one topic).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NamedTuple, Protocol, runtime_checkable

TOPIC_PREFIX = "bpc/hubs"
#: The subscriptions that cover the whole scheme (MQTT wildcards).
DEFAULT_TOPICS: tuple[str, ...] = (f"{TOPIC_PREFIX}/+/cells/+", f"{TOPIC_PREFIX}/+/batch")
#: Same bound as the hub payload schema (``events.MAX_POSITION``), kept here so that sources
#: do not depend on the payload models.
MAX_POSITION = 65_535
#: did:key with a base58btc multibase value (``z…``); ``:`` is legal in an MQTT topic level,
#: the wildcards ``+``/``#`` and the level separator ``/`` are not, and base58 has none of them.
_DID_KEY = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]{16,128}")
_POSITION = re.compile(r"0|[1-9][0-9]{0,4}")

TopicKind = Literal["cell", "batch"]


class SourceError(Exception):
    """Base of the sources' errors: a source that cannot deliver (misconfigured, unreachable,
    refused by the broker), or a message that a source refuses to deliver."""


class TopicError(SourceError, ValueError):
    """A topic outside the ``bpc/hubs/{hub_id}/…`` scheme; the message says which part."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"topic {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


class PayloadTooLarge(SourceError, ValueError):
    """A payload over the source's ``max_payload_bytes``."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(f"payload on {topic!r} is {size} bytes, over the limit of {limit}")
        self.topic = topic
        self.size = size
        self.limit = limit


class HubTopic(NamedTuple):
    """A parsed topic; unpacks as ``hub_id, position, kind``."""

    hub_id: str
    position: int | None
    kind: TopicKind


def parse_topic(topic: str) -> HubTopic:
    """Split a hub topic into hub DID, cell position (``None`` for batch) and kind.

    Raises ``TopicError`` for anything else: another root, an unknown kind, a hub id that is
    not a did:key, a position that is not a small non-negative integer, wildcards.
    """
    if "+" in topic or "#" in topic:
        raise TopicError(topic, "wildcards are not allowed in a message topic")
    levels = topic.split("/")
    if len(levels) < 4 or f"{levels[0]}/{levels[1]}" != TOPIC_PREFIX:
        raise TopicError(topic, f"expected {TOPIC_PREFIX}/{{hub_id}}/cells/{{position}} "
                                f"or {TOPIC_PREFIX}/{{hub_id}}/batch")
    hub_id = levels[2]
    if not _DID_KEY.fullmatch(hub_id):
        raise TopicError(topic, "the hub id is not a did:key (did:key:z<base58btc>)")
    if len(levels) == 4 and levels[3] == "batch":
        return HubTopic(hub_id, None, "batch")
    if len(levels) == 5 and levels[3] == "cells":
        if not _POSITION.fullmatch(levels[4]) or int(levels[4]) > MAX_POSITION:
            raise TopicError(topic, f"the cell position is not an integer 0..{MAX_POSITION}")
        return HubTopic(hub_id, int(levels[4]), "cell")
    raise TopicError(topic, "expected …/cells/{position} or …/batch after the hub id")


@dataclass(frozen=True)
class LagSnapshot:
    """One reading of a source's lag gauge (Prometheus: two gauges and two counters)."""

    unacked: int
    oldest_unacked_age_s: float
    received_total: int
    acked_total: int


class LagTracker:
    """Received-but-unacknowledged messages, keyed by whatever the source numbers them with.

    ``forget`` drops entries whose ack can no longer reach the broker (the connection they came
    on is gone; the broker redelivers them), so the gauge never counts a message twice.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[int, float] = {}  # insertion order = arrival order
        self.received_total = 0
        self.acked_total = 0

    def received(self, key: int) -> None:
        self._pending[key] = self._clock()
        self.received_total += 1

    def acked(self, key: int) -> None:
        if self._pending.pop(key, None) is not None:
            self.acked_total += 1

    def forget(self, keys: list[int]) -> None:
        for key in keys:
            self._pending.pop(key, None)

    def snapshot(self) -> LagSnapshot:
        oldest = next(iter(self._pending.values()), None)
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        return LagSnapshot(len(self._pending), age, self.received_total, self.acked_total)


AckCallback = Callable[[], Awaitable[None]]


async def _no_ack() -> None:
    return None


@dataclass(eq=False)
class SourceMessage:
    """One raw message as the source received it.

    ``ack()`` tells the source the message is durably processed; it is idempotent. For MQTT it
    sends the PUBACK that lets the broker forget the message and send the next one; for a
    replay it advances the resume offset. ``redelivered`` is ``True`` when the source knows
    this is a second delivery (MQTT DUP flag), ``None`` when it cannot know.
    """

    topic: str
    payload: bytes
    received_at: datetime
    redelivered: bool | None = None
    _ack: AckCallback = field(default=_no_ack, repr=False)
    _acked: bool = field(default=False, repr=False)

    @property
    def acked(self) -> bool:
        return self._acked

    async def ack(self) -> None:
        if self._acked:
            return
        self._acked = True
        await self._ack()


#: Called with a message the source refuses (bad topic, too large) before it acknowledges it,
#: so the pipeline can park it somewhere instead of losing it.
RejectHook = Callable[[SourceMessage, SourceError], Awaitable[None]]


@runtime_checkable
class Source(Protocol):
    """An event source of the hub bridge."""

    def messages(self) -> AsyncIterator[SourceMessage]:
        """The messages in arrival order; ends when the source is closed or exhausted."""
        ...

    async def close(self) -> None:
        """Stop delivering; unacknowledged messages are delivered again next time."""
        ...

    @property
    def lag(self) -> LagSnapshot:
        """Received but not yet acknowledged messages, and the age of the oldest."""
        ...


__all__ = [
    "DEFAULT_TOPICS",
    "MAX_POSITION",
    "TOPIC_PREFIX",
    "AckCallback",
    "HubTopic",
    "LagSnapshot",
    "LagTracker",
    "PayloadTooLarge",
    "RejectHook",
    "Source",
    "SourceError",
    "SourceMessage",
    "TopicError",
    "TopicKind",
    "parse_topic",
]
