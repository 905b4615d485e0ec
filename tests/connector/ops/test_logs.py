"""Log lines: JSON when asked, every secret scrubbed — checked on ``bpc serve`` as a process,
with the operator key and a bearer token sent in headers and (carelessly) in query strings."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from connector.ops.logs import REDACTED, configure_logging, scrub
from tests.connector.test_node import _bpc_env, _wait_healthy, bearer, free_port

OPERATOR_KEY = "bpc_op_" + "K" * 43
#: Shaped like the data plane's access tokens (a compact JWT).
ACCESS_TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ0b2tlbi0xIn0.c2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA"


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_scrub_removes_keys_and_tokens_but_keeps_the_rest() -> None:
    line = (f"GET /x?key={OPERATOR_KEY}&t={ACCESS_TOKEN} Authorization: Bearer opaque-token-1 "
            "took 3 ms")
    clean = scrub(line)
    assert OPERATOR_KEY not in clean and ACCESS_TOKEN not in clean
    assert "opaque-token-1" not in clean
    assert clean.startswith("GET /x?key=") and clean.endswith("took 3 ms")
    assert f"Bearer {REDACTED}" in clean


def test_json_lines_carry_time_level_logger_message_and_extras(restore_logging: object) -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    log = logging.getLogger("connector.dsp.test")
    log.info("negotiation %s finalized with %s", "pid-1", f"Bearer {ACCESS_TOKEN}",
             extra={"process_id": "pid-1", "role": "provider"})
    try:
        raise ValueError(f"bad header Bearer {ACCESS_TOKEN}")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    first, second = lines
    assert first["level"] == "INFO" and first["logger"] == "connector.dsp.test"
    assert first["message"] == f"negotiation pid-1 finalized with Bearer {REDACTED}"
    assert first["process_id"] == "pid-1" and first["role"] == "provider"
    assert first["time"].endswith("Z")
    assert second["level"] == "ERROR" and "ValueError" in second["exception"]
    assert ACCESS_TOKEN not in stream.getvalue()


def test_text_lines_are_scrubbed_too(restore_logging: object) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "text", stream)
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /m?k=%s HTTP/1.1" 401', OPERATOR_KEY)
    assert OPERATOR_KEY not in stream.getvalue() and "GET /m?k=" in stream.getvalue()


@pytest.mark.slow
async def test_bpc_serve_json_logs_never_show_the_key_or_a_token(tmp_path: Path) -> None:
    port = free_port()
    config_path = tmp_path / "node.toml"
    config_path.write_text(f'public_base_url = "http://127.0.0.1:{port}"\ndata_dir = "data"\n')
    env = {**_bpc_env(tmp_path), "BPC_LOG_FORMAT": "json", "BPC_LOG_LEVEL": "DEBUG",
           "BPC_OPERATOR_API_KEY": OPERATOR_KEY}
    log_path = tmp_path / "stderr.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "serve", "--config", str(config_path)],
            stdout=subprocess.DEVNULL, stderr=log_file, text=True, env=env)
        try:
            await _wait_healthy(url, process)
            async with aiohttp.ClientSession() as client:
                for method, path, headers in (
                    ("GET", "/management/assets", bearer(OPERATOR_KEY)),
                    ("GET", "/management/assets", bearer(OPERATOR_KEY + "-wrong")),
                    ("GET", f"/management/assets?api_key={OPERATOR_KEY}", {}),
                    ("GET", "/dataplane/assets/some-asset", bearer(ACCESS_TOKEN)),
                    ("GET", f"/dataplane/assets/some-asset?access_token={ACCESS_TOKEN}", {}),
                    ("POST", "/dataplane/token", bearer(ACCESS_TOKEN)),
                ):
                    async with client.request(method, url + path, headers=headers) as response:
                        await response.read()
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line["message"] for line in lines if line["logger"] == "aiohttp.access"]
    assert any("/management/assets?api_key=" in message for message in access), access
    assert any("/dataplane/assets/some-asset?access_token=" in message for message in access)
    assert OPERATOR_KEY not in text and OPERATOR_KEY[len("bpc_op_"):] not in text
    assert ACCESS_TOKEN not in text and ACCESS_TOKEN.split(".")[2] not in text
