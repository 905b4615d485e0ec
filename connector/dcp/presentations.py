"""The verifier side of DCP role proofs: fetch, verify and cache a consumer's credentials.

A provider answering a catalog or contract request needs the consumer's roles ("certified
dismantler", "member") to evaluate its policies. The consumer's request token carries an
access token (DCP ``token``) for the consumer's credential service; the provider:

1. resolves the consumer's DID and takes the ``CredentialService`` endpoint from its DID
   document (never a URL the request names);
2. ``POST <endpoint>/presentations/query`` with a ``PresentationQueryMessage`` for the scopes
   its policies need (``policies.credential_needs``), signed with its own request token that
   forwards the consumer's access token;
3. verifies the presentation — holder proof with ``authentication``, the challenge = the jti
   of that query token (so an answer to another query does not count), the domain = its own
   DID, holder = the consumer — and every credential in it (signature, validity, status);
4. keeps the verified credentials per (consumer, scopes) until the first of them expires or
   ``max_age_s`` passes. A hit still re-checks the credentials' status (status lists are
   cached by the status checker, so that costs no round trip while its copy is fresh): a
   revoked certificate stops new agreements as soon as the node sees the revocation.

Why cache: EDC pays one STS + DID + presentation round trip per DSP message (at least four per
negotiation); here a negotiation costs one query, and a catalog followed by a negotiation for
the same scopes costs one in total.

Nothing here raises at the protocol boundary: a consumer whose wallet cannot be reached, or
whose presentation does not verify, simply has no credentials, and ``RoleProof.problems`` says
why — the policy's refusal reason then names both the missing credential and this.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from yarl import URL

from connector.dcp import DCP_CONTEXT
from connector.participant_auth import RequestSigner, VerifiedCaller
from credentials.did_web import is_loopback_host
from credentials.errors import CredentialsError
from credentials.keys import Ed25519Key
from credentials.model import types_of
from credentials.timestamps import parse_datetime
from credentials.verifier import VerificationResult, Verifier, VerifyOptions

log = logging.getLogger(__name__)

CREDENTIAL_SERVICE = "CredentialService"
TYPE_SCOPE = "org.eclipse.dspace.dcp.vc.type:"
MAX_RESPONSE_BYTES = 1024 * 1024
QUERY_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


def type_scope(credential_type: str) -> str:
    """DCP's scope alias for every credential of one type."""
    return TYPE_SCOPE + credential_type


@dataclass(frozen=True, slots=True)
class RoleProof:
    """What a consumer proved: verified credential documents, and why others did not count."""

    credentials: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = ()
    #: ``True`` when this came from the cache (no round trip).
    cached: bool = False

    def note(self) -> str:
        """``""`` or ``"; role proof: …"`` to append to a refusal reason."""
        return "; role proof: " + "; ".join(self.problems) if self.problems else ""


@dataclass(slots=True)
class _Entry:
    credentials: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]
    expires: float  # monotonic seconds
    valid_until: datetime | None
    pending: asyncio.Future[None] | None = field(default=None)


def credential_service_url(did_document: dict[str, Any], *, allow_http_loopback: bool) -> str:
    """The consumer's ``<CredentialService endpoint>/presentations/query`` (``ValueError``)."""
    services = did_document.get("service")
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, dict):
            continue
        kinds = service.get("type")
        if CREDENTIAL_SERVICE not in (kinds if isinstance(kinds, list) else [kinds]):
            continue
        endpoint = service.get("serviceEndpoint")
        if not isinstance(endpoint, str):
            raise ValueError("its CredentialService has no serviceEndpoint URL")
        url = URL(endpoint)
        if url.scheme == "http" and allow_http_loopback and is_loopback_host(url.host or ""):
            pass
        elif url.scheme != "https" or not url.host:
            raise ValueError(f"its CredentialService endpoint {endpoint!r} is not an https URL")
        return endpoint.rstrip("/") + "/presentations/query"
    raise ValueError("its DID document lists no CredentialService")


