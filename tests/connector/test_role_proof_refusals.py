"""What a provider does with bad role proofs: a foreign participant on loopback (its own DID
document and credential service, an aiohttp app written here because it must misbehave)
answers the provider's presentation query with a wrong challenge, a wrong domain, another
holder, garbage, an error, or nothing at all. Each time the consumer simply has no
credentials, the reason says why, and nothing raises."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connector.app import HTTP_CLIENT, IDENTITY, VERIFIER, create_app
from connector.config import NodeConfig
from connector.dcp.context import ROLE_PROOFS
from connector.dcp.presentations import RoleProofs
from connector.dsp.negotiation_service import dsp_state
from connector.participant_auth import VerifiedCaller
from connector.serve import RunningNode, running_node
from credentials.did_key import key_from_seed
from credentials.did_web import build_did_document
from credentials.holder import create_presentation, sign_presentation
from credentials.issuer import issue_credential
from credentials.keys import Ed25519Key
from tests.connector.test_dsp_negotiation_http import PASSPHRASE_ENV, fast_settings, free_port
from vocab import CREDENTIALS_V2, ROLES_CONTEXT_V1

TYPES = frozenset({"DataExchangeGovernanceCredential"})


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@dataclass
class Foreign:
    """A participant whose credential service answers whatever ``answer`` returns."""

    url: str
    did: str
    key: Ed25519Key
    answer: Callable[[dict[str, Any], str], web.Response] = field(repr=False)
    service: bool = True
    queries: list[dict[str, Any]] = field(default_factory=list)

    def credential(self, issuer_key: Ed25519Key) -> dict[str, Any]:
        return issue_credential({
            "@context": [CREDENTIALS_V2, ROLES_CONTEXT_V1], "issuer": issuer_key.controller,
            "type": ["VerifiableCredential", "DataExchangeGovernanceCredential"],
            "credentialSubject": {"id": self.did, "group": "UseCaseFramework",
                                  "useCase": "DataExchangeGovernance",
                                  "contractVersion": "1.0"}}, issuer_key)

    def presentation(self, challenge: str, domain: str, *,
                     key: Ed25519Key | None = None) -> dict[str, Any]:
        key = key or self.key
        unsigned = create_presentation([self.credential(self.key)], key.controller)
        return sign_presentation(unsigned, key, challenge=challenge, domain=domain)


def _jti(request: web.Request) -> str:
    token = request.headers["Authorization"].split(" ", 1)[1]
    payload = token.split(".")[1]
    import base64

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


@pytest.fixture
async def foreign() -> AsyncIterator[Foreign]:
    port = free_port()
    did = f"did:web:127.0.0.1%3A{port}"
    peer = Foreign(f"http://127.0.0.1:{port}", did,
                   Ed25519Key(secrets.token_bytes(32), f"{did}#key-1"),
                   answer=lambda body, jti: web.json_response({}))

    async def did_json(_: web.Request) -> web.Response:
        services = ([{"id": f"{did}#cs", "type": "CredentialService",
                      "serviceEndpoint": f"{peer.url}/dcp"}] if peer.service else None)
        return web.json_response(build_did_document(did, [peer.key.public_key],
                                                    service=services))

    async def query(request: web.Request) -> web.Response:
        body = await request.json()
        peer.queries.append(body)
        return peer.answer(body, _jti(request))

    app = web.Application()
    app.router.add_get("/.well-known/did.json", did_json)
    app.router.add_post("/dcp/presentations/query", query)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield peer
    finally:
        await runner.cleanup()


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "oem",
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key="k" * 32)
    async with running_node(config, create_app(config, dsp_settings=fast_settings())) as up:
        yield up


def caller(did: str, token: str | None = "opaque-access-token") -> VerifiedCaller:
    claims: dict[str, Any] = {"iss": did, "sub": did, "jti": "urn:uuid:x"}
    if token is not None:
        claims["token"] = token
    return VerifiedCaller(did, claims)


def proofs(provider: RunningNode) -> RoleProofs:
    return provider.app[ROLE_PROOFS]


def response_of(presentations: list[Any]) -> web.Response:
    return web.json_response({"@context": ["https://w3id.org/dspace-dcp/v1.0/dcp.jsonld"],
                              "type": "PresentationResponseMessage",
                              "presentation": presentations})


async def test_a_well_formed_presentation_is_verified_and_the_query_names_the_scopes(
        provider: RunningNode, foreign: Foreign) -> None:
    domain = provider.app[IDENTITY].did
    foreign.answer = lambda body, jti: response_of([foreign.presentation(jti, domain)])
    proof = await proofs(provider).prove(caller(foreign.did), TYPES)
    assert proof.problems == ()
    assert [c["type"] for c in proof.credentials] == [
        ["VerifiableCredential", "DataExchangeGovernanceCredential"]]
    assert foreign.queries == [{
        "@context": ["https://w3id.org/dspace-dcp/v1.0/dcp.jsonld"],
        "type": "PresentationQueryMessage",
        "scope": ["org.eclipse.dspace.dcp.vc.type:DataExchangeGovernanceCredential"]}]
    again = await proofs(provider).prove(caller(foreign.did), TYPES)
    assert again.cached and len(again.credentials) == 1 and len(foreign.queries) == 1


@pytest.mark.parametrize("case", ["wrong-challenge", "wrong-domain", "other-holder",
                                  "not-a-message", "error-status", "garbage", "tampered"])
async def test_bad_answers_prove_nothing_and_say_why(
        provider: RunningNode, foreign: Foreign, case: str) -> None:
    domain = provider.app[IDENTITY].did
    other = key_from_seed(secrets.token_bytes(32))

    def answer(body: dict[str, Any], jti: str) -> web.Response:
        if case == "wrong-challenge":
            return response_of([foreign.presentation("urn:uuid:an-older-query", domain)])
        if case == "wrong-domain":
            return response_of([foreign.presentation(jti, "did:web:someone.else")])
        if case == "other-holder":  # a did:key holder, not the caller
            return response_of([foreign.presentation(jti, domain, key=other)])
        if case == "not-a-message":
            return web.json_response({"presentation": "nope"})
        if case == "error-status":
            return web.json_response({"title": "no"}, status=401)
        if case == "tampered":
            vp = foreign.presentation(jti, domain)
            vp["verifiableCredential"][0]["credentialSubject"]["useCase"] = "Other"
            return response_of([vp])
        return web.Response(text="<html>oops</html>")

    foreign.answer = answer
    proof = await proofs(provider).prove(caller(foreign.did), TYPES)
    assert proof.credentials == ()
    assert proof.problems, case
    expected = {"wrong-challenge": "challenge", "wrong-domain": "domain",
                "other-holder": "held by", "not-a-message": "PresentationResponseMessage",
                "error-status": "refused the query (401", "garbage": "malformed JSON",
                "tampered": "did not verify"}[case]
    assert expected in " ".join(proof.problems), proof.problems


async def test_no_token_no_service_and_no_listener_prove_nothing(
        provider: RunningNode, foreign: Foreign) -> None:
    no_token = await proofs(provider).prove(caller(foreign.did, token=None), TYPES)
    assert no_token.credentials == () and "no access token" in no_token.problems[0]
    assert foreign.queries == []
    foreign.service = False
    no_service = await proofs(provider).prove(caller(foreign.did), TYPES)
    assert "lists no CredentialService" in no_service.problems[0]
    gone = f"did:web:127.0.0.1%3A{free_port()}"
    unreachable = await proofs(provider).prove(caller(gone), TYPES)
    assert unreachable.credentials == () and "credential service" in unreachable.problems[0]


async def test_nothing_is_asked_when_no_credential_is_needed(
        provider: RunningNode, foreign: Foreign) -> None:
    proof = await proofs(provider).prove(caller(foreign.did), frozenset())
    assert proof.credentials == () and proof.problems == () and foreign.queries == []


async def test_status_lists_fail_closed_by_default_and_the_setting_relaxes_it(
        provider: RunningNode, tmp_path: Path) -> None:
    checker = provider.app[VERIFIER].status_checker
    assert checker is not None and checker.on_unavailable == "fail"
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "warn",
                        keystore_passphrase_env=PASSPHRASE_ENV, shutdown_timeout_s=1,
                        operator_api_key="k" * 32, status_unavailable="warn",
                        status_max_age_s=42)
    async with running_node(config, create_app(config)) as relaxed:
        checker = relaxed.app[VERIFIER].status_checker
        assert checker is not None and checker.on_unavailable == "warn"
        assert checker.max_age_s == 42
    with pytest.raises(ValueError):
        NodeConfig(public_base_url="http://127.0.0.1:1", status_unavailable="ignore")


async def test_the_proof_cache_stays_bounded(provider: RunningNode, foreign: Foreign) -> None:
    domain = provider.app[IDENTITY].did
    foreign.answer = lambda body, jti: response_of([foreign.presentation(jti, domain)])
    bounded = RoleProofs(key=provider.app[IDENTITY].signing_key,
                         session=provider.app[HTTP_CLIENT], verifier=provider.app[VERIFIER],
                         clock=dsp_state(provider.app).settings.clock, allow_http_loopback=True,
                         max_entries=2)
    kinds = ["DataExchangeGovernanceCredential", "MembershipCredential", "BpnCredential"]
    for kind in kinds:
        await bounded.prove(caller(foreign.did), {kind})
    assert bounded.queries == 3
    # the first entry was evicted: asking again costs a query; the last one is still cached
    await bounded.prove(caller(foreign.did), {kinds[-1]})
    assert bounded.queries == 3
    await bounded.prove(caller(foreign.did), {kinds[0]})
    assert bounded.queries == 4
