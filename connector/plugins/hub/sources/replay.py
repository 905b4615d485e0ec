"""Recorded hub streams: replay a JSONL file as a source, and record a live source to one.

One message per line::

    {"topic": "bpc/hubs/did:key:z6Mk…/cells/3", "payload": {…} or "<base64>",
     "at": "2025-01-31T12:00:00.123456Z"}

``payload`` is a JSON object (or array) when the original bytes were exactly its compact JSON
encoding, otherwise the base64 of the bytes, so a replay hands the pipeline the very bytes
that were recorded (signatures over them still verify). ``at`` is when the message arrived
(RFC 3339 with an offset); it becomes ``received_at`` and sets the pace of a replay.

A replay never stops on a bad line: a malformed line is logged with its line number, counted
and skipped. With an ``offset_path`` it remembers the last line up to which everything was
acknowledged (acks may come out of order), so a replay interrupted and started again resumes
after what was stored instead of starting over.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

from connector.plugins.hub.sources.base import (
    LagSnapshot,
    LagTracker,
    Source,
    SourceError,
    SourceMessage,
    TopicError,
    parse_topic,
)

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
#: Malformed lines kept for inspection (the counter keeps counting past it).
MAX_KEPT_PROBLEMS = 1000


class MalformedLine(SourceError, ValueError):
    """A line of a JSONL recording that is not a message; names the line."""

    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


def _parse_line(line_no: int, raw: bytes) -> tuple[str, bytes, datetime]:
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedLine(line_no, f"not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise MalformedLine(line_no, "not a JSON object")
    topic, payload, at = record.get("topic"), record.get("payload"), record.get("at")
    if not isinstance(topic, str) or not topic:
        raise MalformedLine(line_no, "`topic` is missing or not a non-empty string")
    if isinstance(payload, dict | list):
        data = _compact_json(payload)
    elif isinstance(payload, str):
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedLine(line_no, f"`payload` string is not base64 ({exc})") from exc
    else:
        raise MalformedLine(line_no, "`payload` is missing or neither an object nor base64")
    if not isinstance(at, str):
        raise MalformedLine(line_no, "`at` is missing or not a string")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError as exc:
        raise MalformedLine(line_no, f"`at` is not an RFC 3339 timestamp ({exc})") from exc
    if moment.tzinfo is None:
        raise MalformedLine(line_no, "`at` has no UTC offset")
    return topic, data, moment


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class JsonlReplaySource:
    """Replays a JSONL recording in file order.

    ``speed`` 0 replays as fast as the consumer takes messages; ``speed`` 1 keeps the recorded
    gaps between messages, 2 halves them. ``sleep`` is injectable so tests do not wait.
    """

    def __init__(self, path: Path | str, *, speed: float = 0.0,
                 offset_path: Path | str | None = None, validate_topics: bool = True,
                 sleep: Sleep = asyncio.sleep) -> None:
        if speed < 0:
            raise ValueError("speed must be 0 (as fast as possible) or positive")
        self.path = Path(path)
        self.speed = speed
        self.offset_path = Path(offset_path) if offset_path is not None else None
        self.validate_topics = validate_topics
        self._sleep = sleep
        self._lag = LagTracker()
        self._closed = False
        self._done: set[int] = set()  # lines past the watermark that are finished
        self.offset = self._load_offset()
        self.problems: list[SourceError] = []
        self.counters: dict[str, int] = dict.fromkeys(
            ("delivered", "acked", "malformed", "rejected_topic", "skipped"), 0)

    @property
    def lag(self) -> LagSnapshot:
        return self._lag.snapshot()

    async def messages(self) -> AsyncIterator[SourceMessage]:
        """The recorded messages after ``offset``; ends at the end of the file or on close."""
        previous_at: datetime | None = None
        with self.path.open("rb") as lines:
            for line_no, raw in enumerate(lines, start=1):
                if self._closed:
                    return
                if line_no <= self.offset:
                    self.counters["skipped"] += 1
                    continue
                if not raw.strip():
                    self._finished(line_no)
                    continue
                try:
                    topic, payload, at = _parse_line(line_no, raw)
                    if self.validate_topics:
                        parse_topic(topic)
                except (MalformedLine, TopicError) as exc:
                    self._problem(line_no, exc)
                    continue
                if self.speed > 0 and previous_at is not None:
                    gap = (at - previous_at).total_seconds() / self.speed
                    if gap > 0:
                        await self._sleep(gap)
                previous_at = at
                if self._closed:
                    return
                yield self._message(line_no, topic, payload, at)

    async def close(self) -> None:
        self._closed = True

    def _message(self, line_no: int, topic: str, payload: bytes, at: datetime) -> SourceMessage:
        async def ack() -> None:
            self._lag.acked(line_no)
            self.counters["acked"] += 1
            self._finished(line_no)

        self._lag.received(line_no)
        self.counters["delivered"] += 1
        return SourceMessage(topic=topic, payload=payload, received_at=at, redelivered=None,
                             _ack=ack)

    def _problem(self, line_no: int, problem: SourceError) -> None:
        kind = "rejected_topic" if isinstance(problem, TopicError) else "malformed"
        self.counters[kind] += 1
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(problem)
        log.warning("%s line %d skipped: %s", self.path, line_no, problem)
        self._finished(line_no)

    # -- resume offset ---------------------------------------------------------------

    def _finished(self, line_no: int) -> None:
        """Line ``line_no`` needs no replay any more; advance the watermark over a gap-free
        run of finished lines and persist it."""
        self._done.add(line_no)
        advanced = False
        while self.offset + 1 in self._done:
            self.offset += 1
            self._done.discard(self.offset)
            advanced = True
        if advanced:
            self._save_offset()

    def _load_offset(self) -> int:
        if self.offset_path is None or not self.offset_path.exists():
            return 0
        try:
            saved = json.loads(self.offset_path.read_text())
            line, source = int(saved["line"]), saved["source"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"offset file {self.offset_path} is unreadable: {exc}") from exc
        if source != self.path.name:
            raise SourceError(f"offset file {self.offset_path} belongs to {source!r}, "
                              f"not {self.path.name!r}")
        return max(0, line)

    def _save_offset(self) -> None:
        if self.offset_path is None:
            return
        temporary = self.offset_path.with_name(self.offset_path.name + ".tmp")
        temporary.write_text(json.dumps({"source": self.path.name, "line": self.offset}))
        os.replace(temporary, self.offset_path)


class JsonlRecorder:
    """Writes what a source delivers as JSONL that ``JsonlReplaySource`` replays byte for byte.

    Each line is flushed as it is written, so a recorder that is killed keeps everything
    up to the message it was writing.
    """

    def __init__(self, path: Path | str, *, append: bool = True) -> None:
        self.path = Path(path)
        self._file: TextIO = self.path.open("a" if append else "w", encoding="utf-8")
        self.written = 0

    def write(self, message: SourceMessage) -> None:
        self._file.write(json.dumps(encode_record(message), ensure_ascii=False,
                                    separators=(",", ":")) + "\n")
        self._file.flush()
        self.written += 1

    async def tee(self, source: Source) -> AsyncIterator[SourceMessage]:
        """Pass ``source``'s messages through, recording each (acking stays the caller's)."""
        async for message in source.messages():
            self.write(message)
            yield message

    async def record(self, source: Source, *, limit: int | None = None, ack: bool = True) -> int:
        """Record until ``source`` ends or ``limit`` messages; ack each once written."""
        count = 0
        if limit is not None and limit <= 0:
            return 0
        async with contextlib.aclosing(source.messages()) as messages:
            async for message in messages:
                self.write(message)
                if ack:
                    await message.ack()
                count += 1
                if limit is not None and count >= limit:
                    break
        return count

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def encode_record(message: SourceMessage) -> dict[str, Any]:
    """The JSONL record of ``message`` (payload as JSON only where that keeps its bytes)."""
    payload: Any
    try:
        decoded = json.loads(message.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict | list) and _compact_json(decoded) == message.payload:
        payload = decoded
    else:
        payload = base64.b64encode(message.payload).decode("ascii")
    at = message.received_at.astimezone(UTC).isoformat(timespec="microseconds")
    return {"topic": message.topic, "payload": payload, "at": at.replace("+00:00", "Z")}


__all__ = ["JsonlRecorder", "JsonlReplaySource", "MalformedLine", "encode_record"]
