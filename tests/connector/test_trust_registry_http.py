"""The node's trust registry over HTTP, with REAL nodes on loopback: the management API, its
persistence (restart, PostgreSQL replicas), config seeds, and federated trust lists signed by
another node (accepted, refused with reasons, dropped after their authority revokes them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector.app import IDENTITY, STORE
from connector.serve import RunningNode, running_node
from connector.trust_registry import TRUST, check_did
from credentials import issue_credential, issue_jwt_credential, key_from_seed
from credentials.timestamps import now_utc
from credentials.trust import trust_list_credential
from tests.connector.test_vcapi import AUTH, PASSPHRASE_ENV, config_for

DISMANTLER = "DismantlerCredential"
MEMBERSHIP = "MembershipCredential"
CERTIFIER = "did:web:certifier.example"
RECYCLER = "did:web:recycler.example:site%3A1"
STRANGER = key_from_seed(bytes([9] * 32))
LIST_ID = "https://authority.example/trust-lists/recyclers"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(config_for(tmp_path / "node")) as running:
        yield running


async def call(client: aiohttp.ClientSession, node: RunningNode, method: str, path: str,
               body: Any = None, *, params: dict[str, str] | None = None,
               headers: dict[str, str] | None = None, data: str | None = None,
               ) -> tuple[int, Any]:
    """One request; ``(status, JSON body or None)``. Error answers must be problem JSON."""
    async with client.request(method, node.url + path, json=body, params=params, data=data,
                              headers=AUTH if headers is None else headers) as response:
        text = await response.text()
        if response.status >= 400:
            assert response.content_type == "application/problem+json", text
            assert "Traceback" not in text
        return response.status, json.loads(text) if text else None


async def view(client: aiohttp.ClientSession, node: RunningNode) -> dict[str, Any]:
    status, body = await call(client, node, "GET", "/management/trust")
    assert status == 200, body
    return dict(body)


async def stored(node: RunningNode) -> tuple[int, dict[str, Any] | None]:
    async with node.app[STORE].read() as reader:
        record = await reader.get_trust_registry("default")
    return (record.version, record.document) if record else (0, None)


def pairs(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["credentialType"], e["issuer"], e["source"]) for e in body["issuers"]}


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


async def issued_list(client: aiohttp.ClientSession, authority: RunningNode,
                      grants: dict[str, list[str]], *, list_id: str = LIST_ID,
                      days: int = 30) -> dict[str, Any]:
    """A trust list issued by ``authority`` through its VC-API (so it has status entries)."""
    start = now_utc() - timedelta(minutes=1)
    unsigned = trust_list_credential(list_id, grants, valid_from=start,
                                     valid_until=start + timedelta(days=days))
    status, body = await call(client, authority, "POST", "/credentials/issue",
                              {"credential": unsigned})
    assert status == 201, body
    return dict(body["verifiableCredential"])


def signed_list(authority: RunningNode, grants: dict[str, list[str]], *, start: Any = None,
                days: int = 30, jwt: bool = False) -> Any:
    """A trust list signed with ``authority``'s key directly (no status entry)."""
    start = start or now_utc() - timedelta(minutes=1)
    unsigned = trust_list_credential(LIST_ID, grants, valid_from=start,
                                     valid_until=start + timedelta(days=days))
    key = authority.app[IDENTITY].signing_key
    if jwt:
        return issue_jwt_credential(unsigned, key, now=start)
    return issue_credential(unsigned, key, now=start)


# --- local entries over the API ---------------------------------------------------------------


