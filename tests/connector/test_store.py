"""The store suite: every test runs against SQLite and PostgreSQL (``store_url`` fixture)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest

from connector.store import (
    AgreementRecord,
    AgreementTermination,
    AlreadyExists,
    AssetRecord,
    BatteryRecord,
    ConcurrentUpdate,
    Conflict,
    CredentialRecord,
    InvalidRecord,
    MigrationError,
    NegotiationRecord,
    NotFound,
    OfferRecord,
    OutboxMessage,
    PolicyRecord,
    ProcessKind,
    Role,
    Store,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    TokenRecord,
    TransferRecord,
    open_store,
    schema_postgres,
    schema_sqlite,
    sqlite_path,
)
from connector.store.migrations import Migration, pending
from connector.store.sqlite import split_script
from connector.store.tables import TABLES

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJkaWQ6a2V5OnoxIn0.c2lnbmF0dXJl"

OpenStore = Callable[..., Awaitable[Store]]


@pytest.fixture
async def open_new(store_url: str, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens another ``Store`` on the same database (a second replica, a restarted node)."""
    opened: list[Store] = []

    async def open_one(**options: Any) -> Store:
        store = await open_store(store_url, data_dir=tmp_path, **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_new: OpenStore) -> Store:
    return await open_new()


# --- record builders ------------------------------------------------------------------------


def battery(did: str = "did:key:zBattery1", **changes: Any) -> BatteryRecord:
    fields: dict[str, Any] = dict(
        did=did, key_id="key-1", properties={"chemistry": "NMC811", "capacityKWh": 77.4,
                                             "cells": 96, "notes": "Zelle ✓", "extra": None})
    fields.update(changes)
    return BatteryRecord(**fields)


def credential(position: int, previous: str | None, *, did: str = "did:key:zBattery1",
               secured: dict[str, Any] | str | None = None) -> CredentialRecord:
    if secured is None:
        secured = {"@context": ["https://www.w3.org/ns/credentials/v2"],
                   "type": ["VerifiableCredential", "ManufacturingCredential"],
                   "credentialSubject": {"id": did, "previousCredential": previous,
                                         "position": position}}
    return CredentialRecord(battery_did=did, position=position, digest=f"uEiD{did[-4:]}{position}",
                            previous_digest=previous, issuer="did:web:cellmaker.example",
                            types=("VerifiableCredential", "ManufacturingCredential"),
                            credential=secured)


def negotiation(nid: str = "urn:uuid:n1", **changes: Any) -> NegotiationRecord:
    fields: dict[str, Any] = dict(
        id=nid, role=Role.PROVIDER, state="REQUESTED", counterparty_did="did:web:recycler.example",
        counterparty_address="https://recycler.example/dsp",
        # One process per (role, peer, peer PID): each record gets its own peer PID.
        counterparty_pid="urn:uuid:c1" if nid == "urn:uuid:n1" else f"{nid}-peer",
        asset_id="asset-dismantling", offer_id="offer-1",
        offer={"@id": "offer-1", "permission": [{"action": "use"}]})
    fields.update(changes)
    return NegotiationRecord(**fields)


def agreement(aid: str = "agreement-1", **changes: Any) -> AgreementRecord:
    fields: dict[str, Any] = dict(
        id=aid, asset_id="asset-dismantling", provider_did="did:web:cellmaker.example",
        consumer_did="did:web:recycler.example", negotiation_id="urn:uuid:n1",
        agreement={"@id": aid, "@type": "Agreement", "permission": [{"action": "use"}]},
        signed_at=T0, not_after=T0 + timedelta(days=30))
    fields.update(changes)
    return AgreementRecord(**fields)


def transfer(tid: str = "urn:uuid:t1", **changes: Any) -> TransferRecord:
    fields: dict[str, Any] = dict(
        id=tid, role=Role.PROVIDER, state="REQUESTED", agreement_id="agreement-1",
        asset_id="asset-dismantling", counterparty_did="did:web:recycler.example",
        counterparty_address="https://recycler.example/dsp", format="HttpData-PULL")
    fields.update(changes)
    return TransferRecord(**fields)


def message(process_id: str = "urn:uuid:n1", *, at: datetime = T0, n: int = 0) -> OutboxMessage:
    return OutboxMessage(process_id=process_id, kind="ContractAgreementMessage",
                         target_url="https://recycler.example/dsp/negotiations/c1/agreement",
                         body={"@type": "ContractAgreementMessage", "n": n}, next_attempt_at=at)


