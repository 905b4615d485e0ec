"""Crashes and replicas with REAL node processes (``python -m connector serve``).

1. A consumer SIGKILLed while its ContractRequestMessage sits in its outbox (the provider is
   down too, so the window is certain, not a race) finishes the negotiation after both are
   started again on the same ports and data dirs: FINALIZED on both sides, one agreement each,
   one provider negotiation, every message sent once.
2. A consumer SIGKILLed while its request is in flight — the provider acted on it, the answer
   never came back (a proxy holds it) — re-sends it after the restart; the provider answers
   the repeat as the first time and keeps one negotiation.
3. A provider SIGKILLed after it received the request — AGREED, its ContractAgreementMessage
   in its outbox because the consumer's address refuses it (a proxy the test controls) —
   finishes after a restart.
4. Two provider replicas (one participant: same key, same ``public_base_url`` behind a load
   balancer, different listen ports) on ONE PostgreSQL schema, started at the same moment
   (migrations must run once), serve 20 negotiations of one consumer, half each.

Leases: a message leased by a killed process is re-sent by another replica only once its
lease ran out (``outbox_lease_s``, 30 s by default). A node started again on the same data
directory leases under the same instance name (``outbox.instance_name``) and releases its old
leases at start, so it re-sends at once; test 2 depends on that (``RESUME_LIMIT_S``).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

pytest.register_assert_rewrite("node_processes")  # explain its asserts as the tests' own
from node_processes import (  # noqa: E402
    PASSPHRASE,
    HttpProxy,
    NodeProcess,
    NodeProcesses,
    eventually,
    free_port,
    kill_while_not_sending,
    leased_now,
    manage,
    manage_ok,
    negotiation_rows,
    now_us,
    offer_from_catalog,
    outbox_rows,
    publish_restricted,
    request_negotiation,
    start_both,
)

from connector.identity import KEYSTORE_DIR, NODE_KEY_LABEL  # noqa: E402
from connector.store import Role, open_store  # noqa: E402
from connector.store.schema_postgres import MIGRATIONS  # noqa: E402
from credentials.keystore import Keystore  # noqa: E402

pytestmark = pytest.mark.slow

REQUEST = "ContractRequestMessage"
AGREEMENT = "ContractAgreementMessage"
VERIFICATION = "ContractAgreementVerificationMessage"
FINALIZED_EVENT = "ContractNegotiationEventMessage:FINALIZED"
#: Resuming after a restart must not need the outbox's 5 s safety poll or a lease to run out.
RESUME_LIMIT_S = 15.0


async def items(session: aiohttp.ClientSession, node: NodeProcess, path: str) -> list[Any]:
    answer = await manage_ok(session, node, "GET", path)
    assert answer["next"] is None, f"{path}: more than one page"
    return list(answer["items"])


async def wait_finalized(session: aiohttp.ClientSession, node: NodeProcess, pid: str,
                         timeout_s: float) -> Any:
    async def finalized() -> Any:
        status, view = await manage(session, node, "GET", f"/management/negotiations/{pid}")
        assert status == 200, view
        assert view["state"] != "TERMINATED", view
        return view if view["state"] == "FINALIZED" else None

    return await eventually(finalized, timeout_s=timeout_s,
                            what=f"negotiation {pid} FINALIZED on {node.name}")


async def wait_outbox_drained(node: NodeProcess, timeout_s: float = 10) -> list[dict[str, Any]]:
    """The node's outbox once every message is delivered; none may have been given up."""

    async def drained() -> list[dict[str, Any]] | None:
        rows = outbox_rows(node.sqlite_path)
        failed = [row for row in rows if row["failed_at"] is not None]
        assert not failed, f"{node.name} gave up messages: {failed}"
        return rows if all(row["delivered_at"] is not None for row in rows) else None

    return list(await eventually(drained, timeout_s=timeout_s,
                                 what=f"{node.name}'s outbox delivered"))


