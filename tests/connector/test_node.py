"""A real node on a loopback port: DID document, operator key, error shapes, shutdown, CLI.

No mocks: every test talks HTTP to a node listening on 127.0.0.1, the way another node or an
operator's script would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connector.app import IDENTITY, create_app
from connector.config import NodeConfig
from connector.management.auth import OPERATOR_AUTH, OPERATOR_KEY_FILE
from connector.problems import PROBLEM_BASE, PROBLEM_JSON
from connector.serve import RunningNode, running_node
from credentials import DIDResolver, HttpDIDFetcher, Verifier

PASSPHRASE_ENV = "BPC_TEST_NODE_PASSPHRASE"
V2 = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL = {
    "@context": [V2, {"@vocab": "https://example.org/vocab#"}],
    "type": ["VerifiableCredential"],
    "credentialSubject": {"id": "did:example:battery-1", "note": "hello"},
}


def free_port() -> int:
    """A port nobody listens on now, so the node's did:web can name the port it will use."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_config(data_dir: Path, **settings: Any) -> NodeConfig:
    port = free_port()
    return NodeConfig(
        public_base_url=f"http://127.0.0.1:{port}",
        data_dir=data_dir,
        keystore_passphrase_env=PASSPHRASE_ENV,
        shutdown_timeout_s=5,
        **settings,
    )


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(node_config(tmp_path / "data")) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def assert_problem(
    response: aiohttp.ClientResponse, status: int, slug: str
) -> dict[str, Any]:
    """A problem+json body of the expected type, with no trace of the code behind it."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == PROBLEM_JSON
    assert "Traceback" not in text and 'File "' not in text
    body: dict[str, Any] = json.loads(text)
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status and body["title"]
    return body


# --- identity ----------------------------------------------------------------------------------


async def test_did_document_keys_verify_what_the_node_issued(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    key = node.app[OPERATOR_AUTH].take_generated_key()
    assert key is not None
    async with client.get(f"{node.url}/.well-known/did.json") as response:
        assert response.status == 200
        document = await response.json()
    did = node.app[IDENTITY].did
    assert did == f"did:web:127.0.0.1%3A{node.port}"
    assert document["id"] == did
    assert document["verificationMethod"][0]["type"] == "Multikey"
    assert document["assertionMethod"] == [f"{did}#key-1"]

    async with client.post(f"{node.url}/credentials/issue", json={"credential": CREDENTIAL},
                           headers=bearer(key)) as response:
        assert response.status == 201, await response.text()
        issued = (await response.json())["verifiableCredential"]
    assert issued["issuer"] == did
    assert issued["proof"]["verificationMethod"] == f"{did}#key-1"

    # An independent verifier resolves the did:web over the socket, as another party would.
    outsider = Verifier(DIDResolver(web_fetcher=HttpDIDFetcher(allow_http_loopback=True)))
    result = await outsider.verify_credential(issued)
    assert result.verified, result.to_json()
    tampered = {**issued, "credentialSubject": {**issued["credentialSubject"], "note": "bye"}}
    assert not (await outsider.verify_credential(tampered)).verified


async def test_did_key_identity_keeps_the_same_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_node(node_config(data_dir)) as first:
        web_identity = first.app[IDENTITY]
    async with running_node(node_config(data_dir, identity="did:key")) as second:
        key_identity = second.app[IDENTITY]
        async with aiohttp.ClientSession() as client, client.get(
            f"{second.url}/.well-known/did.json"
        ) as response:
            document = await response.json()
    # One key, two names: switching the identity method never replaces the node key.
    assert key_identity.did.startswith("did:key:z6Mk")
    assert key_identity.signing_key.public_key == web_identity.signing_key.public_key
    assert key_identity.stored_key_id == web_identity.stored_key_id
    assert document["id"] == key_identity.did
    assert document["verificationMethod"][0]["id"] == key_identity.verification_method


async def test_path_base_url_serves_did_json_where_did_web_resolves(tmp_path: Path) -> None:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}/nodes/a", host="127.0.0.1",
                        data_dir=tmp_path / "data", keystore_passphrase_env=PASSPHRASE_ENV)
    async with running_node(config) as running, aiohttp.ClientSession() as client:
        async with client.get(f"{running.url}/did.json") as response:
            document = await response.json()
    assert document["id"] == f"did:web:127.0.0.1%3A{port}:nodes:a"


async def test_missing_passphrase_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connector.identity import IdentityError

    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(IdentityError, match=PASSPHRASE_ENV):
        async with running_node(node_config(tmp_path / "data")):
            pass


# --- operator key ------------------------------------------------------------------------------


async def test_operator_key_flow(tmp_path: Path, client: aiohttp.ClientSession) -> None:
    data_dir = tmp_path / "data"
    async with running_node(node_config(data_dir)) as running:
        key = running.app[OPERATOR_AUTH].take_generated_key()
        assert key is not None and key.startswith("bpc_op_")
        assert running.app[OPERATOR_AUTH].take_generated_key() is None  # shown once only
        issue = f"{running.url}/credentials/issue"
        body = {"credential": CREDENTIAL}

        async with client.post(issue, json=body) as response:
            problem = await assert_problem(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="bpc-node"'
            assert "Authorization: Bearer" in problem["detail"]
        async with client.post(issue, json=body, headers=bearer(key + "x")) as response:
            await assert_problem(response, 401, "unauthorized")
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        async with client.post(issue, json=body, headers={"Authorization": f"Basic {key}"}) as r:
            await assert_problem(r, 401, "unauthorized")
        async with client.post(issue, json=body, headers=bearer(key)) as response:
            assert response.status == 201

    stored = data_dir / OPERATOR_KEY_FILE
    assert stored.stat().st_mode & 0o777 == 0o600
    text = stored.read_text()
    assert key not in text and key[len("bpc_op_"):] not in text  # only a salted hash is kept

    # A restart keeps the key and does not generate (or show) a new one.
    async with running_node(node_config(data_dir)) as again:
        assert again.app[OPERATOR_AUTH].take_generated_key() is None
        async with client.post(f"{again.url}/credentials/issue", json=body,
                               headers=bearer(key)) as response:
            assert response.status == 201


async def test_operator_key_from_config_is_used(
    tmp_path: Path, client: aiohttp.ClientSession
) -> None:
    key = "operator-key-set-by-hand-0001"
    async with running_node(node_config(tmp_path / "data", operator_api_key=key)) as running:
        assert running.app[OPERATOR_AUTH].take_generated_key() is None
        async with client.post(f"{running.url}/credentials/issue", json={"credential": CREDENTIAL},
                               headers=bearer(key)) as response:
            assert response.status == 201
    assert not (tmp_path / "data" / OPERATOR_KEY_FILE).exists()


# --- error shapes ------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(tmp_path: Path, client: aiohttp.ClientSession) -> None:
    async with running_node(node_config(tmp_path / "data", max_body_bytes=2048)) as running:
        url = f"{running.url}/credentials/verify"
        big = json.dumps({"verifiableCredential": {"pad": "x" * 4096}}).encode()
        async with client.post(url, data=big) as response:
            problem = await assert_problem(response, 413, "body-too-large")
        assert problem["maxBodyBytes"] == 2048

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked encoding
            for _ in range(8):
                yield b" " * 1024

        async with client.post(url, data=chunks()) as response:
            await assert_problem(response, 413, "body-too-large")
        # Just under the limit is read (and then judged on its content).
        small = json.dumps({"verifiableCredential": {"pad": "x" * 1500}}).encode()
        async with client.post(url, data=small) as response:
            await assert_problem(response, 400, "verification-failed")


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'{"a": NaN}', b"\xff\xfe",
                                  b'{"a": "\\ud800"}'])
async def test_malformed_json_is_400(
    node: RunningNode, client: aiohttp.ClientSession, body: bytes
) -> None:
    async with client.post(f"{node.url}/credentials/verify", data=body,
                           headers={"Content-Type": "application/json"}) as response:
        problem = await assert_problem(response, 400, "malformed-json")
    assert problem["detail"]


async def test_unknown_route_and_wrong_method(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    async with client.get(f"{node.url}/no/such/thing") as response:
        problem = await assert_problem(response, 404, "not-found")
        assert problem["detail"] == "nothing at /no/such/thing"
    async with client.get(f"{node.url}/credentials/issue") as response:
        problem = await assert_problem(response, 405, "method-not-allowed")
        assert response.headers["Allow"] == "POST"
        assert "allowed: POST" in problem["detail"]


async def test_unexpected_error_is_a_500_problem_without_trace(
    tmp_path: Path, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    config = node_config(tmp_path / "data")
    app = create_app(config)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals /etc/passwd")

    app.router.add_get("/broken", broken)
    async with running_node(config, app) as running:
        with caplog.at_level(logging.ERROR, logger="connector.problems"):
            async with client.get(f"{running.url}/broken") as response:
                problem = await assert_problem(response, 500, "internal-error")
    text = json.dumps(problem)
    assert "secret internals" not in text and "RuntimeError" not in text
    # The operator finds the trace in the log under the id the client was given.
    record = next(r for r in caplog.records if problem["errorId"] in r.getMessage())
    assert record.exc_info is not None


async def test_health(node: RunningNode, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{node.url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "did": node.app[IDENTITY].did}


# --- graceful shutdown -------------------------------------------------------------------------


async def test_in_flight_request_finishes_during_shutdown(
    tmp_path: Path, client: aiohttp.ClientSession
) -> None:
    config = node_config(tmp_path / "data")
    app = create_app(config)
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(0.5)
        return web.json_response({"finished": True})

    app.router.add_get("/slow", slow)
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(running_node(config, app))
        url = running.url

        async def call() -> tuple[int, Any]:
            async with client.get(f"{url}/slow") as response:
                return response.status, await response.json()

        in_flight = asyncio.create_task(call())
        await started.wait()
        shutdown_began = time.monotonic()
    # Leaving the stack shut the node down; that waited for the request instead of cutting it.
    assert time.monotonic() - shutdown_began >= 0.3
    assert await in_flight == (200, {"finished": True})
    with pytest.raises(aiohttp.ClientConnectionError):
        async with client.get(f"{url}/health"):
            pass


# --- `bpc serve` as a process ------------------------------------------------------------------


def _bpc_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPC_")}
    return {**env, "BPC_KEYSTORE_PASSPHRASE": "correct horse", "PYTHONUNBUFFERED": "1"}


async def _wait_healthy(url: str, process: subprocess.Popen[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            with contextlib.suppress(aiohttp.ClientError):
                async with client.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise AssertionError("the node did not become healthy")


def _run_serve(config_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "connector", "serve", "--config", str(config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


@pytest.mark.slow
async def test_bpc_serve_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config_path = tmp_path / "node.toml"
    config_path.write_text(f'public_base_url = "http://127.0.0.1:{port}"\ndata_dir = "data"\n')
    env = _bpc_env(tmp_path)
    outputs = []
    for _ in range(2):  # first start generates the operator key, the second must not
        process = _run_serve(config_path, env)
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}", process)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "stopped" in stderr
        outputs.append(stdout)
    first, second = outputs
    assert first.count("bpc_op_") == 1
    key = next(word for word in first.split() if word.startswith("bpc_op_"))
    assert key not in (tmp_path / "data" / OPERATOR_KEY_FILE).read_text()
    assert second == ""


@pytest.mark.parametrize(("toml", "env", "expected"), [
    ('colour = "blue"\n', {}, "unknown setting 'colour'"),
    ('public_base_url = "http://oem.example"\n', {}, "did:web needs an https"),
    ("", {"BPC_KEYSTORE_PASSPHRASE": ""}, "BPC_KEYSTORE_PASSPHRASE"),
])
def test_bpc_serve_refuses_to_start_with_a_clear_message(
    tmp_path: Path, toml: str, env: dict[str, str], expected: str
) -> None:
    config_path = tmp_path / "node.toml"
    config_path.write_text(toml + f'port = {free_port()}\ndata_dir = "data"\n')
    run = subprocess.run(
        [sys.executable, "-m", "connector", "serve", "--config", str(config_path)],
        capture_output=True, text=True, env={**_bpc_env(tmp_path), **env}, timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert expected in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_serve_with_an_unreachable_store_exits_2_with_a_message(tmp_path: Path) -> None:
    """A node whose PostgreSQL is not there says so and stops; no traceback."""
    env = {**os.environ, "BPC_KEYSTORE_PASSPHRASE": "pw", "BPC_DATA_DIR": str(tmp_path),
           "BPC_PORT": "0", "BPC_STORE": "postgresql://127.0.0.1:1/nowhere"}
    run = subprocess.run([sys.executable, "-m", "connector", "serve"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "error:" in run.stderr and "Traceback" not in run.stderr
