"""Data plane access tokens and their refresh, as pure functions of their inputs.

Why pure: the HTTP endpoints, the token store and the clock belong to other layers. Keeping the
decisions here free of I/O lets them be tested exhaustively (expiry by a clock passed in, never
by sleeping) and lets the store hold only what this module hands it.

What a consumer receives (shared/notes/dataspace-protocol.md §3.4): a DSP ``DataAddress`` whose
``endpointProperties`` carry a bearer JWT (``authorization``) and Tractus-X refresh data
(``refreshToken``, ``expiresIn``, ``refreshEndpoint``, ``refreshAudience``) under their full IRIs,
so a Catena-X (Tractus-X EDC) consumer can use and refresh it without knowing this connector.

The access token is an EdDSA JWT: ``iss`` = the provider DID, ``sub`` = the consumer DID (the
party it was issued to), ``aud`` = the data plane endpoint that accepts it, ``jti``, ``iat``,
``exp``, and the private claims ``agreement_id`` / ``asset_id``. The data plane checks the asset
claim against the request, so a token from one agreement never opens another asset.

The refresh token is opaque and high-entropy (256 bits). Only its SHA-256 is meant to be stored:
a leaked store then yields nothing a caller can present. A salt is unnecessary because the token
is random, not chosen by a person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from connector.policy_gate import is_in_force
from credentials.errors import MalformedDocument
from credentials.jose import sign_jws, unverified_header, verify_jws
from credentials.keys import Ed25519Key, PublicKey

EDC_NS = "https://w3id.org/edc/v0.0.1/ns/"
TX_AUTH_NS = "https://w3id.org/tractusx/auth/"

# Endpoint property names exactly as Tractus-X puts them on the wire (notes §3.4).
PROP_ENDPOINT = EDC_NS + "endpoint"
PROP_ENDPOINT_TYPE = EDC_NS + "endpointType"
PROP_AUTHORIZATION = EDC_NS + "authorization"
PROP_AUTH_TYPE = EDC_NS + "authType"
PROP_REFRESH_TOKEN = TX_AUTH_NS + "refreshToken"
PROP_EXPIRES_IN = TX_AUTH_NS + "expiresIn"
PROP_REFRESH_ENDPOINT = TX_AUTH_NS + "refreshEndpoint"
PROP_REFRESH_AUDIENCE = TX_AUTH_NS + "refreshAudience"

HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"
DEFAULT_LIFETIME_S = 300  # Tractus-X dataplane.token.refresh.expiry_seconds default

CLAIM_AGREEMENT = "agreement_id"
CLAIM_ASSET = "asset_id"
_REQUIRED_STR_CLAIMS = ("iss", "sub", "aud", "jti", CLAIM_AGREEMENT, CLAIM_ASSET)


class TokenErrorKind(StrEnum):
    """Why an access token was refused; stable strings for problem responses and audit lines."""

    EXPIRED = "expired"
    WRONG_ASSET = "wrong-asset"
    BAD_SIGNATURE = "bad-signature"
    MALFORMED = "malformed"
    WRONG_AUDIENCE = "wrong-audience"


class TokenError(Exception):
    """An access token the data plane must refuse; ``kind`` says why (all map to 401/403)."""

    def __init__(self, kind: TokenErrorKind | str, detail: str = "") -> None:
        self.kind = TokenErrorKind(kind)
        self.detail = detail
        super().__init__(f"{self.kind}: {detail}" if detail else str(self.kind))


class RefreshRefusalKind(StrEnum):
    """Why a refresh was refused. Each is a 4xx, which Tractus-X consumers read as "the
    agreement is over or its policy no longer holds" (notes §3.4)."""

    AGREEMENT_ENDED = "agreement-ended"
    WRONG_CONSUMER = "wrong-consumer"
    BAD_REFRESH_TOKEN = "bad-refresh-token"
    TRANSFER_NOT_STARTED = "transfer-not-started"


