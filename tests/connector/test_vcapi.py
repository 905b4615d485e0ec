"""The VC-API of a real node over HTTP: issue, verify, presentations, bad bodies, auth."""

from __future__ import annotations

import copy
import json
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from connector.app import IDENTITY
from connector.config import NodeConfig
from connector.problems import PROBLEM_BASE, PROBLEM_JSON
from connector.samples import manufacturing_credential
from connector.serve import RunningNode, running_node
from credentials import (
    JCS,
    RDFC,
    create_presentation,
    issue_jwt_credential,
    key_from_seed,
    sign_presentation,
    verify_credential,
)

PASSPHRASE_ENV = "BPC_TEST_VCAPI_PASSPHRASE"
OPERATOR_KEY = "vcapi-test-operator-key-0001"
AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}"}
V1 = "https://www.w3.org/2018/credentials/v1"
V2 = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
HOLDER = key_from_seed(bytes([7] * 32))
BATTERY = key_from_seed(bytes([8] * 32))


def unsigned(**extra: Any) -> dict[str, Any]:
    return {
        "@context": [V2, {"@vocab": "https://example.org/vocab#"}],
        "type": ["VerifiableCredential", "TestCredential"],
        "credentialSubject": {"id": BATTERY.controller, "capacityKwh": "75.5"},
        **extra,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_for(data_dir: Path, **settings: Any) -> NodeConfig:
    return NodeConfig(
        public_base_url=f"http://127.0.0.1:{free_port()}", data_dir=data_dir,
        keystore_passphrase_env=PASSPHRASE_ENV, operator_api_key=SecretStr(OPERATOR_KEY),
        **settings,
    )


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse battery staple")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    async with running_node(config_for(tmp_path / "data")) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    client: aiohttp.ClientSession, node: RunningNode, path: str, body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, Any]]:
    async with client.post(node.url + path, json=body, headers=headers) as response:
        text = await response.text()
        assert "Traceback" not in text
        return response.status, response.content_type, json.loads(text)


async def issue(
    client: aiohttp.ClientSession, node: RunningNode, credential: dict[str, Any],
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {"credential": credential, "options": options or {}}
    status, _, answer = await post(client, node, "/credentials/issue", body, AUTH)
    assert status == 201, answer
    assert set(answer) == {"verifiableCredential"}
    vc: dict[str, Any] = answer["verifiableCredential"]
    return vc


def problem_types(body: dict[str, Any]) -> set[str]:
    return {p["type"] for p in body["problems"]}


# --- issue → verify ----------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "suite"), [
    ({}, RDFC),
    ({"type": "DataIntegrityProof", "cryptosuite": RDFC}, RDFC),
    ({"cryptosuite": JCS}, JCS),
    ({"type": "DataIntegrityProof", "cryptosuite": JCS, "credentialId": "urn:uuid:1"}, JCS),
])
async def test_issue_verify_round_trip(
    node: RunningNode, client: aiohttp.ClientSession, options: dict[str, Any], suite: str
) -> None:
    vc = await issue(client, node, unsigned(), options)
    did = node.app[IDENTITY].did
    assert vc["issuer"] == did
    assert vc["proof"]["type"] == "DataIntegrityProof"
    assert vc["proof"]["cryptosuite"] == suite
    assert vc["proof"]["verificationMethod"] == f"{did}#key-1"

    status, content_type, result = await post(
        client, node, "/credentials/verify",
        {"verifiableCredential": vc, "options": {"checks": ["proof"]}},
    )
    assert (status, content_type) == (200, "application/json")
    assert result["verified"] is True
    assert result["problems"] == [] and result["problemDetails"] == []
    assert result["suite"] == suite and result["issuer"] == did


