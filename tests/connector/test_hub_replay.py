"""JSONL replay and recording of hub streams: order, pace, bad lines, resume, byte fidelity."""

from __future__ import annotations

import base64
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import base58
import pytest

from connector.plugins.hub.sources.base import Source, SourceError, SourceMessage
from connector.plugins.hub.sources.replay import (
    JsonlRecorder,
    JsonlReplaySource,
    MalformedLine,
    encode_record,
)

HUB = "did:key:z6Mk" + base58.b58encode(b"\x01" * 33).decode()[:44]
T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def topic(position: int) -> str:
    return f"bpc/hubs/{HUB}/cells/{position}"


def line(position: int, seq: int, seconds: float) -> str:
    at = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return json.dumps({"topic": topic(position), "payload": {"seq": seq}, "at": at})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{text}\n" for text in lines))
    return path


async def drain(source: JsonlReplaySource, *, ack: bool = True) -> list[SourceMessage]:
    got = []
    async for message in source.messages():
        got.append(message)
        if ack:
            await message.ack()
    return got


def seqs(messages: list[SourceMessage]) -> list[int]:
    return [json.loads(message.payload)["seq"] for message in messages]


async def test_replays_in_file_order_as_fast_as_possible(tmp_path: Path) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    path = write(tmp_path / "rec.jsonl", [line(i % 3, i, i * 10) for i in range(20)])
    source = JsonlReplaySource(path, sleep=sleep)
    assert isinstance(source, Source)
    got = await drain(source)
    assert seqs(got) == list(range(20))
    assert slept == []  # speed 0: no pacing at all
    assert got[0].topic == topic(0)
    assert got[3].received_at == T0 + timedelta(seconds=30)  # the recorded arrival time
    assert got[0].redelivered is None
    assert source.lag.unacked == 0 and source.lag.acked_total == 20
    assert source.counters["delivered"] == 20


