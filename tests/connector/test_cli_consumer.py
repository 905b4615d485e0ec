"""``bpc catalog | negotiate | transfer | negotiations | agreements | transfers`` against two
REAL nodes.

The nodes (the management test's provider and consumer) run on their own event loop in a
background thread, so the CLI, which blocks while it waits for answers, can be invoked with
``typer.testing.CliRunner`` from the test's thread. They start once for the module: every
test reads what it needs from them and none depends on another's leftovers except through
what it creates itself.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from connector.app import IDENTITY
from connector.cli import app
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, free_port
from tests.connector.test_management_consumer import (
    ACCESS_TOKEN,
    ASSET,
    KEY,
    REFRESH_TOKEN,
    REFUSED_ASSET,
    consumer_app,
    provider_app,
    seed_assets,
    started,
)


@dataclass(frozen=True)
class Nodes:
    provider_url: str
    consumer_url: str
    provider_did: str
    offers: dict[str, str]


class NodeThread:
    """Both nodes on a loop of their own; ``stop()`` shuts them down gracefully."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.nodes: Nodes | None = None
        self._thread = threading.Thread(target=self._run, name="cli-test-nodes", daemon=True)

    def start(self) -> Nodes:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the nodes did not start within 60 s")
        if self._error is not None or self.nodes is None:
            raise RuntimeError("the nodes failed to start") from self._error
        return self.nodes

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        p_port, c_port = free_port(), free_port()
        p_dir, c_dir = self._root / "p", self._root / "c"
        async with (started(provider_app(p_dir, p_port), p_dir, p_port) as provider,
                    started(consumer_app(c_dir, c_port), c_dir, c_port) as consumer):
            offers = await seed_assets(provider.app, consumer.app[IDENTITY].did)
            self.nodes = Nodes(provider.url, consumer.url, provider.app[IDENTITY].did, offers)
            self._ready.set()
            await self._stop.wait()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
        thread = NodeThread(tmp_path_factory.mktemp("cli-consumer"))
        try:
            yield thread.start()
        finally:
            thread.stop()


def bpc(nodes: Nodes, *args: str, key: str | None = KEY, **env: str | None) -> Result:
    environment: dict[str, str | None] = {"BPC_NODE_URL": nodes.consumer_url, "BPC_API_KEY": key,
                                          "COLUMNS": "300", **env}
    return CliRunner().invoke(app, list(args), env=environment)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


# --- the happy path ----------------------------------------------------------------------------


def test_catalog_negotiate_transfer_and_the_tables(nodes: Nodes) -> None:
    table = ok(bpc(nodes, "catalog", nodes.provider_url))
    assert f"catalog of {nodes.provider_did}: 2 datasets" in table
    assert ASSET in table and nodes.offers[ASSET] in table and "dismantling-safety" in table
    catalog = as_json(bpc(nodes, "catalog", nodes.provider_url, "--json",
                          "--provider-did", nodes.provider_did))
    assert catalog["@type"] == "Catalog" and catalog["participantId"] == nodes.provider_did

    negotiated = ok(bpc(nodes, "negotiate", nodes.provider_url, "--offer", nodes.offers[ASSET]))
    assert "FINALIZED" in negotiated
    agreement = negotiated.split("agreement ", 1)[1].split()[0]
    assert agreement.startswith("urn:uuid:")

    agreements = ok(bpc(nodes, "agreements", "--role", "consumer"))
    assert agreement in agreements and nodes.provider_did in agreements
    listed = as_json(bpc(nodes, "agreements", "--json"))
    mine = next(a for a in listed["items"] if a["id"] == agreement)
    assert mine["role"] == "consumer" and mine["assetId"] == ASSET
    assert "FINALIZED" in ok(bpc(nodes, "negotiations", "--state", "FINALIZED"))

    started_ = ok(bpc(nodes, "transfer", nodes.provider_url, "--agreement", agreement))
    assert "STARTED" in started_ and f"/data/{ASSET}" in started_
    assert "with an access token" in started_
    transfers = bpc(nodes, "transfers", "--agreement", agreement)
    assert "STARTED" in ok(transfers) and f"/data/{ASSET}" in transfers.stdout
    raw = ok(bpc(nodes, "transfers", "--json"))
    assert ACCESS_TOKEN not in raw and REFRESH_TOKEN not in raw
    assert json.loads(raw)["items"][0]["dataAddress"]["hasToken"] is True

    page = as_json(bpc(nodes, "negotiations", "--json", "--limit", "1"))
    assert len(page["items"]) == 1


def test_no_wait_returns_at_once_and_json_is_the_view(nodes: Nodes) -> None:
    view = as_json(bpc(nodes, "negotiate", nodes.provider_url, "--offer", nodes.offers[ASSET],
                       "--no-wait", "--json"))
    assert view["state"] == "REQUESTED" and view["role"] == "consumer"
    waited = as_json(bpc(nodes, "negotiate", nodes.provider_url, "--offer",
                         nodes.offers[ASSET], "--json"))
    assert waited["state"] == "FINALIZED" and waited["agreementId"]


def test_a_refused_negotiation_exits_1_with_its_reason(nodes: Nodes) -> None:
    result = bpc(nodes, "negotiate", nodes.provider_url, "--offer", nodes.offers[REFUSED_ASSET])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "TERMINATED" in result.stdout
    assert ("kind policy, failed constraint bpc-policy:participantDid: not a certified recycler"
            in result.stdout)


# --- errors ------------------------------------------------------------------------------------


def test_node_refusals_and_connection_problems_exit_2(nodes: Nodes) -> None:
    missing = bpc(nodes, "negotiations", key=None)
    assert missing.exit_code == 2 and "BPC_API_KEY" in missing.stderr

    wrong = bpc(nodes, "agreements", key="bpc_op_not-the-key-xxxxxxxx")
    assert wrong.exit_code == 2
    assert "Operator API key required (HTTP 401, unauthorized)" in wrong.stderr

    unknown = bpc(nodes, "negotiate", nodes.provider_url, "--offer", "urn:offer:nope")
    assert unknown.exit_code == 2, unknown.stdout
    assert "The provider does not offer this (HTTP 404, offer-not-found)" in unknown.stderr
    assert "urn:offer:nope" in unknown.stderr

    no_agreement = bpc(nodes, "transfer", nodes.provider_url, "--agreement", "urn:uuid:nope")
    assert no_agreement.exit_code == 2 and "No such agreement" in no_agreement.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    down = bpc(nodes, "transfers", "--node", dead)
    assert down.exit_code == 2 and f"is the node running at {dead}?" in down.stderr
    provider_down = bpc(nodes, "catalog", dead)
    assert provider_down.exit_code == 2 and "counterparty-unreachable" in provider_down.stderr

    bad_url = bpc(nodes, "negotiations", "--node", "ftp://node.example")
    assert bad_url.exit_code == 2 and "http(s)" in bad_url.stderr
    bad_filter = bpc(nodes, "negotiations", "--role", "owner")
    assert bad_filter.exit_code == 2 and "role must be provider or consumer" in bad_filter.stderr


def test_the_commands_are_in_bpc_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("catalog", "negotiate", "transfer", "negotiations", "agreements",
                    "transfers"):
        assert command in result.stdout
