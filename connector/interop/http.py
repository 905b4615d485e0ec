"""The harness's HTTP calls: signed as its own participant, every answer kept as evidence.

The harness is a participant with its own ``did:key`` (``harness_key``): it signs each DSP
request exactly as our nodes sign theirs (``participant_auth.sign_request``: a self-issued
JWT bound to method, URL and body), so any node that admits ``did:key`` participants lets it
in. Its default key comes from a fixed seed, so its DID is the same on every run and an
operator can admit it once (``TCK.md``: how to let the harness in); it is a test identity
whose key is public — never admit it on a node that serves real partners.

``call`` never raises for the target's behaviour: no connection, a timeout, a body that is not
JSON or comes with a wrong content type all become ``CheckFailed`` naming what came back, and
every exchange lands in the context's evidence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from connector.interop.model import CheckFailed, Exchange
from connector.participant_auth import sign_request
from credentials.did_key import key_from_seed
from credentials.keys import Ed25519Key

HARNESS_SEED_TEXT = "bpc-interop-harness"
MAX_BODY_BYTES = 8 * 1024 * 1024


def harness_key(seed_hex: str | None = None) -> Ed25519Key:
    """The harness's did:key: from ``seed_hex`` (32 bytes) or the fixed public test seed."""
    seed = (bytes.fromhex(seed_hex) if seed_hex
            else hashlib.sha256(HARNESS_SEED_TEXT.encode()).digest())
    return key_from_seed(seed)


def is_json_type(content_type: str | None) -> bool:
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return value == "application/json" or value.endswith("+json")


class Http:
    """Calls targets as the harness participant; ``record`` receives every exchange."""

    def __init__(self, session: aiohttp.ClientSession, key: Ed25519Key,
                 record: Callable[[Exchange], None], *, timeout_s: float = 10.0) -> None:
        self.session = session
        self.key = key
        self.did = key.controller
        self._record = record
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def call(
        self, method: str, url: str, *, body: Any = None, audience: str | None = None,
        headers: dict[str, str] | None = None, expect_json: bool = True,
    ) -> tuple[int, Any, Exchange]:
        """``(status, parsed JSON or text, exchange)``; ``audience`` signs the request for it.

        Raises ``CheckFailed`` when nothing usable came back: no connection or timeout, or
        (``expect_json``) a non-empty body that is not JSON or not served as JSON."""
        raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        sent_headers = dict(headers or {})
        if body is not None:
            sent_headers["Content-Type"] = "application/json"
        if audience is not None:
            token = sign_request(self.key, audience=audience, method=method, url=url, body=raw)
            sent_headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.session.request(
                method, url, data=raw if body is not None else None, headers=sent_headers,
                timeout=self._timeout, allow_redirects=False,
            ) as response:
                data = await response.content.read(MAX_BODY_BYTES + 1)
                status, content_type = response.status, response.headers.get("Content-Type")
        except TimeoutError:
            exchange = Exchange(method, url, error=f"timed out after {self._timeout.total} s",
                                request=body)
            self._record(exchange)
            raise CheckFailed(f"{method} {url}: no answer within {self._timeout.total} s") \
                from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            exchange = Exchange(method, url, error=f"{type(exc).__name__}: {exc}", request=body)
            self._record(exchange)
            raise CheckFailed(f"{method} {url}: connection failed ({type(exc).__name__}: "
                              f"{exc})") from None
        text = data[:MAX_BODY_BYTES].decode("utf-8", "replace")
        exchange = Exchange(method, url, status, content_type, text, request=body)
        self._record(exchange)
        if not expect_json:
            return status, text, exchange
        if not data.strip():
            return status, None, exchange
        if not is_json_type(content_type):
            raise CheckFailed(f"{method} {url} answered {status} with content type "
                              f"{content_type!r}, not JSON: {text[:300]!r}")
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise CheckFailed(f"{method} {url} answered {status} with invalid JSON ({exc}): "
                              f"{text[:300]!r}") from None
        return status, parsed, exchange
