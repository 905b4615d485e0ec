"""DID resolution and verification-method lookup for verifiers.

did:key resolves offline. did:web is fetched over HTTPS through aiohttp with a small TTL
cache; the fetch is injectable so tests (and nodes on one machine) resolve from local nodes
without touching the network.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from credentials.did_key import DID_KEY_PREFIX, public_key_of_did_key, resolve_did_key
from credentials.did_web import DID_WEB_PREFIX, did_web_to_url
from credentials.errors import DIDError, DIDResolutionError, InvalidDID
from credentials.keys import PublicKey
from credentials.multibase import decode_base58btc, decode_ed25519_public

DIDFetcher = Callable[[str], Awaitable[dict[str, Any]]]

MAX_DID_DOCUMENT_BYTES = 256 * 1024


class HttpDIDFetcher:
    """Fetches did:web documents with aiohttp; refuses redirects and oversized bodies."""

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        allow_http_loopback: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        self._session = session
        self._allow_http = allow_http_loopback
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def __call__(self, did: str) -> dict[str, Any]:
        url = did_web_to_url(did, allow_http=self._allow_http)
        session = self._session
        owned = session is None
        if session is None:
            session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with session.get(url, allow_redirects=False, timeout=self._timeout) as response:
                if response.status != 200:
                    raise DIDResolutionError(f"{url} answered HTTP {response.status}")
                body = b""
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_DID_DOCUMENT_BYTES:
                        raise DIDResolutionError(f"{url}: DID document larger than 256 KiB")
        except aiohttp.ClientError as exc:
            raise DIDResolutionError(f"cannot fetch {url}: {exc}") from exc
        except TimeoutError as exc:
            raise DIDResolutionError(f"timed out fetching {url}") from exc
        finally:
            if owned:
                await session.close()


        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise DIDResolutionError(f"{url} did not return JSON") from exc
        if not isinstance(doc, dict) or doc.get("id") != did:
            raise DIDResolutionError(f"{url} returned a document for another DID")
        return doc


class DIDResolver:
    """Resolves DIDs to documents and DID URLs to Ed25519 public keys."""

    def __init__(
        self, *, web_fetcher: DIDFetcher | None = None, cache_ttl_s: float = 300.0
    ) -> None:
        self._web_fetcher = web_fetcher
        self._ttl = cache_ttl_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def resolve(self, did: str) -> dict[str, Any]:
        if did.startswith(DID_KEY_PREFIX):
            return resolve_did_key(did)
        if did.startswith(DID_WEB_PREFIX):
            if self._web_fetcher is None:
                raise DIDResolutionError(
                    f"cannot resolve {did}: this verifier has no did:web fetcher configured"
                )
            cached = self._cache.get(did)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            doc = await self._web_fetcher(did)
            self._cache[did] = (time.monotonic() + self._ttl, doc)
            return doc
        raise InvalidDID(f"unsupported DID method: {did.split('#')[0]!r}")

    async def public_key(self, verification_method: str, purpose: str) -> PublicKey:
        """The key behind a DID URL, provided the DID lists it for ``purpose``."""
        if not isinstance(verification_method, str) or "#" not in verification_method:
            raise InvalidDID(f"verification method must be a DID URL: {verification_method!r}")
        did = verification_method.split("#", 1)[0]
        if did.startswith(DID_KEY_PREFIX):
            # did:key documents are derived, so skip building one: same answer, much cheaper.
            if verification_method != f"{did}#{did[len(DID_KEY_PREFIX):]}":
                raise DIDError(f"{verification_method} is not a key of {did}")
            return public_key_of_did_key(did)
        doc = await self.resolve(did)
        return key_from_document(doc, verification_method, purpose)


def _absolute(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


def key_from_document(doc: dict[str, Any], verification_method: str, purpose: str) -> PublicKey:
    did = str(doc.get("id", ""))
    relationship = doc.get(purpose) or []
    methods = {
        _absolute(str(m.get("id", "")), did): m
        for m in [*(doc.get("verificationMethod") or []),
                  *(r for r in relationship if isinstance(r, dict))]
        if isinstance(m, dict)
    }
    allowed = {_absolute(r if isinstance(r, str) else str(r.get("id", "")), did)
               for r in relationship}
    if verification_method not in methods:
        raise DIDError(f"{did or 'the DID document'} has no verification method "
                       f"{verification_method}")
    if verification_method not in allowed:
        raise DIDError(f"{verification_method} is not authorised for {purpose}")
    method = methods[verification_method]
    if method.get("controller") not in (None, did):
        raise DIDError(f"{verification_method} is controlled by another DID")
    return public_key_from_method(method)


def public_key_from_method(method: dict[str, Any]) -> PublicKey:
    kind = method.get("type")
    try:
        if kind in ("Multikey", "Ed25519VerificationKey2020"):
            return PublicKey(decode_ed25519_public(str(method["publicKeyMultibase"])))
        if kind == "Ed25519VerificationKey2018" and "publicKeyBase58" in method:
            return PublicKey(decode_base58btc("z" + str(method["publicKeyBase58"])))
        jwk = method.get("publicKeyJwk")
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":


            x = str(jwk["x"])
            return PublicKey(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    except (KeyError, ValueError) as exc:
        raise DIDError(
            f"verification method {method.get('id')} holds no usable key: {exc}"
        ) from exc
    raise DIDError(f"unsupported verification method type {kind!r} (Ed25519 keys only)")