async def test_add_list_and_remove_issuers_and_authorities(
        node: RunningNode, client: aiohttp.ClientSession) -> None:
    assert await view(client, node) == {"issuers": [], "authorities": [], "lists": []}
    assert await stored(node) == (0, None)
    entry = {"credentialType": DISMANTLER, "issuer": CERTIFIER}
    assert await call(client, node, "POST", "/management/trust/issuers", entry) == (
        201, {**entry, "source": "local"})
    assert (await call(client, node, "POST", "/management/trust/issuers", entry))[0] == 200
    # An IRI names the same type: trust is kept under the short name credentials use.
    status, body = await call(client, node, "POST", "/management/trust/issuers",
                              {"credentialType": "cx:MembershipCredential", "issuer": RECYCLER})
    assert status == 201 and body["credentialType"] == MEMBERSHIP
    status, _ = await call(client, node, "POST", "/management/trust/issuers",
                           {"credentialType": "*", "issuer": "did:key:z6MkAnyType"})
    assert status == 201
    registry = node.app[TRUST].current
    assert registry.trusts(CERTIFIER, DISMANTLER)
    assert registry.trusts(CERTIFIER, "https://w3id.org/catenax/credentials/DismantlerCredential")
    assert not registry.trusts(CERTIFIER, MEMBERSHIP)
    assert registry.trusts("did:key:z6MkAnyType", MEMBERSHIP)
    authority = {"issuer": "did:web:authority.example", "credentialTypes": [DISMANTLER]}
    assert await call(client, node, "POST", "/management/trust/authorities", authority) == (
        201, {**authority, "source": "local"})
    widened = {**authority, "credentialTypes": [MEMBERSHIP, DISMANTLER]}
    assert (await call(client, node, "POST", "/management/trust/authorities", widened))[0] == 200

    listed = await view(client, node)
    assert pairs(listed) == {(DISMANTLER, CERTIFIER, "local"), (MEMBERSHIP, RECYCLER, "local"),
                             ("*", "did:key:z6MkAnyType", "local")}
    assert all(e["active"] and not e["fromConfig"] for e in listed["issuers"])
    assert listed["authorities"] == [{"issuer": "did:web:authority.example",
                                      "credentialTypes": [DISMANTLER, MEMBERSHIP],
                                      "source": "local", "fromConfig": False}]
    version, document = await stored(node)
    assert version == node.app[TRUST].version and document is not None
    assert len(document["entries"]) == 4

    assert (await call(client, node, "DELETE", "/management/trust/issuers", entry))[0] == 204
    assert (await call(client, node, "DELETE", "/management/trust/issuers", entry))[0] == 404
    status, _ = await call(client, node, "DELETE", "/management/trust/issuers",
                           params={"credentialType": MEMBERSHIP, "issuer": RECYCLER})
    assert status == 204
    status, _ = await call(client, node, "DELETE", "/management/trust/authorities",
                           {"issuer": "did:web:authority.example"})
    assert status == 204
    status, _ = await call(client, node, "DELETE", "/management/trust/authorities",
                           params={"issuer": "did:web:authority.example"})
    assert status == 404
    assert pairs(await view(client, node)) == {("*", "did:key:z6MkAnyType", "local")}
    assert not node.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)
    async with node.app[STORE].read() as reader:
        actions = [e.action for e in await reader.list_audit()]
    assert "trust.issuer.add" in actions and "trust.issuer.remove" in actions