@dataclass(frozen=True, slots=True)
class RefreshRefusal:
    """A typed "no" from ``refresh``: a value rather than an exception, because refusing is an
    expected outcome of the decision, not a fault."""

    kind: RefreshRefusalKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A freshly minted access token with its refresh token.

    ``refresh_token`` is the only copy of the plain refresh token: it goes to the consumer once
    (in the ``DataAddress``) and is kept out of ``repr`` so it does not end up in logs. Storage
    takes ``storage_record()``, which holds its hash instead.
    """

    token: str
    jti: str
    issuer: str
    consumer_did: str
    audience: str
    agreement_id: str
    asset_id: str
    issued_at: int
    expires_at: int
    refresh_token: str = field(repr=False)
    refresh_token_hash: str

    @property
    def expires_in(self) -> int:
        """Seconds the token is valid for, as ``expiresIn`` reports it."""
        return self.expires_at - self.issued_at

    def storage_record(self) -> dict[str, Any]:
        """What the token store keeps: enough to decide a refresh, never the plain refresh
        token (nor the access token, which the data plane verifies by signature)."""
        return {
            "jti": self.jti,
            "consumer_did": self.consumer_did,
            "agreement_id": self.agreement_id,
            "asset_id": self.asset_id,
            "audience": self.audience,
            "expires_at": self.expires_at,
            "refresh_token_hash": self.refresh_token_hash,
        }


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """The verified claims of an access token: who may fetch which asset under which agreement."""

    issuer: str
    consumer_did: str
    audience: str
    jti: str
    agreement_id: str
    asset_id: str
    issued_at: int
    expires_at: int


def hash_refresh_token(refresh_token: str) -> str:
    """SHA-256 (hex) of a refresh token: the form it is stored and compared in."""
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


def _epoch(now: datetime) -> int:
    # A naive datetime would be read in the host's zone, making expiry depend on the machine.
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return int(now.timestamp())


def mint_access_token(
    signer: Ed25519Key,
    *,
    agreement_id: str,
    consumer_did: str,
    asset_id: str,
    audience: str,
    now: datetime,
    lifetime_s: int = DEFAULT_LIFETIME_S,
) -> AccessToken:
    """Sign a short-lived access token for ``consumer_did`` to pull ``asset_id``.

    ``audience`` is the data plane endpoint that will accept the token, so a token cannot be
    replayed against another provider's (or another of our) data planes. ``kid`` names the
    signer's DID URL so the data plane can pick the verification key. The token is short-lived
    (300 s by default, as Tractus-X) because revocation is by not refreshing it.
    """
    if lifetime_s <= 0:
        raise ValueError("lifetime_s must be positive")
    issued_at = _epoch(now)
    jti = f"urn:uuid:{uuid.uuid4()}"
    claims = {
        "iss": signer.controller,
        "sub": consumer_did,
        "aud": audience,
        "jti": jti,
        "iat": issued_at,
        "exp": issued_at + lifetime_s,
        CLAIM_AGREEMENT: agreement_id,
        CLAIM_ASSET: asset_id,
    }
    token = sign_jws({"alg": "EdDSA", "typ": "JWT", "kid": signer.key_id}, claims, signer)
    refresh_token = secrets.token_urlsafe(32)
    return AccessToken(
        token=token,
        jti=jti,
        issuer=signer.controller,
        consumer_did=consumer_did,
        audience=audience,
        agreement_id=agreement_id,
        asset_id=asset_id,
        issued_at=issued_at,
        expires_at=issued_at + lifetime_s,
        refresh_token=refresh_token,
        refresh_token_hash=hash_refresh_token(refresh_token),
    )


def verify_access_token(
    token: str,
    *,
    provider_key: PublicKey,
    expected_audience: str,
    asset_id: str,
    now: datetime,
) -> AccessClaims:
    """The claims of a valid token for ``asset_id`` at ``now``, else ``TokenError``.

    Checks run from "is it a token at all" to "is it for this request": malformed, then
    signature, then audience, expiry and asset, so a forged token never learns which of the
    later checks it would have failed.
    """
    if not isinstance(token, str):
        raise TokenError(TokenErrorKind.MALFORMED, "the token is not a string")
    try:
        unverified_header(token)
    except MalformedDocument as exc:
        raise TokenError(TokenErrorKind.MALFORMED, str(exc)) from exc
    try:
        claims = verify_jws(token, provider_key)
    except MalformedDocument as exc:
        raise TokenError(TokenErrorKind.MALFORMED, str(exc)) from exc
    if claims is None:
        raise TokenError(TokenErrorKind.BAD_SIGNATURE, "the signature does not verify")
    for name in _REQUIRED_STR_CLAIMS:
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise TokenError(TokenErrorKind.MALFORMED, f"claim {name} must be a non-empty string")
    for name in ("iat", "exp"):
        if not isinstance(claims.get(name), int | float) or isinstance(claims[name], bool):
            raise TokenError(TokenErrorKind.MALFORMED, f"claim {name} must be a number")
    if claims["aud"] != expected_audience:
        raise TokenError(TokenErrorKind.WRONG_AUDIENCE, f"token is for {claims['aud']!r}")
    if _epoch(now) >= claims["exp"]:
        raise TokenError(TokenErrorKind.EXPIRED, "the token has expired")
    if claims[CLAIM_ASSET] != asset_id:
        raise TokenError(TokenErrorKind.WRONG_ASSET, "the token is for another asset")
    return AccessClaims(
        issuer=claims["iss"],
        consumer_did=claims["sub"],
        audience=claims["aud"],
        jti=claims["jti"],
        agreement_id=claims[CLAIM_AGREEMENT],
        asset_id=claims[CLAIM_ASSET],
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
    )


def local_name(name: Any) -> str:
    """A property name without its namespace (``…/ns/authorization`` → ``authorization``), so
    peers that send full IRIs (Tractus-X) and ones that send bare names read alike."""
    return str(name).rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def endpoint_properties(address: dict[str, Any]) -> dict[str, str]:
    """A ``DataAddress``'s endpoint properties by local name (the first of each name wins)."""
    found: dict[str, str] = {}
    raw = address.get("endpointProperties")
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            found.setdefault(local_name(item.get("name")), item["value"])
    return found


