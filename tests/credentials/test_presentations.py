"""Presentations: a holder proves possession to a verifier that picked challenge and domain."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from support import (
    BATTERY,
    ISSUER,
    NOW,
    b64url_decode,
    b64url_encode,
    credential_v2,
    problem_types,
)

from connector.samples import manufacturing_credential
from credentials import (
    JCS,
    RDFC,
    ProblemType,
    VerificationResult,
    Verifier,
    VerifyOptions,
    create_presentation,
    issue_credential,
    issue_jwt_credential,
    key_from_seed,
    sign_presentation,
    verify_presentation,
)
from credentials.data_integrity import ProofOptions, create_proof
from credentials.errors import MalformedDocument

CREATED = "2026-03-01T00:00:00Z"
CHALLENGE = "n-123"
DOMAIN = "recycler.example"
HOLDER = key_from_seed(bytes([4] * 32))
SOMEONE = key_from_seed(bytes([5] * 32))
JWT_DATA_URL = "data:application/vc+jwt,"


def expected(**changes: Any) -> VerifyOptions:
    """What the verifier that handed out CHALLENGE for DOMAIN expects."""
    options: dict[str, Any] = {"proof_purpose": "authentication", "challenge": CHALLENGE,
                               "domain": DOMAIN, "now": NOW}
    options.update(changes)
    return VerifyOptions(**options)


def ldp_credential() -> dict[str, Any]:
    return json.loads(json.dumps(issue_credential(credential_v2(), ISSUER, suite=RDFC, now=NOW)))


def jwt_credential() -> str:
    unsigned = manufacturing_credential(
        BATTERY.controller, ISSUER.controller, rng=random.Random(2), issued=NOW
    )
    return issue_jwt_credential(unsigned, ISSUER, now=NOW)


def signed_presentation(
    credentials: list[dict[str, Any] | str] | None = None, *, suite: str = RDFC
) -> dict[str, Any]:
    unsigned = create_presentation(credentials or [ldp_credential(), jwt_credential()],
                                   HOLDER.controller)
    signed = sign_presentation(unsigned, HOLDER, challenge=CHALLENGE, domain=DOMAIN,
                               suite=suite, now=NOW)
    return json.loads(json.dumps(signed))


def hand_signed(holder: str, purpose: str, signer: Any = HOLDER) -> dict[str, Any]:
    """A presentation signed directly through create_proof, bypassing sign_presentation."""
    doc = create_presentation([ldp_credential(), jwt_credential()], holder)
    options = ProofOptions(verification_method=signer.key_id, created=CREATED,
                           proof_purpose=purpose, challenge=CHALLENGE, domain=DOMAIN)
    doc["proof"] = create_proof(doc, signer, RDFC, options)
    return json.loads(json.dumps(doc))


async def verify(presentation: Any, options: VerifyOptions) -> VerificationResult:
    result = await verify_presentation(presentation, options)
    encoded = json.loads(json.dumps(result.to_json()))
    assert encoded["verified"] is result.verified
    assert len(encoded["credentials"]) == len(result.credentials)
    return result


def test_jwt_credential_travels_enveloped() -> None:
    token = jwt_credential()
    presentation = create_presentation([ldp_credential(), token], HOLDER.controller)
    assert presentation["holder"] == HOLDER.controller
    assert "VerifiablePresentation" in presentation["type"]
    ldp, enveloped = presentation["verifiableCredential"]
    assert "proof" in ldp
    assert enveloped["type"] == "EnvelopedVerifiableCredential"
    assert enveloped["id"] == JWT_DATA_URL + token


@pytest.mark.parametrize("suite", [RDFC, JCS])
async def test_presentation_with_ldp_and_jwt_credentials_verifies(suite: str) -> None:
    presentation = signed_presentation(suite=suite)
    proof = presentation["proof"]
    assert proof["proofPurpose"] == "authentication"
    assert (proof["challenge"], proof["domain"]) == (CHALLENGE, DOMAIN)
    assert proof["verificationMethod"] == HOLDER.key_id

    result = await verify(presentation, expected())
    assert result.problems == []
    assert result.verified
    assert result.kind == "presentation"
    assert result.issuer == HOLDER.controller
    assert [c.format for c in result.credentials] == ["ldp", "jwt"]
    for embedded in result.credentials:
        assert embedded.verified, embedded.problems
        assert embedded.issuer == ISSUER.controller


async def test_verifier_class_without_options_demands_a_challenge() -> None:
    result = await Verifier().verify_presentation(signed_presentation())
    assert problem_types(result) == [ProblemType.CHALLENGE_MISMATCH]


async def test_wrong_challenge() -> None:
    result = await verify(signed_presentation(), expected(challenge="n-999"))
    assert problem_types(result) == [ProblemType.CHALLENGE_MISMATCH]
    assert not result.verified


async def test_wrong_domain() -> None:
    result = await verify(signed_presentation(), expected(domain="scrapyard.example"))
    assert problem_types(result) == [ProblemType.DOMAIN_MISMATCH]
    assert not result.verified


async def test_no_challenge_in_options_is_refused() -> None:
    result = await verify(signed_presentation(), expected(challenge=None))
    assert problem_types(result) == [ProblemType.CHALLENGE_MISMATCH]
    assert not result.verified


async def test_presentation_signed_for_assertion_is_wrong_purpose() -> None:
    presentation = hand_signed(HOLDER.controller, "assertionMethod")
    result = await verify(presentation, expected())
    assert problem_types(result) == [ProblemType.WRONG_PROOF_PURPOSE]
    assert not result.verified


async def test_tampered_embedded_credential_is_visible() -> None:
    """The holder (honestly) presents a credential someone altered: its proof is fine, the
    credential's is not, and the presentation as a whole is not verified."""
    altered = ldp_credential()
    altered["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    result = await verify(signed_presentation([altered, jwt_credential()]), expected())
    assert result.problems == []
    assert not result.verified
    assert [c.verified for c in result.credentials] == [False, True]
    assert problem_types(result.credentials[0]) == [ProblemType.BAD_SIGNATURE]
    assert result.to_json()["credentials"][0]["problems"][0]["type"] == "bad-signature"


async def test_credential_altered_after_the_holder_signed() -> None:
    presentation = signed_presentation()
    presentation["verifiableCredential"][0]["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    result = await verify(presentation, expected())
    assert ProblemType.BAD_SIGNATURE in problem_types(result)
    assert problem_types(result.credentials[0]) == [ProblemType.BAD_SIGNATURE]


async def test_tampered_enveloped_jwt_is_visible() -> None:
    header, payload, signature = jwt_credential().split(".")
    claims = json.loads(b64url_decode(payload))
    claims["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    forged = ".".join((header, b64url_encode(json.dumps(claims).encode()), signature))
    result = await verify(signed_presentation([ldp_credential(), forged]), expected())
    assert result.problems == []
    assert not result.verified
    assert result.credentials[0].verified
    assert problem_types(result.credentials[1]) == [ProblemType.BAD_SIGNATURE]


async def test_holder_that_does_not_control_the_key() -> None:
    presentation = hand_signed(SOMEONE.controller, "authentication")
    result = await verify(presentation, expected())
    assert problem_types(result) == [ProblemType.ISSUER_MISMATCH]
    assert not result.verified


async def test_presentation_altered_after_signing() -> None:
    presentation = signed_presentation()
    presentation["holder"] = SOMEONE.controller
    result = await verify(presentation, expected())
    assert ProblemType.BAD_SIGNATURE in problem_types(result)
    assert ProblemType.ISSUER_MISMATCH in problem_types(result)


@pytest.mark.parametrize("challenge", ["", None])
def test_sign_presentation_without_challenge_raises(challenge: Any) -> None:
    unsigned = create_presentation([ldp_credential()], HOLDER.controller)
    with pytest.raises(MalformedDocument) as caught:
        sign_presentation(unsigned, HOLDER, challenge=challenge, domain=DOMAIN, now=NOW)
    assert caught.value.problem.type == ProblemType.MALFORMED


def test_sign_presentation_for_another_holder_raises() -> None:
    unsigned = create_presentation([ldp_credential()], SOMEONE.controller)
    with pytest.raises(MalformedDocument):
        sign_presentation(unsigned, HOLDER, challenge=CHALLENGE, domain=DOMAIN, now=NOW)


@pytest.mark.parametrize(
    "presentation",
    [None, [], "abc", {}, {"@context": ["https://www.w3.org/ns/credentials/v2"],
                           "type": ["VerifiableCredential"]}],
    ids=["none", "array", "string", "empty", "not-a-presentation"],
)
async def test_malformed_presentation_is_reported(presentation: Any) -> None:
    result = await verify(copy.deepcopy(presentation), expected())
    assert ProblemType.MALFORMED in problem_types(result)
    assert not result.verified


async def test_unsigned_presentation_is_not_verified() -> None:
    unsigned = create_presentation([ldp_credential()], HOLDER.controller)
    result = await verify(unsigned, expected())
    assert ProblemType.MALFORMED in problem_types(result)
