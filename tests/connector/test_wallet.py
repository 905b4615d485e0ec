"""The node's wallet through its management API and ``bpc wallet``, against REAL nodes: only
credentials that verify, are live and were issued to this node get in; every refusal is a
problem JSON 4xx that leaves the store as it was."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from typer.testing import CliRunner

from connector.app import STORE
from connector.cli import app as cli_app
from credentials import issue_credential, key_from_seed
from credentials.keys import Ed25519Key
from credentials.timestamps import format_datetime
from tests.connector import test_dcp_holder as holder
from tests.connector.test_dcp_holder import WALLET, Pair, add_to_wallet, role_credential
from tests.connector.test_vcapi import AUTH, OPERATOR_KEY, issue

# The holder tests' nodes: verifier/issuer A and holder B (with a clock the test may move).
pair = holder.pair
passphrase = holder.passphrase


async def call(pair: Pair, method: str, path: str,
               **kwargs: Any) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
    async with pair.client.request(method, pair.b.url + path, **kwargs) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None, dict(response.headers)


def path_of(credential_id: str) -> str:
    return f"{WALLET}/{quote(credential_id, safe=':@')}"


async def stored(pair: Pair) -> list[tuple[str, int, bool]]:
    async with pair.b.app[STORE].read() as reader:
        rows = await reader.list_wallet_credentials(include_removed=True)
    return [(row.id, row.version, row.removed_at is None) for row in rows]


async def test_add_list_get_and_remove(pair: Pair) -> None:
    dismantler = await issue(pair.client, pair.a, role_credential(pair.b_did))
    until = format_datetime(pair.clock() + timedelta(days=30))
    member = await issue(pair.client, pair.a, role_credential(
        pair.b_did, "MembershipCredential", id="https://example.org/credentials/42",
        validUntil=until))

    status, view = await add_to_wallet(pair.client, pair.b, dismantler)
    assert status == 201, view
    dismantler_id = view["id"]
    assert dismantler_id.startswith("urn:uuid:")  # no id of its own: derived from the content
    assert view == {"id": dismantler_id, "types": ["DismantlerCredential"],
                    "issuer": pair.a_did, "validUntil": None, "removedAt": None,
                    "createdAt": view["createdAt"], "credential": dismantler}
    status, view, headers = await call(pair, "POST", WALLET, json=member, headers=AUTH)
    assert status == 201, view
    assert view is not None and view["validUntil"] == until
    assert headers["Location"] == path_of("https://example.org/credentials/42")

    status, listing, _ = await call(pair, "GET", WALLET, headers=AUTH)
    assert listing is not None
    assert [item["id"] for item in listing["items"]] == sorted([dismantler_id,
                                                                member["id"]])
    assert listing["next"] is None
    status, first, _ = await call(pair, "GET", WALLET + "?limit=1", headers=AUTH)
    assert first is not None and len(first["items"]) == 1 and first["next"]
    status, second, _ = await call(pair, "GET", f"{WALLET}?limit=1&after={first['next']}",
                                   headers=AUTH)
    assert second is not None
    assert [i["id"] for i in first["items"] + second["items"]] == [
        i["id"] for i in listing["items"]]
    for path in (path_of(member["id"]), f"{WALLET}/{member['id']}"):  # slashes encoded or not
        status, one, _ = await call(pair, "GET", path, headers=AUTH)
        assert status == 200 and one is not None and one["credential"] == member

    before = await stored(pair)
    status, problem, headers = await call(pair, "POST", WALLET, json=dismantler, headers=AUTH)
    assert status == 409 and problem is not None
    assert problem["type"].endswith("#already-exists") and problem["id"] == dismantler_id
    assert headers["Content-Type"].startswith("application/problem+json")
    assert await stored(pair) == before

    status, _, _ = await call(pair, "DELETE", path_of(dismantler_id), headers=AUTH)
    assert status == 204
    for method in ("GET", "DELETE"):
        status, problem, _ = await call(pair, method, path_of(dismantler_id), headers=AUTH)
        assert status == 404 and problem is not None and problem["type"].endswith("#not-found")
    status, problem, _ = await call(pair, "DELETE", path_of("urn:uuid:never-held"),
                                    headers=AUTH)
    assert status == 404 and problem is not None
    status, listing, _ = await call(pair, "GET", WALLET, headers=AUTH)
    assert listing is not None and [i["id"] for i in listing["items"]] == [member["id"]]
    status, listing, _ = await call(pair, "GET", WALLET + "?includeRemoved=true", headers=AUTH)
    assert listing is not None
    removed = {i["id"]: i["removedAt"] for i in listing["items"]}
    assert removed[member["id"]] is None and removed[dismantler_id] is not None
    status, problem, _ = await call(pair, "GET", WALLET + "?includeRemoved=maybe",
                                    headers=AUTH)
    assert status == 400 and problem is not None and problem["parameter"] == "includeRemoved"

    # A removed credential may come back.
    status, view = await add_to_wallet(pair.client, pair.b, dismantler)
    assert status == 201 and view["removedAt"] is None and view["id"] == dismantler_id
    async with pair.b.app[STORE].read() as reader:
        actions = [e.action for e in await reader.list_audit(subject_id=dismantler_id)]
    assert actions == ["wallet.credential.added", "wallet.credential.removed",
                       "wallet.credential.added"]


async def test_refused_credentials_change_nothing(pair: Pair) -> None:
    good = await issue(pair.client, pair.a, role_credential(pair.b_did))
    for_other = await issue(pair.client, pair.a, role_credential(pair.a_did))
    two_subjects = await issue(pair.client, pair.a, {
        **role_credential(pair.b_did, "BpnCredential"),
        "credentialSubject": [{"id": pair.b_did}, {"id": pair.a_did}]})
    tampered = copy.deepcopy(good)
    tampered["credentialSubject"]["activityType"] = ["batteryRecycling"]
    revoked = await issue(pair.client, pair.a, role_credential(pair.b_did))
    async with pair.client.post(pair.a.url + "/management/status/revoke", headers=AUTH,
                                json={"credential": revoked}) as response:
        assert response.status == 200
    suspended = await issue(pair.client, pair.a, role_credential(pair.b_did))
    async with pair.client.post(pair.a.url + "/management/status/suspend", headers=AUTH,
                                json={"credential": suspended}) as response:
        assert response.status == 200
    past = format_datetime(pair.clock() - timedelta(days=1))
    expired = await issue(pair.client, pair.a, role_credential(
        pair.b_did, "BpnCredential", validFrom=format_datetime(pair.clock() - timedelta(days=9)),
        validUntil=past))
    # Signed by a did:web nobody serves: its key cannot be resolved.
    nobody = Ed25519Key(bytes([6] * 32), "did:web:127.0.0.1%3A9#key-1")
    unresolvable = issue_credential({**role_credential(pair.b_did, "BpnCredential"),
                                     "issuer": "did:web:127.0.0.1%3A9"}, nobody,
                                    suite="eddsa-jcs-2022")
    # did:key issuers resolve offline; this one signs as another did:key than it names.
    rogue, named = key_from_seed(bytes([1] * 32)), key_from_seed(bytes([2] * 32))
    signed = issue_credential({**role_credential(pair.b_did, "BpnCredential"),
                               "issuer": rogue.controller}, rogue, suite="eddsa-jcs-2022")
    assert isinstance(signed, dict)
    misattributed = {**signed, "issuer": named.controller}

    unsigned = role_credential(pair.b_did)
    cases: list[tuple[Any, int, str, str | None]] = [
        (for_other, 422, "not-issued-to-this-node", None),
        (two_subjects, 422, "not-issued-to-this-node", None),
        (tampered, 422, "credential-not-verified", "bad-signature"),
        (revoked, 422, "credential-not-verified", "revoked"),
        (suspended, 422, "credential-not-verified", "suspended"),
        (expired, 422, "credential-not-verified", "expired"),
        (unresolvable, 422, "credential-not-verified", "unknown-key"),
        (misattributed, 422, "credential-not-verified", None),
        (unsigned, 400, "malformed-credential", None),
        ({"verifiableCredential": good}, 400, "malformed-credential", None),
        ({"id": "urn:x", "type": "VerifiableCredential"}, 400, "malformed-credential", None),
        ({**good, "validUntil": "tomorrow"}, 400, "malformed-credential", None),
        ({**good, "type": 7}, 400, "malformed-credential", None),
        ([good], 400, "malformed-json", None),
        ("eyJhbGciOiJFZERTQSJ9.e30.c2ln", 400, "malformed-json", None),
    ]
    for body, status, slug, problem_type in cases:
        code, problem = await add_to_wallet(pair.client, pair.b, body)
        assert (code, problem["type"].rsplit("#", 1)[-1]) == (status, slug), (body, problem)
        if problem_type is not None:
            assert problem_type in {p["type"] for p in problem["problems"]}, problem
    status, problem, headers = await call(pair, "POST", WALLET, data=b"{not json",
                                          headers={**AUTH, "Content-Type": "application/json"})
    assert status == 400 and problem is not None and problem["type"].endswith("#malformed-json")
    status, problem, headers = await call(pair, "POST", WALLET, json=good)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    for method, path in (("GET", WALLET), ("GET", path_of("x")), ("DELETE", path_of("x"))):
        status, _, _ = await call(pair, method, path)
        assert status == 401
    assert await stored(pair) == []
    async with pair.b.app[STORE].read() as reader:
        assert [e for e in await reader.list_audit() if e.action.startswith("wallet.")] == []


async def test_bpc_wallet_commands(pair: Pair, tmp_path: Path) -> None:
    vc = await issue(pair.client, pair.a, role_credential(pair.b_did))
    other = await issue(pair.client, pair.a, role_credential(pair.b_did,
                                                             "MembershipCredential"))
    file = tmp_path / "vc.json"
    file.write_text(json.dumps({"verifiableCredential": vc}))  # the VC-API answer as saved
    runner = CliRunner()
    node = ["--node", pair.b.url, "--api-key", OPERATOR_KEY]

    async def bpc(*args: str, stdin: str | None = None) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, [*args, *node], input=stdin,
                                       env={"COLUMNS": "400"})

    added = await bpc("wallet", "add", str(file))
    assert added.exit_code == 0, added.output
    assert "DismantlerCredential" in added.output and pair.a_did in added.output
    piped = await bpc("wallet", "add", "-", "--json", stdin=json.dumps(other))
    assert piped.exit_code == 0, piped.output
    other_id = json.loads(piped.stdout)["id"]
    again = await bpc("wallet", "add", str(file))
    assert again.exit_code == 2 and "409" in again.output
    listed = await bpc("wallet", "list", "--json")
    assert listed.exit_code == 0, listed.output
    ids = [item["id"] for item in json.loads(listed.stdout)["items"]]
    assert other_id in ids and len(ids) == 2
    table = await bpc("wallet", "list")
    assert table.exit_code == 0 and "MembershipCredential" in table.output
    shown = await bpc("wallet", "show", other_id)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["credential"] == other
    removed = await bpc("wallet", "remove", other_id)
    assert removed.exit_code == 0 and other_id in removed.output
    gone = await bpc("wallet", "remove", other_id)
    assert gone.exit_code == 2 and "404" in gone.output
    (tmp_path / "bad.json").write_text("{nope")
    unreadable = await bpc("wallet", "add", str(tmp_path / "bad.json"))
    assert unreadable.exit_code == 2 and "cannot read" in unreadable.output
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(await issue(pair.client, pair.a,
                                              role_credential(pair.a_did))))
    refused = await bpc("wallet", "add", str(foreign))
    assert refused.exit_code == 2 and "not-issued-to-this-node" in refused.output
    assert sorted(row[0] for row in await stored(pair) if row[2]) == sorted(
        i for i in ids if i != other_id)
