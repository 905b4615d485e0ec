"""Between two (and three) of our own nodes every check passes: the kit's 67 scenarios in both
roles (triggers on, ``tck_triggers``) and the interop checks through the management API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.app import create_app
from connector.cli import app as cli_app
from connector.config import NodeConfig
from connector.dsp.negotiation_service import DspSettings
from connector.interop.context import Target
from connector.interop.model import Status
from connector.interop.registry import all_checks, select
from connector.interop.session import Options, run_suite
from connector.serve import RunningNode, running_node

PASSPHRASE_ENV = "BPC_INTEROP_TEST_PASSPHRASE"
KEY = "bpc_op_interop-test-operator-key"
KEY_ENV = "BPC_INTEROP_TEST_KEY"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")
    monkeypatch.setenv(KEY_ENV, KEY)


@contextlib.asynccontextmanager
async def nodes(root: Path, count: int) -> AsyncIterator[list[RunningNode]]:
    async with contextlib.AsyncExitStack() as stack:
        running = []
        for index in range(count):
            port = free_port()
            config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}",
                                data_dir=root / f"node{index}", operator_api_key=KEY,
                                keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                                watch_interval_s=0.2, tck_triggers=True)
            settings = DspSettings(backoff_base_s=0.05, backoff_cap_s=0.3, lease_s=1.0,
                                   poll_interval_s=0.5)
            running.append(await stack.enter_async_context(
                running_node(config, create_app(config, dsp_settings=settings))))
        yield running


def target(name: str, node: RunningNode) -> Target:
    return Target(name, node.url, node.url, KEY,
                  negotiation_trigger=f"{node.url}/tck/negotiations/requests",
                  transfer_trigger=f"{node.url}/tck/transfers/requests")


@pytest.mark.slow
async def test_every_check_passes_between_two_of_our_nodes(tmp_path: Path) -> None:
    async with nodes(tmp_path, 2) as (provider, consumer):
        results = await run_suite(target("provider", provider), target("consumer", consumer),
                                  all_checks(), Options(wait_s=10))
    failed = [(r.id, r.reason) for r in results if r.status is not Status.PASS]
    assert not failed
    assert len(results) == len(all_checks()) >= 67 + 11


@pytest.mark.slow
async def test_the_command_writes_json_and_junit_and_exits_by_the_result(tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    async with nodes(tmp_path, 2) as (provider, consumer):
        args = ["interop", "--provider", provider.url, "--provider-key-env", KEY_ENV,
                "--consumer", consumer.url, "--consumer-key-env", KEY_ENV,
                "--consumer-triggers", "--only", "MET:*", "--only", "CAT:*",
                "--only", "CN_C:01-01", "--only", "IOP:*", "--junit", str(junit), "--json"]
        outcome = await asyncio.to_thread(CliRunner().invoke, cli_app, args)
        assert outcome.exit_code == 0, outcome.output
        document = json.loads(outcome.stdout)
        assert document["summary"]["failed"] == 0
        assert document["summary"]["passed"] == len(document["checks"]) == 17
        cases = ET.parse(junit).getroot().findall("testsuite/testcase")
        assert {c.get("name") for c in cases} == {c["id"] for c in document["checks"]}
        # A refusing target makes the command fail (and say why, in the table).
        closed = f"http://127.0.0.1:{free_port()}"
        outcome = await asyncio.to_thread(CliRunner().invoke, cli_app, [
            "interop", "--provider", closed, "--only", "MET:01-01"])
        assert outcome.exit_code == 1
        assert "connection failed" in outcome.output


@pytest.mark.slow
async def test_the_matrix_runs_every_pair_of_three_nodes(tmp_path: Path) -> None:
    async with nodes(tmp_path, 3) as running:
        toml = "".join(
            f'[[node]]\nname = "n{i}"\ndsp_url = "{node.url}"\napi_key_env = "{KEY_ENV}"\n'
            f"tck_triggers = true\n\n" for i, node in enumerate(running))
        path = tmp_path / "nodes.toml"
        path.write_text(toml)
        outcome = await asyncio.to_thread(CliRunner().invoke, cli_app, [
            "interop", "--matrix", str(path), "--only", "IOP:*", "--only", "MET:*"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout.strip().splitlines()[-1]) == {"pairs": 6, "failed": 0}
    for name in ("n0", "n1", "n2"):
        assert name in outcome.output
    assert len(select(["IOP:*", "MET:*"])) == 13


def test_triggers_are_off_by_default() -> None:
    assert NodeConfig().tck_triggers is False
    assert "BPC_TCK_TRIGGERS" not in os.environ


async def test_a_bad_trigger_is_a_400_and_starts_nothing(tmp_path: Path) -> None:
    import aiohttp

    async with nodes(tmp_path, 1) as (node,), aiohttp.ClientSession() as session:
        for body in ("not json", json.dumps({"datasetId": "ACNC0101"}),
                     json.dumps({"datasetId": "x", "offerId": "y", "providerId": "did:key:z",
                                 "connectorAddress": "ftp://elsewhere"})):
            async with session.post(f"{node.url}/tck/negotiations/requests", data=body) as answer:
                assert answer.status == 400, await answer.text()
        headers = {"Authorization": f"Bearer {KEY}"}
        async with session.get(f"{node.url}/management/negotiations", headers=headers) as answer:
            assert (await answer.json())["items"] == []