async def assert_one_negotiation_each(
    session: aiohttp.ClientSession, provider: NodeProcess, consumer: NodeProcess, pid: str,
) -> None:
    """Exactly one negotiation and one agreement on each side, the same agreement."""
    (mine,) = await items(session, consumer, "/management/negotiations")
    assert mine["id"] == pid and mine["role"] == "consumer" and mine["state"] == "FINALIZED"
    theirs = await items(session, provider, "/management/negotiations")
    assert len(theirs) == 1, f"duplicate provider negotiations: {theirs}"
    (theirs_one,) = theirs
    assert theirs_one["role"] == "provider" and theirs_one["state"] == "FINALIZED"
    assert theirs_one["counterPartyPid"] == pid and mine["counterPartyPid"] == theirs_one["id"]
    assert mine["agreementId"] is not None
    assert theirs_one["agreementId"] == mine["agreementId"]
    for node in (consumer, provider):
        agreements = await items(session, node, "/management/agreements")
        assert [a["id"] for a in agreements] == [mine["agreementId"]], (node.name, agreements)


def sent(rows: list[dict[str, Any]]) -> Counter[str]:
    return Counter(row["kind"] for row in rows)


# --- 1. the consumer dies with its request queued -------------------------------------------


async def restart_and_finish(session: aiohttp.ClientSession, restarted: NodeProcess,
                             provider: NodeProcess, consumer: NodeProcess,
                             pid: str) -> tuple[dict[str, Any], float, float]:
    """Start ``restarted`` again and wait until the negotiation is FINALIZED on both sides:
    (the consumer's view, seconds to healthy, seconds from healthy to done)."""
    started = time.monotonic()
    restarted.start()
    await restarted.wait_healthy()
    healthy = time.monotonic()
    view = await wait_finalized(session, consumer, pid, RESUME_LIMIT_S)
    await wait_finalized(session, provider, view["counterPartyPid"], 5)
    return view, healthy - started, time.monotonic() - healthy


async def test_consumer_killed_with_its_request_queued_finishes_after_restart(
    tmp_path: Path,
) -> None:
    with NodeProcesses(tmp_path) as nodes:
        provider, consumer = nodes.add("provider"), nodes.add("consumer")
        consumer_did = await start_both(provider, consumer)
        async with aiohttp.ClientSession() as session:
            _, offer_id = await publish_restricted(session, provider, consumer_did)
            catalog = await manage_ok(session, consumer, "POST", "/management/catalog/request",
                                      {"counterPartyAddress": provider.url})
            offer = offer_from_catalog(catalog, offer_id)

            # The provider is down, so the request cannot leave the consumer's outbox...
            provider.kill()
            created = await manage_ok(
                session, consumer, "POST", "/management/negotiations",
                {"counterPartyAddress": provider.url, "offer": offer}, status=201)
            pid = created["id"]
            assert created["state"] == "REQUESTED"
            # ... and the consumer is killed while it waits to retry it.
            crashed = await kill_while_not_sending(consumer, REQUEST)
            assert crashed["process_id"] == pid and crashed["attempts"] >= 1
            assert crashed["last_error"]  # the failed attempt to reach the dead provider
            (left,) = negotiation_rows(consumer.sqlite_path)
            assert (left["state"], left["counterparty_pid"]) == ("REQUESTED", None)
            assert negotiation_rows(provider.sqlite_path) == []

            provider.start()
            await provider.wait_healthy()
            started = time.monotonic()
            consumer.start()  # the same port, data dir and keys
            await consumer.wait_healthy()
            healthy = time.monotonic()
            await wait_finalized(session, consumer, pid, RESUME_LIMIT_S)
            (theirs,) = await items(session, provider, "/management/negotiations")
            await wait_finalized(session, provider, theirs["id"], 5)
            done = time.monotonic()
            print(f"\n[consumer crash] restart to healthy {healthy - started:.2f}s, "
                  f"healthy to FINALIZED on both {done - healthy:.2f}s")

            await assert_one_negotiation_each(session, provider, consumer, pid)
            consumer_sent = await wait_outbox_drained(consumer)
            provider_sent = await wait_outbox_drained(provider)
            # Every message went out once: the crash did not make anyone send twice.
            assert sent(consumer_sent) == {REQUEST: 1, VERIFICATION: 1}, consumer_sent
            assert sent(provider_sent) == {AGREEMENT: 1, FINALIZED_EVENT: 1}, provider_sent
        for node in nodes.nodes:
            assert node.terminate() == 0, node.log()[-3000:]
            assert "Traceback" not in node.log(), node.log()[-6000:]