def with_endpoint_properties(address: dict[str, Any],
                             updates: dict[str, str]) -> dict[str, Any]:
    """``address`` with the properties named in ``updates`` (full IRIs) set to new values,
    matched by local name; absent ones are added."""
    wanted = {local_name(name): (name, value) for name, value in updates.items()}
    properties: list[Any] = []
    for item in address.get("endpointProperties") or []:
        key = local_name(item.get("name")) if isinstance(item, dict) else None
        if key in wanted:
            item = {**item, "value": wanted.pop(key)[1]}
        properties.append(item)
    properties += [_property(name, value) for name, value in wanted.values()]
    return {**address, "endpointProperties": properties}


def _property(name: str, value: str) -> dict[str, str]:
    return {"@type": "EndpointProperty", "name": name, "value": value}


def data_address(endpoint: str, token: AccessToken, *, refresh_endpoint: str) -> dict[str, Any]:
    """The DSP 2025-1 ``DataAddress`` for a ``TransferStartMessage`` (HTTP pull).

    Properties use the full IRIs Tractus-X emits (EDC namespace for endpoint/authorization,
    ``tx-auth`` for refresh data), so a Catena-X consumer's EDR cache understands them. The
    refresh audience is the provider DID: the consumer's refresh request is a JWT addressed to
    the party that issued the token. ``expiresIn`` is a string, as in Tractus-X EDRs and as the
    DSP schema requires of every property value.
    """
    return {
        "@type": "DataAddress",
        "endpointType": HTTP_ENDPOINT_TYPE,
        "endpoint": endpoint,
        "endpointProperties": [
            _property(PROP_ENDPOINT, endpoint),
            _property(PROP_ENDPOINT_TYPE, HTTP_ENDPOINT_TYPE),
            _property(PROP_AUTHORIZATION, token.token),
            _property(PROP_AUTH_TYPE, "bearer"),
            _property(PROP_REFRESH_TOKEN, token.refresh_token),
            _property(PROP_EXPIRES_IN, str(token.expires_in)),
            _property(PROP_REFRESH_ENDPOINT, refresh_endpoint),
            _property(PROP_REFRESH_AUDIENCE, token.issuer),
        ],
    }


def refresh(
    signer: Ed25519Key,
    *,
    stored_refresh_token_hash: str,
    presented_refresh_token: str,
    caller_did: str,
    consumer_did: str,
    agreement_policy: Any,
    agreement_start: datetime,
    agreement_id: str,
    asset_id: str,
    audience: str,
    now: datetime,
    lifetime_s: int = DEFAULT_LIFETIME_S,
) -> AccessToken | RefreshRefusal:
    """Decide a refresh: a new token (with a new, rotated refresh token) or a typed refusal.

    ``caller_did`` is the DID that signed the refresh request, already authenticated by the
    caller. The order is deliberate: the requester's identity and the refresh token are checked
    before the agreement, so someone who is not the consumer learns nothing about the agreement.
    The agreement is re-evaluated at ``now`` with ``is_in_force``: the refresh is where a usage
    window (e.g. ``DataUsageEndDurationDays``) actually cuts off access.

    Storing the new hash (and, per Tractus-X since 2026-08, keeping the old one valid until the
    new one is first presented) is the store's job, not this function's.
    """
    if caller_did != consumer_did:
        return RefreshRefusal(RefreshRefusalKind.WRONG_CONSUMER,
                              "the caller is not the party the token was issued to")
    presented_hash = hash_refresh_token(presented_refresh_token) if isinstance(
        presented_refresh_token, str) else ""
    if not stored_refresh_token_hash or not hmac.compare_digest(
            presented_hash.encode(), stored_refresh_token_hash.encode()):
        return RefreshRefusal(RefreshRefusalKind.BAD_REFRESH_TOKEN,
                              "the refresh token is not the one issued")
    if not is_in_force(agreement_policy, agreement_start, now):
        return RefreshRefusal(RefreshRefusalKind.AGREEMENT_ENDED,
                              "the agreement is no longer in force")
    return mint_access_token(signer, agreement_id=agreement_id, consumer_did=consumer_did,
                             asset_id=asset_id, audience=audience, now=now, lifetime_s=lifetime_s)


__all__ = [
    "DEFAULT_LIFETIME_S",
    "HTTP_ENDPOINT_TYPE",
    "PROP_AUTHORIZATION",
    "PROP_AUTH_TYPE",
    "PROP_ENDPOINT",
    "PROP_ENDPOINT_TYPE",
    "PROP_EXPIRES_IN",
    "PROP_REFRESH_AUDIENCE",
    "PROP_REFRESH_ENDPOINT",
    "PROP_REFRESH_TOKEN",
    "AccessClaims",
    "AccessToken",
    "RefreshRefusal",
    "RefreshRefusalKind",
    "TokenError",
    "TokenErrorKind",
    "data_address",
    "endpoint_properties",
    "hash_refresh_token",
    "local_name",
    "mint_access_token",
    "refresh",
    "verify_access_token",
    "with_endpoint_properties",
]
