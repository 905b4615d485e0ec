"""The holder side of DCP role proofs between REAL nodes on loopback (did:web over HTTP).

Node A issues a role credential to node B through its VC-API; B's operator puts it into B's
wallet; a test acting as verifier A (A's key, B's access token minted for A) queries B's
credential service over HTTP and checks the presentation with A's verifier, bound to the
``jti`` of the request token it sent. Also: the DID document's ``CredentialService`` entry,
the access token in B's outbound protocol requests, and every refusal of the query endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connector.app import CONFIG, IDENTITY, VERIFIER, create_app
from connector.dcp.access_tokens import (
    ACCESS_TOKENS,
    SCOPE_ALL_TYPES,
    AccessTokenError,
    AccessTokens,
    verify_access_token,
)
from connector.dcp.credential_service import DCP_CONTEXT, QUERY_PATH
from connector.demo_dataspace import ShiftedClock
from connector.dsp.negotiation_service import DspSettings
from connector.identity import NodeIdentity
from connector.participant_auth import RequestSigner
from connector.serve import RunningNode, running_node
from credentials import VerifyOptions, key_from_seed
from credentials.keys import Ed25519Key
from credentials.timestamps import format_datetime
from tests.connector.test_vcapi import AUTH, PASSPHRASE_ENV, V2, config_for, issue
from vocab import BATTERY_CONTEXT_V1

WALLET = "/management/wallet/credentials"
TYPE_SCOPE = "org.eclipse.dspace.dcp.vc.type:"
TX_SCOPE = "org.eclipse.tractusx.vc.type:"
ID_SCOPE = "org.eclipse.dspace.dcp.vc.id:"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@dataclass
class Pair:
    """Verifier/issuer A, holder B (whose clock the test may move), an HTTP client."""

    a: RunningNode
    b: RunningNode
    clock: ShiftedClock
    client: aiohttp.ClientSession

    @property
    def a_did(self) -> str:
        return self.a.app[IDENTITY].did

    @property
    def b_did(self) -> str:
        return self.b.app[IDENTITY].did


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    clock = ShiftedClock()
    holder_config = config_for(tmp_path / "holder")
    holder_app = create_app(holder_config, dsp_settings=DspSettings(clock=clock))
    async with (running_node(config_for(tmp_path / "issuer")) as a,
                running_node(holder_config, holder_app) as b,
                aiohttp.ClientSession() as client):
        yield Pair(a, b, clock, client)


# --- helpers (test_wallet.py uses them too) -----------------------------------------------------


def role_credential(subject: str, kind: str = "DismantlerCredential",
                    **extra: Any) -> dict[str, Any]:
    """A Catena-X role credential for ``subject`` (the battery context's participant shapes);
    another ``kind`` gets a plain credential of that type."""
    claims: dict[str, Any] = {"id": subject, "type": "Participant",
                              "holderIdentifier": "BPNL00000003CRHK"}
    context: list[Any] = [V2, BATTERY_CONTEXT_V1]
    if kind == "DismantlerCredential":
        claims["activityType"] = ["vehicleDismantle"]
    elif kind == "MembershipCredential":
        claims["memberOf"] = "Catena-X"
    else:
        context, claims = [V2, {"@vocab": "https://example.org/vocab#"}], {"id": subject}
    return {"@context": context, "type": ["VerifiableCredential", kind],
            "credentialSubject": claims, **extra}


async def add_to_wallet(client: aiohttp.ClientSession, node: RunningNode,
                        body: Any) -> tuple[int, dict[str, Any]]:
    async with client.post(node.url + WALLET, json=body, headers=AUTH) as response:
        return response.status, await response.json(content_type=None)


def claims_of(token: str) -> dict[str, Any]:
    """A compact JWS's claims, unverified (the test reads back what it signed itself)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    jti: str


async def query(pair: Pair, body: Any, *, access_token: str | None = "mint",
                key: Ed25519Key | None = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
    """POST a presentation query to B as A (A's key, signed with B's clock); ``"mint"`` uses
    the access token B mints for A, ``None`` sends none."""
    if access_token == "mint":
        access_token = pair.b.app[ACCESS_TOKENS].for_verifier(pair.a_did)
    data = raw if raw is not None else json.dumps(body).encode()
    url = pair.b.app[CONFIG].public_base_url + QUERY_PATH
    signer = RequestSigner(key or pair.a.app[IDENTITY].signing_key, pair.clock)
    sent = headers if headers is not None else signer.headers(
        audience=pair.b_did, method="POST", url=url, body=data, access_token=access_token)
    async with pair.client.post(url, data=data, headers={
            **sent, "Content-Type": "application/json"}) as response:
        answer = await response.json(content_type=None)
        jti = claims_of(sent["Authorization"].split()[1])["jti"] if sent else ""
        return Answer(response.status, dict(response.headers), answer, jti)


def scopes(*items: str) -> dict[str, Any]:
    return {"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage", "scope": list(items)}


async def issued_and_held(pair: Pair, kind: str, **extra: Any) -> dict[str, Any]:
    """A credential A issued to B (with status entries), added to B's wallet."""
    vc = await issue(pair.client, pair.a, role_credential(pair.b_did, kind, **extra))
    status, view = await add_to_wallet(pair.client, pair.b, vc)
    assert status == 201, view
    return vc


def held_ids(answer: Answer) -> list[str]:
    """The ids of the credentials in the (single) presentation of a 200 answer."""
    assert answer.status == 200, answer.body
    assert answer.body["type"] == "PresentationResponseMessage"
    assert answer.body["@context"] == [DCP_CONTEXT]
    if not answer.body["presentation"]:
        return []
    (presentation,) = answer.body["presentation"]
    return [vc.get("id", "") for vc in presentation["verifiableCredential"]]


# --- the DID document ------------------------------------------------------------------------


async def test_did_document_lists_the_credential_service(pair: Pair) -> None:
    async with pair.client.get(f"{pair.b.url}/.well-known/did.json") as response:
        document = await response.json()
    base = pair.b.app[CONFIG].public_base_url
    assert document["service"] == [{"id": f"{pair.b_did}#credential-service",
                                    "type": "CredentialService",
                                    "serviceEndpoint": f"{base}/dcp"}]
    # A did:key document is the method's own: no services (DCP role proofs need did:web).
    key = key_from_seed(bytes([3] * 32))
    assert "service" not in NodeIdentity(key.controller, key, key.key_id,
                                         "http://127.0.0.1:1").did_document()
    assert pair.b.app[ACCESS_TOKENS].holder == pair.b_did
    # Without a base URL (identities built by hand, as before) nothing changes either.
    web_key = Ed25519Key(key.seed, "did:web:example.org#key-1")
    assert "service" not in NodeIdentity("did:web:example.org", web_key,
                                         key.key_id).did_document()


# --- the happy path ---------------------------------------------------------------------------


async def test_verifier_gets_a_presentation_bound_to_its_query(pair: Pair) -> None:
    dismantler = await issued_and_held(pair, "DismantlerCredential")
    soon = format_datetime(pair.clock() + timedelta(hours=1))
    member = await issued_and_held(pair, "MembershipCredential", validUntil=soon)

    answer = await query(pair, scopes(TYPE_SCOPE + "DismantlerCredential"))
    assert answer.status == 200, answer.body
    (presentation,) = answer.body["presentation"]
    assert presentation["verifiableCredential"] == [dismantler]
    assert presentation["holder"] == pair.b_did
    assert presentation["proof"]["challenge"] == answer.jti
    assert presentation["proof"]["domain"] == pair.a_did
    assert presentation["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    verifier = pair.a.app[VERIFIER]  # resolves B's did:web and A's status list over HTTP
    result = await verifier.verify_presentation(
        presentation, VerifyOptions(challenge=answer.jti, domain=pair.a_did))
    assert result.verified, result.to_json()
    assert [c.status_checked for c in result.credentials] == [True]
    assert result.credentials[0].document == dismantler
    # Bound to this query: another challenge or another verifier's domain fails.
    for options in (VerifyOptions(challenge="urn:uuid:other", domain=pair.a_did),
                    VerifyOptions(challenge=answer.jti, domain=pair.b_did)):
        assert not (await verifier.verify_presentation(presentation, options)).verified

    # The Tractus-X form, by id, several scopes (each credential once), type names by IRI.
    answer = await query(pair, scopes(TX_SCOPE + "MembershipCredential:read"))
    (presentation,) = answer.body["presentation"]
    assert presentation["verifiableCredential"] == [member]
    answer = await query(pair, scopes(TYPE_SCOPE + "https://example.org/vocab#DismantlerCredential",
                                      TYPE_SCOPE + "*", TX_SCOPE + "dismantlercredential:read"))
    assert len(answer.body["presentation"][0]["verifiableCredential"]) == 2
    held = await list_wallet(pair)
    member_id = next(item["id"] for item in held if item["types"] == ["MembershipCredential"])
    answer = await query(pair, scopes(ID_SCOPE + member_id))
    assert answer.body["presentation"][0]["verifiableCredential"] == [member]
    assert held_ids(await query(pair, scopes(TYPE_SCOPE + "BpnCredential"))) == []
    assert held_ids(await query(pair, scopes(ID_SCOPE + "urn:uuid:nothing"))) == []

    # Removed credentials are not presented; expired ones neither (B's clock moves on).
    dismantler_id = next(i["id"] for i in held if i["types"] == ["DismantlerCredential"])
    async with pair.client.delete(f"{pair.b.url}{WALLET}/{dismantler_id}",
                                  headers=AUTH) as response:
        assert response.status == 204
    assert held_ids(await query(pair, scopes(TYPE_SCOPE + "DismantlerCredential"))) == []
    assert held_ids(await query(pair, scopes(TYPE_SCOPE + "MembershipCredential"))) != []
    pair.clock.advance(timedelta(hours=2))
    assert held_ids(await query(pair, scopes(TYPE_SCOPE + "MembershipCredential"))) == []


async def list_wallet(pair: Pair) -> list[dict[str, Any]]:
    async with pair.client.get(pair.b.url + WALLET, headers=AUTH) as response:
        assert response.status == 200
        items: list[dict[str, Any]] = (await response.json())["items"]
        return items


# --- refusals ---------------------------------------------------------------------------------


def _unauthorized(answer: Answer, reason: str) -> None:
    assert answer.status == 401, answer.body
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.body["reason"] == reason, answer.body


async def test_query_without_a_valid_access_token_is_401(pair: Pair) -> None:
    await issued_and_held(pair, "DismantlerCredential")
    body = scopes(TYPE_SCOPE + "DismantlerCredential")
    b_key = pair.b.app[IDENTITY].signing_key
    _unauthorized(await query(pair, body, headers={}), "missing-token")
    _unauthorized(await query(pair, body, access_token=None), "missing-access-token")
    for_other = pair.b.app[ACCESS_TOKENS].for_verifier("did:web:elsewhere.example")
    _unauthorized(await query(pair, body, access_token=for_other),
                  "access-token-wrong-verifier")
    stale = AccessTokens(b_key, lambda: pair.clock() - timedelta(hours=1)).for_verifier(
        pair.a_did)
    _unauthorized(await query(pair, body, access_token=stale), "access-token-expired")
    future = AccessTokens(b_key, lambda: pair.clock() + timedelta(hours=1)).for_verifier(
        pair.a_did)
    _unauthorized(await query(pair, body, access_token=future), "access-token-not-yet-valid")
    forger = Ed25519Key(bytes([9] * 32), b_key.key_id)  # B's key id, someone else's key
    forged = AccessTokens(forger, pair.clock).for_verifier(pair.a_did)
    _unauthorized(await query(pair, body, access_token=forged), "access-token-bad-signature")
    # A's own token (A signed it for itself) is not one B minted.
    a_own = AccessTokens(pair.a.app[IDENTITY].signing_key, pair.clock).for_verifier(pair.a_did)
    _unauthorized(await query(pair, body, access_token=a_own), "access-token-bad-signature")
    _unauthorized(await query(pair, body, access_token="not-a-jws"), "access-token-malformed")
    # A's token in the hands of another participant (who authenticates as itself, a did:key):
    # the token is not bound to that caller…
    stranger = key_from_seed(bytes([5] * 32))
    _unauthorized(await query(pair, body, key=stranger,
                              access_token=pair.b.app[ACCESS_TOKENS].for_verifier(pair.a_did)),
                  "access-token-wrong-verifier")
    # …and a replayed request is refused even with a good token.
    url = pair.b.app[CONFIG].public_base_url + QUERY_PATH
    data = json.dumps(body).encode()
    sent = RequestSigner(pair.a.app[IDENTITY].signing_key, pair.clock).headers(
        audience=pair.b_did, method="POST", url=url, body=data,
        access_token=pair.b.app[ACCESS_TOKENS].for_verifier(pair.a_did))
    assert (await query(pair, None, raw=data, headers=sent)).status == 200
    _unauthorized(await query(pair, None, raw=data, headers=sent), "replayed")


async def test_bad_query_messages_are_refused(pair: Pair) -> None:
    await issued_and_held(pair, "DismantlerCredential")
    good = scopes(TYPE_SCOPE + "DismantlerCredential")
    definition = {"id": "pd", "input_descriptors": []}
    cases: list[tuple[Any, bytes | None, int, str]] = [
        ({**good, "presentationDefinition": definition}, None, 400, "scope-and-definition"),
        ({k: v for k, v in {**good, "presentationDefinition": definition}.items()
          if k != "scope"}, None, 501, "presentation-definition-not-supported"),
        ({**good, "scope": []}, None, 400, "missing-scope"),
        ({k: v for k, v in good.items() if k != "scope"}, None, 400, "missing-scope"),
        ({**good, "scope": [1]}, None, 400, "invalid-scope"),
        ({**good, "type": "PresentationResponseMessage"}, None, 400, "wrong-type"),
        ({**good, "@context": ["https://www.w3.org/ns/credentials/v2"]}, None, 400,
         "invalid-context"),
        (None, b"{not json", 400, "malformed-json"),
        (None, b"[]", 400, "malformed-json"),
    ]
    for body, raw, status, reason in cases:
        answer = await query(pair, body, raw=raw)
        assert (answer.status, answer.body.get("reason")) == (status, reason), (body, answer.body)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
    for scope in ("MembershipCredential", "org.eclipse.dspace.dcp.vc.type:",
                  TX_SCOPE + "MembershipCredential", TX_SCOPE + "MembershipCredential:write",
                  "org.eclipse.edc.vc.type:MembershipCredential:read", ID_SCOPE):
        answer = await query(pair, {**good, "scope": [TYPE_SCOPE + "X", scope]})
        assert answer.status == 400, (scope, answer.body)
        assert (answer.body["reason"], answer.body["scope"]) == ("unknown-scope", scope)
    async with pair.client.get(pair.b.url + QUERY_PATH) as response:
        assert response.status == 405


# --- the access token in outbound protocol requests --------------------------------------------


class Capture:
    """A stand-in counterparty on loopback that records the request tokens sent to it."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Bearer":
            self.tokens.setdefault(request.path, token)
        return web.json_response({"error": "not a real provider"}, status=503)


@pytest.fixture
async def capture() -> AsyncIterator[tuple[Capture, str]]:
    recorder = Capture()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield recorder, f"http://127.0.0.1:{port}/dsp"
    finally:
        await runner.cleanup()


async def test_outbound_protocol_requests_carry_an_access_token_for_their_receiver(
    pair: Pair, capture: tuple[Capture, str],
) -> None:
    recorder, address = capture
    await issued_and_held(pair, "DismantlerCredential")
    # B asks "A" (the capture server, addressed as A's DID) for its catalog, then starts a
    # negotiation there (the outbox sends the contract request).
    async with pair.client.post(pair.b.url + "/management/catalog/request", headers=AUTH,
                                json={"counterPartyAddress": address,
                                      "counterPartyId": pair.a_did}) as response:
        assert response.status == 502
    offer = {"@id": "urn:offer:1", "target": "urn:asset:1", "permission": [{"action": "use"}]}
    async with pair.client.post(pair.b.url + "/management/negotiations", headers=AUTH,
                                json={"counterPartyAddress": address,
                                      "counterPartyId": pair.a_did, "offer": offer}) as response:
        assert response.status == 201, await response.text()
    for _ in range(200):
        if "/dsp/negotiations/request" in recorder.tokens:
            break
        await asyncio.sleep(0.025)
    assert set(recorder.tokens) == {"/dsp/catalog/request", "/dsp/negotiations/request"}
    b_key = pair.b.app[IDENTITY].signing_key
    for request_token in recorder.tokens.values():
        claims = claims_of(request_token)
        assert claims["aud"] == pair.a_did
        grant = verify_access_token(claims["token"], holder_key=b_key,
                                    verifier_did=pair.a_did, now=pair.clock())
        assert (grant["iss"], grant["sub"], grant["scope"]) == (pair.b_did, pair.a_did,
                                                                 SCOPE_ALL_TYPES)
        # The receiver uses it: A's query with the token it was sent is answered.
        answer = await query(pair, scopes(TYPE_SCOPE + "DismantlerCredential"),
                             access_token=claims["token"])
        assert len(held_ids(answer)) == 1


# --- access tokens on their own ---------------------------------------------------------------


def test_access_tokens_are_cached_per_verifier_and_renewed_before_they_run_out() -> None:
    key = Ed25519Key(bytes([4] * 32), "did:web:holder.example#key-1")
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    tokens = AccessTokens(key, lambda: now[0], lifetime_s=300)
    first = tokens.for_verifier("did:web:v.example")
    assert tokens.for_verifier("did:web:v.example") == first
    other = tokens.for_verifier("did:web:w.example")
    assert other != first
    claims = verify_access_token(first, holder_key=key, verifier_did="did:web:v.example",
                                 now=now[0])
    assert claims["iss"] == claims["aud"] == "did:web:holder.example"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"].startswith("urn:uuid:")
    now[0] += timedelta(seconds=239)  # 61 s left: still good enough to hand out
    assert tokens.for_verifier("did:web:v.example") == first
    now[0] += timedelta(seconds=2)  # 59 s left: a new one
    renewed = tokens.for_verifier("did:web:v.example")
    assert renewed != first
    assert verify_access_token(renewed, holder_key=key, verifier_did="did:web:v.example",
                               now=now[0])["iat"] == int(now[0].timestamp())
    # Expiry with 5 s of leeway; bound to its verifier.
    late = now[0] + timedelta(seconds=300 + 4)
    verify_access_token(renewed, holder_key=key, verifier_did="did:web:v.example", now=late)
    for moment, verifier, reason in ((late + timedelta(seconds=1), "did:web:v.example",
                                      "expired"),
                                     (now[0], "did:web:w.example", "wrong-verifier")):
        with pytest.raises(AccessTokenError) as caught:
            verify_access_token(renewed, holder_key=key, verifier_did=verifier, now=moment)
        assert caught.value.reason == reason
    # Signed by the holder's key but for another holder DID: not ours.
    alias = Ed25519Key(key.seed, "did:web:someone.example#key-1")
    with pytest.raises(AccessTokenError) as caught:
        verify_access_token(AccessTokens(alias, lambda: now[0]).for_verifier("did:web:v.example"),
                            holder_key=key, verifier_did="did:web:v.example", now=now[0])
    assert caught.value.reason == "wrong-issuer"