# --- 2. the consumer dies while its request is in flight -----------------------------------


async def test_consumer_killed_while_its_request_is_in_flight_resends_it_once(
    tmp_path: Path,
) -> None:
    """The crash falls between the provider acting on the request and the consumer hearing
    its answer: the restarted consumer re-sends the request (its message is still leased to
    it, under the same name) and the provider recognises the repeat."""
    public_port = free_port()
    with NodeProcesses(tmp_path) as nodes:
        provider = nodes.add("provider", public_port=public_port)
        consumer = nodes.add("consumer")
        link = HttpProxy(public_port, provider.url)  # the provider's public address
        link.hold = lambda request: request.path == "/negotiations/request"
        await link.start()
        try:
            consumer_did = await start_both(provider, consumer)
            async with aiohttp.ClientSession() as session:
                _, offer_id = await publish_restricted(session, provider, consumer_did)
                pid = await request_negotiation(session, consumer, link.url, offer_id)

                async def in_flight() -> dict[str, Any] | None:
                    rows = [r for r in outbox_rows(consumer.sqlite_path) if r["kind"] == REQUEST]
                    return rows[0] if link.held and rows and leased_now(rows[0]) else None

                async def provider_acted() -> Any:
                    return [r for r in negotiation_rows(provider.sqlite_path)
                            if r["state"] == "FINALIZED" or r["state"] == "AGREED"]

                await eventually(provider_acted, timeout_s=10, what="the provider agreed")
                request = await eventually(in_flight, timeout_s=10,
                                           what="the request in flight")
                consumer.kill()
                assert request["delivered_at"] is None and request["attempts"] == 0
                assert len(negotiation_rows(provider.sqlite_path)) == 1

                link.hold = lambda request: False
                _, to_healthy, to_done = await restart_and_finish(
                    session, consumer, provider, consumer, pid)
                print(f"\n[request in flight] restart to healthy {to_healthy:.2f}s, "
                      f"healthy to FINALIZED on both {to_done:.2f}s (lease left at "
                      f"the kill: {(request['lease_until'] - now_us()) / 1e6:.0f}s)")

                await assert_one_negotiation_each(session, provider, consumer, pid)
                # The request reached the provider twice, and was answered as the first time.
                assert [status for _, line, status in link.forwarded
                        if line == "POST /negotiations/request"] == [201, 201]
                consumer_sent = await wait_outbox_drained(consumer)
                provider_sent = await wait_outbox_drained(provider)
                assert sent(consumer_sent) == {REQUEST: 1, VERIFICATION: 1}, consumer_sent
                assert sent(provider_sent) == {AGREEMENT: 1, FINALIZED_EVENT: 1}, provider_sent
            for node in nodes.nodes:
                assert node.terminate() == 0, node.log()[-3000:]
                assert "Traceback" not in node.log(), node.log()[-6000:]
        finally:
            nodes.kill_all()
            await link.close()


# --- 3. the provider dies with its agreement queued -----------------------------------------


