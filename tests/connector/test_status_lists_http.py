"""The node's status lists over HTTP: issued credentials carry entries; revoke, suspend and
resume change what every verifier sees — the node itself and another node fetching the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector.app import STORE
from connector.serve import RunningNode, running_node
from credentials.status_list import StatusList, decode_bitstring
from tests.connector.test_vcapi import (
    AUTH,
    PASSPHRASE_ENV,
    config_for,
    issue,
    post,
    unsigned,
)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    async with (running_node(config_for(tmp_path / "issuer")) as issuer,
                running_node(config_for(tmp_path / "other")) as other):
        yield issuer, other


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def verify(client: aiohttp.ClientSession, node: RunningNode,
                 credential: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, body = await post(client, node, "/credentials/verify",
                                 {"verifiableCredential": credential})
    return status, body


async def change(client: aiohttp.ClientSession, node: RunningNode, action: str,
                 body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, _, answer = await post(client, node, f"/management/status/{action}", body, AUTH)
    return status, answer


def types_of(body: dict[str, Any]) -> set[str]:
    return {p["type"] for p in body.get("problems", [])}


async def test_issued_credentials_carry_status_and_verify_as_good(
    nodes: tuple[RunningNode, RunningNode], client: aiohttp.ClientSession,
) -> None:
    issuer, other = nodes
    vc = await issue(client, issuer, unsigned())
    entries = vc["credentialStatus"]
    assert sorted(e["statusPurpose"] for e in entries) == ["revocation", "suspension"]
    assert all(e["statusListCredential"].startswith(issuer.url + "/status/") for e in entries)
    async with client.get(entries[0]["statusListCredential"]) as response:
        assert response.status == 200
        listed = await response.json(content_type=None)
    assert listed["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert len(decode_bitstring(listed["credentialSubject"]["encodedList"])) == 16 * 1024
    for node in (issuer, other):  # the issuer reads its store, the other node fetches
        status, body = await verify(client, node, vc)
        assert status == 200 and body["verified"], body
        assert body["statusChecked"] is True


async def test_revoked_and_suspended_credentials_fail_everywhere(
    nodes: tuple[RunningNode, RunningNode], client: aiohttp.ClientSession,
) -> None:
    issuer, other = nodes
    vc, kept = await issue(client, issuer, unsigned()), await issue(client, issuer, unsigned())
    assert await change(client, issuer, "suspend", {"credential": vc}) == (200, {
        "statusListCredential": next(e["statusListCredential"] for e in vc["credentialStatus"]
                                     if e["statusPurpose"] == "suspension"),
        "statusListIndex": next(e["statusListIndex"] for e in vc["credentialStatus"]
                                if e["statusPurpose"] == "suspension"),
        "action": "suspend"})
    status, body = await verify(client, issuer, vc)
    assert status == 400 and "suspended" in types_of(body)
    await change(client, issuer, "resume", {"credential": vc})
    status, body = await verify(client, issuer, vc)
    assert status == 200, body
    entry = next(e for e in vc["credentialStatus"] if e["statusPurpose"] == "revocation")
    status, _ = await change(client, issuer, "revoke", {
        "statusListCredential": entry["statusListCredential"],
        "statusListIndex": entry["statusListIndex"]})
    assert status == 200
    status, body = await verify(client, issuer, vc)
    assert status == 400 and "revoked" in types_of(body)
    # Another node fetched the list before (a fresh node here): it sees the revocation too.
    status, body = await verify(client, other, vc)
    assert status == 400 and "revoked" in types_of(body)
    status, body = await verify(client, issuer, kept)
    assert status == 200, "revoking one credential leaves the others alone"


async def test_bad_status_requests_are_refused_and_change_nothing(
    nodes: tuple[RunningNode, RunningNode], client: aiohttp.ClientSession,
) -> None:
    issuer, _ = nodes
    vc = await issue(client, issuer, unsigned())
    revocation = next(e for e in vc["credentialStatus"] if e["statusPurpose"] == "revocation")
    async with issuer.app[STORE].read() as reader:
        before = [(r.url, r.version) for r in await reader.list_status_lists()]
        stored = await reader.get_status_list(revocation["statusListCredential"])
    assert stored is not None
    listed = StatusList.from_json(stored.state)
    never_issued = next(i for i in range(listed.length) if not listed.is_allocated(i))
    cases = [
        ("resume", {"credential": {"credentialStatus": revocation}}, 400),  # no suspension entry
        ("resume", {"statusListCredential": revocation["statusListCredential"],
                    "statusListIndex": revocation["statusListIndex"]}, 409),
        ("revoke", {"statusListCredential": revocation["statusListCredential"],
                    "statusListIndex": str(never_issued)}, 404),
        ("revoke", {"statusListCredential": "https://elsewhere.example/status/1",
                    "statusListIndex": "1"}, 404),
        ("revoke", {"credential": vc, "statusListIndex": "1"}, 400),
        ("obliterate", {"credential": vc}, 404),
    ]
    for action, body, expected in cases:
        status, answer = await change(client, issuer, action, body)
        assert status == expected, (action, body, answer)
    status, _, answer = await post(client, issuer, "/credentials/issue",
                                   {"credential": {**unsigned(), "credentialStatus": revocation}},
                                   AUTH)
    assert status == 400 and "credentialStatus" in str(answer)
    async with issuer.app[STORE].read() as reader:
        assert [(r.url, r.version) for r in await reader.list_status_lists()] == before
    async with client.get(issuer.url + "/status/no-such-list") as response:
        assert response.status == 404


async def test_bpc_status_revokes_through_the_node(
    nodes: tuple[RunningNode, RunningNode], client: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from connector.cli import app as bpc
    from tests.connector.test_vcapi import OPERATOR_KEY

    issuer, _ = nodes
    vc = await issue(client, issuer, unsigned())
    path = tmp_path / "vc.json"
    path.write_text(json.dumps(vc))
    env = {"BPC_NODE_URL": issuer.url, "BPC_API_KEY": OPERATOR_KEY, "COLUMNS": "200"}

    def run(*args: str) -> Any:
        return asyncio.to_thread(CliRunner().invoke, bpc, list(args), env=env)

    result = await run("status", "suspend", "--credential", str(path))
    assert result.exit_code == 0, result.output
    assert "suspend: index" in result.output
    status, body = await verify(client, issuer, vc)
    assert status == 400 and "suspended" in types_of(body)
    result = await run("status", "resume", "--credential", str(path))
    assert result.exit_code == 0
    result = await run("status", "revoke", "--list", "https://elsewhere.example/s", "--index", "1")
    assert result.exit_code == 2 and "No such" in result.output
    result = await run("status", "revoke")
    assert result.exit_code == 2 and "either --credential" in result.output
    status, body = await verify(client, issuer, vc)
    assert status == 200, body


async def test_a_list_is_valid_from_its_last_change_never_from_the_future(
    nodes: tuple[RunningNode, RunningNode], client: aiohttp.ClientSession,
) -> None:
    """Signing a list at fetch time raced verifiers that took ``now`` a moment before (a
    validFrom one second in their future): the list states the time of its last change."""
    from credentials.timestamps import format_datetime

    issuer, _ = nodes
    vc = await issue(client, issuer, unsigned())
    url = vc["credentialStatus"][0]["statusListCredential"]
    async with issuer.app[STORE].read() as reader:
        record = await reader.get_status_list(url)
    assert record is not None
    async with client.get(url) as response:
        first = await response.json(content_type=None)
    async with client.get(url) as response:
        again = await response.json(content_type=None)
    assert first["validFrom"] == format_datetime(record.updated_at)
    assert again == first, "signed once per version of the list"