async def test_bad_requests_are_4xx_problems_and_change_nothing(
        node: RunningNode, client: aiohttp.ClientSession) -> None:
    good = {"credentialType": DISMANTLER, "issuer": CERTIFIER}
    assert (await call(client, node, "POST", "/management/trust/issuers", good))[0] == 201
    before, before_view = await stored(node), await view(client, node)
    issuers = "/management/trust/issuers"
    cases: list[tuple[str, str, Any, dict[str, Any], int, str]] = [
        ("POST", issuers, {"credentialType": "VerifiableCredential", "issuer": CERTIFIER}, {},
         400, "generic"),
        ("POST", issuers, {"credentialType": "TrustListCredential", "issuer": CERTIFIER}, {},
         400, "authority"),
        ("POST", issuers, {"credentialType": "", "issuer": CERTIFIER}, {}, 400, "credentialType"),
        ("POST", issuers, {"credentialType": "Dis mantler", "issuer": CERTIFIER}, {}, 400,
         "not a credential type"),
        ("POST", issuers, {"credentialType": DISMANTLER, "issuer": "certifier.example"}, {},
         400, "not a DID"),
        ("POST", issuers, {"credentialType": DISMANTLER, "issuer": "did:web:"}, {}, 400,
         "not a DID"),
        ("POST", issuers, {"credentialType": DISMANTLER, "issuer": "did:Web:x y"}, {}, 400,
         "not a DID"),
        ("POST", issuers, {**good, "issuer": RECYCLER, "scope": "all"}, {}, 400,
         "unknown field"),
        ("POST", issuers, {"credential_type": DISMANTLER, "issuer": RECYCLER}, {}, 400,
         "unknown field"),
        ("POST", issuers, {"issuer": RECYCLER}, {}, 400, "required"),
        ("POST", issuers, "{not json", {}, 400, "invalid JSON"),
        ("POST", issuers, [good], {}, 400, "JSON object"),
        ("POST", issuers, {"credentialType": 7, "issuer": RECYCLER}, {}, 400, "credentialType"),
        ("DELETE", issuers, {**good, "extra": 1}, {}, 400, "unknown field"),
        ("DELETE", issuers, good, {"issuer": CERTIFIER}, 400, "not both"),
        ("POST", "/management/trust/authorities",
         {"issuer": "did:web:authority.example", "credentialTypes": []}, {}, 400,
         "credentialTypes"),
        ("POST", "/management/trust/authorities",
         {"issuer": "did:web:authority.example", "credentialTypes": ["VerifiableCredential"]},
         {}, 400, "generic"),
        ("POST", "/management/trust/authorities",
         {"issuer": "authority", "credentialTypes": [DISMANTLER]}, {}, 400, "not a DID"),
        ("POST", "/management/trust/lists", "{", {}, 400, "invalid JSON"),
        ("POST", "/management/trust/lists", {"verifiableCredential": 5}, {}, 400,
         "verifiableCredential"),
        ("POST", "/management/trust/lists",
         {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": "VerifiableCredential"},
         {}, 422, "does not verify"),
        ("DELETE", "/management/trust/lists/https:%2F%2Fnowhere.example%2Fl", None, {}, 404,
         "nowhere.example"),
        ("DELETE", "/management/trust/lists/local", None, {}, 404, "local"),
    ]
    for method, path, body, params, expected, needle in cases:
        data = body if isinstance(body, str) else None
        payload = None if isinstance(body, str) else body
        headers = {**AUTH, "Content-Type": "application/json"} if data is not None else None
        status, answer = await call(client, node, method, path, payload, params=params or None,
                                    data=data, headers=headers)
        assert status == expected, (method, path, body, answer)
        assert needle in json.dumps(answer), (needle, answer)
    status, _ = await call(client, node, "POST", "/management/trust/lists", data="a.b",
                           headers={**AUTH, "Content-Type": "application/vc+jwt"})
    assert status == 400
    # Without the operator key nothing is even read.
    for method, path in (("GET", "/management/trust"), ("POST", issuers),
                         ("DELETE", issuers), ("POST", "/management/trust/lists")):
        status, answer = await call(client, node, method, path, good, headers={})
        assert status == 401, answer
    assert await stored(node) == before
    assert await view(client, node) == before_view


# --- persistence ------------------------------------------------------------------------------


async def test_trust_survives_a_restart(tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with running_node(config_for(tmp_path / "node")) as first:
        await call(client, first, "POST", "/management/trust/issuers",
                   {"credentialType": DISMANTLER, "issuer": CERTIFIER})
        await call(client, first, "POST", "/management/trust/authorities",
                   {"issuer": "did:web:authority.example", "credentialTypes": ["*"]})
        before = await view(client, first)
    async with running_node(config_for(tmp_path / "node")) as second:
        assert await view(client, second) == before
        assert second.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)


async def test_config_seeds_trust_at_every_start(tmp_path: Path,
                                                 client: aiohttp.ClientSession) -> None:
    config = config_for(tmp_path / "node",
                        trusted_issuers={"cx:DismantlerCredential": [CERTIFIER],
                                         MEMBERSHIP: [CERTIFIER, RECYCLER]},
                        trust_authorities={"did:web:authority.example": [DISMANTLER]})
    async with running_node(config) as first:
        listed = await view(client, first)
        assert pairs(listed) == {(DISMANTLER, CERTIFIER, "local"),
                                 (MEMBERSHIP, CERTIFIER, "local"),
                                 (MEMBERSHIP, RECYCLER, "local")}
        assert all(e["fromConfig"] for e in listed["issuers"])
        assert listed["authorities"][0]["fromConfig"] is True
        version = (await stored(first))[0]
        # An operator's own entry is kept beside the seeds; a seed removed over the API…
        await call(client, first, "POST", "/management/trust/issuers",
                   {"credentialType": "BatteryManufacturingCredential", "issuer": RECYCLER})
        status, _ = await call(client, first, "DELETE", "/management/trust/issuers",
                               {"credentialType": MEMBERSHIP, "issuer": RECYCLER})
        assert status == 204
        assert version == 1
    async with running_node(config.model_copy(update={"port": 0})) as second:
        # … comes back at the next start (the config is authoritative for what it names).
        listed = await view(client, second)
        assert (MEMBERSHIP, RECYCLER, "local") in pairs(listed)
        assert ("BatteryManufacturingCredential", RECYCLER, "local") in pairs(listed)
        version = (await stored(second))[0]
    async with running_node(config.model_copy(update={"port": 0})) as third:
        assert (await stored(third))[0] == version, "seeds already there write nothing"


async def test_replicas_on_postgresql_share_the_registry(
        tmp_path: Path, client: aiohttp.ClientSession, postgres_store_url: str) -> None:
    def replica() -> Any:
        return config_for(tmp_path / "node", store=postgres_store_url, watch_interval_s=0.1)

    async with running_node(replica()) as one, running_node(replica()) as two:
        # Concurrent changes through both replicas, from an empty store (both try to insert
        # the first version): every one of them is kept.
        issuers = [f"did:web:issuer-{n}.example" for n in range(12)]
        answers = await asyncio.gather(*(
            call(client, (one, two)[n % 2], "POST", "/management/trust/issuers",
                 {"credentialType": MEMBERSHIP, "issuer": issuer})
            for n, issuer in enumerate(issuers)))
        assert [status for status, _ in answers] == [201] * len(issuers)
        _, document = await stored(one)
        assert document is not None
        assert {e["issuer"] for e in document["entries"]
                if e["credentialType"] == MEMBERSHIP} == set(issuers)

        async def both_see_all() -> bool:
            return all(node.app[TRUST].current.trusts(issuer, MEMBERSHIP)
                       for node in (one, two) for issuer in issuers)

        await eventually(both_see_all)
        assert one.app[TRUST].version == two.app[TRUST].version == len(issuers)
        # A change on one replica reaches the other at its next reload.
        status, _ = await call(client, one, "POST", "/management/trust/issuers",
                               {"credentialType": DISMANTLER, "issuer": CERTIFIER})
        assert status == 201

        async def two_trusts() -> bool:
            return two.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)

        await eventually(two_trusts)
        status, _ = await call(client, two, "DELETE", "/management/trust/issuers",
                               {"credentialType": DISMANTLER, "issuer": CERTIFIER})
        assert status == 204

        async def one_forgot() -> bool:
            return not one.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)

        await eventually(one_forgot)