async def test_provider_killed_with_its_agreement_queued_finishes_after_restart(
    tmp_path: Path,
) -> None:
    # The consumer is reached through a proxy (its public address), which refuses the
    # provider's agreement until the provider has been killed: the agreement stays queued.
    public_port = free_port()
    with NodeProcesses(tmp_path) as nodes:
        provider = nodes.add("provider")
        consumer = nodes.add("consumer", public_port=public_port)
        proxy = HttpProxy(public_port, consumer.url)
        proxy.refuse = lambda request: (request.method == "POST"
                                        and request.path.endswith("/agreement"))
        await proxy.start()
        try:
            consumer_did = await start_both(provider, consumer)
            async with aiohttp.ClientSession() as session:
                _, offer_id = await publish_restricted(session, provider, consumer_did)
                pid = await request_negotiation(session, consumer, provider.url, offer_id)

                crashed = await kill_while_not_sending(provider, AGREEMENT)
                assert crashed["attempts"] >= 1 and "503" in (crashed["last_error"] or "")
                (left,) = negotiation_rows(provider.sqlite_path)
                assert left["role"] == "provider" and left["state"] == "AGREED"
                assert left["counterparty_pid"] == pid and crashed["process_id"] == left["id"]
                assert left["agreement_id"] is not None
                (waiting,) = negotiation_rows(consumer.sqlite_path)
                assert waiting["state"] == "REQUESTED"  # the agreement never reached it

                proxy.refuse = lambda request: False  # the consumer is reachable again
                view, to_healthy, to_done = await restart_and_finish(
                    session, provider, provider, consumer, pid)
                print(f"\n[provider crash] restart to healthy {to_healthy:.2f}s, "
                      f"healthy to FINALIZED on both {to_done:.2f}s, "
                      f"agreement refused {len(proxy.refused)}x before the crash")

                await assert_one_negotiation_each(session, provider, consumer, pid)
                assert view["agreementId"] == left["agreement_id"]  # the one queued at the crash
                consumer_sent = await wait_outbox_drained(consumer)
                provider_sent = await wait_outbox_drained(provider)
                assert sent(consumer_sent) == {REQUEST: 1, VERIFICATION: 1}, consumer_sent
                assert sent(provider_sent) == {AGREEMENT: 1, FINALIZED_EVENT: 1}, provider_sent
                assert [status for _, line, status in proxy.forwarded
                        if line.endswith("/agreement")] == [200]
            for node in nodes.nodes:
                assert node.terminate() == 0, node.log()[-3000:]
                assert "Traceback" not in node.log(), node.log()[-6000:]
        finally:
            nodes.kill_all()
            await proxy.close()


# --- 4. two provider replicas on one PostgreSQL schema --------------------------------------

REPLICA_NEGOTIATIONS = 20


def one_identity(*data_dirs: Path) -> None:
    """The participant's node key, made once and copied to every replica's data dir."""
    first = data_dirs[0] / KEYSTORE_DIR
    Keystore(first, PASSPHRASE).new_key(NODE_KEY_LABEL)
    for other in data_dirs[1:]:
        shutil.copytree(first, other / KEYSTORE_DIR)


def dsp_requests(log: str) -> int:
    """How many contract requests a node accepted (aiohttp's access log lines)."""
    return len(re.findall(r'"POST /negotiations/request HTTP/1\.1" 201 ', log))


