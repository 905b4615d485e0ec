"""did:web: DID ↔ URL mapping, and resolution against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from credentials.did_key import mint_battery_did
from credentials.did_web import (
    build_did_document,
    did_web_from_url,
    did_web_to_url,
    is_loopback_host,
)
from credentials.errors import DIDError, DIDResolutionError, InvalidDID, ProblemType
from credentials.issuer import issue_credential
from credentials.keys import Ed25519Key, PublicKey
from credentials.resolver import MAX_DID_DOCUMENT_BYTES, DIDResolver, HttpDIDFetcher
from credentials.verifier import verify_credential

SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
# Bounds every network call in this file: a hanging fetch fails the test instead of the run.
GUARD_S = 10.0


# --- DID ↔ URL mapping ----------------------------------------------------------------------


def test_did_from_bare_https_host() -> None:
    assert did_web_from_url("https://oem.example") == "did:web:oem.example"
    assert did_web_from_url("https://oem.example/") == "did:web:oem.example"


def test_did_from_url_with_port_and_path() -> None:
    did = did_web_from_url("https://oem.example:8443/nodes/a")
    assert did == "did:web:oem.example%3A8443:nodes:a"
    assert did_web_to_url(did) == "https://oem.example:8443/nodes/a/did.json"


def test_bare_host_maps_to_well_known() -> None:
    assert did_web_to_url("did:web:oem.example") == "https://oem.example/.well-known/did.json"
    assert (
        did_web_to_url("did:web:oem.example%3A8443")
        == "https://oem.example:8443/.well-known/did.json"
    )


def test_did_from_url_refuses_non_http_urls() -> None:
    for url in ("ftp://oem.example", "oem.example", "https://"):
        with pytest.raises(InvalidDID):
            did_web_from_url(url)


@pytest.mark.parametrize(
    "did",
    [
        "did:web:oem.example",
        "did:web:oem.example%3A80",
        "did:web:oem.example:nodes:a",
        "did:web:127.0.0.1.nip.io%3A8080",
        "did:web:localhost.oem.example",
    ],
)
def test_http_is_refused_for_remote_hosts_even_when_allowed(did: str) -> None:
    assert did_web_to_url(did, allow_http=True).startswith("https://")
    assert did_web_to_url(did).startswith("https://")


@pytest.mark.parametrize(
    ("did", "http_url"),
    [
        ("did:web:127.0.0.1%3A8080", "http://127.0.0.1:8080/.well-known/did.json"),
        ("did:web:localhost%3A8080:nodes:a", "http://localhost:8080/nodes/a/did.json"),
        ("did:web:localhost", "http://localhost/.well-known/did.json"),
        ("did:web:%5B%3A%3A1%5D%3A8443", "http://[::1]:8443/.well-known/did.json"),
    ],
)
def test_http_only_for_loopback_and_only_when_allowed(did: str, http_url: str) -> None:
    assert did_web_to_url(did, allow_http=True) == http_url
    assert did_web_to_url(did) == "https" + http_url[len("http"):]


def test_is_loopback_host() -> None:
    for host in ("localhost", "node.localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"):
        assert is_loopback_host(host), host
    for host in ("oem.example", "10.0.0.1", "127.0.0.1.nip.io", "localhost.oem.example", "::2"):
        assert not is_loopback_host(host), host


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://localhost:8080/nodes/a", "http://[::1]:8443"],
)
def test_loopback_base_url_round_trips(url: str) -> None:
    """A node's did:web derived from its loopback base URL must resolve back to that URL."""
    did = did_web_from_url(url)
    expected = url.rstrip("/") + ("/did.json" if "/nodes/" in url else "/.well-known/did.json")
    assert did_web_to_url(did, allow_http=True) == expected


@pytest.mark.parametrize(
    "did",
    [
        "did:web:",
        "did:web::nodes:a",
        "did:web:oem.example:..:secrets",
        "did:web:oem.example:nodes:%2E%2E",
        "did:web:oem.example:nodes:.",
        "did:web:oem.example:nodes::a",
        "did:web:oem.example:a%2Fb",
        "did:web:oem.example/path",
        "did:web:oem.example#key-1",
        "did:web:oem.example?service=x",
        "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "did:webs:oem.example",
        "https://oem.example",
        "",
    ],
)
def test_malformed_did_web_is_refused(did: str) -> None:
    with pytest.raises(InvalidDID):
        did_web_to_url(did)
    with pytest.raises(InvalidDID):
        did_web_to_url(did, allow_http=True)


