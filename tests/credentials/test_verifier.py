"""The verifier reports every finding as a typed problem and never raises for bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from support import (
    FORMATS,
    ISSUER,
    LDP_SUITES,
    NOW,
    STRANGER,
    b64url_encode,
    credential_v1,
    credential_v2,
    problem_types,
    stamp,
)
from support import verify as verify_checked

from credentials import (
    RDFC,
    ProblemType,
    VerificationResult,
    Verifier,
    VerifyOptions,
    issue_credential,
    issue_jwt_credential,
)
from credentials.jose import sign_jws


def issue(fmt: str, unsigned: dict[str, Any]) -> dict[str, Any] | str:
    if fmt == "jwt":
        return issue_jwt_credential(unsigned, ISSUER, now=NOW)
    return json.loads(json.dumps(issue_credential(unsigned, ISSUER, suite=fmt, now=NOW)))


async def verify(document: Any, options: VerifyOptions | None = None) -> VerificationResult:
    """Verify and check the result invariants every caller relies on."""
    result = await verify_checked(document, options)
    encoded = json.loads(json.dumps(result.to_json()))
    assert encoded["verified"] is result.verified
    assert [p["type"] for p in encoded["problems"]] == [str(p.type) for p in result.problems]
    return result


def b64(data: Any) -> str:
    return b64url_encode(data if isinstance(data, bytes) else json.dumps(data).encode())


# --- the happy path --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_valid_credential_verifies_with_no_problems(fmt: str) -> None:
    result = await verify(issue(fmt, credential_v2()))
    assert result.verified
    assert result.problems == []
    assert result.issuer == ISSUER.controller
    assert result.verification_method == ISSUER.key_id
    assert result.format == ("jwt" if fmt == "jwt" else "ldp")
    assert result.to_json()["problems"] == []


async def test_verifier_class_and_module_function_agree() -> None:
    vc = issue(RDFC, credential_v2())
    a = await Verifier().verify_credential(vc, VerifyOptions(now=NOW))
    b = await verify(vc)
    assert a.to_json() == b.to_json()


# --- validity window -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_expired_v2_credential(fmt: str) -> None:
    vc = issue(fmt, credential_v2(validUntil=stamp(NOW + timedelta(days=30))))
    assert (await verify(vc, VerifyOptions(now=NOW + timedelta(days=29)))).verified
    result = await verify(vc, VerifyOptions(now=NOW + timedelta(days=31)))
    assert problem_types(result) == [ProblemType.EXPIRED]
    assert result.problems[0].path == "validUntil"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_not_yet_valid_v2_credential(fmt: str) -> None:
    vc = issue(fmt, credential_v2(validFrom=stamp(NOW + timedelta(days=10))))
    result = await verify(vc, VerifyOptions(now=NOW))
    assert problem_types(result) == [ProblemType.NOT_YET_VALID]
    assert result.problems[0].path == "validFrom"
    assert (await verify(vc, VerifyOptions(now=NOW + timedelta(days=11)))).verified


async def test_expired_v1_jwt_credential() -> None:
    token = issue_jwt_credential(
        credential_v1(expirationDate=stamp(NOW + timedelta(days=30))), ISSUER, now=NOW
    )
    assert (await verify(token, VerifyOptions(now=NOW + timedelta(days=1)))).verified
    result = await verify(token, VerifyOptions(now=NOW + timedelta(days=31)))
    assert problem_types(result) == [ProblemType.EXPIRED]  # reported once, not for exp and the date


async def test_not_yet_valid_v1_jwt_credential() -> None:
    token = issue_jwt_credential(credential_v1(), ISSUER, now=NOW)
    result = await verify(token, VerifyOptions(now=NOW - timedelta(days=1)))
    assert problem_types(result) == [ProblemType.NOT_YET_VALID]


async def test_v2_jwt_exp_claim_is_honoured() -> None:
    token = sign_jws({"typ": "vc+jwt", "alg": "EdDSA", "kid": ISSUER.key_id},
                     {**credential_v2(), "exp": int((NOW + timedelta(days=1)).timestamp())},
                     ISSUER)
    assert (await verify(token)).verified
    result = await verify(token, VerifyOptions(now=NOW + timedelta(days=2)))
    assert problem_types(result) == [ProblemType.EXPIRED]


@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_expired_proof(suite: str) -> None:
    vc = issue(suite, credential_v2())
    assert isinstance(vc, dict)
    vc["proof"]["expires"] = "2020-01-01T00:00:00Z"
    result = await verify(vc)
    assert ProblemType.EXPIRED in problem_types(result)


# --- proof purpose, keys and suites ----------------------------------------------------------


@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_wrong_proof_purpose(suite: str) -> None:
    vc = issue(suite, credential_v2())
    result = await verify(vc, VerifyOptions(now=NOW, proof_purpose="authentication"))
    assert problem_types(result) == [ProblemType.WRONG_PROOF_PURPOSE]
    assert result.problems[0].path == "proof.proofPurpose"


@pytest.mark.parametrize(
    "method",
    [
        f"{ISSUER.controller}#{STRANGER.controller.removeprefix('did:key:')}",
        f"{ISSUER.controller}#key-1",
        "did:example:123456789abcdefghi#key-1",
        "did:web:example.com#key-1",
        ISSUER.controller,  # no fragment
    ],
    ids=["other-did-key-fragment", "unknown-fragment", "did-example", "did-web-no-fetcher",
         "no-fragment"],
)
@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_unknown_key(suite: str, method: str) -> None:
    vc = issue(suite, credential_v2())
    assert isinstance(vc, dict)
    vc["proof"]["verificationMethod"] = method
    result = await verify(vc)
    assert ProblemType.UNKNOWN_KEY in problem_types(result)
    assert set(problem_types(result)) <= {ProblemType.UNKNOWN_KEY, ProblemType.ISSUER_MISMATCH}


@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_signed_by_another_did_key(suite: str) -> None:
    vc = issue(suite, credential_v2())
    assert isinstance(vc, dict)
    vc["proof"]["verificationMethod"] = STRANGER.key_id
    result = await verify(vc)
    assert ProblemType.ISSUER_MISMATCH in problem_types(result)
    assert ProblemType.BAD_SIGNATURE in problem_types(result)


@pytest.mark.parametrize(
    "change",
    [{"cryptosuite": "ecdsa-rdfc-2019"}, {"cryptosuite": "bbs-2023"}, {"cryptosuite": None},
     {"type": "RsaSignature2018"}, {"type": "JsonWebSignature2020"}],
    ids=["ecdsa", "bbs", "no-cryptosuite", "rsa", "jws-2020"],
)
async def test_unsupported_proof(change: dict[str, Any]) -> None:
    vc = issue(RDFC, credential_v2())
    assert isinstance(vc, dict)
    vc["proof"].update(change)
    result = await verify(vc)
    assert problem_types(result) == [ProblemType.UNSUPPORTED_PROOF]


# --- malformed input -------------------------------------------------------------------------


def _valid() -> dict[str, Any]:
    vc = issue(RDFC, credential_v2())
    assert isinstance(vc, dict)
    return vc


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in _valid().items() if k != name}


MALFORMED_INPUTS: dict[str, Any] = {
    "none": None,
    "integer": 42,
    "json-array": [],
    "array-of-credential": [_valid()],
    "empty-object": {},
    "garbage-jwt": "abc",
    "empty-string": "",
    "three-dots": "a.b.c",
    "json-serialised-jws": json.dumps({"payload": "e30", "signatures": []}),
    "header-not-json": "bm90IGpzb24.e30.AA",
    "header-json-array": f"{b64([1])}.e30.AA",
    "no-credential-subject": _without("credentialSubject"),
    "empty-credential-subject": {**_valid(), "credentialSubject": {}},
    "no-issuer": _without("issuer"),
    "issuer-object-without-id": {**_valid(), "issuer": {"name": "x"}},
    "no-type": _without("type"),
    "type-integer": {**_valid(), "type": 7},
    "not-a-credential-type": {**_valid(), "type": ["BatteryManufacturingCredential"]},
    "no-context": _without("@context"),
    "unknown-first-context": {**_valid(), "@context": ["https://example.org/ctx"]},
    "no-proof": _without("proof"),
    "proof-list-of-junk": {**_valid(), "proof": [1, "x", None]},
    "proof-without-verification-method": {
        **_valid(), "proof": {k: v for k, v in _valid()["proof"].items()
                              if k != "verificationMethod"}},
    "proof-value-not-multibase": {**_valid(), "proof": {**_valid()["proof"], "proofValue": "x"}},
    "proof-value-integer": {**_valid(), "proof": {**_valid()["proof"], "proofValue": 5}},
}


@pytest.mark.parametrize("document", MALFORMED_INPUTS.values(), ids=MALFORMED_INPUTS.keys())
async def test_malformed_input_is_reported_not_raised(document: Any) -> None:
    result = await verify(document)
    assert not result.verified
    assert ProblemType.MALFORMED in problem_types(result)


@pytest.mark.parametrize("value", ["yesterday", "2026-01-01", 20260101, "2026-13-01T00:00:00Z"])
@pytest.mark.parametrize("field", ["validFrom", "validUntil"])
async def test_bad_date_string_is_malformed(field: str, value: Any) -> None:
    vc = _valid()
    vc[field] = value
    result = await verify(vc)
    assert any(p.type == ProblemType.MALFORMED and p.path == field for p in result.problems)


async def test_bad_proof_created_is_malformed() -> None:
    vc = _valid()
    vc["proof"]["created"] = "not a date"
    result = await verify(vc)
    assert ProblemType.MALFORMED in problem_types(result)


def _raw_jws(payload: bytes) -> str:
    """A compact JWS with a *valid* EdDSA signature by the issuer over arbitrary bytes."""
    from jwcrypto import jwk, jws

    token = jws.JWS(payload)
    token.add_signature(jwk.JWK(**ISSUER.jwk()), alg="EdDSA",
                        protected=json.dumps({"alg": "EdDSA", "kid": ISSUER.key_id}))
    return str(token.serialize(compact=True))


@pytest.mark.parametrize(
    "claims",
    [
        {"vc": "not an object"},
        {"vc": {}, "iss": ISSUER.controller},
        {"iss": ISSUER.controller, "nbf": "yesterday", "vc": "see-below"},
        {"iss": ISSUER.controller, "nbf": 1e20, "vc": "see-below"},
        {"iss": ISSUER.controller, "exp": 2**70, "vc": "see-below"},
        {"iss": ISSUER.controller, "nbf": float("nan"), "vc": "see-below"},
    ],
    ids=["vc-string", "vc-empty", "nbf-string", "nbf-out-of-range", "exp-out-of-range",
         "nbf-nan"],
)
async def test_signed_jwt_with_malformed_claims_is_reported_not_raised(
    claims: dict[str, Any],
) -> None:
    """Anyone can mint a did:key and sign such a token, so none of it may crash a verifier."""
    if claims["vc"] == "see-below":
        claims["vc"] = credential_v1()
    token = _raw_jws(json.dumps(claims).encode())
    result = await verify(token)
    assert not result.verified
    assert ProblemType.MALFORMED in problem_types(result)


# --- several problems at once ----------------------------------------------------------------


async def test_independent_problems_are_all_listed() -> None:
    vc = issue(RDFC, credential_v2(validUntil=stamp(NOW + timedelta(days=1))))
    assert isinstance(vc, dict)
    vc["credentialSubject"]["ratedEnergyKWh"] = "1.0"
    result = await verify(vc, VerifyOptions(now=NOW + timedelta(days=2),
                                            proof_purpose="authentication"))
    assert set(problem_types(result)) == {ProblemType.EXPIRED, ProblemType.WRONG_PROOF_PURPOSE,
                                  ProblemType.BAD_SIGNATURE}
    assert result.to_json()["verified"] is False
