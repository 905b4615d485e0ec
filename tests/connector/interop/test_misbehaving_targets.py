"""A misbehaving target never crashes the harness: each failure is a failed check with a
reason and the response it got (timeouts, refused connections, invalid JSON, wrong types)."""

from __future__ import annotations

import asyncio
import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from connector.interop import report
from connector.interop.context import Target
from connector.interop.model import Status
from connector.interop.registry import select
from connector.interop.session import Options, run_suite

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DID = "did:web:127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def _invalid_json(request: web.Request) -> web.Response:
    return web.Response(text='{"protocolVersions": [', content_type="application/json")


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>login</html>", content_type="text/html")


async def _not_an_object(request: web.Request) -> web.Response:
    return web.json_response(["a", "list"])


@pytest.fixture(params=[_slow, _invalid_json, _html, _not_an_object],
                ids=["timeout", "invalid-json", "html", "not-an-object"])
async def bad_target(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async for url in serve(request.param):
        yield url


async def _run(provider_url: str, only: list[str], **options: float) -> list:
    target = Target("provider", provider_url, did=DID)
    return await run_suite(target, None, select(only),
                           Options(http_timeout_s=options.get("http", 1.0),
                                   check_timeout_s=options.get("check", 10.0), wait_s=1.0))


async def test_each_misbehaviour_is_a_failed_check_with_what_came_back(bad_target: str) -> None:
    results = await _run(bad_target, ["MET:01-01", "CAT:01-01", "CAT:01-02", "CN:01-01",
                                      "TP:02-01"])
    assert [r.id for r in results] == ["MET:01-01", "CAT:01-01", "CAT:01-02", "CN:01-01",
                                       "TP:02-01"]
    for result in results:
        assert result.status is Status.FAIL, result
        assert result.reason and "harness error" not in result.reason, result.reason
        assert result.evidence, result.id  # the response (or the error) is kept
        assert bad_target in result.evidence[0].url


async def test_a_refused_connection_fails_every_check_and_the_run_ends() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    results = await _run(closed, ["MET:*", "CAT:*", "CN:01-01"])
    assert results and all(r.status is Status.FAIL for r in results)
    assert all("connection failed" in r.reason for r in results), [r.reason for r in results]
    assert all(r.evidence[0].error for r in results)


async def test_a_check_slower_than_its_limit_fails_with_a_timeout() -> None:
    async for url in serve(_slow):
        results = await _run(url, ["MET:01-01"], http=30.0, check=0.5)
        assert results[0].status is Status.FAIL
        assert "within 0.5 s" in results[0].reason


async def test_checks_without_their_target_are_skipped_with_the_reason() -> None:
    async for url in serve(_html):
        results = await _run(url, ["CN_C:01-01", "IOP:SETUP-01", "IOP:CN-01"])
        assert [r.status for r in results] == [Status.SKIP] * 3
        assert "consumer" in results[0].reason
        assert "IOP:SETUP-01" in results[2].reason or "consumer" in results[2].reason


async def test_reports_are_valid_json_and_junit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async for url in serve(_invalid_json):
        results = await _run(url, ["MET:01-01", "CN_C:01-01"])
    document = json.loads(report.dumps(results, provider=url))
    assert document["summary"] == {"total": 2, "passed": 0, "failed": 1, "skipped": 1}
    assert document["checks"][0]["evidence"][0]["body"].startswith('{"protocolVersions"')
    path = tmp_path / "junit.xml"
    report.write_junit(results, str(path))
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["MET:01-01", "CN_C:01-01"]
    assert cases[0].find("failure") is not None and cases[1].find("skipped") is not None