def _earliest_valid_until(credentials: Iterable[dict[str, Any]]) -> datetime | None:
    ends: list[datetime] = []
    for document in credentials:
        raw = document.get("validUntil", document.get("expirationDate"))
        if isinstance(raw, str):
            try:
                ends.append(parse_datetime(raw, path="validUntil"))
            except CredentialsError:
                continue
    return min(ends) if ends else None


def _describe(result: VerificationResult) -> str:
    document = result.document or {}
    names = [t for t in types_of(document) if t != "VerifiableCredential"] if document else []
    what = names[0] if names else "a credential"
    reasons = "; ".join(problem.message for problem in result.problems) or "not verified"
    return f"{what} did not verify ({reasons})"


class RoleProofs:
    """Fetches, verifies and caches consumers' presentations (one per node)."""

    def __init__(
        self,
        *,
        key: Ed25519Key,
        session: aiohttp.ClientSession,
        verifier: Verifier,
        clock: Callable[[], datetime],
        allow_http_loopback: bool,
        max_age_s: float = 300.0,
        max_entries: int = 10_000,
    ) -> None:
        self._key = key
        self._session = session
        self._verifier = verifier
        self._clock = clock
        self._allow_http_loopback = allow_http_loopback
        self._max_age_s = max_age_s
        self._signer = RequestSigner(key, clock)
        self._cache: dict[tuple[str, frozenset[str]], _Entry] = {}
        self._max_entries = max_entries
        #: Queries sent (not cache hits): what a test or benchmark reads to prove the cache.
        self.queries = 0

    def forget(self, did: str | None = None) -> None:
        """Drop cached proofs (of one consumer, or all)."""
        for key in [k for k in self._cache if did is None or k[0] == did]:
            del self._cache[key]

    async def recent(self, did: str, credential_types: Iterable[str]) -> RoleProof | None:
        """What ``did`` proved lately for these types (status re-checked), without asking its
        credential service: ``explain`` cannot, since it holds no access token of ``did``'s.
        ``None`` when nothing is cached (or it expired)."""
        wanted = frozenset(credential_types)
        if not wanted:
            return RoleProof()
        entry = self._cache.get((did, wanted))
        now = self._clock()
        if entry is None or entry.pending is not None or time.monotonic() >= entry.expires or (
                entry.valid_until is not None and now >= entry.valid_until):
            return None
        return await self._still_valid(entry, now)

    async def prove(self, caller: VerifiedCaller, credential_types: Iterable[str]) -> RoleProof:
        """The verified credentials of ``caller`` for ``credential_types`` (none asked: none)."""
        wanted = frozenset(credential_types)
        if not wanted:
            return RoleProof()
        token = caller.access_token
        if token is None:
            return RoleProof(problems=(
                "the request carried no access token to the requester's credential service "
                "(DCP 'token' claim), so no credential was presented",))
        key = (caller.did, wanted)
        entry = self._cache.get(key)
        now = self._clock()
        if entry is not None and entry.pending is not None:
            await asyncio.shield(entry.pending)
            entry = self._cache.get(key)
        if entry is not None and time.monotonic() < entry.expires and (
                entry.valid_until is None or now < entry.valid_until):
            return await self._still_valid(entry, now)
        pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._make_room()
        self._cache[key] = _Entry((), (), 0.0, None, pending)
        try:
            fresh = await self._query(caller.did, token, wanted, now)
            self._cache[key] = fresh
        except BaseException:
            self._cache.pop(key, None)
            raise
        finally:
            pending.set_result(None)
        return RoleProof(fresh.credentials, fresh.problems)

    def _make_room(self) -> None:
        """Keep the cache bounded: anyone with a DID (did:key costs nothing) can add entries.
        Expired ones go first, then the oldest."""
        if len(self._cache) < self._max_entries:
            return
        moment = time.monotonic()
        for key in [k for k, e in self._cache.items() if e.pending is None and e.expires <= moment]:
            del self._cache[key]
        while len(self._cache) >= self._max_entries:
            oldest = next((k for k, e in self._cache.items() if e.pending is None), None)
            if oldest is None:
                return
            del self._cache[oldest]

    async def _still_valid(self, entry: _Entry, now: datetime) -> RoleProof:
        """A cached proof with each credential's status looked at again (warm cache)."""
        checker = self._verifier.status_checker
        if checker is None:
            return RoleProof(entry.credentials, entry.problems, cached=True)
        kept: list[dict[str, Any]] = []
        problems = list(entry.problems)
        for document in entry.credentials:
            result = VerificationResult("credential", "ldp", document=document)
            await checker.check_status(document, result, VerifyOptions(now=now),
                                       verifier=self._verifier)
            if result.problems:
                problems.append(_describe(result))
            else:
                kept.append(document)
        return RoleProof(tuple(kept), tuple(problems), cached=True)

    def _failed(self, reason: str) -> _Entry:
        # Failures are cached briefly too, so a consumer without a wallet does not cost a
        # round trip per message, but not for long: it may fix its wallet.
        return _Entry((), (reason,), time.monotonic() + min(self._max_age_s, 10.0), None)

    async def _query(self, did: str, token: str, wanted: frozenset[str],
                     now: datetime) -> _Entry:
        self.queries += 1
        try:
            document = await self._verifier.resolver.resolve(did)
            url = credential_service_url(document,
                                         allow_http_loopback=self._allow_http_loopback)
        except (CredentialsError, ValueError) as exc:
            return self._failed(f"cannot find {did}'s credential service: {exc}")
        body = json.dumps({"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage",
                           "scope": sorted(type_scope(t) for t in wanted)}).encode()
        challenge = f"urn:uuid:{uuid.uuid4()}"  # the query token's jti: the VP must name it
        headers = self._signer.headers(audience=did, method="POST", url=url, body=body,
                                       access_token=token, jti=challenge)
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=QUERY_TIMEOUT, allow_redirects=False) as answer:
                raw = await answer.content.read(MAX_RESPONSE_BYTES + 1)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return self._failed(f"{did}'s credential service is unreachable: {exc!r}")
        if len(raw) > MAX_RESPONSE_BYTES:
            return self._failed(f"{did}'s credential service answered more than "
                                f"{MAX_RESPONSE_BYTES} bytes")
        if status != 200:
            detail = raw[:300].decode("utf-8", "replace")
            return self._failed(f"{did}'s credential service refused the query ({status}: "
                                f"{detail})")
        try:
            message = json.loads(raw)
        except ValueError:
            return self._failed(f"{did}'s credential service answered malformed JSON")
        presentations = message.get("presentation") if isinstance(message, dict) else None
        if (not isinstance(message, dict) or message.get("type") != "PresentationResponseMessage"
                or not isinstance(presentations, list)):
            return self._failed(f"{did}'s credential service did not answer a "
                                "PresentationResponseMessage")
        return await self._verify(did, presentations, challenge, now)

    async def _verify(self, did: str, presentations: list[Any], challenge: str,
                      now: datetime) -> _Entry:
        verified: list[dict[str, Any]] = []
        problems: list[str] = []
        options = VerifyOptions(challenge=challenge, domain=self._key.controller, now=now)
        for presentation in presentations:
            if not isinstance(presentation, dict):
                problems.append("a presentation that is not a JSON object was ignored")
                continue
            result = await self._verifier.verify_presentation(presentation, options)
            if result.issuer != did:
                problems.append(f"a presentation held by {result.issuer}, not {did}, "
                                "was ignored")
                continue
            if result.problems:
                reasons = "; ".join(p.message for p in result.problems)
                problems.append(f"the presentation did not verify ({reasons})")
                continue
            for item in result.credentials:
                if item.verified and item.document is not None:
                    verified.append(item.document)
                else:
                    problems.append(_describe(item))
        expires = time.monotonic() + self._max_age_s
        return _Entry(tuple(verified), tuple(problems), expires, _earliest_valid_until(verified))


__all__ = ["DCP_CONTEXT", "RoleProof", "RoleProofs", "credential_service_url", "type_scope"]