def test_build_did_document_lists_multikeys_for_every_purpose() -> None:
    key = Ed25519Key(SEED, key_id="did:web:oem.example#key-1")
    other = Ed25519Key(OTHER_SEED, key_id="did:web:oem.example#key-2")
    service = [{"id": "#dsp", "type": "DataService", "serviceEndpoint": "https://oem.example"}]
    doc = build_did_document("did:web:oem.example", [key.public_key, other.public_key],
                             service=service)
    assert doc["id"] == "did:web:oem.example"
    assert [m["id"] for m in doc["verificationMethod"]] == [key.key_id, other.key_id]
    assert doc["verificationMethod"][0] == {
        "id": key.key_id,
        "type": "Multikey",
        "controller": "did:web:oem.example",
        "publicKeyMultibase": key.public_key.multibase,
    }
    for purpose in ("authentication", "assertionMethod", "capabilityInvocation",
                    "capabilityDelegation"):
        assert doc[purpose] == [key.key_id, other.key_id]
    assert doc["service"] == service
    assert "service" not in build_did_document("did:web:oem.example", [key.public_key])


# --- a real did:web server on loopback ----------------------------------------------------


@dataclass
class DIDServer:
    port: int
    key: Ed25519Key
    other: Ed25519Key
    hits: Counter[str] = field(default_factory=Counter)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def did(self) -> str:
        return did_web_from_url(self.base_url)

    def did_at(self, path: str) -> str:
        return did_web_from_url(f"{self.base_url}/{path}")


def _padded(doc: dict[str, Any], size: int) -> bytes:
    """``doc`` as JSON of exactly ``size`` bytes (valid JSON, padded in an extra member)."""
    doc = {**doc, "padding": ""}
    base = len(json.dumps(doc).encode())
    doc["padding"] = "x" * (size - base)
    body = json.dumps(doc).encode()
    assert len(body) == size
    return body


@pytest.fixture
async def did_server() -> AsyncIterator[DIDServer]:
    release_slow = asyncio.Event()
    server: DIDServer | None = None

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        assert server is not None
        server.hits[request.path] += 1
        return await handler(request)

    def doc_for(path: str, keys: list[PublicKey]) -> dict[str, Any]:
        assert server is not None
        did = server.did_at(path) if path else server.did
        return build_did_document(did, keys)

    async def root(_: web.Request) -> web.Response:
        assert server is not None
        return web.json_response(doc_for("", [server.key.public_key]))

    async def limited(_: web.Request) -> web.Response:
        assert server is not None
        doc = doc_for("limited", [server.key.public_key, server.other.public_key])
        doc["assertionMethod"] = [doc["verificationMethod"][0]["id"]]
        return web.json_response(doc)

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("/.well-known/did.json")

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(text="<html>not a DID document</html>", content_type="text/html")

    async def array(_: web.Request) -> web.Response:
        return web.json_response([doc_for("array", [])])

    async def impostor(_: web.Request) -> web.Response:
        # A perfectly valid document, but for the root DID rather than the one requested.
        assert server is not None
        return web.json_response(doc_for("", [server.other.public_key]))

    async def huge(_: web.Request) -> web.Response:
        assert server is not None
        body = _padded(doc_for("huge", [server.key.public_key]), MAX_DID_DOCUMENT_BYTES + 1)
        return web.Response(body=body, content_type="application/json")

    async def big(_: web.Request) -> web.Response:
        assert server is not None
        body = _padded(doc_for("big", [server.key.public_key]), MAX_DID_DOCUMENT_BYTES - 1024)
        return web.Response(body=body, content_type="application/json")

    async def slow(_: web.Request) -> web.Response:
        await release_slow.wait()
        return web.json_response(doc_for("slow", []))

    app = web.Application(middlewares=[count])
    app.router.add_get("/.well-known/did.json", root)
    app.router.add_get("/limited/did.json", limited)
    app.router.add_get("/redirect/did.json", redirect)
    app.router.add_get("/garbage/did.json", garbage)
    app.router.add_get("/array/did.json", array)
    app.router.add_get("/impostor/did.json", impostor)
    app.router.add_get("/huge/did.json", huge)
    app.router.add_get("/big/did.json", big)
    app.router.add_get("/slow/did.json", slow)

    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        assert isinstance(port, int) and port > 0
        server = DIDServer(
            port=port,
            key=Ed25519Key(SEED, key_id=f"did:web:127.0.0.1%3A{port}#key-1"),
            other=Ed25519Key(OTHER_SEED, key_id=f"did:web:127.0.0.1%3A{port}#key-2"),
        )
        assert server.key.controller == server.did
        yield server
    finally:
        release_slow.set()
        await runner.cleanup()


