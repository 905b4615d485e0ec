"""VC-JOSE: credentials as compact JWS with EdDSA (jwcrypto).

VCDM 2.0 credentials are secured as ``application/vc+jwt``: the payload *is* the credential.
VCDM 1.1 credentials use the older VC-JWT encoding (``vc`` claim plus ``iss``/``nbf``/``jti``/
``sub``/``exp``), which is what legacy peers and didkit produce and accept.
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from jwcrypto import jwk, jws
from jwcrypto.common import JWException, json_decode

from credentials.errors import MalformedDocument
from credentials.keys import Ed25519Key, PublicKey
from credentials.model import data_model, issuer_id
from credentials.timestamps import format_datetime, parse_datetime

VC_JWT_TYPE = "vc+jwt"
VP_JWT_TYPE = "vp+jwt"


def _jwk(key: Ed25519Key | PublicKey) -> jwk.JWK:
    return jwk.JWK(**key.jwk())


def _epoch(value: Any, path: str) -> int:
    return int(parse_datetime(value, path=path).timestamp())


def credential_claims(credential: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(protected header, claims) for a credential, by its data model."""
    if data_model(credential) == "2.0":
        return {"typ": VC_JWT_TYPE, "cty": "vc"}, credential
    claims: dict[str, Any] = {"iss": issuer_id(credential), "vc": credential}
    claims["nbf"] = _epoch(credential["issuanceDate"], "issuanceDate")
    if "expirationDate" in credential:
        claims["exp"] = _epoch(credential["expirationDate"], "expirationDate")
    if isinstance(credential.get("id"), str):
        claims["jti"] = credential["id"]
    subject = credential.get("credentialSubject")
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        claims["sub"] = subject["id"]
    return {"typ": "JWT"}, claims


def sign_jwt_credential(credential: dict[str, Any], key: Ed25519Key) -> str:
    header, claims = credential_claims(credential)
    return sign_jws({**header, "alg": "EdDSA", "kid": key.key_id}, claims, key)


def sign_jws(header: dict[str, Any], claims: dict[str, Any], key: Ed25519Key) -> str:
    token = jws.JWS(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    token.add_signature(_jwk(key), alg="EdDSA", protected=json.dumps(header))
    return str(token.serialize(compact=True))


def sign_compact_eddsa(header: dict[str, Any], claims: dict[str, Any], key: Ed25519Key) -> str:
    """``sign_jws`` without jwcrypto, for tokens signed on every request.

    The same bytes as ``sign_jws`` for the same header and claims (Ed25519 is deterministic;
    ``tests/credentials/test_jose.py`` compares them and verifies each with the other), minus
    jwcrypto's per-object deep copies (~0.2 ms a token), which showed on every Dataspace
    Protocol message in ``bpc bench dsp``. Credentials and access tokens keep ``sign_jws``.
    """
    if header.get("alg") != "EdDSA":
        raise ValueError("only EdDSA is supported")
    protected = _b64url(json.dumps(header).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{protected}.{payload}"
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode('ascii')))}"


def verify_compact_eddsa(token: str, public_key: PublicKey) -> dict[str, Any] | None:
    """``verify_jws`` without jwcrypto (see ``sign_compact_eddsa``): the claims when the
    signature is valid, else ``None``; raises ``MalformedDocument`` like ``verify_jws``."""
    try:
        header = unverified_header(token)
    except (MalformedDocument, TypeError):
        return None  # not a compact EdDSA JWS at all: nothing was signed
    if "crit" in header or "b64" in header:
        return None  # extensions we do not implement must not be ignored (RFC 7515 §4.1.11)
    protected, payload, signature = token.split(".")
    raw_signature = _b64url_decode(signature)
    if len(raw_signature) != 64 or not public_key.verify(
            f"{protected}.{payload}".encode("ascii"), raw_signature):
        return None
    try:
        claims = json.loads(_b64url_decode(payload))
    except (ValueError, TypeError) as exc:
        raise MalformedDocument(f"the JWS payload is not JSON: {exc}") from exc
    return _checked_claims(claims)


_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header, read before verification only to find the key to verify with.

    The token must be exactly three base64url segments: decoders that skip stray characters
    would otherwise accept many spellings of one token.
    """
    if not _COMPACT_JWS.fullmatch(token):
        raise MalformedDocument("not a compact JWS (three base64url segments)")
    for segment in token.split("."):
        # base64url leaves spare bits in a segment's last character; only the spelling with
        # those bits zero is accepted, so one token has one text (and one passport digest).
        try:
            canonical = _b64url(_b64url_decode(segment)) == segment
        except ValueError:  # binascii.Error: an impossible length
            canonical = False
        if not canonical:
            raise MalformedDocument("the JWS is not in canonical base64url")
    # Decoded here rather than through jwcrypto, whose JWS objects deep-copy a header
    # registry on construction (about 0.2 ms): verification builds one, this need not.
    try:
        header = json.loads(_b64url_decode(token.split(".", 1)[0]))
    except (ValueError, TypeError) as exc:
        raise MalformedDocument(f"not a compact JWS: {exc}") from exc
    if not isinstance(header, dict):
        raise MalformedDocument("JWS header is not a JSON object")
    if header.get("alg") != "EdDSA":
        raise MalformedDocument(f"unsupported JWS alg {header.get('alg')!r}; only EdDSA")
    return header


def verify_jws(token: str, public_key: PublicKey) -> dict[str, Any] | None:
    """The claims when the signature is valid, else None; a validly signed payload that is not
    a JSON object is malformed, not forged."""
    try:
        parsed = jws.JWS()
        parsed.deserialize(token)
        parsed.verify(_jwk(public_key), alg="EdDSA")
    except (JWException, ValueError, TypeError):
        return None
    try:
        claims = json_decode(parsed.payload)
    except (ValueError, TypeError) as exc:
        raise MalformedDocument(f"the JWS payload is not JSON: {exc}") from exc
    return _checked_claims(claims)


def _checked_claims(claims: Any) -> dict[str, Any]:
    if not isinstance(claims, dict):
        raise MalformedDocument("the JWS payload is not a JSON object")
    for claim in ("exp", "nbf", "iat"):
        value = claims.get(claim)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise MalformedDocument(f"JWT claim {claim} must be a finite number", path=claim)
    return claims


def credential_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The credential a JWT carries; VC-JWT 1.1 registered claims win over ``vc`` fields."""
    vc = claims.get("vc")
    if vc is None:
        return claims
    if not isinstance(vc, dict):
        raise MalformedDocument("the vc claim must be a JSON object", path="vc")
    credential = dict(vc)
    if "iss" in claims:
        issuer = credential.get("issuer")
        credential["issuer"] = ({**issuer, "id": claims["iss"]} if isinstance(issuer, dict)
                                else claims["iss"])


    for claim, field in (("nbf", "issuanceDate"), ("exp", "expirationDate")):
        if claim in claims:
            if not isinstance(claims[claim], int | float):
                raise MalformedDocument(f"JWT claim {claim} must be a number", path=claim)
            try:
                moment = datetime.fromtimestamp(claims[claim], UTC)
            except (OverflowError, ValueError, OSError) as exc:
                raise MalformedDocument(f"JWT claim {claim} is not a usable time: {exc}",
                                        path=claim) from exc
            credential[field] = format_datetime(moment)
    if "jti" in claims:
        credential["id"] = claims["jti"]
    subject = credential.get("credentialSubject")
    if "sub" in claims and isinstance(subject, dict):
        credential["credentialSubject"] = {**subject, "id": claims["sub"]}
    return credential
