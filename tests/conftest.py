"""Fixtures shared by every test package: external services and the store backends.

Tests that need a real service (PostgreSQL now, an MQTT broker later) call
``require_service(name, host, port)`` (also available as a fixture of that name): when the
service does not answer, the test is skipped with the reason — on a laptop without the
service — but fails when ``BPC_REQUIRE_SERVICES=1`` (``.ci/run`` sets it), so CI never goes
green by skipping.

``store_url`` runs a test once per backend: a SQLite file in ``tmp_path``, and a fresh
PostgreSQL schema (``bpc_test_<random>``) that is dropped afterwards. ``BPC_TEST_POSTGRES_URL``
points the tests at another server (default ``postgresql://127.0.0.1:5432/test``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import settings

REQUIRE_SERVICES_ENV = "BPC_REQUIRE_SERVICES"
POSTGRES_URL_ENV = "BPC_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://127.0.0.1:5432/test"


def services_required() -> bool:
    """Whether a missing service fails the run (CI) instead of skipping tests."""
    return os.environ.get(REQUIRE_SERVICES_ENV, "").strip() not in ("", "0")


@functools.cache
def _unreachable(host: str, port: int, timeout: float) -> str | None:
    """Why ``host:port`` takes no TCP connection (``None`` if it does); asked once a run."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def require_service(name: str, host: str, port: int, *, timeout: float = 2.0) -> None:
    """Skip the calling test (fail it under ``BPC_REQUIRE_SERVICES=1``) unless ``name``
    answers on ``host:port``."""
    problem = _unreachable(host, port, timeout)
    if problem is None:
        return
    message = f"{name} is not reachable at {host}:{port} ({problem})"
    if services_required():
        pytest.fail(f"{message}, and {REQUIRE_SERVICES_ENV}=1 requires it", pytrace=False)
    pytest.skip(f"{message}; set {REQUIRE_SERVICES_ENV}=1 to make this a failure")


@pytest.fixture(name="require_service")
def require_service_fixture() -> Callable[..., None]:
    """``require_service`` for test modules that cannot import this conftest."""
    return require_service


def postgres_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def _run_in_thread(coroutine_function: Callable[[], object]) -> None:
    """Run an async cleanup on its own loop in a worker thread (whatever loop is around)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine_function()).result(timeout=60)  # type: ignore[arg-type]


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def postgres_store_url() -> Iterator[str]:
    """A ``postgresql://…?schema=bpc_test_<random>`` URL; the schema is dropped afterwards.

    The store creates the schema when it opens, so a test that never opens one leaves nothing.
    """
    url = postgres_url()
    parts = urlsplit(url)
    require_service("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    schema = f"bpc_test_{uuid.uuid4().hex[:16]}"
    separator = "&" if parts.query else "?"
    yield f"{url}{separator}schema={schema}"
    _run_in_thread(functools.partial(_drop_schema, url, schema))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store, once per backend (open it with ``open_store``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'node.db'}"
    return str(request.getfixturevalue("postgres_store_url"))


# Property tests explore new examples on developers' machines, but CI must be reproducible:
# there (CI=true) every run draws the same examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