@pytest.fixture
def resolver() -> DIDResolver:
    return DIDResolver(web_fetcher=HttpDIDFetcher(allow_http_loopback=True, timeout_s=5.0))


async def _guarded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, GUARD_S)


def _credential(issuer: str) -> dict[str, Any]:
    return {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://www.w3.org/ns/credentials/examples/v2",
        ],
        "type": ["VerifiableCredential", "ExampleBatteryCredential"],
        "issuer": issuer,
        "credentialSubject": {
            "id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "stateOfHealth": "97",
        },
    }


async def test_resolves_did_web_from_loopback_server(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    doc = await _guarded(resolver.resolve(did_server.did))
    assert doc == build_did_document(did_server.did, [did_server.key.public_key])
    assert did_server.hits["/.well-known/did.json"] == 1


async def test_public_key_returns_the_listed_key(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    key = await _guarded(resolver.public_key(f"{did_server.did}#key-1", "assertionMethod"))
    assert key == did_server.key.public_key
    assert key != did_server.other.public_key
    with pytest.raises(DIDError):
        await _guarded(resolver.public_key(f"{did_server.did}#key-2", "assertionMethod"))


async def test_credential_signed_by_did_web_issuer_verifies(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    vc = issue_credential(_credential(did_server.did), did_server.key)
    assert vc["proof"]["verificationMethod"] == f"{did_server.did}#key-1"
    result = await _guarded(verify_credential(vc, resolver=resolver))
    assert result.problems == []
    assert result.verified
    assert result.issuer == did_server.did

    tampered = json.loads(json.dumps(vc))
    tampered["credentialSubject"]["stateOfHealth"] = "99"
    result = await _guarded(verify_credential(tampered, resolver=resolver))
    assert [p.type for p in result.problems] == [ProblemType.BAD_SIGNATURE]


async def test_credential_signed_by_unlisted_key_is_refused(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    """A key named ``did#key-2`` that the DID document does not list is an unknown key."""
    vc = issue_credential(_credential(did_server.did), did_server.other)
    result = await _guarded(verify_credential(vc, resolver=resolver))
    assert not result.verified
    assert [p.type for p in result.problems] == [ProblemType.UNKNOWN_KEY]


async def test_second_resolve_is_served_from_cache(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    first = await _guarded(resolver.resolve(did_server.did))
    second = await _guarded(resolver.resolve(did_server.did))
    await _guarded(resolver.public_key(f"{did_server.did}#key-1", "assertionMethod"))
    assert first == second
    assert did_server.hits["/.well-known/did.json"] == 1


async def test_expired_cache_entry_is_fetched_again(did_server: DIDServer) -> None:
    resolver = DIDResolver(web_fetcher=HttpDIDFetcher(allow_http_loopback=True), cache_ttl_s=0)
    await _guarded(resolver.resolve(did_server.did))
    await _guarded(resolver.resolve(did_server.did))
    assert did_server.hits["/.well-known/did.json"] == 2


async def test_shared_session_is_used_and_left_open(did_server: DIDServer) -> None:
    async with aiohttp.ClientSession() as session:
        fetcher = HttpDIDFetcher(session, allow_http_loopback=True)
        assert (await _guarded(fetcher(did_server.did)))["id"] == did_server.did
        assert not session.closed
        assert (await _guarded(fetcher(did_server.did)))["id"] == did_server.did
    assert did_server.hits["/.well-known/did.json"] == 2


async def test_without_allow_http_the_fetcher_insists_on_https(did_server: DIDServer) -> None:
    fetcher = HttpDIDFetcher(timeout_s=3.0)
    with pytest.raises(DIDResolutionError) as info:
        await _guarded(fetcher(did_server.did))
    assert f"https://127.0.0.1:{did_server.port}/.well-known/did.json" in str(info.value)
    # The TLS handshake failed; no plain-http request for the document ever got through.
    assert did_server.hits["/.well-known/did.json"] == 0

    resolver = DIDResolver(web_fetcher=HttpDIDFetcher(timeout_s=3.0))
    with pytest.raises(DIDResolutionError):
        await _guarded(resolver.public_key(f"{did_server.did}#key-1", "assertionMethod"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing", "HTTP 404"),
        ("redirect", "HTTP 302"),
        ("garbage", "JSON"),
        ("array", "another DID"),
        ("impostor", "another DID"),
        ("huge", "256 KiB"),
    ],
)
async def test_bad_answers_are_resolution_errors(
    did_server: DIDServer, resolver: DIDResolver, path: str, message: str
) -> None:
    did = did_server.did_at(path)
    with pytest.raises(DIDResolutionError, match=message):
        await _guarded(resolver.resolve(did))
    assert did_server.hits[f"/{path}/did.json"] == 1
    # A redirect is never followed: the root document was not fetched.
    assert did_server.hits["/.well-known/did.json"] == 0
    # Failures are not cached: asking again goes back to the server.
    with pytest.raises(DIDResolutionError):
        await _guarded(resolver.resolve(did))
    assert did_server.hits[f"/{path}/did.json"] == 2


async def test_document_just_under_the_size_limit_resolves(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    did = did_server.did_at("big")
    doc = await _guarded(resolver.resolve(did))
    assert doc["id"] == did
    assert len(json.dumps(doc).encode()) == MAX_DID_DOCUMENT_BYTES - 1024


async def test_slow_server_times_out_as_resolution_error(did_server: DIDServer) -> None:
    fetcher = HttpDIDFetcher(allow_http_loopback=True, timeout_s=0.3)
    with pytest.raises(DIDResolutionError, match="timed out"):
        await _guarded(fetcher(did_server.did_at("slow")))


async def test_key_not_listed_for_purpose_is_refused(
    did_server: DIDServer, resolver: DIDResolver
) -> None:
    did = did_server.did_at("limited")
    assert await _guarded(resolver.public_key(f"{did}#key-1", "assertionMethod")) == (
        did_server.key.public_key
    )
    with pytest.raises(DIDError, match="not authorised for assertionMethod"):
        await _guarded(resolver.public_key(f"{did}#key-2", "assertionMethod"))
    # The same key is fine for a purpose the document does list it under.
    assert await _guarded(resolver.public_key(f"{did}#key-2", "authentication")) == (
        did_server.other.public_key
    )


async def test_resolver_without_web_fetcher_refuses_did_web(did_server: DIDServer) -> None:
    resolver = DIDResolver()
    with pytest.raises(DIDResolutionError, match="no did:web fetcher"):
        await _guarded(resolver.resolve(did_server.did))
    with pytest.raises(DIDResolutionError):
        await _guarded(resolver.public_key(f"{did_server.did}#key-1", "assertionMethod"))
    assert did_server.hits["/.well-known/did.json"] == 0
    # did:key still resolves offline.
    did, key = mint_battery_did()
    assert await resolver.public_key(key.key_id, "assertionMethod") == key.public_key
    assert (await resolver.resolve(did))["id"] == did


async def test_unresolvable_did_web_is_an_unknown_key_problem(did_server: DIDServer) -> None:
    vc = issue_credential(_credential(did_server.did), did_server.key)
    for resolver in (
        DIDResolver(),  # no did:web fetcher configured
        DIDResolver(web_fetcher=HttpDIDFetcher(timeout_s=3.0)),  # https only: TLS fails
    ):
        result = await _guarded(verify_credential(vc, resolver=resolver))
        assert not result.verified
        assert [p.type for p in result.problems] == [ProblemType.UNKNOWN_KEY]
        assert result.problems[0].path == "proof.verificationMethod"

    # A did:web whose server has gone away is reported the same way.
    gone = Ed25519Key(SEED, key_id=f"{did_server.did_at('missing')}#key-1")
    vc = issue_credential(_credential(gone.controller), gone)
    resolver = DIDResolver(web_fetcher=HttpDIDFetcher(allow_http_loopback=True))
    result = await _guarded(verify_credential(vc, resolver=resolver))
    assert [p.type for p in result.problems] == [ProblemType.UNKNOWN_KEY]
