"""Participant auth on a real loopback server with real Ed25519 did:key keys: every way a token
can be wrong is a 401 with a DSP error body; the right token yields the caller's DID."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from connector.participant_auth import (
    AuthFailure,
    ParticipantAuthError,
    ReplayCache,
    body_hash,
    sign_request,
    verify_request,
)
from credentials.did_key import key_from_seed
from credentials.jose import sign_jws
from credentials.keys import Ed25519Key
from credentials.resolver import DIDResolver

CALLER = key_from_seed(bytes(range(32)))
PROVIDER = key_from_seed(bytes(range(1, 33)))
BODY = json.dumps({"@type": "ContractRequestMessage", "consumerPid": "urn:uuid:1"}).encode()


@dataclass
class Server:
    url: str
    clock: list[datetime]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    clock = [datetime.now(UTC)]
    cache = ReplayCache()
    resolver = DIDResolver()  # did:key only: a did:web kid is an unknown key

    async def handler(request: web.Request) -> web.Response:
        try:
            did = await verify_request(request, resolver=resolver, audience=PROVIDER.controller,
                                       now=clock[0], replay_cache=cache)
        except ParticipantAuthError as exc:
            return exc.response()
        return web.json_response({"did": did})

    app = web.Application()
    app.router.add_route("*", "/negotiations/request", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"http://127.0.0.1:{port}/negotiations/request", clock)
    finally:
        await runner.cleanup()


async def call(url: str, token: str | None, body: bytes = BODY,
               method: str = "POST") -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=body, headers=headers
    ) as response:
        return response.status, await response.json()


def token_for(url: str, *, key: Ed25519Key = CALLER, audience: str = PROVIDER.controller,
              body: bytes = BODY, method: str = "POST", now: datetime | None = None) -> str:
    return sign_request(key, audience=audience, method=method, url=url, body=body, now=now)


async def test_valid_token_names_the_caller(server: Server) -> None:
    status, body = await call(server.url, token_for(server.url))
    assert status == 200, body
    assert body == {"did": CALLER.controller}


async def test_get_with_empty_body(server: Server) -> None:
    token = token_for(server.url, body=b"", method="GET")
    status, body = await call(server.url, token, body=b"", method="GET")
    assert status == 200, body


async def assert_401(status: int, body: dict[str, object], failure: AuthFailure) -> None:
    assert status == 401, body
    assert body["@type"] == "ContractNegotiationError"
    assert body["code"] == "unauthorized"
    assert isinstance(body["reason"], list) and body["reason"][0] == str(failure)


async def test_missing_token(server: Server) -> None:
    await assert_401(*await call(server.url, None), AuthFailure.MISSING)


async def test_wrong_audience(server: Server) -> None:
    token = token_for(server.url, audience="did:web:someone-else.example")
    await assert_401(*await call(server.url, token), AuthFailure.WRONG_AUDIENCE)


async def test_expired(server: Server) -> None:
    token = token_for(server.url, now=server.clock[0] - timedelta(seconds=120))
    await assert_401(*await call(server.url, token), AuthFailure.EXPIRED)


async def test_issued_in_the_future(server: Server) -> None:
    token = token_for(server.url, now=server.clock[0] + timedelta(seconds=120))
    await assert_401(*await call(server.url, token), AuthFailure.NOT_YET_VALID)


async def test_lifetime_over_60_seconds(server: Server) -> None:
    token = sign_request(CALLER, audience=PROVIDER.controller, method="POST", url=server.url,
                         body=BODY, lifetime_s=3600)
    await assert_401(*await call(server.url, token), AuthFailure.TOO_LONG_LIVED)


async def test_replay(server: Server) -> None:
    token = token_for(server.url)
    assert (await call(server.url, token))[0] == 200
    await assert_401(*await call(server.url, token), AuthFailure.REPLAYED)


async def test_body_changed(server: Server) -> None:
    token = token_for(server.url)
    await assert_401(*await call(server.url, token, body=BODY + b" "), AuthFailure.BODY_MISMATCH)


async def test_url_changed(server: Server) -> None:
    token = token_for(server.url.replace("/request", "/other"))
    await assert_401(*await call(server.url, token), AuthFailure.WRONG_URL)


async def test_method_changed(server: Server) -> None:
    token = token_for(server.url, method="PUT")
    await assert_401(*await call(server.url, token), AuthFailure.WRONG_METHOD)


async def test_unknown_key(server: Server) -> None:
    # A did:web key the receiver cannot resolve, and a did:key with a foreign fragment.
    web_key = Ed25519Key(os.urandom(32), "did:web:nowhere.example#key-1")
    await assert_401(*await call(server.url, token_for(server.url, key=web_key)),
                     AuthFailure.UNKNOWN_KEY)
    wrong_fragment = Ed25519Key(CALLER.seed, f"{CALLER.controller}#other")
    await assert_401(*await call(server.url, token_for(server.url, key=wrong_fragment)),
                     AuthFailure.UNKNOWN_KEY)


async def test_signed_by_another_key(server: Server) -> None:
    # Claims and kid name CALLER, but the signature is PROVIDER's.
    impostor = Ed25519Key(PROVIDER.seed, CALLER.key_id)
    await assert_401(*await call(server.url, token_for(server.url, key=impostor)),
                     AuthFailure.BAD_SIGNATURE)


async def test_issuer_must_own_the_key(server: Server) -> None:
    now = int(server.clock[0].timestamp())
    claims = {"iss": "did:web:victim.example", "sub": "did:web:victim.example",
              "aud": PROVIDER.controller, "iat": now, "exp": now + 30, "jti": "urn:uuid:x",
              "htm": "POST", "htu": server.url, "bh": body_hash(BODY)}
    token = sign_jws({"alg": "EdDSA", "kid": CALLER.key_id}, claims, CALLER)
    await assert_401(*await call(server.url, token), AuthFailure.WRONG_ISSUER)


async def test_garbage_token(server: Server) -> None:
    await assert_401(*await call(server.url, "not-a-jwt"), AuthFailure.MALFORMED)


def test_replay_cache_refuses_replays_and_forgets_dead_tokens() -> None:
    from connector.participant_auth import CLOCK_SKEW_S, ReplayCache

    cache = ReplayCache()
    for n in range(2000):
        assert cache.check_and_add("did:key:zA", f"jti-{n}", expires=100.0 + n % 60, now=50.0)
    assert not cache.check_and_add("did:key:zA", "jti-7", expires=107.0, now=60.0)
    later = 200.0 + CLOCK_SKEW_S
    assert cache.check_and_add("did:key:zB", "fresh", expires=later + 60, now=later)
    assert len(cache._seen) == 1  # every token that died was forgotten


async def test_the_store_replay_cache_is_shared_by_replicas(store_url: str,
                                                            tmp_path: Path) -> None:
    """Two stores on one database stand for two replicas: a token seen by one is a replay for
    the other; once it has expired (plus the skew) its id may be used again."""
    from connector.participant_auth import CLOCK_SKEW_S, StoreReplayCache
    from connector.store import open_store

    first = await open_store(store_url, data_dir=tmp_path)
    second = await open_store(store_url, data_dir=tmp_path)
    try:
        a, b = StoreReplayCache(first, purge_every=2), StoreReplayCache(second)
        now = 1_900_000_000.0
        assert await a.first_use("did:web:r.example", "j1", now + 60, now)
        assert not await b.first_use("did:web:r.example", "j1", now + 60, now + 1)
        assert await b.first_use("did:web:other.example", "j1", now + 60, now + 1)
        later = now + 60 + CLOCK_SKEW_S + 1
        assert await a.first_use("did:web:r.example", "j1", later + 60, later)  # purges too
        assert not await b.first_use("did:web:r.example", "j1", later + 60, later)
    finally:
        await first.close()
        await second.close()
