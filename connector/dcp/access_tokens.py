"""Access tokens to this node's credential service, minted for one verifier each (DCP 1.0).

DCP lets a holder put an opaque ``token`` claim into the self-issued token of every protocol
request; the receiving verifier shows it back to the holder's credential service when it
asks for a presentation. Ours is a compact JWS the holder signs for itself:

- header ``alg`` EdDSA, ``typ`` JWT, ``kid`` = the node key;
- ``iss`` = ``aud`` = the holder's DID (the holder is both who minted it and who accepts it),
  ``sub`` = the verifier's DID (the only party that may use it: a verifier that leaks it
  lends nothing, since the credential service also authenticates the caller as ``sub``),
  ``iat``, ``exp`` (``lifetime_s``, 300 s by default), ``jti``;
- ``scope`` = ``org.eclipse.dspace.dcp.vc.type:*``: the verifier may read any credential in
  the wallet. Wallets hold role credentials meant to be shown (membership, dismantler…);
  narrower grants are the scope parser's business (``credential_service``), not the token's.

Why self-signed and stateless: the credential service verifies the token with its own key,
so no store row per token and any replica of the node accepts a token another minted.

Tokens are cached per verifier and re-minted when less than ``RENEW_BEFORE_S`` remain, so a
negotiation's several messages do not each pay for a signature, while a verifier that gets
the token with one message still has a minute to use it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from credentials.errors import CredentialsError
from credentials.jose import sign_compact_eddsa, unverified_header, verify_compact_eddsa
from credentials.keys import Ed25519Key

#: Every credential type, in the DCP scope alias (``org.eclipse.dspace.dcp.vc.type:<Type>``).
SCOPE_ALL_TYPES = "org.eclipse.dspace.dcp.vc.type:*"
DEFAULT_LIFETIME_S = 300
#: A cached token with less than this left is replaced: the verifier needs time to use it.
RENEW_BEFORE_S = 60
#: Leeway for clocks that disagree a little (as for request tokens).
CLOCK_SKEW_S = 5
#: A node talks to a bounded set of peers; past this many cached tokens, dead ones are dropped.
_CACHE_PRUNE_AT = 1024


class AccessTokenError(Exception):
    """The access token does not grant this caller anything; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail or reason


class AccessTokens:
    """Mints (and caches) the access tokens this node hands to verifiers."""

    def __init__(self, key: Ed25519Key, clock: Callable[[], datetime],
                 lifetime_s: int = DEFAULT_LIFETIME_S) -> None:
        if lifetime_s <= 0:
            raise ValueError("an access token needs a positive lifetime")
        self._key = key
        self._clock = clock
        self._lifetime_s = lifetime_s
        self._cache: dict[str, tuple[str, int]] = {}

    @property
    def holder(self) -> str:
        return self._key.controller

    def for_verifier(self, verifier_did: str) -> str:
        """The token ``verifier_did`` may show this node's credential service."""
        now = int(self._clock().timestamp())
        cached = self._cache.get(verifier_did)
        if cached is not None and cached[1] - now >= RENEW_BEFORE_S:
            return cached[0]
        if len(self._cache) >= _CACHE_PRUNE_AT:
            self._cache = {did: entry for did, entry in self._cache.items()
                           if entry[1] - now >= RENEW_BEFORE_S}
        token = self.mint(verifier_did, now=now)
        self._cache[verifier_did] = (token, now + self._lifetime_s)
        return token

    def mint(self, verifier_did: str, *, now: int | None = None) -> str:
        """A new token for ``verifier_did`` (uncached; ``for_verifier`` is what callers want)."""
        issued = int(self._clock().timestamp()) if now is None else now
        holder = self._key.controller
        claims: dict[str, Any] = {
            "iss": holder,
            "aud": holder,
            "sub": verifier_did,
            "iat": issued,
            "exp": issued + self._lifetime_s,
            "jti": f"urn:uuid:{uuid.uuid4()}",
            "scope": SCOPE_ALL_TYPES,
        }
        header = {"alg": "EdDSA", "typ": "JWT", "kid": self._key.key_id}
        return sign_compact_eddsa(header, claims, self._key)


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AccessTokenError("malformed", f"claim {name} must be a number")
    return float(value)


def verify_access_token(token: str, *, holder_key: Ed25519Key, verifier_did: str,
                        now: datetime) -> dict[str, Any]:
    """The claims of ``token`` when this holder minted it for ``verifier_did`` and it lives.

    Reasons (``AccessTokenError.reason``): ``malformed``, ``bad-signature``, ``wrong-issuer``
    (``iss``/``aud`` not the holder), ``wrong-verifier`` (bound to another verifier),
    ``expired``, ``not-yet-valid``.
    """
    try:
        unverified_header(token)
        claims = verify_compact_eddsa(token, holder_key.public_key)
    except CredentialsError as exc:
        raise AccessTokenError("malformed", str(exc)) from None
    if claims is None:
        raise AccessTokenError("bad-signature", "the access token was not signed by this node")
    holder = holder_key.controller
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != holder or holder not in audiences:
        raise AccessTokenError("wrong-issuer", f"iss and aud must be {holder}")
    if claims.get("sub") != verifier_did:
        raise AccessTokenError("wrong-verifier", "the access token is bound to another verifier")
    moment = now.timestamp()
    issued, expires = _number(claims, "iat"), _number(claims, "exp")
    if expires + CLOCK_SKEW_S <= moment:
        raise AccessTokenError("expired", "the access token has expired")
    if issued > moment + CLOCK_SKEW_S:
        raise AccessTokenError("not-yet-valid", "the access token's iat is in the future")
    return claims


ACCESS_TOKENS = web.AppKey("access_tokens", AccessTokens)


async def access_tokens_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the node's ``AccessTokens`` (after the identity, before the outbox,
    whose request signer puts them into every protocol message)."""
    from connector.app import IDENTITY
    from connector.dsp.negotiation_service import DSP_STATE

    state = app.get(DSP_STATE)
    clock = state.settings.clock if state is not None else _utcnow
    app[ACCESS_TOKENS] = AccessTokens(app[IDENTITY].signing_key, clock)
    yield


def _utcnow() -> datetime:
    return datetime.now(UTC)


__all__ = ["ACCESS_TOKENS", "SCOPE_ALL_TYPES", "AccessTokenError", "AccessTokens",
           "access_tokens_ctx", "verify_access_token"]
