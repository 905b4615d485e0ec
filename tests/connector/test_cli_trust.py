"""``bpc trust list | add | remove | import`` against REAL nodes on loopback.

The nodes run on the test's event loop; the CLI (which blocks on its HTTP calls) runs in a
worker thread, as in ``test_status_lists_http``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner, Result

from connector.app import IDENTITY
from connector.cli import app as bpc
from connector.serve import RunningNode, running_node
from connector.trust_registry import TRUST
from tests.connector.test_trust_registry_http import (
    CERTIFIER,
    DISMANTLER,
    LIST_ID,
    MEMBERSHIP,
    RECYCLER,
    issued_list,
    signed_list,
    stored,
)
from tests.connector.test_vcapi import OPERATOR_KEY, PASSPHRASE_ENV, config_for, free_port


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    """An authority node and the node the CLI manages."""
    async with running_node(config_for(tmp_path / "authority")) as authority, \
            running_node(config_for(tmp_path / "node")) as node:
        yield authority, node


async def run(node: RunningNode, *args: str, key: str | None = OPERATOR_KEY,
              url: str | None = None) -> Result:
    env = {"BPC_NODE_URL": url or node.url, "BPC_API_KEY": key, "COLUMNS": "250"}
    return await asyncio.to_thread(CliRunner().invoke, bpc, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


async def test_add_list_and_remove(nodes: tuple[RunningNode, RunningNode]) -> None:
    _, node = nodes
    empty = json.loads(ok(await run(node, "trust", "list", "--json")))
    assert empty == {"issuers": [], "authorities": [], "lists": []}
    said = ok(await run(node, "trust", "add", "--type", DISMANTLER, "--type", "cx:" + MEMBERSHIP,
                        "--issuer", CERTIFIER))
    assert f"trusted: {CERTIFIER} for {DISMANTLER}" in said
    assert f"trusted: {CERTIFIER} for {MEMBERSHIP}" in said
    said = ok(await run(node, "trust", "add", "--authority", "did:web:authority.example",
                        "--type", DISMANTLER, "--type", MEMBERSHIP))
    assert f"may vouch for {DISMANTLER}, {MEMBERSHIP}" in said
    registry = node.app[TRUST].current
    assert registry.trusts(CERTIFIER, DISMANTLER) and registry.trusts(CERTIFIER, MEMBERSHIP)

    table = ok(await run(node, "trust", "list"))
    assert "trusted issuers" in table and "trust-list authorities" in table
    assert CERTIFIER in table and "did:web:authority.example" in table
    listed = json.loads(ok(await run(node, "trust", "list", "--json")))
    assert {(e["credentialType"], e["issuer"]) for e in listed["issuers"]} == {
        (DISMANTLER, CERTIFIER), (MEMBERSHIP, CERTIFIER)}

    said = ok(await run(node, "trust", "remove", "--type", MEMBERSHIP, "--issuer", CERTIFIER))
    assert "no longer trusted" in said
    ok(await run(node, "trust", "remove", "--authority", "did:web:authority.example"))
    listed = json.loads(ok(await run(node, "trust", "list", "--json")))
    assert [(e["credentialType"], e["issuer"]) for e in listed["issuers"]] == [
        (DISMANTLER, CERTIFIER)]
    assert listed["authorities"] == []


async def test_import_a_list_and_remove_it(nodes: tuple[RunningNode, RunningNode],
                                           tmp_path: Path) -> None:
    authority, node = nodes
    did = authority.app[IDENTITY].did
    ok(await run(node, "trust", "add", "--authority", did, "--type", DISMANTLER))
    async with aiohttp.ClientSession() as client:
        credential = await issued_list(client, authority, {DISMANTLER: [RECYCLER]})
        rejected = await issued_list(client, authority, {MEMBERSHIP: [RECYCLER]},
                                     list_id="urn:uuid:members")
    good, bad, jwt = tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "list.jwt"
    good.write_text(json.dumps(credential))
    bad.write_text(json.dumps(rejected))
    jwt.write_text(signed_list(authority, {DISMANTLER: [CERTIFIER]}, jwt=True) + "\n")

    said = ok(await run(node, "trust", "import", str(good)))
    assert f"imported {LIST_ID} from {did}" in said and f"{DISMANTLER}: {RECYCLER}" in said
    assert node.app[TRUST].current.trusts(RECYCLER, DISMANTLER)
    table = ok(await run(node, "trust", "list"))
    assert LIST_ID in table and "imported trust lists" in table

    before = await stored(node)
    refused = await run(node, "trust", "import", str(bad))
    assert refused.exit_code == 1, refused.output
    assert f"{did} may not vouch for {MEMBERSHIP}" in refused.stderr
    assert await stored(node) == before

    # A VC-JOSE list from a file (the same list id, newer): replaces the first.
    imported = json.loads(ok(await run(node, "trust", "import", str(jwt), "--json")))
    assert imported["entries"] == [{"credentialType": DISMANTLER, "issuer": CERTIFIER}]
    assert not node.app[TRUST].current.trusts(RECYCLER, DISMANTLER)

    said = ok(await run(node, "trust", "remove", "--list", LIST_ID))
    assert "removed trust list" in said
    assert not node.app[TRUST].current.trusts(CERTIFIER, DISMANTLER)
    again = await run(node, "trust", "remove", "--list", LIST_ID)
    assert again.exit_code == 2 and "No such imported trust list" in again.stderr


REFUSALS: list[tuple[tuple[str, ...], str]] = [
    (("trust", "add", "--type", DISMANTLER), "either --issuer DID or --authority DID"),
    (("trust", "add", "--issuer", CERTIFIER), "at least one --type"),
    (("trust", "add", "--type", DISMANTLER, "--issuer", CERTIFIER, "--authority", CERTIFIER),
     "either --issuer"),
    (("trust", "add", "--type", "VerifiableCredential", "--issuer", CERTIFIER), "generic"),
    (("trust", "add", "--type", DISMANTLER, "--issuer", "certifier.example"), "not a DID"),
    (("trust", "remove", "--type", DISMANTLER, "--issuer", CERTIFIER), "No such trusted issuer"),
    (("trust", "remove", "--issuer", CERTIFIER), "give --type T --issuer DID"),
    (("trust", "remove", "--authority", CERTIFIER, "--list", LIST_ID), "give --type T"),
    (("trust", "remove", "--authority", CERTIFIER), "No such trust-list authority"),
]


async def test_refusals_exit_2_with_the_reason_and_change_nothing(
        nodes: tuple[RunningNode, RunningNode]) -> None:
    _, node = nodes
    ok(await run(node, "trust", "add", "--type", MEMBERSHIP, "--issuer", RECYCLER))
    before = await stored(node)
    for args, needle in REFUSALS:
        result = await run(node, *args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.stderr, (args, result.stderr)
    assert await stored(node) == before


async def test_files_keys_and_unreachable_nodes(nodes: tuple[RunningNode, RunningNode],
                                                tmp_path: Path) -> None:
    _, node = nodes
    cases: list[tuple[dict[str, Any], tuple[str, ...], str]] = [
        ({}, ("trust", "import", str(tmp_path / "missing.json")), "cannot read"),
        ({"key": None}, ("trust", "list"), "no operator API key"),
        ({"key": "wrong-operator-key-000000"}, ("trust", "list"), "HTTP 401"),
        ({"url": f"http://127.0.0.1:{free_port()}"}, ("trust", "list"), "cannot reach the node"),
    ]
    (tmp_path / "array.json").write_text("[1, 2]")
    (tmp_path / "text.txt").write_text("not a credential at all")
    cases += [({}, ("trust", "import", str(tmp_path / "array.json")), "one credential"),
              ({}, ("trust", "import", str(tmp_path / "text.txt")), "neither a JSON")]
    for options, args, needle in cases:
        result = await run(node, *args, **options)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.stderr, (needle, result.stderr)
    assert await stored(node) == (0, None)
