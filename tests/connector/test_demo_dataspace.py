"""The demo's two-node act: its own checks (``expect``) must all hold on a real run."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from connector.demo_dataspace import ShiftedClock, dataspace_act


async def test_the_recycler_gets_the_data_then_is_refused_after_seven_days(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    ok = await dataspace_act(Console(file=out, width=200), "did:key:z6MkDemoBattery", tmp_path)
    text = out.getvalue()
    assert ok, text
    assert "unexpected" not in text
    assert "fetch again: 403 agreement-ended" in text
    assert (tmp_path / "oem" / "node.db").is_file() and (tmp_path / "recycler").is_dir()


def test_the_shifted_clock_moves_only_forward_by_what_it_is_told() -> None:
    clock = ShiftedClock()
    before = datetime.now(UTC)
    clock.advance(timedelta(days=8))
    assert clock() - before >= timedelta(days=8)
    assert clock() - before < timedelta(days=8, minutes=1)