async def test_vcdm_1_1_input_gets_a_data_integrity_proof(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    credential = unsigned(issuanceDate="2026-01-01T00:00:00Z")
    credential["@context"] = [V1, {"@vocab": "https://example.org/vocab#"}]
    vc = await issue(client, node, credential)
    assert DATA_INTEGRITY_V2 in vc["@context"]
    assert vc["proof"]["type"] == "DataIntegrityProof"
    status, _, result = await post(client, node, "/credentials/verify",
                                   {"verifiableCredential": vc})
    assert status == 200 and result["verified"] is True


async def test_passport_credentials_are_shape_checked(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    did = node.app[IDENTITY].did
    credential = manufacturing_credential(BATTERY.controller, did, rng=random.Random(3))
    vc = await issue(client, node, credential)
    status, _, result = await post(client, node, "/credentials/verify",
                                   {"verifiableCredential": vc})
    assert status == 200 and result["verified"] is True, result

    incomplete = copy.deepcopy(credential)
    del incomplete["credentialSubject"]["batteryCategory"]
    status, content_type, problem = await post(
        client, node, "/credentials/issue", {"credential": incomplete}, AUTH
    )
    assert (status, content_type) == (400, PROBLEM_JSON)
    assert problem["type"] == PROBLEM_BASE + "credential-refused"
    assert "credentialSubject.batteryCategory" in {p.get("path") for p in problem["problems"]}


async def test_issuer_must_be_the_node(node: RunningNode, client: aiohttp.ClientSession) -> None:
    status, _, problem = await post(client, node, "/credentials/issue",
                                    {"credential": unsigned(issuer=HOLDER.controller)}, AUTH)
    assert status == 400
    assert problem["type"] == PROBLEM_BASE + "credential-refused"
    assert problem_types(problem) == {"issuer-mismatch"}


async def test_did_key_node_issues_credentials_anyone_verifies_offline(
    tmp_path: Path, client: aiohttp.ClientSession
) -> None:
    async with running_node(config_for(tmp_path / "data", identity="did:key")) as running:
        vc = await issue(client, running, unsigned())
    assert vc["issuer"].startswith("did:key:z6Mk")
    assert (await verify_credential(vc)).verified  # no network needed for did:key


async def test_jwt_credentials_verify_plain_and_enveloped(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    jwt = issue_jwt_credential(unsigned(issuer=HOLDER.controller), HOLDER)
    enveloped = {"@context": [V2], "type": "EnvelopedVerifiableCredential",
                 "id": f"data:application/vc+jwt,{jwt}"}
    for credential in (jwt, enveloped):
        status, _, result = await post(client, node, "/credentials/verify",
                                       {"verifiableCredential": credential})
        assert status == 200, result
        assert result["format"] == "jwt" and result["issuer"] == HOLDER.controller


# --- failed verification -----------------------------------------------------------------------


async def test_tampered_credential_gives_typed_problems(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vc = await issue(client, node, unsigned())
    vc["credentialSubject"]["capacityKwh"] = "99.9"
    status, content_type, body = await post(client, node, "/credentials/verify",
                                            {"verifiableCredential": vc})
    assert (status, content_type) == (400, PROBLEM_JSON)
    assert body["type"] == PROBLEM_BASE + "verification-failed"
    assert body["verified"] is False
    assert body["problems"] == [{
        "type": "bad-signature", "path": "proof.proofValue",
        "message": body["problems"][0]["message"],
    }]
    # The VC-API view of the same finding: RFC 9457 items with the Data Integrity error type.
    assert body["problemDetails"][0]["type"] == "https://w3id.org/security#PROOF_VERIFICATION_ERROR"
    assert body["problemDetails"][0]["title"] == "bad-signature"
    assert "bad-signature" in body["detail"]


async def test_expired_and_foreign_key_problems_are_all_reported(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vc = await issue(client, node, unsigned(validUntil="2027-01-01T00:00:00Z"))
    vc["proof"]["verificationMethod"] = HOLDER.key_id
    vc["validUntil"] = "2020-01-01T00:00:00Z"
    status, _, body = await post(client, node, "/credentials/verify",
                                 {"verifiableCredential": vc})
    assert status == 400
    assert {"expired", "issuer-mismatch", "bad-signature"} <= problem_types(body)


async def test_unknown_did_web_issuer_is_unknown_key(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vc = await issue(client, node, unsigned())
    dead = f"did:web:127.0.0.1%3A{free_port()}"  # nobody listens there
    vc["issuer"] = dead
    vc["proof"]["verificationMethod"] = f"{dead}#key-1"
    status, _, body = await post(client, node, "/credentials/verify",
                                 {"verifiableCredential": vc})
    assert status == 400
    assert "unknown-key" in problem_types(body)


# --- presentations -----------------------------------------------------------------------------


async def presentation(
    client: aiohttp.ClientSession, node: RunningNode, *, challenge: str, domain: str
) -> dict[str, Any]:
    vc = await issue(client, node, unsigned())
    unsigned_vp = create_presentation([vc], HOLDER.controller)
    return sign_presentation(unsigned_vp, HOLDER, challenge=challenge, domain=domain, suite=JCS)


async def test_presentation_verify_with_challenge_and_domain(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vp = await presentation(client, node, challenge="nonce-123", domain="recycler.example")
    body = {"verifiablePresentation": vp,
            "options": {"challenge": "nonce-123", "domain": "recycler.example"}}
    status, _, result = await post(client, node, "/presentations/verify", body)
    assert status == 200, result
    assert result["verified"] is True and result["issuer"] == HOLDER.controller
    assert [c["verified"] for c in result["credentials"]] == [True]
    assert "verifiablePresentation" not in result

    body["options"]["returnPresentation"] = True
    status, _, result = await post(client, node, "/presentations/verify", body)
    assert status == 200 and result["verifiablePresentation"] == vp


@pytest.mark.parametrize(("options", "expected"), [
    ({"challenge": "other", "domain": "recycler.example"}, "challenge-mismatch"),
    ({"challenge": "nonce-123", "domain": "evil.example"}, "domain-mismatch"),
    ({"domain": "recycler.example"}, "challenge-mismatch"),  # no challenge: no replay protection
])
async def test_presentation_with_wrong_challenge_or_domain_fails(
    node: RunningNode, client: aiohttp.ClientSession, options: dict[str, Any], expected: str
) -> None:
    vp = await presentation(client, node, challenge="nonce-123", domain="recycler.example")
    status, content_type, body = await post(
        client, node, "/presentations/verify", {"verifiablePresentation": vp, "options": options}
    )
    assert (status, content_type) == (400, PROBLEM_JSON)
    assert body["verified"] is False and expected in problem_types(body)


async def test_presentation_with_tampered_credential_names_it(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vc = await issue(client, node, unsigned())
    vc["credentialSubject"]["capacityKwh"] = "1"
    vp = sign_presentation(create_presentation([vc], HOLDER.controller), HOLDER,
                           challenge="n", domain="d")
    status, _, body = await post(client, node, "/presentations/verify",
                                 {"verifiablePresentation": vp,
                                  "options": {"challenge": "n", "domain": "d"}})
    assert status == 400
    assert body["problems"] == []  # the presentation's own proof is fine...
    assert body["credentials"][0]["problems"][0]["type"] == "bad-signature"  # ...its VC is not
    assert "verifiableCredential[0].proof.proofValue" in body["problemDetails"][0]["detail"]


# --- bad request bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/credentials/issue", {"options": {}}, "credential"),
    ("/credentials/issue", {"credential": [1]}, "credential"),
    ("/credentials/issue", {"credential": {}, "options": {"cryptosuite": "ecdsa-rdfc-2019"}},
     "options.cryptosuite"),
    ("/credentials/issue", {"credential": {}, "options": {"type": "JsonWebSignature2020"}},
     "options.type"),
    ("/credentials/issue", {"credential": {}, "options": {"mandatoryPointers": ["/issuer"]}},
     "options.mandatoryPointers"),
    ("/credentials/issue", {"credential": {}, "extra": 1}, "extra"),
    ("/credentials/verify", {}, "verifiableCredential"),
    ("/credentials/verify", {"verifiableCredential": 5}, "verifiableCredential"),
    ("/credentials/verify", {"verifiableCredential": {}, "options": {"checks": ["proof",
     "credentialStatus"]}}, "options.checks"),
    ("/presentations/verify", {"presentation": {}}, "verifiablePresentation"),
    ("/presentations/verify", {"verifiablePresentation": {}, "options": {"challenge": 5}},
     "options.challenge"),
])
async def test_invalid_bodies_are_400_naming_the_field(
    node: RunningNode, client: aiohttp.ClientSession, path: str, body: Any, field: str
) -> None:
    status, content_type, problem = await post(client, node, path, body, AUTH)
    assert (status, content_type) == (400, PROBLEM_JSON), problem
    assert problem["type"] == PROBLEM_BASE + "invalid-request"
    assert field in {e["field"] for e in problem["errors"]}
    assert field in problem["detail"]


async def test_odd_documents_are_refused_not_crashed_on(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    vc = await issue(client, node, unsigned())
    vc["proof"]["previousProof"] = 5  # once crashed the verifier with a TypeError
    status, _, body = await post(client, node, "/credentials/verify",
                                 {"verifiableCredential": vc})
    assert status == 400 and body["verified"] is False
    for document in ({}, {"@context": 5}, unsigned(**{"@context": [V2, "https://evil.example"]})):
        status, _, problem = await post(client, node, "/credentials/issue",
                                        {"credential": document}, AUTH)
        assert status == 400 and problem["type"] == PROBLEM_BASE + "credential-refused"


# --- auth --------------------------------------------------------------------------------------


async def test_issue_needs_the_operator_key_but_verify_is_open(
    node: RunningNode, client: aiohttp.ClientSession
) -> None:
    for headers in (None, {"Authorization": "Bearer wrong-key-wrong-key"}):
        status, content_type, problem = await post(
            client, node, "/credentials/issue", {"credential": unsigned()}, headers
        )
        assert (status, content_type) == (401, PROBLEM_JSON)
        assert problem["type"] == PROBLEM_BASE + "unauthorized"
    vc = await issue(client, node, unsigned())
    status, _, _ = await post(client, node, "/credentials/verify", {"verifiableCredential": vc})
    assert status == 200
