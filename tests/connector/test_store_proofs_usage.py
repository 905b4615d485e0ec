"""Migration 5's tables (wallet, trust registry, agreement evidence and usage, received data,
deletion receipts) on SQLite and PostgreSQL: round trips, filters and the append-only rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.store import (
    AgreementEvidence,
    AgreementUsage,
    ConcurrentUpdate,
    DeletionReceipt,
    ReceivedData,
    Store,
    TrustRegistryRecord,
    WalletCredential,
)
from tests.connector.test_store import T0, agreement, negotiation, open_new, store  # noqa: F401


async def _with_agreement(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        await tx.put_negotiation(negotiation())
        await tx.add_agreement(agreement())


async def test_wallet_credentials_round_trip_and_removed_ones_are_hidden(store: Store) -> None:  # noqa: F811
    held = WalletCredential(id="urn:uuid:vc1", types=("DismantlerCredential",),
                            issuer="did:web:certifier.example",
                            document={"type": ["VerifiableCredential", "DismantlerCredential"]},
                            valid_until=T0 + timedelta(days=365))
    async with store.transaction() as tx:
        stored = await tx.put_wallet_credential(held)
        await tx.put_wallet_credential(WalletCredential(
            id="urn:uuid:vc2", types=("MembershipCredential",), issuer="did:web:a.example",
            document={}, removed_at=T0))
    async with store.read() as reader:
        assert await reader.get_wallet_credential("urn:uuid:vc1") == stored
        live = await reader.list_wallet_credentials()
        everything = await reader.list_wallet_credentials(include_removed=True)
    assert [c.id for c in live] == ["urn:uuid:vc1"]
    assert live[0].types == ("DismantlerCredential",)
    assert [c.id for c in everything] == ["urn:uuid:vc1", "urn:uuid:vc2"]


async def test_trust_registry_updates_check_the_version(store: Store) -> None:  # noqa: F811
    async with store.transaction() as tx:
        first = await tx.put_trust_registry(TrustRegistryRecord(name="default",
                                                                document={"entries": []}))
        await tx.put_trust_registry(TrustRegistryRecord(name="default", document={"a": 1},
                                                        version=first.version))
    with pytest.raises(ConcurrentUpdate):
        async with store.transaction() as tx:
            await tx.put_trust_registry(first)
    async with store.read() as reader:
        record = await reader.get_trust_registry()
    assert record is not None and record.document == {"a": 1}


async def test_evidence_and_usage_belong_to_known_agreements(store: Store) -> None:  # noqa: F811
    await _with_agreement(store)
    evidence = AgreementEvidence(agreement_id="agreement-1", consumer_did="did:web:r.example",
                                 evidence={"credentials": [{"id": "urn:uuid:vc1",
                                                            "digest": "abc"}]})
    async with store.transaction() as tx:
        await tx.put_agreement_evidence(evidence)
        usage = await tx.put_agreement_usage(AgreementUsage(agreement_id="agreement-1",
                                                            access_count=1, last_access_at=T0))
    async with store.read() as reader:
        assert (await reader.get_agreement_evidence("agreement-1")).evidence == evidence.evidence
        assert [e.agreement_id for e in await reader.list_agreement_evidence()] == ["agreement-1"]
        assert await reader.get_agreement_usage("agreement-1") == usage
        assert await reader.get_agreement_usage("agreement-2") is None
    with pytest.raises(Exception):  # noqa: B017 - the foreign key, whichever error type
        async with store.transaction() as tx:
            await tx.put_agreement_usage(AgreementUsage(agreement_id="nope", access_count=1))


async def test_received_data_filters_by_due_time_and_unsent_receipts(store: Store) -> None:  # noqa: F811
    def row(tid: str, purge_in: int | None, **changes: object) -> ReceivedData:
        fields: dict[str, object] = dict(
            transfer_id=tid, agreement_id="agreement-1", provider_did="did:web:oem.example",
            asset_id="asset-1", data={"x": 1}, received_at=T0,
            purge_at=None if purge_in is None else T0 + timedelta(days=purge_in))
        fields.update(changes)
        return ReceivedData(**fields)  # type: ignore[arg-type]

    async with store.transaction() as tx:
        await tx.put_received_data(row("t1", 7))
        await tx.put_received_data(row("t2", 1))
        await tx.put_received_data(row("t3", None))
        await tx.put_received_data(row("t4", 1, data=None, purged_at=T0, receipt={"id": "r"}))
    async with store.read() as reader:
        due = await reader.list_received_data(due_by=T0 + timedelta(days=2))
        unsent = await reader.list_received_data(receipt_unsent=True)
        of_agreement = await reader.list_received_data(agreement_id="agreement-1", after="t1")
    assert [r.transfer_id for r in due] == ["t2"]
    assert [r.transfer_id for r in unsent] == ["t4"]
    assert [r.transfer_id for r in of_agreement] == ["t2", "t3", "t4"]


async def test_deletion_receipts_are_recorded_once_and_never_changed(store: Store) -> None:  # noqa: F811
    receipt = DeletionReceipt(id="urn:uuid:r1", agreement_id="agreement-1",
                              consumer_did="did:web:r.example", receipt={"type": "x"},
                              received_at=T0)
    async with store.transaction() as tx:
        assert await tx.add_deletion_receipt(receipt) is True
        assert await tx.add_deletion_receipt(receipt) is False
    async with store.read() as reader:
        assert await reader.list_deletion_receipts(agreement_id="agreement-1") == [receipt]
        assert await reader.list_deletion_receipts(agreement_id="other") == []