async def seed_agreement(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_agreement(agreement())


def raw_url(store_url: str) -> tuple[str, str | None]:
    """The server URL without our ``schema`` parameter, and the schema."""
    parts = urlsplit(store_url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    return urlunsplit(parts._replace(query="")), schema


async def raw_execute(store: Store, store_url: str, sql: str) -> None:
    """Run ``sql`` on the database directly, past the store (to test what the schema allows)."""
    if store.backend == "sqlite":
        def run() -> None:
            conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
            try:
                conn.execute(sql)
                conn.commit()
            finally:
                conn.close()
        await asyncio.to_thread(run)
        return
    import asyncpg

    url, schema = raw_url(store_url)
    conn = await asyncpg.connect(url, server_settings={"search_path": schema or "public"})
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def raw_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (sqlite3.Error, asyncpg.PostgresError)


# --- the mapping itself ---------------------------------------------------------------------


def test_every_record_field_has_a_column() -> None:
    for table in TABLES:
        assert {c.name for c in table.columns} == table.field_names(), table.name


# --- round trips ----------------------------------------------------------------------------


async def test_every_record_kind_round_trips(store: Store) -> None:
    cell = battery("did:key:zCell0001", kind="cell", parent_did="did:key:zBattery1",
                   properties={})
    first = credential(0, None)
    second = credential(1, first.digest, secured=JWT)
    third = credential(2, second.digest)
    policy = PolicyRecord(id="policy-recyclers",
                          policy={"permission": [{"action": "use", "constraint": [
                              {"leftOperand": "cx-policy:Membership", "operator": "eq",
                               "rightOperand": "active"}]}]})
    asset = AssetRecord(id="asset-dismantling", access_level="dismantling",
                        battery_did="did:key:zBattery1", properties={"title": "Disassembly"})
    offer = OfferRecord(id="offer-1", asset_id=asset.id, policy_id=policy.id,
                        offer={"@id": "offer-1", "permission": [{"action": "use"}]})
    terminated = negotiation(
        "urn:uuid:n2", role=Role.CONSUMER, state="TERMINATED", reason_kind="policy-failed",
        failed_constraint="cx-policy:FrameworkAgreement", reason_detail="no framework credential")
    token = TokenRecord(jti="jti-1", agreement_id="agreement-1", consumer_did="did:web:r.example",
                        asset_id=asset.id, expires_at=T0 + timedelta(minutes=5),
                        transfer_id="urn:uuid:t1")
    outbound = message()
    async with store.transaction() as tx:
        stored: list[Any] = [
            await tx.put_battery(battery()), await tx.put_battery(cell),
            await tx.add_credential(first), await tx.add_credential(second),
            await tx.add_credential(third),
            await tx.put_policy(policy), await tx.put_asset(asset), await tx.put_offer(offer),
            await tx.put_negotiation(negotiation()), await tx.put_negotiation(terminated),
            await tx.add_agreement(agreement()),
            await tx.put_transfer(transfer(data_address={
                "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                "endpoint": "https://cellmaker.example/data",
                "endpointProperties": [{"name": "authorization", "value": "t"}]})),
            await tx.put_token(token), await tx.enqueue(outbound),
        ]
        event = await tx.append_audit(actor="did:web:r.example", action="negotiation.requested",
                                      subject_id="urn:uuid:n1", details={"offer": "offer-1"})
    assert all(getattr(r, "version", 1) == 1 for r in stored)

    async with store.read() as r:
        loaded = [
            await r.get_battery("did:key:zBattery1"), await r.get_battery(cell.did),
            await r.get_credential(first.digest), await r.get_credential(second.digest),
            await r.get_credential(third.digest),
            await r.get_policy(policy.id), await r.get_asset(asset.id), await r.get_offer(offer.id),
            await r.get_negotiation("urn:uuid:n1"), await r.get_negotiation("urn:uuid:n2"),
            await r.get_agreement("agreement-1"), await r.get_transfer("urn:uuid:t1"),
            await r.get_token("jti-1"), await r.get_outbox(outbound.id),
        ]
        assert loaded == stored
        assert isinstance(loaded[3].credential, str) and loaded[3].credential == JWT
        assert loaded[8].role is Role.PROVIDER
        assert loaded[8].created_at.tzinfo is not None
        assert await r.passport("did:key:zBattery1") == [first, second, third]
        assert await r.passport("did:key:zBattery1", from_position=1, limit=1) == [second]
        assert await r.passport_head("did:key:zBattery1") == third
        assert await r.list_audit() == [event]
        assert event.seq > 0 and event.details == {"offer": "offer-1"}

        assert await r.list_batteries(parent_did="did:key:zBattery1") == [stored[1]]
        assert await r.list_assets(access_level="dismantling") == [stored[6]]
        assert await r.list_assets(access_level="public") == []
        assert await r.list_offers(asset_id=asset.id) == [stored[7]]
        assert await r.list_policies() == [stored[5]]
        assert await r.list_negotiations(role=Role.CONSUMER) == [stored[9]]
        assert await r.list_negotiations(state="REQUESTED",
                                         counterparty_pid="urn:uuid:c1") == [stored[8]]
        assert await r.list_agreements(consumer_did="did:web:recycler.example") == [stored[10]]
        assert await r.list_transfers(agreement_id="agreement-1") == [stored[11]]
        assert await r.list_tokens(agreement_id="agreement-1") == [stored[12]]
        assert await r.list_outbox(process_id="urn:uuid:n1", pending_only=True) == [stored[13]]


async def test_lists_page_by_key(store: Store) -> None:
    ids = [f"asset-{i:02d}" for i in range(25)]
    async with store.transaction() as tx:
        for asset_id in reversed(ids):
            await tx.put_asset(AssetRecord(id=asset_id, access_level="public"))
    seen: list[str] = []
    after: str | None = None
    async with store.read() as r:
        while page := await r.list_assets(after=after, limit=10):
            seen += [a.id for a in page]
            after = page[-1].id
    assert seen == ids


async def test_updates_bump_the_version_and_keep_created_at(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.put_negotiation(negotiation())
    async with store.transaction() as tx:
        current = await tx.get_negotiation(first.id, for_update=True)
        assert current == first
        second = await tx.put_negotiation(dataclasses.replace(current, state="AGREED",
                                                              agreement_id="agreement-1"))
    assert (second.version, second.created_at) == (2, first.created_at)
    assert second.updated_at >= first.updated_at
    async with store.read() as r:
        assert await r.get_negotiation(first.id) == second


# --- transactions ---------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_an_exception_rolls_the_whole_transaction_back(store: Store) -> None:
    async with store.transaction() as tx:
        original = await tx.put_negotiation(negotiation())
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.put_negotiation(dataclasses.replace(original, state="TERMINATED"))
            await tx.put_negotiation(negotiation("urn:uuid:other"))
            await tx.put_battery(battery())
            await tx.append_audit(actor="a", action="x", subject_id=original.id)
            await tx.enqueue(message())
            assert await tx.record_inbound(original.id, "m1")
            assert (await tx.get_negotiation(original.id)).state == "TERMINATED"  # type: ignore[union-attr]
            raise Boom
    async with store.read() as r:
        assert await r.get_negotiation(original.id) == original
        assert await r.get_negotiation("urn:uuid:other") is None
        assert await r.get_battery(battery().did) is None
        assert await r.list_audit() == []
        assert await r.list_outbox() == []
    async with store.transaction() as tx:
        assert await tx.record_inbound(original.id, "m1"), "a rolled-back receipt is no receipt"


async def test_a_stale_version_raises_concurrent_update(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.put_negotiation(negotiation())
    async with store.transaction() as tx:
        await tx.put_negotiation(dataclasses.replace(first, state="OFFERED"))
    async with store.transaction() as tx:
        with pytest.raises(ConcurrentUpdate, match="version 2, not 1"):
            await tx.put_negotiation(dataclasses.replace(first, state="AGREED"))
        with pytest.raises(AlreadyExists):
            await tx.put_negotiation(negotiation())  # version 0: an insert of a taken id
        with pytest.raises(NotFound):
            await tx.put_negotiation(negotiation("urn:uuid:missing", version=3))
        # Conflicts found by the store leave the transaction usable (PostgreSQL included).
        await tx.put_battery(battery())
    async with store.read() as r:
        assert (await r.get_negotiation(first.id)).state == "OFFERED"  # type: ignore[union-attr]
        assert await r.get_battery(battery().did) is not None
    assert issubclass(ConcurrentUpdate, Conflict) and issubclass(AlreadyExists, Conflict)


async def test_for_update_serialises_replicas(open_new: OpenStore) -> None:
    """Two replicas (two Store instances) increment one counter 30 times: no update is lost."""
    a, b = await open_new(), await open_new()
    async with a.transaction() as tx:
        await tx.put_negotiation(negotiation(offer={"count": 0}))

    async def increment(store: Store) -> None:
        async with store.transaction() as tx:
            current = await tx.get_negotiation("urn:uuid:n1", for_update=True)
            assert current is not None and current.offer is not None
            await asyncio.sleep(0)  # let the other replicas run into the lock
            await tx.put_negotiation(dataclasses.replace(
                current, offer={"count": current.offer["count"] + 1}))

    await asyncio.gather(*(increment(a if i % 2 else b) for i in range(30)))
    async with a.read() as r:
        final = await r.get_negotiation("urn:uuid:n1")
    assert final is not None and final.offer == {"count": 30} and final.version == 31


async def test_on_commit_runs_only_after_a_commit(store: Store) -> None:
    calls: list[str] = []
    async with store.transaction() as tx:
        tx.on_commit(lambda: calls.append("committed"))
        await tx.put_battery(battery())
        assert calls == []
    assert calls == ["committed"]
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            tx.on_commit(lambda: calls.append("rolled back"))
            raise Boom
    assert calls == ["committed"]


async def test_misuse_of_sessions_is_refused(store: Store) -> None:
    async with store.read() as r:
        with pytest.raises(StoreError, match="read session"):
            await r.put_battery(battery())  # type: ignore[attr-defined]
        with pytest.raises(StoreError, match="for_update"):
            await r.get_negotiation("urn:uuid:n1", for_update=True)
    async with store.transaction() as tx:
        with pytest.raises(StoreError, match="already open"):
            async with store.transaction():
                pass
        with pytest.raises(StoreError, match="already open"):
            await store.lease_outbox("w", lease_seconds=1)
    with pytest.raises(StoreError, match="ended"):
        await tx.get_battery(battery().did)


# --- audit log and passports ----------------------------------------------------------------


async def test_the_audit_log_is_ordered_and_append_only(store: Store, store_url: str) -> None:
    for i in range(3):
        async with store.transaction() as tx:
            await tx.append_audit(actor="node", action=f"step-{i}", subject_id="p1")
    async with store.transaction() as tx:
        for i in range(3, 6):
            await tx.append_audit(actor="node", action=f"step-{i}",
                                  subject_id="p1" if i % 2 else "p2", details={"i": i}, at=T0)
    async with store.read() as r:
        log = await r.list_audit()
        assert [e.action for e in log] == [f"step-{i}" for i in range(6)]
        assert [e.seq for e in log] == sorted(e.seq for e in log)
        assert len({e.seq for e in log}) == 6
        assert [e.action for e in await r.list_audit(subject_id="p2")] == ["step-4"]
        assert await r.list_audit(after_seq=log[3].seq, limit=1) == [log[4]]
        assert log[5].at == T0
    for sql in ("UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(raw_errors(), match="append-only"):
            await raw_execute(store, store_url, sql)
    async with store.read() as r:
        assert await r.list_audit() == log


async def test_passport_entries_link_and_never_change(store: Store, store_url: str) -> None:
    first = credential(0, None)
    await seed_agreement(store)
    async with store.transaction() as tx:
        with pytest.raises(InvalidRecord, match="unknown battery"):
            await tx.add_credential(first)
        await tx.put_battery(battery())
        await tx.add_credential(first)
        with pytest.raises(InvalidRecord, match="is not the digest"):
            await tx.add_credential(credential(1, "uEiDwrong"))
        with pytest.raises(InvalidRecord, match="no entry at position 1"):
            await tx.add_credential(credential(2, first.digest))
        with pytest.raises(AlreadyExists):
            await tx.add_credential(dataclasses.replace(first, position=1,
                                                        previous_digest=first.digest))
        await tx.add_credential(credential(1, first.digest))
    rival = dataclasses.replace(credential(1, first.digest), digest="uEiDrival")
    async with store.transaction() as tx:
        with pytest.raises(ConcurrentUpdate, match="position 1"):
            await tx.add_credential(rival)
    for sql in ("UPDATE credentials SET credential = '{}'", "DELETE FROM credentials",
                "DELETE FROM agreements"):
        with pytest.raises(raw_errors(), match="append-only"):
            await raw_execute(store, store_url, sql)
    async with store.read() as r:
        assert [c.position for c in await r.passport(first.battery_did)] == [0, 1]


async def test_concurrent_appends_take_each_position_once(open_new: OpenStore) -> None:
    a, b = await open_new(), await open_new()
    async with a.transaction() as tx:
        await tx.put_battery(battery())
        await tx.add_credential(credential(0, None))

    async def append(store: Store, name: str) -> str:
        entry = dataclasses.replace(credential(1, credential(0, None).digest),
                                    digest=f"uEiD{name}")
        try:
            async with store.transaction() as tx:
                await tx.add_credential(entry)
        except ConcurrentUpdate:
            return "lost"
        return "won"

    results = await asyncio.gather(*(append(s, f"r{i}") for i, s in enumerate([a, b] * 4)))
    assert sorted(results) == ["lost"] * 7 + ["won"]


async def test_revoking_an_agreements_tokens(store: Store) -> None:
    await seed_agreement(store)
    async with store.transaction() as tx:
        for jti in ("j1", "j2"):
            await tx.put_token(TokenRecord(jti=jti, agreement_id="agreement-1",
                                           consumer_did="did:web:r", asset_id="a",
                                           expires_at=T0))
        assert await tx.revoke_tokens("agreement-1") == 2
        assert await tx.revoke_tokens("agreement-1") == 0
    async with store.read() as r:
        tokens = await r.list_tokens(agreement_id="agreement-1")
    assert [(t.revoked, t.version) for t in tokens] == [(True, 2), (True, 2)]


# --- outbox ---------------------------------------------------------------------------------


async def test_two_leasers_never_get_the_same_message(open_new: OpenStore) -> None:
    a, b = await open_new(), await open_new()
    async with a.transaction() as tx:
        ids = {(await tx.enqueue(message(n=i))).id for i in range(60)}

    async def lease(store: Store, owner: str) -> list[str]:
        got = await store.lease_outbox(owner, lease_seconds=60, limit=4, now=T0)
        assert all(m.lease_owner == owner for m in got)
        return [m.id for m in got]

    async def worker(store: Store, owner: str) -> list[str]:
        """Lease until nothing is left for this worker (others may hold the rest)."""
        got: list[str] = []
        while batch := await lease(store, owner):
            got += batch
        return got

    batches = await asyncio.gather(*(worker(s, f"w{i}") for i, s in enumerate([a, b] * 5)))
    leased = [message_id for batch in batches for message_id in batch]
    assert len(leased) == len(set(leased)) == 60
    assert set(leased) == ids
    assert await a.lease_outbox("late", lease_seconds=60, now=T0 + timedelta(seconds=59)) == []


async def test_leases_follow_due_order_and_expire(store: Store, open_new: OpenStore) -> None:
    other = await open_new()
    async with store.transaction() as tx:
        later = await tx.enqueue(message(at=T0 + timedelta(seconds=5), n=1))
        due = await tx.enqueue(message(at=T0, n=0))
    assert await store.lease_outbox("a", lease_seconds=30, now=T0 - timedelta(seconds=1)) == []
    first = await store.lease_outbox("a", lease_seconds=30, now=T0 + timedelta(seconds=5))
    assert [m.id for m in first] == [due.id, later.id]
    assert first[0].lease_until == T0 + timedelta(seconds=35)
    assert await other.lease_outbox("b", lease_seconds=30, now=T0 + timedelta(seconds=20)) == []
    taken = await other.lease_outbox("b", lease_seconds=30, now=T0 + timedelta(seconds=35),
                                     limit=1)
    assert [m.id for m in taken] == [due.id] and taken[0].lease_owner == "b"
    # "a" lost the lease: whatever it does now must not count.
    assert not await store.mark_delivered(due.id, "a", now=T0 + timedelta(seconds=36))
    assert not await store.reschedule(due.id, "a", next_attempt_at=T0, attempts=1)
    assert await other.mark_delivered(due.id, "b", now=T0 + timedelta(seconds=36))
    assert not await other.mark_delivered(due.id, "b"), "delivered once"
    # "a" still holds ``later`` (its lease ran out but nobody took it): it may settle it.
    assert await store.mark_delivered(later.id, "a", now=T0 + timedelta(seconds=40))
    assert await store.lease_outbox("c", lease_seconds=30, now=T0 + timedelta(days=1)) == []
    async with store.read() as r:
        assert (await r.get_outbox(due.id)).delivered_at == T0 + timedelta(seconds=36)  # type: ignore[union-attr]
        assert await r.list_outbox(pending_only=True) == []


async def test_reschedule_and_give_up(store: Store) -> None:
    async with store.transaction() as tx:
        queued = await tx.enqueue(message())
    [leased] = await store.lease_outbox("w", lease_seconds=30, now=T0)
    assert await store.reschedule(queued.id, "w", next_attempt_at=T0 + timedelta(seconds=60),
                                  attempts=1, error="503 from counterparty")
    assert await store.lease_outbox("w", lease_seconds=30, now=T0 + timedelta(seconds=59)) == []
    [again] = await store.lease_outbox("w2", lease_seconds=30, now=T0 + timedelta(seconds=60))
    assert (again.attempts, again.last_error, again.body) == (1, "503 from counterparty",
                                                              leased.body)
    assert await store.give_up(queued.id, "w2", error="gave up after 1 attempt",
                               now=T0 + timedelta(seconds=61))
    assert await store.lease_outbox("w", lease_seconds=30, now=T0 + timedelta(days=1)) == []
    async with store.read() as r:
        final = await r.get_outbox(queued.id)
    assert final is not None and final.failed_at == T0 + timedelta(seconds=61)
    assert final.delivered_at is None and final.lease_owner is None


# --- process leases -------------------------------------------------------------------------


async def test_process_leases(store: Store, open_new: OpenStore) -> None:
    other = await open_new()
    async with store.transaction() as tx:
        for i in range(6):
            await tx.put_negotiation(negotiation(f"urn:uuid:n{i}"))
        await tx.put_negotiation(negotiation("urn:uuid:done", state="FINALIZED"))
    requested = {f"urn:uuid:n{i}" for i in range(6)}
    got = await asyncio.gather(
        store.lease_processes(ProcessKind.NEGOTIATION, "a", states={"REQUESTED"},
                              lease_seconds=30, limit=4, now=T0),
        other.lease_processes(ProcessKind.NEGOTIATION, "b", states={"REQUESTED"},
                              lease_seconds=30, limit=4, now=T0))
    assert not set(got[0]) & set(got[1])
    assert set(got[0]) | set(got[1]) == requested
    mine = got[0][0] if got[0] else got[1][0]
    owner = "a" if got[0] else "b"
    assert not await store.release_process(ProcessKind.NEGOTIATION, mine, "intruder")
    assert await store.release_process(ProcessKind.NEGOTIATION, mine, owner,
                                       not_before=T0 + timedelta(seconds=10))
    lease = store.lease_processes
    assert await lease(ProcessKind.NEGOTIATION, "c", states=["REQUESTED"], lease_seconds=5,
                       now=T0 + timedelta(seconds=9)) == []
    assert await lease(ProcessKind.NEGOTIATION, "c", states=["REQUESTED"], lease_seconds=100,
                       now=T0 + timedelta(seconds=10)) == [mine]
    expired = await lease(ProcessKind.NEGOTIATION, "d", states=["REQUESTED", "FINALIZED"],
                          lease_seconds=5, limit=100, now=T0 + timedelta(seconds=31))
    assert set(expired) == (requested - {mine}) | {"urn:uuid:done"}
    async with store.transaction() as tx:  # leases do not touch the record's version
        leased = await tx.get_negotiation(mine, for_update=True)
        assert leased is not None and leased.version == 1
        await tx.put_negotiation(dataclasses.replace(leased, state="AGREED"))
    await seed_agreement(store)
    async with store.transaction() as tx:
        await tx.put_transfer(transfer())
    assert await lease(ProcessKind.TRANSFER, "t", states=["REQUESTED"], lease_seconds=5,
                       now=T0) == ["urn:uuid:t1"]


# --- inbound idempotency --------------------------------------------------------------------


async def test_a_repeated_inbound_message_is_detected(store: Store, open_new: OpenStore) -> None:
    async with store.transaction() as tx:
        assert await tx.record_inbound("urn:uuid:n1", "ContractRequestMessage:1")
    async with store.transaction() as tx:
        assert not await tx.record_inbound("urn:uuid:n1", "ContractRequestMessage:1")
        assert await tx.record_inbound("urn:uuid:n2", "ContractRequestMessage:1")
    other = await open_new()

    async def receive(s: Store) -> bool:
        async with s.transaction() as tx:
            return await tx.record_inbound("urn:uuid:n3", "same")

    assert sorted(await asyncio.gather(*(receive(s) for s in [store, other] * 3))) == \
        [False] * 5 + [True]


# --- migration 2: data plane --------------------------------------------------------------


async def test_one_process_per_peer_pid(store: Store) -> None:
    """Two replicas racing on the same initial request must not both create a process."""
    async with store.transaction() as tx:
        await tx.put_negotiation(negotiation("urn:uuid:n1"))
        await tx.add_agreement(agreement())
        await tx.put_transfer(transfer("urn:uuid:t1", counterparty_pid="urn:uuid:peer"))
    async with store.transaction() as tx:
        with pytest.raises(AlreadyExists):
            await tx.put_negotiation(negotiation("urn:uuid:n2", counterparty_pid="urn:uuid:c1"))
    async with store.transaction() as tx:
        with pytest.raises(AlreadyExists):
            await tx.put_transfer(transfer("urn:uuid:t2", counterparty_pid="urn:uuid:peer"))
    async with store.transaction() as tx:  # another peer, or the other role, may reuse it
        await tx.put_negotiation(negotiation("urn:uuid:n3", counterparty_pid="urn:uuid:c1",
                                             counterparty_did="did:web:oem.example"))
        await tx.put_negotiation(negotiation("urn:uuid:n4", counterparty_pid="urn:uuid:c1",
                                             role=Role.CONSUMER))
        await tx.put_negotiation(negotiation("urn:uuid:n5", counterparty_pid=None))
        await tx.put_negotiation(negotiation("urn:uuid:n6", counterparty_pid=None))
    async with store.read() as r:
        assert [n.id for n in await r.list_negotiations()] == [
            "urn:uuid:n1", "urn:uuid:n3", "urn:uuid:n4", "urn:uuid:n5", "urn:uuid:n6"]


async def test_a_negotiation_keeps_its_agreement_json(store: Store) -> None:
    proposed = {"@id": "urn:agreement:1", "target": "asset-dismantling",
                "permission": [{"action": "use"}]}
    async with store.transaction() as tx:
        stored = await tx.put_negotiation(negotiation(state="AGREED", agreement=proposed,
                                                      agreement_id="urn:agreement:1"))
    async with store.read() as r:
        assert (await r.get_negotiation(stored.id)) == stored
        assert stored.agreement == proposed


async def test_tokens_keep_refresh_hashes_and_list_by_transfer(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_agreement(agreement())
        first = await tx.put_token(TokenRecord(
            jti="urn:uuid:j1", agreement_id="agreement-1", consumer_did="did:web:r.example",
            asset_id="asset-dismantling", expires_at=T0, transfer_id="urn:uuid:t1",
            audience="https://oem.example/dataplane", refresh_token_hash="ab" * 32))
        await tx.put_token(TokenRecord(
            jti="urn:uuid:j2", agreement_id="agreement-1", consumer_did="did:web:r.example",
            asset_id="asset-dismantling", expires_at=T0, transfer_id="urn:uuid:t2"))
    async with store.transaction() as tx:
        rotated = await tx.put_token(dataclasses.replace(
            first, refresh_token_hash="cd" * 32, previous_refresh_token_hash="ab" * 32))
    async with store.read() as r:
        assert await r.list_tokens(transfer_id="urn:uuid:t1") == [rotated]
        assert rotated.previous_refresh_token_hash == "ab" * 32
        assert rotated.audience == "https://oem.example/dataplane"
        assert await r.find_token_by_refresh_hash("cd" * 32) == rotated
        assert await r.find_token_by_refresh_hash("ab" * 32) == rotated  # still in grace
        assert await r.find_token_by_refresh_hash("ef" * 32) is None
    async with store.transaction() as tx:
        assert await tx.find_token_by_refresh_hash("cd" * 32, for_update=True) == rotated
        assert await tx.revoke_tokens("agreement-1") == 2
    async with store.read() as r:
        assert await r.find_token_by_refresh_hash("cd" * 32) is None, "revoked: no refresh"


async def test_an_agreement_is_terminated_once_and_for_good(
    store: Store, store_url: str
) -> None:
    ended = AgreementTermination(agreement_id="agreement-1", at=T0, actor="did:web:oem.example",
                                 reason="recycler lost its certificate")
    async with store.transaction() as tx:
        with pytest.raises(InvalidRecord, match="unknown agreement"):
            await tx.add_agreement_termination(ended)
    async with store.transaction() as tx:
        await tx.add_agreement(agreement())
        assert await tx.get_agreement_termination("agreement-1") is None
        await tx.add_agreement_termination(ended)
    async with store.transaction() as tx:
        with pytest.raises(AlreadyExists, match="already terminated"):
            await tx.add_agreement_termination(dataclasses.replace(ended, reason="again"))
    async with store.read() as r:
        assert await r.get_agreement_termination("agreement-1") == ended
    for sql in ("UPDATE agreement_terminations SET reason = 'x'",
                "DELETE FROM agreement_terminations"):
        with pytest.raises(raw_errors(), match="append-only"):
            await raw_execute(store, store_url, sql)


async def test_cancelled_outbox_messages_are_never_leased(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(message("urn:uuid:n1", n=1))
        await tx.enqueue(message("urn:uuid:n1", n=2))
        await tx.enqueue(message("urn:uuid:n2", n=3))
    async with store.transaction() as tx:
        assert await tx.cancel_outbox("urn:uuid:n1", error="terminated locally") == 2
        assert await tx.cancel_outbox("urn:uuid:n1", error="again") == 0
    leased = await store.lease_outbox("worker", lease_seconds=30, limit=10,
                                      now=T0 + timedelta(days=1))
    assert [m.process_id for m in leased] == ["urn:uuid:n2"]
    async with store.read() as r:
        cancelled = await r.list_outbox(process_id="urn:uuid:n1")
    assert all(m.failed_at is not None and m.last_error == "terminated locally"
               for m in cancelled)


async def test_a_restarted_owner_takes_its_leases_back_and_order_is_queue_order(
    store: Store,
) -> None:
    later = dataclasses.replace(message("urn:uuid:n1", n=1), id="urn:uuid:a-later",
                                created_at=T0 + timedelta(seconds=1))
    first = dataclasses.replace(message("urn:uuid:n1", n=0), id="urn:uuid:z-first",
                                created_at=T0)
    async with store.transaction() as tx:
        await tx.enqueue(later)
        await tx.enqueue(first)
    now = T0 + timedelta(minutes=1)
    leased = await store.lease_outbox("node-a", lease_seconds=30, now=now)
    assert [m.id for m in leased] == ["urn:uuid:z-first", "urn:uuid:a-later"], \
        "queue order, not id order, when both are due at once"
    assert await store.lease_outbox("node-a", lease_seconds=30, now=now) == []
    assert await store.lease_outbox("node-b", lease_seconds=30, now=now) == []
    assert await store.release_outbox_leases("node-b") == 0
    assert await store.release_outbox_leases("node-a") == 2
    again = await store.lease_outbox("node-a", lease_seconds=30, now=now)
    assert [m.id for m in again] == ["urn:uuid:z-first", "urn:uuid:a-later"]


# --- migrations and durability --------------------------------------------------------------


MIGRATIONS_BY_DIALECT = {"SQLiteStore": schema_sqlite.MIGRATIONS,
                         "PostgresStore": schema_postgres.MIGRATIONS}


async def test_migrations_rerun_harmlessly_and_concurrently(open_new: OpenStore) -> None:
    stores = await asyncio.gather(*(open_new() for _ in range(4)))  # four nodes start at once
    latest = len(MIGRATIONS_BY_DIALECT[type(stores[0]).__name__])
    assert latest >= 2
    assert [await s.schema_version() for s in stores] == [latest] * 4
    async with stores[0].transaction() as tx:
        await tx.put_battery(battery())
    again = await open_new()
    assert await again.schema_version() == latest
    async with again.read() as r:
        assert await r.get_battery(battery().did) is not None


async def test_a_changed_or_newer_schema_is_refused(store: Store, store_url: str,
                                                    open_new: OpenStore) -> None:
    await raw_execute(store, store_url,
                      "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    with pytest.raises(MigrationError, match="never be edited"):
        await open_new()
    await raw_execute(store, store_url, "DELETE FROM schema_migrations")
    await raw_execute(store, store_url,
                      "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                      "VALUES (1, 'initial', 'x', '2030-01-01'), (99, 'future', 'x', '2030-01-01')")
    with pytest.raises(MigrationError, match="newer node"):
        await open_new()


def test_migration_plan() -> None:
    one, two = Migration(1, "a", "select 1"), Migration(2, "b", "select 2")
    assert pending([one, two], {}) == [one, two]
    assert pending([one, two], {1: one.checksum}) == [two]
    assert pending([one, two], {1: one.checksum, 2: two.checksum}) == []
    with pytest.raises(MigrationError, match="missing"):
        pending([one, two], {2: two.checksum})
    with pytest.raises(MigrationError, match="numbered"):
        pending([two], {})


def test_sqlite_scripts_split_into_statements() -> None:
    script = ("CREATE TABLE t (a TEXT);\nCREATE TRIGGER t_x BEFORE DELETE ON t\n"
              "BEGIN SELECT RAISE(ABORT, 'no'); END;\n")
    assert split_script(script) == ["CREATE TABLE t (a TEXT);",
                                    "CREATE TRIGGER t_x BEFORE DELETE ON t\n"
                                    "BEGIN SELECT RAISE(ABORT, 'no'); END;"]


async def test_an_acknowledged_write_survives_a_killed_process(
        store_url: str, tmp_path: Path, open_new: OpenStore) -> None:
    """A node commits, prints its ACK, and dies by SIGKILL without closing anything."""
    code = textwrap.dedent(f"""
        import asyncio, os, signal
        from pathlib import Path
        from connector.store import NegotiationRecord, Role, open_store
        async def main():
            store = await open_store({store_url!r}, data_dir=Path({str(tmp_path)!r}))
            async with store.transaction() as tx:
                await tx.put_negotiation(NegotiationRecord(
                    id="urn:uuid:crash", role=Role.CONSUMER, state="AGREED",
                    counterparty_did="did:web:p", counterparty_address="https://p"))
                await tx.append_audit(actor="node", action="agreed", subject_id="urn:uuid:crash")
            print("ACK", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                  capture_output=True, text=True, timeout=60)
    assert run.stdout == "ACK\n", run.stderr
    assert run.returncode == -9
    fresh = await open_new()
    async with fresh.read() as r:
        survived = await r.get_negotiation("urn:uuid:crash")
        assert survived is not None and survived.state == "AGREED"
        assert [e.action for e in await r.list_audit()] == ["agreed"]


async def test_a_write_in_one_instance_is_read_by_a_fresh_one(open_new: OpenStore) -> None:
    writer = await open_new()
    async with writer.transaction() as tx:
        stored = await tx.put_negotiation(negotiation())
    reader = await open_new()
    async with reader.read() as r:
        assert await r.get_negotiation(stored.id) == stored


# --- bad input ------------------------------------------------------------------------------


async def test_unknown_keys_read_as_none(store: Store) -> None:
    async with store.read() as r:
        for get in (r.get_battery, r.get_credential, r.get_asset, r.get_policy, r.get_offer,
                    r.get_negotiation, r.get_agreement, r.get_transfer, r.get_token,
                    r.get_outbox):
            assert await get("nope") is None
        assert await r.passport("nope") == []
        assert await r.passport_head("nope") is None
        assert await r.list_audit(subject_id="nope") == []


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


BAD_JSON: dict[str, Any] = {
    "a set": {"x": {1, 2}},
    "NaN": {"x": float("nan")},
    "infinity": {"x": [float("inf")]},
    "an int key": {1: "x"},
    "a NUL character": {"x": "a\x00b"},
    "a NUL in a key": {"a\x00": 1},
    "a lone surrogate": {"x": "\ud800"},
    "a datetime": {"x": T0},
    "bytes": {"x": b"raw"},
    "an object": {"x": object()},
    "deep nesting": {"x": nested(300)},
    "not an object": ["a", "list"],
}


@pytest.mark.parametrize("payload", BAD_JSON.values(), ids=BAD_JSON.keys())
async def test_values_json_cannot_round_trip_are_refused(store: Store, payload: Any) -> None:
    async with store.transaction() as tx:
        with pytest.raises(InvalidRecord):
            await tx.put_battery(battery(properties=payload))
        with pytest.raises(InvalidRecord):
            await tx.enqueue(dataclasses.replace(message(), body=payload))
        with pytest.raises(InvalidRecord):
            await tx.append_audit(actor="a", action="b", subject_id="c", details=payload)
    async with store.read() as r:
        assert await r.list_batteries() == [] and await r.list_audit() == []


async def test_invalid_values_are_refused_before_the_database(store: Store) -> None:
    await seed_agreement(store)
    async with store.transaction() as tx:
        bad_records: list[Any] = [
            battery(did=""),
            battery(did=123),  # type: ignore[arg-type]
            battery(did="did:key:\x00"),
            battery(created_at=datetime(2030, 1, 1)),  # naive
            battery(version=-1),
            battery(version=2**63),
            battery(version=True),  # type: ignore[arg-type]
            negotiation(role="broker"),
            negotiation(state=None),
            dataclasses.replace(transfer(), counterparty_pid=7),
        ]
        for record in bad_records:
            put = tx.put_battery if isinstance(record, BatteryRecord) else (
                tx.put_negotiation if isinstance(record, NegotiationRecord) else tx.put_transfer)
            with pytest.raises(InvalidRecord):
                await put(record)
        with pytest.raises(InvalidRecord, match="expected a BatteryRecord"):
            await tx.put_battery(negotiation())  # type: ignore[arg-type]
        with pytest.raises(InvalidRecord, match="compact JWT"):
            await tx.add_credential(credential(0, None, secured="{not a jwt}"))
        with pytest.raises(InvalidRecord):
            await tx.get_negotiation(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidRecord, match="limit"):
            await tx.list_assets(limit=0)
        with pytest.raises(InvalidRecord):
            await tx.record_inbound("", "m")
        # Nothing above reached the database, so the transaction is still good.
        await tx.put_battery(battery())
    with pytest.raises(InvalidRecord):
        await store.lease_outbox("w", lease_seconds=0)
    with pytest.raises(InvalidRecord):
        await store.lease_outbox("w", lease_seconds=1, now=datetime(2030, 1, 1))
    with pytest.raises(InvalidRecord):
        await store.lease_processes(ProcessKind.TRANSFER, "w", states="REQUESTED",
                                    lease_seconds=1)
    async with store.read() as r:
        assert await r.get_battery(battery().did) is not None
    assert issubclass(InvalidRecord, StoreError) and issubclass(InvalidRecord, ValueError)


async def test_a_dangling_reference_is_an_invalid_record(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="referenced record does not exist"):
        async with store.transaction() as tx:
            await tx.put_transfer(transfer(agreement_id="no-such-agreement"))
    with pytest.raises(InvalidRecord, match="referenced record does not exist"):
        async with store.transaction() as tx:
            await tx.put_offer(OfferRecord(id="o", asset_id="no-such-asset", offer={}))
    async with store.read() as r:
        assert await r.list_transfers() == [] and await r.list_offers() == []


async def test_a_closed_store_refuses_work(open_new: OpenStore) -> None:
    store = await open_new()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        async with store.transaction():
            pass


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # PostgreSQL locks rows
async def test_a_held_sqlite_write_lock_times_out_as_unavailable(open_new: OpenStore) -> None:
    holder, waiter = await open_new(), await open_new(busy_timeout=0.2)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold() -> None:
        async with holder.transaction() as tx:
            await tx.put_battery(battery())
            entered.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            async with waiter.transaction():
                pass
    finally:
        release.set()
        await task


# --- URLs -----------------------------------------------------------------------------------


def test_store_urls(tmp_path: Path) -> None:
    assert sqlite_path(None, data_dir=tmp_path) == tmp_path / "node.db"
    assert sqlite_path("state.db", data_dir=tmp_path) == tmp_path / "state.db"
    assert sqlite_path("sqlite:state.db", data_dir=tmp_path) == tmp_path / "state.db"
    assert sqlite_path("/srv/bpc/x.db", data_dir=tmp_path) == Path("/srv/bpc/x.db")
    assert sqlite_path("sqlite:///srv/bpc/x.db", data_dir=tmp_path) == Path("/srv/bpc/x.db")
    assert sqlite_path(f"sqlite:///{tmp_path}/n.db", data_dir=Path("/x")) == tmp_path / "n.db"
    assert sqlite_path("postgresql://db.example/bpc", data_dir=tmp_path) is None
    for bad in ("mysql://db/x", "sqlite://host/x.db", "sqlite:///", ":memory:",
                "sqlite:///x.db?mode=ro"):
        with pytest.raises(StoreConfigError):
            sqlite_path(bad, data_dir=tmp_path)


async def test_bad_postgres_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="schema"):
        await open_store("postgresql://127.0.0.1/test?schema=Robert');DROP", data_dir=tmp_path)
    with pytest.raises(StoreUnavailable) as caught:
        await open_store("postgresql://u:secret@127.0.0.1:1/test", data_dir=tmp_path,
                         connect_timeout=2)
    assert "secret" not in str(caught.value)


async def test_times_come_back_in_utc(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    async with store.transaction() as tx:
        await tx.add_agreement(agreement(signed_at=T0.astimezone(berlin)))
    async with store.read() as r:
        loaded = await r.get_agreement("agreement-1")
    assert loaded is not None and loaded.signed_at == T0 and loaded.signed_at.tzinfo == UTC
