"""The demo's hub act on a real node: its own checks hold, and the pack's passport in the
node's store holds the batch, tamper-marker and replacement credentials afterwards."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from connector.demo_hub import hub_act
from connector.store import open_store


async def test_the_hub_act_streams_proves_locks_and_clears(tmp_path: Path) -> None:
    out = io.StringIO()
    assert await hub_act(Console(file=out, width=200), tmp_path), out.getvalue()
    store = await open_store("sqlite:///" + str(tmp_path / "oem-hub" / "node.db"),
                             data_dir=tmp_path / "oem-hub")
    try:
        async with store.read() as reader:
            (cell,) = [c for c in await reader.list_hub_cells(limit=1000) if c.position == 11]
            batteries = await reader.list_batteries()
            passport = await reader.passport(batteries[0].did)
    finally:
        await store.close()
    kinds = {t for record in passport for t in record.types}
    assert {"CellEventBatchCredential", "CellConfigurationCredential",
            "CellReplacementCredential"} <= kinds
    assert cell.configuration == "verified" and cell.observed_uid is None
