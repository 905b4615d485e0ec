"""How the Dataspace Protocol endpoints know which participant is calling.

Scheme (a DCP-style self-issued ID token, bound to the one HTTP request it travels with):

The caller sends ``Authorization: Bearer <JWT>``, a compact JWS signed with its DID key:

- header: ``alg`` = ``EdDSA``, ``kid`` = the caller's verification method (a DID URL of ``iss``);
- claims: ``iss`` = ``sub`` = the caller's DID; ``aud`` = the receiving participant's DID;
  ``iat`` and ``exp`` (seconds; ``exp - iat`` at most ``MAX_LIFETIME_S`` = 60); ``jti`` (unique);
  ``htm`` = the HTTP method; ``htu`` = the full request URL as the caller addressed it
  (scheme, host, port, path and query — no fragment); ``bh`` = base64url (no padding) of the
  SHA-256 of the exact request body bytes (of ``b""`` for a GET).

The receiver (``verify_request``) resolves ``kid`` through the DID resolver and requires the key
to be listed under ``authentication`` in the caller's DID document; checks the signature,
``iss == sub == DID of kid``, ``aud`` == its own DID, the time window against an injectable
clock with ``CLOCK_SKEW_S`` leeway, method/URL/body binding, and that the ``jti`` was not seen
before while the token lives. Any failure is a ``ParticipantAuthError`` → HTTP 401 with a DSP
error body (``code`` ``unauthorized``) and ``WWW-Authenticate: Bearer``.

Why bind method, URL and body (like DPoP's ``htm``/``htu`` plus a body hash): a token captured
from one DSP message must not authorise a different message, not even within its 60 seconds.
Why ``authentication`` and not ``capabilityInvocation`` (DCP's choice): our own DID documents
list the node key under both, and ``authentication`` is the relationship that means "proves it
is the DID subject".

DCP's ``token`` claim (optional, a string): the caller's access token to its own credential
service, which the receiver may use to fetch the caller's presentation (``connector.dcp``).
``verify_caller`` returns it with the other claims (``VerifiedCaller.access_token``).

Replay protection: an in-memory ``ReplayCache`` for a node on SQLite (one process owns the
file), and ``StoreReplayCache`` on PostgreSQL, where several replicas may share the store: the
seen ``(iss, jti)`` pairs live in the store's ``seen_tokens`` table while their token lives, so
a token replayed to another replica is refused too.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from yarl import URL

from connector.dsp.messages import ContractNegotiationError
from credentials.errors import CredentialsError
from credentials.jose import sign_compact_eddsa, unverified_header, verify_compact_eddsa
from credentials.keys import Ed25519Key
from credentials.resolver import DIDResolver

if TYPE_CHECKING:
    from connector.store import Store

MAX_LIFETIME_S = 60
"""Longest ``exp - iat`` a receiver accepts (and what ``sign_request`` issues by default)."""
CLOCK_SKEW_S = 5
"""Leeway for clocks that disagree a little (``iat`` in the future, ``exp`` just passed)."""
AUTH_PURPOSE = "authentication"
ACCESS_TOKEN_CLAIM = "token"
"""DCP's claim for the access token to the caller's credential service."""
TOKEN_TYPE = "JWT"


class AuthFailure(StrEnum):
    """Why a request was not authenticated (the first ``reason`` entry of the 401 body)."""

    MISSING = "missing-token"
    MALFORMED = "malformed-token"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    WRONG_ISSUER = "wrong-issuer"
    WRONG_AUDIENCE = "wrong-audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    TOO_LONG_LIVED = "too-long-lived"
    REPLAYED = "replayed"
    WRONG_METHOD = "wrong-method"
    WRONG_URL = "wrong-url"
    BODY_MISMATCH = "body-mismatch"


class ParticipantAuthError(Exception):
    """The caller could not be authenticated; answer 401 (``response()``)."""

    def __init__(self, failure: AuthFailure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail

    def body(self) -> ContractNegotiationError:
        """The DSP error body (negotiation area; the PIDs are unknown to an unauthenticated
        caller, so they are empty, as ``connector.dsp.errors.UNKNOWN_PID``)."""
        return ContractNegotiationError(
            consumer_pid="", provider_pid="", code="unauthorized",
            reason=[str(self.failure), self.detail],
        )

    def response(self) -> web.Response:
        return web.json_response(
            self.body().to_json(), status=401,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", '
                                         f'error_description="{self.failure}"'},
        )


def body_hash(body: bytes) -> str:
    """``bh``: base64url (unpadded) SHA-256 of the exact body bytes."""
    digest = hashlib.sha256(body).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalise_url(url: str | URL) -> str:
    """The form ``htu`` is compared in: lower-case scheme/host, default port dropped, no
    fragment. Both sides normalise, so ``HTTP://Host:80/x`` and ``http://host/x`` agree."""
    parsed = URL(str(url)) if not isinstance(url, URL) else url
    parsed = parsed.with_fragment(None)
    return str(parsed.with_scheme(parsed.scheme.lower()).with_host((parsed.host or "").lower()))