async def test_two_provider_replicas_share_one_postgres_schema(
    tmp_path: Path, postgres_store_url: str,
) -> None:
    schema = parse_qs(urlsplit(postgres_store_url).query)["schema"][0]
    # One participant behind one address: a load balancer (the test's proxy) in front of two
    # replicas with the same key and public_base_url (the balancer's), so both have the
    # participant's DID, sign as it, and accept tokens bound to its URLs (``htu``).
    balancer_port = free_port()
    with NodeProcesses(tmp_path) as nodes:
        replica_a = nodes.add("replica-a", public_port=balancer_port, store=postgres_store_url)
        replica_b = nodes.add("replica-b", public_port=balancer_port, store=postgres_store_url)
        consumer = nodes.add("consumer")
        balancer = HttpProxy(balancer_port, replica_a.url, replica_b.url)
        requests_seen = 0

        def choose(request: Any) -> int:
            """Contract requests strictly alternate between A and B; the rest round robin."""
            nonlocal requests_seen
            if request.path == "/negotiations/request":
                requests_seen += 1
                return (requests_seen - 1) % 2
            return int(balancer._round_robin(request))

        balancer.choose = choose
        for node in (replica_a, replica_b):
            node.data_dir.mkdir(parents=True)
        one_identity(replica_a.data_dir, replica_b.data_dir)
        store = None
        await balancer.start()
        try:
            replica_a.start()
            replica_b.start()  # at the same moment, on a schema that does not exist yet
            consumer.start()
            dids = await asyncio.gather(replica_a.wait_healthy(), replica_b.wait_healthy())
            provider_did = f"did:web:127.0.0.1%3A{balancer_port}"
            assert dids == [provider_did, provider_did]
            consumer_did = await consumer.wait_healthy()
            # Both migrated the new schema at once: each migration is recorded once, and
            # neither node complained (a failed migration would have stopped it).
            migrations = await _migration_rows(postgres_store_url, schema)
            assert [row[0] for row in migrations] == [m.version for m in MIGRATIONS]

            async with aiohttp.ClientSession() as session:
                _, offer_id = await publish_restricted(session, replica_a, consumer_did)
                started = time.monotonic()
                created = await asyncio.gather(*(
                    manage_ok(session, consumer, "POST", "/management/negotiations",
                              {"counterPartyAddress": balancer.url, "offerId": offer_id},
                              status=201)
                    for _ in range(REPLICA_NEGOTIATIONS)))
                pids = [view["id"] for view in created]
                assert len(set(pids)) == REPLICA_NEGOTIATIONS
                finals = await asyncio.gather(*(
                    wait_finalized(session, consumer, pid, 30) for pid in pids))
                print(f"\n[replicas] {REPLICA_NEGOTIATIONS} negotiations FINALIZED on the "
                      f"consumer in {time.monotonic() - started:.2f}s")

            store = await open_store(postgres_store_url, data_dir=tmp_path)

            async def provider_side_done() -> Any:
                assert store is not None
                async with store.read() as reader:
                    rows = await reader.list_negotiations(role=Role.PROVIDER, limit=500)
                    agreements = await reader.list_agreements(limit=500)
                    outbox = await reader.list_outbox(limit=500)
                assert not [m for m in outbox if m.failed_at is not None], outbox
                if (len(rows) >= REPLICA_NEGOTIATIONS
                        and all(r.state == "FINALIZED" for r in rows)
                        and all(m.delivered_at is not None for m in outbox)):
                    return rows, agreements, outbox
                return None

            rows, agreements, outbox = await eventually(
                provider_side_done, timeout_s=15, what="the replicas' negotiations done")
            # Exactly N provider negotiations, one per consumer negotiation, N agreements.
            assert len(rows) == REPLICA_NEGOTIATIONS
            assert sorted(r.counterparty_pid or "" for r in rows) == sorted(pids)
            assert {r.counterparty_did for r in rows} == {consumer_did}
            assert len(agreements) == REPLICA_NEGOTIATIONS
            assert ({a.id for a in agreements} == {r.agreement_id for r in rows}
                    == {view["agreementId"] for view in finals})
            assert {a.provider_did for a in agreements} == {provider_did}
            # The shared outbox: every message delivered once, none given up, none pending.
            assert sent([{"kind": m.kind} for m in outbox]) == {
                AGREEMENT: REPLICA_NEGOTIATIONS, FINALIZED_EVENT: REPLICA_NEGOTIATIONS}
            async with store.read() as reader:
                assert await reader.list_outbox(pending_only=True, limit=500) == []
            consumer_sent = await wait_outbox_drained(consumer)
            assert sent(consumer_sent) == {REQUEST: REPLICA_NEGOTIATIONS,
                                           VERIFICATION: REPLICA_NEGOTIATIONS}
            # Each replica created half of the negotiations (and said so in its access log).
            half = REPLICA_NEGOTIATIONS // 2
            created_by = Counter(index for index, line, status in balancer.forwarded
                                 if line == "POST /negotiations/request" and status == 201)
            assert created_by == {0: half, 1: half}, balancer.forwarded
            assert (dsp_requests(replica_a.log()), dsp_requests(replica_b.log())) == (half, half)
            # And both replicas took part in the rest (verifications land on either).
            verified_by = Counter(index for index, line, status in balancer.forwarded
                                  if line.endswith("/agreement/verification") and status == 200)
            assert sum(verified_by.values()) == REPLICA_NEGOTIATIONS and len(verified_by) == 2
            for node in (replica_a, replica_b, consumer):
                assert node.terminate() == 0, node.log()[-3000:]
                assert "Traceback" not in node.log(), node.log()[-6000:]
                assert " ERROR " not in node.log(), node.log()[-6000:]
        finally:
            nodes.kill_all()
            if store is not None:
                await store.close()
            await balancer.close()


async def _migration_rows(url: str, schema: str) -> list[tuple[int, str]]:
    import asyncpg

    conn = await asyncpg.connect(url.split("?")[0], timeout=10)
    try:
        rows = await conn.fetch(f"SELECT version, name FROM {schema}.schema_migrations "
                                "ORDER BY version")
    finally:
        await conn.close()
    return [(row["version"], row["name"]) for row in rows]