@pytest.mark.parametrize(("speed", "expected"), [(1.0, [1.5, 0.5, 3.0]), (2.0, [0.75, 0.25, 1.5])])
async def test_paces_at_the_recorded_gaps_divided_by_speed(
    tmp_path: Path, speed: float, expected: list[float],
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    # the 4th line is recorded *before* the 3rd (clock skew): no negative wait
    path = write(tmp_path / "rec.jsonl", [line(0, 0, 0), line(0, 1, 1.5), line(0, 2, 2.0),
                                          line(0, 3, 1.0), line(0, 4, 4.0)])
    got = await drain(JsonlReplaySource(path, speed=speed, sleep=sleep))
    assert seqs(got) == [0, 1, 2, 3, 4]
    assert slept == pytest.approx(expected)


def test_negative_speed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speed"):
        JsonlReplaySource(tmp_path / "x.jsonl", speed=-1)


async def test_malformed_lines_are_counted_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    good = [line(1, i, i) for i in range(4)]
    path = write(tmp_path / "rec.jsonl", [
        good[0],
        "{not json",                                                      # 2
        json.dumps([1, 2]),                                               # 3
        json.dumps({"payload": {}, "at": "2025-01-31T12:00:00Z"}),        # 4: no topic
        good[1],
        json.dumps({"topic": topic(1), "payload": "@@@", "at": "2025-01-31T12:00:00Z"}),  # 6
        json.dumps({"topic": topic(1), "payload": 7, "at": "2025-01-31T12:00:00Z"}),      # 7
        json.dumps({"topic": topic(1), "payload": {}, "at": "yesterday"}),                # 8
        json.dumps({"topic": topic(1), "payload": {}, "at": "2025-01-31T12:00:00"}),      # 9
        "",                                                               # 10: blank, ignored
        json.dumps({"topic": "bpc/hubs/not-a-did/batch", "payload": {},
                    "at": "2025-01-31T12:00:00Z"}),                       # 11: bad topic
        good[2],
        b"\xff\xfe".decode("latin-1"),                                    # 13
        good[3],
    ])
    with caplog.at_level(logging.WARNING):
        source = JsonlReplaySource(path)
        got = await drain(source)
    assert seqs(got) == [0, 1, 2, 3]
    assert source.counters["malformed"] == 8
    assert source.counters["rejected_topic"] == 1
    problems = {problem.line_no: problem.reason for problem in source.problems
                if isinstance(problem, MalformedLine)}
    assert sorted(problems) == [2, 3, 4, 6, 7, 8, 9, 13]
    assert "base64" in problems[6] and "UTC offset" in problems[9]
    assert "line 4" in caplog.text and "rec.jsonl" in caplog.text
    assert source.offset == 14  # everything finished, bad lines included


async def test_resumes_after_the_last_line_acknowledged_in_order(tmp_path: Path) -> None:
    path = write(tmp_path / "rec.jsonl", [line(0, i, i) for i in range(10)])
    offsets = tmp_path / "rec.offset"

    first = JsonlReplaySource(path, offset_path=offsets)
    got = [message async for message in _take(first, 6)]
    # acks out of order: 0, 1, 2, 4, 5 acked, 3 not → the watermark stops at line 3
    for message in (got[0], got[1], got[2], got[4], got[5]):
        await message.ack()
    assert first.offset == 3
    assert json.loads(offsets.read_text()) == {"source": "rec.jsonl", "line": 3}
    assert first.lag.unacked == 1

    second = JsonlReplaySource(path, offset_path=offsets)
    resumed = await drain(second)
    assert seqs(resumed) == [3, 4, 5, 6, 7, 8, 9]  # 4 and 5 again: at-least-once
    assert second.counters["skipped"] == 3
    assert second.offset == 10

    third = JsonlReplaySource(path, offset_path=offsets)
    assert await drain(third) == []


async def test_an_offset_file_of_another_recording_is_refused(tmp_path: Path) -> None:
    offsets = tmp_path / "rec.offset"
    offsets.write_text(json.dumps({"source": "other.jsonl", "line": 3}))
    with pytest.raises(SourceError, match=r"other\.jsonl"):
        JsonlReplaySource(write(tmp_path / "rec.jsonl", [line(0, 0, 0)]), offset_path=offsets)
    offsets.write_text("garbage")
    with pytest.raises(SourceError, match="unreadable"):
        JsonlReplaySource(tmp_path / "rec.jsonl", offset_path=offsets)


async def test_close_stops_the_replay(tmp_path: Path) -> None:
    source = JsonlReplaySource(write(tmp_path / "rec.jsonl", [line(0, i, i) for i in range(5)]))
    got = []
    async for message in source.messages():
        got.append(message)
        if len(got) == 2:
            await source.close()
    assert len(got) == 2


async def test_recording_replays_the_same_bytes(tmp_path: Path) -> None:
    compact = b'{"seq":1,"t":21.5}'
    spaced = b'{"seq": 2}'  # JSON, but not in compact form: kept as base64 to keep its bytes
    binary = os.urandom(40)
    array = b"[1,2,3]"
    originals = [compact, spaced, binary, array]
    messages = [SourceMessage(topic=topic(i), payload=payload,
                              received_at=T0 + timedelta(milliseconds=i))
                for i, payload in enumerate(originals)]
    assert encode_record(messages[0])["payload"] == {"seq": 1, "t": 21.5}
    assert encode_record(messages[1])["payload"] == base64.b64encode(spaced).decode()
    assert encode_record(messages[0])["at"] == "2025-01-31T12:00:00.000000Z"

    path = tmp_path / "recorded.jsonl"
    with JsonlRecorder(path, append=False) as recorder:
        for message in messages:
            recorder.write(message)
    replayed = await drain(JsonlReplaySource(path))
    assert [m.payload for m in replayed] == originals
    assert [m.topic for m in replayed] == [m.topic for m in messages]
    assert [m.received_at for m in replayed] == [m.received_at for m in messages]


async def test_recorder_records_a_source_and_acks_it(tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", [line(0, i, i) for i in range(5)])
    source = JsonlReplaySource(path)
    with JsonlRecorder(tmp_path / "out.jsonl") as recorder:
        assert await recorder.record(source, limit=3) == 3
    assert source.lag.acked_total == 3
    again = await drain(JsonlReplaySource(tmp_path / "out.jsonl"))
    assert seqs(again) == [0, 1, 2]

    teed = []
    with JsonlRecorder(tmp_path / "tee.jsonl", append=False) as recorder:
        async for message in recorder.tee(JsonlReplaySource(path)):
            teed.append(message)
            await message.ack()
    assert len(teed) == 5 and recorder.written == 5


async def _take(source: JsonlReplaySource, count: int):
    async for message in source.messages():
        yield message
        count -= 1
        if count == 0:
            return