# --- federated trust lists --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def federation(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    """An authority node and a node that trusts it for dismantler lists (fast watch)."""
    async with running_node(config_for(tmp_path / "authority")) as authority:
        did = authority.app[IDENTITY].did
        config = config_for(tmp_path / "importer", watch_interval_s=0.2,
                            trust_authorities={did: [DISMANTLER]})
        async with running_node(config) as importer:
            yield authority, importer


async def test_a_list_from_a_trusted_authority_is_imported_and_removed(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with federation(tmp_path) as (authority, importer):
        credential = await issued_list(client, authority, {DISMANTLER: [RECYCLER, CERTIFIER]})
        status, body = await call(client, importer, "POST", "/management/trust/lists",
                                  credential)
        assert status == 201, body
        assert body["source"] == LIST_ID and body["authority"] == authority.app[IDENTITY].did
        assert body["active"] is True and "credential" not in body
        assert body["entries"] == [{"credentialType": DISMANTLER, "issuer": CERTIFIER},
                                   {"credentialType": DISMANTLER, "issuer": RECYCLER}]
        assert importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
        listed = await view(client, importer)
        assert (DISMANTLER, RECYCLER, LIST_ID) in pairs(listed)
        assert [s["source"] for s in listed["lists"]] == [LIST_ID]
        # A VC-JOSE list (the same id, newer) replaces it; sent as vc+jwt.
        jwt = signed_list(authority, {DISMANTLER: [RECYCLER]}, jwt=True,
                          start=now_utc())
        status, body = await call(client, importer, "POST", "/management/trust/lists",
                                  data=jwt, headers={**AUTH, "Content-Type": "application/vc+jwt"})
        assert status == 201, body
        assert not importer.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)
        status, _ = await call(client, importer, "DELETE",
                               "/management/trust/lists/https:%2F%2Fauthority.example%2F"
                               "trust-lists%2Frecyclers")
        assert status == 204
        assert not importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
        assert (await view(client, importer))["lists"] == []
        _, document = await stored(importer)
        assert document is not None and document["sources"] == []


