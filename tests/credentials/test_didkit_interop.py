"""Cross-checks against didkit 0.3.3 (SpruceID), an independent VCDM 1.1 implementation.

didkit only knows VCDM 1.1, Ed25519Signature2018/2020 and VC-JWT, so these tests use a v1
battery credential. Only did:key is used: didkit must never resolve did:web here (after an HTTP
request the interpreter can crash at exit). didkit's API is async and needs a running loop.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from support import b64url_decode, b64url_encode

from credentials import (
    ED25519_2020,
    ProblemType,
    issue_credential,
    issue_jwt_credential,
    key_from_seed,
    verify_credential,
)

didkit = pytest.importorskip("didkit")

CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
ED25519_2020_V1 = "https://w3id.org/security/suites/ed25519-2020/v1"
VOCAB = "https://w3id.org/battery-passport-connector/vocab#"
ISSUED = datetime(2024, 1, 1, tzinfo=UTC)

KEY = key_from_seed(bytes(range(32)))
BATTERY_DID = key_from_seed(bytes(range(32, 64))).controller

# Explicit term definitions (no @vocab): didkit rejects undefined terms at issue, our verifier
# rejects them at verification, so every field used below must be listed here.
BATTERY_TERMS = {
    term: VOCAB + term
    for term in (
        "BatteryManufacturingCredential",
        "batteryChemistry",
        "manufacturer",
        "serialNumber",
        "nominalCapacityAh",
        "manufacturingDate",
    )
}


def battery_credential() -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V1, dict(BATTERY_TERMS)],
        "id": "urn:uuid:0f6e1a52-8d3c-4b7e-9a21-5c4d3e2f1a0b",
        "type": ["VerifiableCredential", "BatteryManufacturingCredential"],
        "issuer": KEY.controller,
        "issuanceDate": "2024-01-01T00:00:00Z",
        "credentialSubject": {
            "id": BATTERY_DID,
            "batteryChemistry": "NMC811",
            "manufacturer": "Acme Cells GmbH",
            "serialNumber": "ACME-2024-000123",
            "nominalCapacityAh": "95.0",
            "manufacturingDate": "2023-12-14",
        },
    }


def didkit_jwk() -> str:
    return json.dumps(KEY.jwk())


def tampered(vc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(vc)
    out["credentialSubject"]["batteryChemistry"] = "LFP"
    return out


def flip_signature_char(token: str) -> str:
    """Change the first character of the signature (the last one may only hold padding bits)."""
    header, payload, signature = token.split(".")
    first = "B" if signature[0] != "B" else "C"
    return ".".join((header, payload, first + signature[1:]))


def tamper_jwt_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["vc"]["credentialSubject"]["batteryChemistry"] = "LFP"
    forged = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    return ".".join((header, forged, signature))


async def didkit_verify(vc_or_jwt: dict[str, Any] | str, options: str) -> dict[str, Any]:
    subject = vc_or_jwt if isinstance(vc_or_jwt, str) else json.dumps(vc_or_jwt)
    result: dict[str, Any] = json.loads(await didkit.verify_credential(subject, options))
    return result


async def didkit_issue(credential: dict[str, Any], options: dict[str, Any]) -> str:
    issued: str = await didkit.issue_credential(
        json.dumps(credential), json.dumps(options), didkit_jwk()
    )
    return issued


@pytest.fixture
async def vm() -> str:
    method: str = await didkit.key_to_verification_method("key", didkit_jwk())
    return method


async def test_didkit_derives_our_verification_method(vm: str) -> None:
    assert vm == KEY.key_id
    assert didkit.key_to_did("key", didkit_jwk()) == KEY.controller


# 1. ours (Ed25519Signature2020) -> didkit


async def test_our_ed25519signature2020_verifies_in_didkit() -> None:
    vc = issue_credential(battery_credential(), KEY, suite=ED25519_2020, now=ISSUED)
    assert vc["proof"]["type"] == "Ed25519Signature2020"
    assert ED25519_2020_V1 in vc["@context"]

    result = await didkit_verify(vc, "{}")
    assert result["errors"] == [], result

    forged = await didkit_verify(tampered(vc), "{}")
    assert forged["errors"], forged


# 2. ours (VC-JWT, VCDM 1.1 claims) -> didkit


async def test_our_vc_jwt_verifies_in_didkit() -> None:
    token = issue_jwt_credential(battery_credential(), KEY, now=ISSUED)
    claims = json.loads(b64url_decode(token.split(".")[1]))
    assert claims["iss"] == KEY.controller
    assert claims["sub"] == BATTERY_DID

    result = await didkit_verify(token, '{"proofFormat":"jwt"}')
    assert result["errors"] == [], result

    forged = await didkit_verify(flip_signature_char(token), '{"proofFormat":"jwt"}')
    assert forged["errors"], forged


# 3. didkit (Ed25519Signature2020) -> ours


@pytest.mark.parametrize(
    "context_in_document",
    [
        pytest.param(False, id="suite-context-in-proof"),
        pytest.param(True, id="suite-context-in-document"),
    ],
)
async def test_didkit_ed25519signature2020_verifies_in_ours(
    vm: str, context_in_document: bool
) -> None:
    credential = battery_credential()
    if context_in_document:
        credential["@context"].append(ED25519_2020_V1)
    options = {"type": "Ed25519Signature2020", "proofPurpose": "assertionMethod",
               "verificationMethod": vm}
    vc = json.loads(await didkit_issue(credential, options))
    assert vc["proof"]["type"] == "Ed25519Signature2020"
    # Without the suite context in the document, didkit puts it inside the proof.
    assert ("@context" in vc["proof"]) is not context_in_document
    assert (await didkit_verify(vc, "{}"))["errors"] == []

    result = await verify_credential(vc)
    assert result.verified, result.problems
    assert result.suite == ED25519_2020
    assert result.verification_method == KEY.key_id

    forged = await verify_credential(tampered(vc))
    assert not forged.verified
    assert [p.type for p in forged.problems] == [ProblemType.BAD_SIGNATURE]


# 4. didkit (VC-JWT) -> ours


async def test_didkit_vc_jwt_verifies_in_ours(vm: str) -> None:
    options = {"proofFormat": "jwt", "proofPurpose": "assertionMethod", "verificationMethod": vm}
    token = await didkit_issue(battery_credential(), options)
    assert token.count(".") == 2

    result = await verify_credential(token)
    assert result.verified, result.problems
    assert result.format == "jwt"
    assert result.issuer == KEY.controller
    assert result.document is not None
    # didkit writes nbf as a float (1704067200.0); it must still map to issuanceDate.
    assert result.document["issuanceDate"] == "2024-01-01T00:00:00Z"
    assert result.document["credentialSubject"]["id"] == BATTERY_DID
    assert result.document["credentialSubject"]["batteryChemistry"] == "NMC811"

    forged = await verify_credential(tamper_jwt_payload(token))
    assert not forged.verified
    assert [p.type for p in forged.problems] == [ProblemType.BAD_SIGNATURE]


# 5. didkit (Ed25519Signature2018) -> ours: a suite we deliberately do not accept


async def test_didkit_ed25519signature2018_is_unsupported_in_ours(vm: str) -> None:
    options = {"type": "Ed25519Signature2018", "proofPurpose": "assertionMethod",
               "verificationMethod": vm}
    vc = json.loads(await didkit_issue(battery_credential(), options))
    assert vc["proof"]["type"] == "Ed25519Signature2018"
    assert (await didkit_verify(vc, "{}"))["errors"] == []  # a valid proof, just not ours

    result = await verify_credential(vc)
    assert not result.verified
    assert [p.type for p in result.problems] == [ProblemType.UNSUPPORTED_PROOF]
    assert result.problems[0].path == "proof.type"