def sign_request(
    key: Ed25519Key,
    *,
    audience: str,
    method: str,
    url: str,
    body: bytes,
    now: datetime | None = None,
    lifetime_s: int = MAX_LIFETIME_S,
    access_token: str | None = None,
    jti: str | None = None,
) -> str:
    """A bearer token authorising exactly this request (see the module docstring).

    ``access_token``: DCP's ``token`` claim — what the receiver may show the caller's
    credential service to fetch the caller's presentation (``connector.dcp``)."""
    issued = int((now or datetime.now(UTC)).timestamp())
    did = key.controller
    claims: dict[str, Any] = {
        "iss": did,
        "sub": did,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime_s,
        "jti": jti or f"urn:uuid:{uuid.uuid4()}",
        "htm": method.upper(),
        "htu": normalise_url(url),
        "bh": body_hash(body),
    }
    if access_token is not None:
        claims[ACCESS_TOKEN_CLAIM] = access_token
    header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": key.key_id}
    return sign_compact_eddsa(header, claims, key)


class ReplayCache:
    """``(iss, jti)`` pairs seen while their token lives; in memory (one replica only)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        # Expiry order, so forgetting dead tokens costs O(log n) each, not a scan per request.
        self._expiries: list[tuple[float, tuple[str, str]]] = []

    def check_and_add(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """``True`` the first time a pair is presented, ``False`` for a replay."""
        while self._expiries and self._expiries[0][0] + CLOCK_SKEW_S <= now:
            _, old = heapq.heappop(self._expiries)
            if old in self._seen and self._seen[old] + CLOCK_SKEW_S <= now:
                del self._seen[old]
        key = (issuer, jti)
        if key in self._seen and self._seen[key] + CLOCK_SKEW_S > now:
            return False
        self._seen[key] = expires
        heapq.heappush(self._expiries, (expires, key))
        return True


    async def first_use(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        """``ReplayGuard``: ``check_and_add`` for ``verify_request``."""
        return self.check_and_add(issuer, jti, expires, now)


class ReplayGuard(Protocol):
    """Remembers request tokens while they live; ``first_use`` is ``False`` for a replay."""

    async def first_use(self, issuer: str, jti: str, expires: float, now: float) -> bool: ...


class StoreReplayCache:
    """Replay protection in the node's store, shared by every replica on it.

    Each first use is one small write; expired entries are purged every ``purge_every``
    calls. Entries are kept for ``CLOCK_SKEW_S`` beyond their token's ``exp``, like the
    in-memory cache, because a receiver accepts a token that long.
    """

    def __init__(self, store: Store, *, purge_every: int = 1000) -> None:
        self._store = store
        self._purge_every = purge_every
        self._calls = 0

    async def first_use(self, issuer: str, jti: str, expires: float, now: float) -> bool:
        moment = datetime.fromtimestamp(now, UTC)
        self._calls += 1
        if self._calls % self._purge_every == 0:
            await self._store.forget_tokens_expired(moment - timedelta(seconds=CLOCK_SKEW_S))
        return await self._store.remember_token_use(
            issuer, jti, expires_at=datetime.fromtimestamp(expires + CLOCK_SKEW_S, UTC),
            now=moment)


_DEFAULT_CACHE = ReplayCache()


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ParticipantAuthError(AuthFailure.MISSING,
                                   "send 'Authorization: Bearer <self-issued JWT>'")
    return token.strip()


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParticipantAuthError(AuthFailure.MALFORMED, f"claim {name} must be a number")
    return float(value)


def _string(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise ParticipantAuthError(AuthFailure.MALFORMED, f"claim {name} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class VerifiedCaller:
    """An authenticated request's caller and the claims of its (verified) token."""

    did: str
    claims: dict[str, Any]

    @property
    def access_token(self) -> str | None:
        """DCP ``token``: lets the receiver query the caller's credential service."""
        value = self.claims.get(ACCESS_TOKEN_CLAIM)
        return value if isinstance(value, str) and value else None

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])


async def verify_request(
    request: web.Request,
    *,
    resolver: DIDResolver,
    audience: str,
    now: datetime | None = None,
    public_base_url: str | None = None,
    replay_cache: ReplayGuard | None = None,
) -> str:
    """Authenticate ``request``; return the caller's DID (``verify_caller`` for the claims)."""
    caller = await verify_caller(request, resolver=resolver, audience=audience, now=now,
                                 public_base_url=public_base_url, replay_cache=replay_cache)
    return caller.did