async def test_refused_lists_are_422_with_the_reason_and_change_nothing(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with federation(tmp_path) as (authority, importer):
        before = await stored(importer)
        out_of_scope = await issued_list(client, authority, {MEMBERSHIP: [RECYCLER]})
        tampered = await issued_list(client, authority, {DISMANTLER: [RECYCLER]})
        tampered["credentialSubject"]["trustEntry"][0]["trustedIssuer"] = [CERTIFIER]
        expired = signed_list(authority, {DISMANTLER: [RECYCLER]},
                              start=now_utc() - timedelta(days=40))
        unsigned = trust_list_credential(LIST_ID, {DISMANTLER: [RECYCLER]},
                                         valid_from=now_utc() - timedelta(minutes=1),
                                         valid_until=now_utc() + timedelta(days=1))
        stranger = issue_credential(unsigned, STRANGER)
        cases = [
            (out_of_scope, "may not vouch for MembershipCredential"),
            (tampered, "bad-signature"),
            (expired, "expired"),
            (stranger, "is not trusted as an authority for trust lists"),
            ({"verifiableCredential": stranger}, "is not trusted as an authority"),
        ]
        for credential, reason in cases:
            status, body = await call(client, importer, "POST", "/management/trust/lists",
                                      credential)
            assert status == 422, body
            assert body["type"].endswith("#trust-list-rejected")
            assert any(reason in r for r in body["reasons"]), (reason, body)
        _, body = await call(client, importer, "POST", "/management/trust/lists", tampered)
        assert [p["type"] for p in body["problems"]] == ["bad-signature"]
        assert await stored(importer) == before
        assert not importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
        # The authority losing its scope refuses its next list, and drops the imported one.
        good = await issued_list(client, authority, {DISMANTLER: [RECYCLER]})
        assert (await call(client, importer, "POST", "/management/trust/lists", good))[0] == 201
        await call(client, importer, "DELETE", "/management/trust/authorities",
                   {"issuer": authority.app[IDENTITY].did})
        assert not importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
        status, body = await call(client, importer, "POST", "/management/trust/lists", good)
        assert status == 422 and "not trusted as an authority" in body["detail"]

        async def dropped() -> bool:
            return (await view(client, importer))["lists"] == []

        await eventually(dropped)


async def test_a_revoked_list_drops_out_at_the_next_watch_round(
        tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with federation(tmp_path) as (authority, importer):
        credential = await issued_list(client, authority, {DISMANTLER: [RECYCLER]})
        assert (await call(client, importer, "POST", "/management/trust/lists",
                           credential))[0] == 201
        await asyncio.sleep(0.5)  # a few watch rounds: a good list stays
        assert importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
        status, body = await call(client, authority, "POST", "/management/status/revoke",
                                  {"credential": credential})
        assert status == 200, body

        async def gone() -> bool:
            return not importer.app[TRUST].current.trusts(RECYCLER, DISMANTLER)

        await eventually(gone)
        _, document = await stored(importer)
        assert document is not None and document["sources"] == []
        async with importer.app[STORE].read() as reader:
            audit = [e for e in await reader.list_audit() if e.action == "trust.list.drop"]
        assert audit and "revoked" in json.dumps(audit[0].details)
        # And it cannot be imported again.
        status, body = await call(client, importer, "POST", "/management/trust/lists",
                                  credential)
        assert status == 422 and any("revoked" in r for r in body["reasons"])


async def test_expired_lists_are_dropped_but_unreachable_authorities_are_not(
        tmp_path: Path, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_node(config_for(tmp_path / "authority")) as authority:
        did = authority.app[IDENTITY].did
        credential = await issued_list(client, authority, {DISMANTLER: [RECYCLER]}, days=2)
        config = config_for(tmp_path / "importer", trust_authorities={did: [DISMANTLER]})
        importer_ctx = running_node(config)
        importer = await importer_ctx.__aenter__()
        try:
            assert (await call(client, importer, "POST", "/management/trust/lists",
                               credential))[0] == 201
        except BaseException:
            await importer_ctx.__aexit__(None, None, None)
            raise
    try:
        # The authority's node is gone: its status list cannot be fetched. The list is kept.
        trust = importer.app[TRUST]
        with caplog.at_level("WARNING", logger="connector.trust_registry"):
            assert await trust.recheck() == {}
        assert "could not be checked" in caplog.text and "status-unavailable" in caplog.text
        assert trust.current.trusts(RECYCLER, DISMANTLER)
        # Past its validUntil it is dropped for good, whatever else is known.
        dropped = await trust.recheck(now=now_utc() + timedelta(days=3))
        assert list(dropped) == [LIST_ID]
        assert (await stored(importer))[1]["sources"] == []  # type: ignore[index]
    finally:
        await importer_ctx.__aexit__(None, None, None)


def test_did_syntax() -> None:
    for good in ("did:web:a.example", "did:web:a.example:path:x%3A1", "did:key:z6Mk1"):
        assert check_did(good) == good
    for bad in ("did:web", "did:web:", "did::x", "did:WEB:x", "did:web:a b", "did:web:a#k",
                "did:web:a/b", "x" * 3000, "web:a"):
        with pytest.raises(ValueError):
            check_did(bad)


def test_trust_settings_from_toml_and_environment(tmp_path: Path) -> None:
    from connector.config import ConfigError, load_config

    path = tmp_path / "node.toml"
    path.write_text('[trusted_issuers]\n"cx:DismantlerCredential" = ["did:web:kba.example"]\n'
                    '"*" = ["did:web:operator.example"]\n'
                    '[trust_authorities]\n"did:web:authority.example" = ["DismantlerCredential"]\n')
    config = load_config(path, environ={})
    assert config.trusted_issuers == {DISMANTLER: ["did:web:kba.example"],
                                      "*": ["did:web:operator.example"]}
    assert config.trust_authorities == {"did:web:authority.example": [DISMANTLER]}
    from_env = load_config(None, environ={
        "BPC_TRUST_AUTHORITIES": '{"did:web:authority.example": ["*"]}'})
    assert from_env.trust_authorities == {"did:web:authority.example": ["*"]}
    for environ, needle in [
        ({"BPC_TRUSTED_ISSUERS": '{"VerifiableCredential": ["did:web:a.example"]}'}, "generic"),
        ({"BPC_TRUSTED_ISSUERS": '{"DismantlerCredential": ["a.example"]}'}, "not a DID"),
        ({"BPC_TRUSTED_ISSUERS": '{"DismantlerCredential": []}'}, "non-empty list"),
        ({"BPC_TRUST_AUTHORITIES": '{"did:web:a.example": ["TrustListCredential"]}'},
         "authority"),
        ({"BPC_TRUST_AUTHORITIES": "not json"}, "JSON object"),
    ]:
        with pytest.raises(ConfigError, match=needle) as caught:
            load_config(None, environ=environ)
        assert "BPC_TRUST" in str(caught.value)
