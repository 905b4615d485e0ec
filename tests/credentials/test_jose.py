"""VC-JOSE: VCDM 2.0 as application/vc+jwt, VCDM 1.1 as VC-JWT claims; EdDSA only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from jwcrypto import jwk, jws
from support import (
    BATTERY,
    ISSUER,
    NOW,
    STRANGER,
    b64url_decode,
    b64url_encode,
    credential_v1,
    credential_v2,
    problem_types,
    stamp,
)
from support import verify as verify_checked

from credentials import (
    ProblemType,
    VerificationResult,
    VerifyOptions,
    issue_jwt_credential,
)
from credentials.jose import sign_jws


def expiring_credential_v1() -> dict[str, Any]:
    """The v1 sample with an ``expirationDate`` a year after NOW."""
    return credential_v1(expirationDate=stamp(NOW + timedelta(days=365)))


def segment(token: str, index: int) -> Any:
    return json.loads(b64url_decode(token.split(".")[index]))


async def verify(token: Any, options: VerifyOptions | None = None) -> VerificationResult:
    result = await verify_checked(token, options)
    assert result.format == "jwt"
    return result


def test_v2_header_and_payload() -> None:
    unsigned = credential_v2()
    token = issue_jwt_credential(unsigned, ISSUER, now=NOW)
    assert token.count(".") == 2
    header = segment(token, 0)
    assert header["typ"] == "vc+jwt"
    assert header["alg"] == "EdDSA"
    assert header["kid"] == ISSUER.key_id
    assert segment(token, 1) == unsigned  # the payload *is* the credential


async def test_v2_round_trip() -> None:
    unsigned = credential_v2()
    result = await verify(issue_jwt_credential(unsigned, ISSUER, now=NOW))
    assert result.verified, result.problems
    assert result.document == unsigned
    assert result.issuer == ISSUER.controller
    assert result.verification_method == ISSUER.key_id
    assert result.suite == "jwt"


def test_v2_issuer_is_filled_in_when_missing() -> None:
    unsigned = credential_v2()
    del unsigned["issuer"]
    payload = segment(issue_jwt_credential(unsigned, ISSUER, now=NOW), 1)
    assert payload["issuer"] == ISSUER.controller


def test_v1_claims() -> None:
    unsigned = expiring_credential_v1()
    token = issue_jwt_credential(unsigned, ISSUER, now=NOW)
    header, claims = segment(token, 0), segment(token, 1)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == ISSUER.key_id
    assert header.get("typ") != "vc+jwt"
    assert claims["iss"] == ISSUER.controller
    assert claims["nbf"] == int(NOW.timestamp())
    assert claims["exp"] == int((NOW + timedelta(days=365)).timestamp())
    assert claims["jti"] == unsigned["id"]
    assert claims["sub"] == BATTERY.controller
    assert claims["vc"] == unsigned


def test_v1_issuance_date_is_filled_in_when_missing() -> None:
    unsigned = expiring_credential_v1()
    del unsigned["issuanceDate"]
    claims = segment(issue_jwt_credential(unsigned, ISSUER, now=NOW), 1)
    assert claims["nbf"] == int(NOW.timestamp())
    assert claims["vc"]["issuanceDate"] == stamp(NOW)


async def test_v1_round_trip() -> None:
    unsigned = expiring_credential_v1()
    result = await verify(issue_jwt_credential(unsigned, ISSUER, now=NOW))
    assert result.verified, result.problems
    assert result.document == unsigned
    assert result.issuer == ISSUER.controller


async def test_v1_registered_claims_win_over_vc_fields() -> None:
    """VC-JWT 1.1: iss/sub/jti/nbf are authoritative; a verifier shows what was signed there."""
    claims: dict[str, Any] = {
        "iss": ISSUER.controller,
        "sub": BATTERY.controller,
        "jti": "urn:uuid:00000000-0000-4000-8000-000000000001",
        "nbf": int(NOW.timestamp()),
        "vc": {**expiring_credential_v1(), "issuer": STRANGER.controller,
               "id": "urn:uuid:00000000-0000-4000-8000-000000000002"},
    }
    result = await verify(sign_jws({"alg": "EdDSA", "kid": ISSUER.key_id}, claims, ISSUER))
    assert result.verified, result.problems
    assert result.document is not None
    assert result.document["issuer"] == ISSUER.controller
    assert result.document["id"] == claims["jti"]


def _jws_with(alg: str, key: jwk.JWK, payload: dict[str, Any]) -> str:
    token = jws.JWS(json.dumps(payload).encode())
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, "kid": ISSUER.key_id}))
    return str(token.serialize(compact=True))


@pytest.mark.parametrize(
    "alg, key",
    [
        ("HS256", jwk.JWK.generate(kty="oct", size=256)),
        # key confusion: the issuer's public key used as the HMAC secret
        ("HS256", jwk.JWK(kty="oct", k=b64url_encode(ISSUER.public_key.raw))),
        ("ES256", jwk.JWK.generate(kty="EC", crv="P-256")),
    ],
    ids=["hs256", "hs256-public-key-as-secret", "es256"],
)
async def test_alg_other_than_eddsa_is_malformed(alg: str, key: jwk.JWK) -> None:
    result = await verify(_jws_with(alg, key, credential_v2()))
    assert problem_types(result) == [ProblemType.MALFORMED]


async def test_alg_none_is_malformed() -> None:
    header = b64url_encode(json.dumps({"alg": "none", "kid": ISSUER.key_id}).encode())
    payload = issue_jwt_credential(credential_v2(), ISSUER, now=NOW).split(".")[1]
    result = await verify(f"{header}.{payload}.")
    assert problem_types(result) == [ProblemType.MALFORMED]


async def test_kid_naming_another_did_key() -> None:
    token = sign_jws({"typ": "vc+jwt", "alg": "EdDSA", "kid": STRANGER.key_id},
                     credential_v2(), ISSUER)
    result = await verify(token)
    assert not result.verified
    assert set(problem_types(result)) & {ProblemType.BAD_SIGNATURE, ProblemType.UNKNOWN_KEY}


async def test_kid_naming_a_key_the_issuer_does_not_have() -> None:
    kid = f"{ISSUER.controller}#{STRANGER.controller.removeprefix('did:key:')}"
    token = sign_jws({"typ": "vc+jwt", "alg": "EdDSA", "kid": kid}, credential_v2(), ISSUER)
    result = await verify(token)
    assert problem_types(result) == [ProblemType.UNKNOWN_KEY]


async def test_missing_kid_is_unknown_key() -> None:
    token = sign_jws({"typ": "vc+jwt", "alg": "EdDSA"}, credential_v2(), ISSUER)
    result = await verify(token)
    assert problem_types(result) == [ProblemType.UNKNOWN_KEY]


async def test_valid_signature_by_a_key_that_is_not_the_issuers() -> None:
    token = sign_jws({"typ": "vc+jwt", "alg": "EdDSA", "kid": STRANGER.key_id},
                     credential_v2(), STRANGER)
    result = await verify(token)
    assert problem_types(result) == [ProblemType.ISSUER_MISMATCH]


async def test_tampered_payload_is_bad_signature() -> None:
    header, _, signature = issue_jwt_credential(credential_v2(), ISSUER, now=NOW).split(".")
    changed = credential_v2()
    changed["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    payload = b64url_encode(json.dumps(changed).encode())
    result = await verify(f"{header}.{payload}.{signature}")
    assert problem_types(result) == [ProblemType.BAD_SIGNATURE]


async def test_surrounding_whitespace_is_tolerated() -> None:
    token = issue_jwt_credential(credential_v2(), ISSUER, now=NOW)
    assert (await verify(f"  {token}\n")).verified


# --- the compact fast path (participant request tokens) -------------------------------------


@pytest.mark.parametrize("claims", [
    {"iss": "did:web:oem.example", "n": 1, "name": "Zelle ✓"},
    {"nested": {"list": [1, 2.5, None, True]}, "exp": 1893456000},
])
def test_the_fast_path_makes_jwcryptos_bytes_and_each_verifies_the_other(
    claims: dict[str, Any],
) -> None:
    from credentials.did_key import key_from_seed
    from credentials.jose import sign_compact_eddsa, verify_compact_eddsa, verify_jws

    key = key_from_seed(bytes(range(32)))
    header = {"alg": "EdDSA", "typ": "JWT", "kid": key.key_id}
    fast, reference = sign_compact_eddsa(header, claims, key), sign_jws(header, claims, key)
    assert fast == reference
    assert verify_compact_eddsa(reference, key.public_key) == claims
    assert verify_jws(fast, key.public_key) == claims


def test_the_fast_path_refuses_what_jwcrypto_refuses() -> None:
    from credentials.did_key import key_from_seed
    from credentials.jose import sign_compact_eddsa, verify_compact_eddsa

    key, other = key_from_seed(bytes(range(32))), key_from_seed(bytes(range(1, 33)))
    header = {"alg": "EdDSA", "kid": key.key_id}
    token = sign_compact_eddsa(header, {"a": 1}, key)
    protected, payload, signature = token.split(".")
    assert verify_compact_eddsa(token, other.public_key) is None
    tampered = sign_compact_eddsa(header, {"a": 2}, key).split(".")[1]
    assert verify_compact_eddsa(f"{protected}.{tampered}.{signature}", key.public_key) is None
    assert verify_compact_eddsa(f"{protected}.{payload}.{signature[:-4]}", key.public_key) is None
    assert verify_compact_eddsa("not.a.jws!", key.public_key) is None
    critical = sign_compact_eddsa({**header, "crit": ["exp"]}, {"a": 1}, key)
    assert verify_compact_eddsa(critical, key.public_key) is None
    with pytest.raises(ValueError, match="EdDSA"):
        sign_compact_eddsa({"alg": "ES256"}, {"a": 1}, key)
