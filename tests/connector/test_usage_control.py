"""Usage control beyond access, between two REAL nodes on loopback: the recycler keeps the OEM's
dismantling data until the agreement's delete duty falls due, purges it, and files a signed
deletion receipt the OEM records; the OEM lists agreements whose receipt is overdue.

Both nodes share one injected clock (``ShiftedClock``), so "eight days later" is a clock move,
not a sleep; the watches run every 50 ms. The OEM's policy is created explicitly through the
management API: participant allow-list + ``odrl:elapsedTime lteq P7D`` + a ``delete`` duty
``elapsedTime gteq P7D``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from connector.app import IDENTITY, STORE, create_app
from connector.cli import app as cli_app
from connector.config import NodeConfig
from connector.demo_dataspace import ShiftedClock
from connector.participant_auth import RequestSigner
from connector.policy_gate import PARTICIPANT_DID
from connector.serve import RunningNode, running_node
from connector.usage.duties import delete_due_at
from connector.usage.receipts import USAGE_CONTEXT_V1, deletion_receipt, read_receipt
from credentials import issue_credential, key_from_seed
from credentials.errors import UndefinedTerm
from credentials.jsonld import expand_strict
from credentials.keys import Ed25519Key
from policies.defaults import DataCategory, default_policy
from tests.connector.test_dsp_negotiation_http import (
    OUTSIDER,
    PASSPHRASE_ENV,
    fast_settings,
    free_port,
)

OPERATOR_KEY = "test-operator-key-0123456789abcdef"
BATTERY = "did:web:oem.example:battery:wbx-2031-0042"
DISMANTLING = {"packDisassemblySequence": ["remove lid", "disconnect HV", "remove modules"],
               "hazardousSubstances": ["LiPF6"]}
GRACE_S = 3600
USAGE = "https://w3id.org/battery-passport-connector/usage#"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


def delete_policy(recycler_did: str) -> dict[str, Any]:
    """Seven days of use for the recycler only, then delete."""
    return {"@type": "Set", "permission": [{
        "action": "use",
        "constraint": [{"and": [
            {"leftOperand": PARTICIPANT_DID, "operator": "isAnyOf",
             "rightOperand": [recycler_did]},
            {"leftOperand": "odrl:elapsedTime", "operator": "lteq", "rightOperand": "P7D"},
        ]}],
        "duty": [{"action": "delete", "constraint": [
            {"leftOperand": "odrl:elapsedTime", "operator": "gteq", "rightOperand": "P7D"}]}],
    }]}


def config_for(data_dir: Path, port: int) -> NodeConfig:
    return NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                      keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                      operator_api_key=OPERATOR_KEY, watch_interval_s=0.05,
                      deletion_receipt_grace_s=GRACE_S)


@contextlib.asynccontextmanager
async def node(config: NodeConfig, clock: ShiftedClock) -> AsyncIterator[RunningNode]:
    app = create_app(config, dsp_settings=fast_settings(clock=clock))
    async with running_node(config, app) as running:
        yield running


@dataclass
class Space:
    oem: RunningNode
    recycler: RunningNode
    session: aiohttp.ClientSession
    clock: ShiftedClock
    offer_id: str = ""
    asset_id: str = ""

    async def manage(self, target: RunningNode, method: str, path: str,
                     body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
            method, target.url + path, json=body,
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        ) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw)
            except ValueError:
                return response.status, raw

    async def ok(self, target: RunningNode, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.manage(target, method, path, body)
        assert 200 <= status < 300, (status, answer)
        return answer

    async def publish(self) -> None:
        recycler_did = self.recycler.app[IDENTITY].did
        asset = await self.ok(self.oem, "POST", "/management/assets", {
            "batteryDid": BATTERY, "accessLevel": "dismantling-safety",
            "title": "Dismantling and safety data",
            "dataSource": {"kind": "inline", "data": DISMANTLING}})
        policy = await self.ok(self.oem, "POST", "/management/policies",
                               {"policy": delete_policy(recycler_did)})
        offer = await self.ok(self.oem, "POST", "/management/offers",
                              {"assetId": asset["id"], "policyId": policy["id"]})
        self.asset_id, self.offer_id = asset["id"], offer["id"]

    async def agreement(self) -> str:
        view = await self.ok(self.recycler, "POST", "/management/negotiations",
                             {"counterPartyAddress": self.oem.url, "offerId": self.offer_id})
        view = await self.until(self.recycler, f"/management/negotiations/{view['id']}",
                                lambda v: v["state"] in ("FINALIZED", "TERMINATED"))
        assert view["state"] == "FINALIZED", view
        return str(view["agreementId"])

    async def transfer(self, agreement_id: str) -> str:
        view = await self.ok(self.recycler, "POST", "/management/transfers",
                             {"agreementId": agreement_id})
        view = await self.until(self.recycler, f"/management/transfers/{view['id']}",
                                lambda v: v["state"] in ("STARTED", "TERMINATED"))
        assert view["state"] == "STARTED", view
        return str(view["id"])

    async def until(self, target: RunningNode, path: str,
                    done: Callable[[Any], bool], timeout_s: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            answer = await self.ok(target, "GET", path)
            if done(answer):
                return answer
            assert time.monotonic() < deadline, f"{path} never got there: {answer}"
            await asyncio.sleep(0.03)

    async def post_receipt(self, target: RunningNode, body: bytes,
                           key: Ed25519Key | None) -> tuple[int, Any]:
        """``POST /usage/deletion-receipts`` signed as ``key``'s participant (None: unsigned)."""
        url = target.url + "/usage/deletion-receipts"
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers.update(RequestSigner(key, self.clock).headers(
                audience=target.app[IDENTITY].did, method="POST", url=url, body=body))
        async with self.session.post(url, data=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def space(tmp_path: Path) -> AsyncIterator[Space]:
    clock = ShiftedClock()
    async with (
        node(config_for(tmp_path / "oem", free_port()), clock) as oem,
        node(config_for(tmp_path / "recycler", free_port()), clock) as recycler,
        aiohttp.ClientSession() as session,
    ):
        s = Space(oem, recycler, session, clock)
        await s.publish()
        yield s


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def key_of(target: RunningNode) -> Ed25519Key:
    return target.app[IDENTITY].signing_key


def receipt_for(s: Space, key: Ed25519Key, agreement_id: str, *,
                subject: str | None = None) -> dict[str, Any]:
    return deletion_receipt(key, receipt_id=f"urn:uuid:test-{time.monotonic_ns()}",
                            provider_did=subject or s.oem.app[IDENTITY].did,
                            agreement_id=agreement_id, transfer_id="urn:uuid:transfer-x",
                            assets=[s.asset_id], purged_at=s.clock())


def cli(*args: str) -> Awaitable[Any]:
    """``bpc ARGS`` in a thread: it blocks on the node, which answers on this loop."""
    return asyncio.to_thread(CliRunner().invoke, cli_app, [*args, "--api-key", OPERATOR_KEY])


# --- the whole obligation, end to end ----------------------------------------------------------


async def test_data_is_purged_at_agreement_end_and_the_receipt_recorded(space: Space) -> None:
    s = space
    first = await s.agreement()
    second = await s.agreement()  # never fetched: its consumer never sends a receipt
    transfer_id = await s.transfer(first)
    status, document = await s.manage(s.recycler, "GET",
                                      f"/management/transfers/{transfer_id}/data")
    assert status == 200 and document["data"] == DISMANTLING

    agreement = await s.ok(s.recycler, "GET", f"/management/agreements/{first}")
    signed_at = parse_time(agreement["signedAt"])
    listing = await s.ok(s.recycler, "GET", "/management/received-data")
    (row,) = listing["items"]
    assert row["transferId"] == transfer_id and row["agreementId"] == first
    assert row["assetId"] == s.asset_id and row["providerId"] == s.oem.app[IDENTITY].did
    assert parse_time(row["purgeAt"]) == signed_at + timedelta(days=7)
    assert row["purgedAt"] is None and row["receiptId"] is None
    assert "data" not in row and "packDisassemblySequence" not in json.dumps(listing)
    kept = await s.ok(s.recycler, "GET", f"/management/received-data/{transfer_id}")
    assert kept == document

    # A re-fetch updates the row (same transfer), it does not add one.
    await s.ok(s.recycler, "GET", f"/management/transfers/{transfer_id}/data")
    assert len((await s.ok(s.recycler, "GET", "/management/received-data"))["items"]) == 1

    # Six days on: nothing is due yet, nothing overdue.
    s.clock.advance(timedelta(days=6))
    await asyncio.sleep(0.2)
    assert (await s.ok(s.recycler, "GET", f"/management/received-data/{transfer_id}")) \
        == document
    assert (await s.ok(s.oem, "GET", "/management/deletion-receipts/overdue"))["items"] == []

    # Eight days after the agreement: the watch purges and files the receipt.
    s.clock.advance(timedelta(days=2))
    row = await s.until(s.recycler, "/management/received-data",
                        lambda page: page["items"][0]["receiptSentAt"] is not None)
    row = row["items"][0]
    assert row["purgedAt"] is not None and row["receiptId"].startswith("urn:uuid:")
    status, gone = await s.manage(s.recycler, "GET", f"/management/received-data/{transfer_id}")
    assert status == 410 and gone["type"].endswith("#purged")
    assert gone["receiptId"] == row["receiptId"]
    async with s.recycler.app[STORE].read() as reader:
        stored = await reader.get_received_data(transfer_id)
    assert stored is not None and stored.data is None and stored.receipt is not None

    receipts = await s.ok(s.oem, "GET", "/management/deletion-receipts")
    (receipt,) = receipts["items"]
    assert receipt["id"] == row["receiptId"] and receipt["agreementId"] == first
    assert receipt["consumerId"] == s.recycler.app[IDENTITY].did
    assert receipt["assets"] == [s.asset_id] and receipt["transferId"] == transfer_id
    claims = read_receipt(receipt["receipt"])
    assert claims.issuer == s.recycler.app[IDENTITY].did
    assert claims.subject == s.oem.app[IDENTITY].did
    assert receipt["receipt"]["type"] == ["VerifiableCredential", "DataDeletionReceipt"]
    assert receipt["receipt"]["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert (await s.ok(s.oem, "GET", f"/management/deletion-receipts?agreementId={second}")) \
        ["items"] == []
    async with s.oem.app[STORE].read() as reader:
        audit = [e for e in await reader.list_audit(subject_id=first, limit=500)
                 if e.action == "usage.receipt-received"]
    assert len(audit) == 1 and audit[0].details["receipt_id"] == receipt["id"]

    # The second agreement's delete duty fell due a day ago (grace: one hour): overdue.
    overdue = await s.ok(s.oem, "GET", "/management/deletion-receipts/overdue")
    (item,) = overdue["items"]
    second_view = await s.ok(s.oem, "GET", f"/management/agreements/{second}")
    assert item["agreementId"] == second
    assert item["consumerDid"] == s.recycler.app[IDENTITY].did
    assert item["assetId"] == s.asset_id
    due = parse_time(second_view["signedAt"]) + timedelta(days=7)
    assert parse_time(item["dueAt"]) == due
    assert 86400 - 5 <= item["overdueBy"] <= 86400 + 60

    # The CLI shows the same.
    result = await cli("received", "--json", "--node", s.recycler.url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["items"][0]["receiptId"] == row["receiptId"]
    result = await cli("receipts", "list", "--json", "--node", s.oem.url)
    assert result.exit_code == 0 and json.loads(result.output)["items"][0]["id"] == receipt["id"]
    result = await cli("receipts", "overdue", "--node", s.oem.url)
    assert result.exit_code == 0 and "24.0" in result.output, result.output


async def test_a_receipt_the_provider_missed_is_sent_again(tmp_path: Path) -> None:
    """The OEM is down when the recycler purges: the receipt stays unsent and goes out once
    the OEM is back."""
    clock = ShiftedClock()
    oem_config = config_for(tmp_path / "oem", free_port())
    async with (
        node(config_for(tmp_path / "recycler", free_port()), clock) as recycler,
        aiohttp.ClientSession() as session,
    ):
        async with node(oem_config, clock) as oem:
            s = Space(oem, recycler, session, clock)
            await s.publish()
            transfer_id = await s.transfer(await s.agreement())
            await s.ok(recycler, "GET", f"/management/transfers/{transfer_id}/data")
        clock.advance(timedelta(days=8))
        row = await s.until(recycler, "/management/received-data",
                            lambda page: page["items"][0]["purgedAt"] is not None)
        await asyncio.sleep(0.3)  # several rounds, each failing to reach the OEM
        row = await s.ok(recycler, "GET", "/management/received-data")
        assert row["items"][0]["receiptSentAt"] is None
        async with recycler.app[STORE].read() as reader:
            assert len(await reader.list_received_data(receipt_unsent=True)) == 1
        async with node(oem_config, clock) as oem:
            s.oem = oem
            await s.until(recycler, "/management/received-data",
                          lambda page: page["items"][0]["receiptSentAt"] is not None)
            receipts = await s.ok(oem, "GET", "/management/deletion-receipts")
            assert [r["id"] for r in receipts["items"]] == [row["items"][0]["receiptId"]]
            assert (await s.ok(oem, "GET", "/management/deletion-receipts/overdue"))["items"] \
                == []


# --- the provider's door: every bad receipt is refused and nothing is stored -------------------


async def stored_receipts(s: Space) -> list[Any]:
    rows = []
    for target in (s.oem, s.recycler):
        async with target.app[STORE].read() as reader:
            rows.append([r.id for r in await reader.list_deletion_receipts()])
            rows.append([e.seq for e in await reader.list_audit(limit=500)
                         if e.action == "usage.receipt-received"])
    return rows


async def test_bad_receipts_are_refused_and_change_nothing(space: Space) -> None:
    s = space
    agreement_id = await s.agreement()
    recycler = key_of(s.recycler)
    before = await stored_receipts(s)
    good = receipt_for(s, recycler, agreement_id)

    def raw(document: Any) -> bytes:
        return json.dumps(document).encode()

    # Unauthenticated: the protocol's 401 body.
    status, body = await s.post_receipt(s.oem, raw(good), None)
    assert status == 401 and body["code"] == "unauthorized"

    tampered = json.loads(json.dumps(good))
    tampered["credentialSubject"]["assets"] = ["urn:asset:something-else"]
    stolen_key = receipt_for(s, OUTSIDER, agreement_id)
    stolen_key["issuer"] = s.recycler.app[IDENTITY].did  # signed by another key than issuer's
    not_a_receipt = json.loads(json.dumps(good))
    not_a_receipt["type"] = ["VerifiableCredential"]
    no_proof = {k: v for k, v in good.items() if k != "proof"}
    cases: list[tuple[str, RunningNode, bytes, Ed25519Key, int, str]] = [
        ("not JSON", s.oem, b"{not json", recycler, 400, "malformed-receipt"),
        ("JSON array", s.oem, b"[]", recycler, 400, "malformed-receipt"),
        ("no credential", s.oem, raw({"hello": "world"}), recycler, 400, "malformed-receipt"),
        ("wrong type", s.oem, raw(not_a_receipt), recycler, 400, "malformed-receipt"),
        ("no proof", s.oem, raw(no_proof), recycler, 400, "malformed-receipt"),
        ("addressed elsewhere", s.oem,
         raw(receipt_for(s, recycler, agreement_id, subject=OUTSIDER.controller)),
         recycler, 400, "malformed-receipt"),
        ("unknown agreement", s.oem, raw(receipt_for(s, recycler, "urn:uuid:no-such")),
         recycler, 404, "unknown-agreement"),
        ("tampered", s.oem, raw(tampered), recycler, 400, "bad-signature"),
        ("signed by another key", s.oem, raw(stolen_key), recycler, 400, "bad-signature"),
        ("issued by someone else", s.oem, raw(receipt_for(s, OUTSIDER, agreement_id)),
         recycler, 403, "not-your-agreement"),
        ("someone else's agreement", s.oem, raw(receipt_for(s, OUTSIDER, agreement_id)),
         OUTSIDER, 403, "not-your-agreement"),
        ("to the consumer of the agreement", s.recycler,
         raw(receipt_for(s, key_of(s.oem), agreement_id, subject=s.recycler.app[IDENTITY].did)),
         key_of(s.oem), 403, "not-your-agreement"),
    ]
    for name, target, body_bytes, key, expected, code in cases:
        status, body = await s.post_receipt(target, body_bytes, key)
        assert (status, body.get("code")) == (expected, code), (name, body)
        assert body["type"].endswith("#" + code) and body["status"] == expected, name
    assert await stored_receipts(s) == before

    status, body = await s.post_receipt(s.oem, raw(good), recycler)
    assert status == 201 and body == {"id": good["id"], "agreementId": agreement_id,
                                      "recorded": True, "duplicate": False}
    status, body = await s.post_receipt(s.oem, raw(good), recycler)  # retried: idempotent
    assert status == 200 and body["duplicate"] is True
    receipts = await s.ok(s.oem, "GET", "/management/deletion-receipts")
    assert [r["id"] for r in receipts["items"]] == [good["id"]]

    # Management views need the operator key and answer problem JSON for unknown ids.
    async with s.session.get(s.oem.url + "/management/deletion-receipts") as response:
        assert response.status == 401
    status, body = await s.manage(s.recycler, "GET", "/management/received-data/urn:uuid:nope")
    assert status == 404 and body["type"].endswith("#not-found")
    status, body = await s.manage(s.oem, "GET", "/management/deletion-receipts?limit=0")
    assert status == 400 and body["type"].endswith("#invalid-query")


# --- the pieces --------------------------------------------------------------------------------


def test_the_receipt_defines_every_term_it_uses() -> None:
    """The node never signs undefined terms: the receipt expands with nothing dropped, and a
    term no context defines makes signing fail."""
    key = key_from_seed(bytes(range(32)))
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    receipt = deletion_receipt(key, receipt_id="urn:uuid:r1", provider_did="did:web:oem.example",
                               agreement_id="urn:uuid:a1", transfer_id="urn:uuid:t1",
                               assets=["asset-1", "asset-2"], purged_at=now)
    assert receipt["@context"][1] == USAGE_CONTEXT_V1
    (expanded,) = expand_strict({k: v for k, v in receipt.items() if k != "proof"})
    (subject,) = expanded["https://www.w3.org/2018/credentials#credentialSubject"]
    assert {k for k in subject if k != "@id"} == {
        USAGE + "agreementId", USAGE + "transferId", USAGE + "assets", USAGE + "purgedAt"}
    assert [v["@value"] for v in subject[USAGE + "assets"]] == ["asset-1", "asset-2"]
    assert USAGE + "DataDeletionReceipt" in expanded["@type"]
    claims = read_receipt(receipt)
    assert (claims.agreement_id, claims.assets, claims.purged_at) == (
        "urn:uuid:a1", ("asset-1", "asset-2"), now)

    unsigned = {k: v for k, v in receipt.items() if k != "proof"}
    unsigned["credentialSubject"] = {**unsigned["credentialSubject"], "deletedBy": "a robot"}
    with pytest.raises(UndefinedTerm):
        issue_credential(unsigned, key, suite="eddsa-jcs-2022")


def test_the_delete_duty_is_due_at_the_end_of_the_window() -> None:
    consumer = "did:web:recycler.example"
    start = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    agreement = {**delete_policy(consumer), "@id": "urn:uuid:a", "@type": "Agreement",
                 "target": "asset-1", "assigner": "did:web:oem.example", "assignee": consumer}
    week = start + timedelta(days=7)
    assert delete_due_at(agreement, consumer, start, start) == week
    assert delete_due_at(agreement, consumer, start, start + timedelta(days=30)) == week
    without_duty = json.loads(json.dumps(agreement))
    del without_duty["permission"][0]["duty"]
    assert delete_due_at(without_duty, consumer, start, start) is None
    # The Catena-X default for dismantling data carries the same duty (claims are taken as
    # proven at negotiation: the agreement was concluded).
    cx = default_policy(DataCategory.DISMANTLING_SAFETY, "urn:uuid:p")
    assert cx is not None
    assert delete_due_at(cx, consumer, start) == week
    # Someone the policy does not grant has no duty under it.
    restricted = delete_policy("did:web:other.example")
    assert delete_due_at(restricted, consumer, start) is None