async def verify_caller(
    request: web.Request,
    *,
    resolver: DIDResolver,
    audience: str,
    now: datetime | None = None,
    public_base_url: str | None = None,
    replay_cache: ReplayGuard | None = None,
) -> VerifiedCaller:
    """Authenticate ``request``; return the caller or raise ``ParticipantAuthError``.

    ``public_base_url``: the node's public origin; ``htu`` is compared with it plus the
    request's path and query (behind a proxy ``request.url`` is the inner address, not the one
    the caller signed). Without it ``request.url`` is used. Reads the body (aiohttp caches it,
    so handlers can still ``await request.read()``).
    """
    token = _bearer(request)
    try:
        header = unverified_header(token)
    except CredentialsError as exc:
        raise ParticipantAuthError(AuthFailure.MALFORMED, str(exc)) from exc
    kid = header.get("kid")
    if not isinstance(kid, str) or "#" not in kid:
        raise ParticipantAuthError(AuthFailure.MALFORMED, "kid must be a DID URL")
    try:
        public_key = await resolver.public_key(kid, AUTH_PURPOSE)
    except CredentialsError as exc:
        raise ParticipantAuthError(AuthFailure.UNKNOWN_KEY, str(exc)) from exc
    try:
        claims = verify_compact_eddsa(token, public_key)
    except CredentialsError as exc:
        raise ParticipantAuthError(AuthFailure.MALFORMED, str(exc)) from exc
    if claims is None:
        raise ParticipantAuthError(AuthFailure.BAD_SIGNATURE, f"not signed by {kid}")

    did = kid.split("#", 1)[0]
    issuer, subject = _string(claims, "iss"), _string(claims, "sub")
    if issuer != subject or issuer != did:
        raise ParticipantAuthError(AuthFailure.WRONG_ISSUER,
                                   "iss and sub must both be the DID that owns kid")
    claimed_audience = claims.get("aud")
    audiences = claimed_audience if isinstance(claimed_audience, list) else [claimed_audience]
    if audience not in audiences:
        raise ParticipantAuthError(AuthFailure.WRONG_AUDIENCE, f"aud must be {audience}")

    moment = (now or datetime.now(UTC)).timestamp()
    issued, expires = _number(claims, "iat"), _number(claims, "exp")
    if expires - issued > MAX_LIFETIME_S:
        raise ParticipantAuthError(AuthFailure.TOO_LONG_LIVED,
                                   f"exp - iat must be at most {MAX_LIFETIME_S} s")
    if issued > moment + CLOCK_SKEW_S:
        raise ParticipantAuthError(AuthFailure.NOT_YET_VALID, "iat is in the future")
    if expires + CLOCK_SKEW_S <= moment:
        raise ParticipantAuthError(AuthFailure.EXPIRED, "the token has expired")

    if _string(claims, "htm").upper() != request.method.upper():
        raise ParticipantAuthError(AuthFailure.WRONG_METHOD, f"htm must be {request.method}")
    if public_base_url is not None:
        expected_url = public_base_url.rstrip("/") + str(request.rel_url)
    else:
        expected_url = str(request.url)
    if normalise_url(_string(claims, "htu")) != normalise_url(expected_url):
        raise ParticipantAuthError(AuthFailure.WRONG_URL, "htu does not name this request")
    body = await request.read()
    if _string(claims, "bh") != body_hash(body):
        raise ParticipantAuthError(AuthFailure.BODY_MISMATCH, "bh does not match the body")

    jti = _string(claims, "jti")
    cache = replay_cache if replay_cache is not None else _DEFAULT_CACHE
    if not await cache.first_use(issuer, jti, expires, moment):
        raise ParticipantAuthError(AuthFailure.REPLAYED, "this token was already used")
    token = claims.get(ACCESS_TOKEN_CLAIM)
    if token is not None and not (isinstance(token, str) and token):
        raise ParticipantAuthError(AuthFailure.MALFORMED, "claim token must be a string")
    return VerifiedCaller(did, claims)


@dataclass(frozen=True, slots=True)
class RequestSigner:
    """Signs outbound requests as one participant (what ``client.DspClient`` uses).

    ``clock``: the node's clock (``DspSettings.clock``); receivers check ``iat``/``exp`` against
    theirs, so nodes sharing an injected clock (the demo, tests) must also sign with it."""

    key: Ed25519Key
    clock: Callable[[], datetime] | None = None
    #: DCP: the access token to this node's credential service for a given audience (the
    #: receiver), sent as the ``token`` claim; ``None`` sends none.
    access_tokens: Callable[[str], str | None] | None = None

    def headers(self, *, audience: str, method: str, url: str, body: bytes,
                access_token: str | None = None, jti: str | None = None) -> dict[str, str]:
        """``access_token`` overrides ``access_tokens`` (a verifier forwarding a holder's)."""
        now = self.clock() if self.clock is not None else None
        if access_token is None and self.access_tokens is not None:
            access_token = self.access_tokens(audience)
        token = sign_request(self.key, audience=audience, method=method, url=url, body=body,
                             now=now, access_token=access_token, jti=jti)
        return {"Authorization": f"Bearer {token}"}
