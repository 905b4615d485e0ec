"""The demo's two-node act: its own checks (``expect``) must all hold on a real run."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from connector.demo_dataspace import ShiftedClock, dataspace_act
from connector.store import open_store


async def test_the_act_plays_roles_refusal_expiry_receipt_and_revocation(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    ok = await dataspace_act(Console(file=out, width=200), "did:key:z6MkDemoBattery", tmp_path)
    text = out.getvalue()
    assert ok, text
    assert "unexpected" not in text
    # The outcome, read back from the nodes' stores after they stopped.
    oem = await open_store("sqlite:///" + str(tmp_path / "oem" / "node.db"),
                           data_dir=tmp_path / "oem")
    recycler = await open_store("sqlite:///" + str(tmp_path / "recycler" / "node.db"),
                                data_dir=tmp_path / "recycler")
    try:
        async with oem.read() as reader:
            agreements = await reader.list_agreements(limit=10)
            receipts = await reader.list_deletion_receipts()
            ended = [await reader.get_agreement_termination(a.id) for a in agreements]
            decisions = [e for e in await reader.list_audit(limit=2000)
                         if e.action == "negotiation.decided"]
        async with recycler.read() as reader:
            received = await reader.list_received_data()
            wallet = await reader.list_wallet_credentials()
    finally:
        await oem.close()
        await recycler.close()
    assert len(agreements) == 2  # the workshop got none, nor the recycler after revocation
    # Both agreements ended (one expired, one terminated on revocation): both data purged,
    # both receipts at the OEM.
    assert len(received) == 2
    assert all(r.purged_at is not None and r.data is None for r in received)
    assert sorted(r.agreement_id for r in receipts) == sorted(r.agreement_id for r in received)
    revoked = [t for t in ended if t is not None]
    assert len(revoked) == 1 and "was revoked" in revoked[0].reason
    assert [d.details["allowed"] for d in decisions].count(False) == 2
    assert sorted(c.types[0] for c in wallet) == ["DataExchangeGovernanceCredential",
                                                  "DismantlerCredential"]


def test_the_shifted_clock_moves_only_forward_by_what_it_is_told() -> None:
    clock = ShiftedClock()
    before = datetime.now(UTC)
    clock.advance(timedelta(days=8))
    assert clock() - before >= timedelta(days=8)
    assert clock() - before < timedelta(days=8, minutes=1)
