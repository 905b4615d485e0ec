"""Outbound DSP calls: one signed HTTP request per message, and a typed result.

The client never retries and never interprets the protocol: it returns what happened
(``Delivery``) and lets the outbox decide (deliver, back off, give up). Every request carries a
fresh participant token bound to its method, URL and exact body bytes
(``connector.participant_auth``), so the body is serialised once and those bytes are both
hashed and sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from connector.participant_auth import RequestSigner

MAX_RESPONSE_BYTES = 4 * 1024 * 1024  # a catalog of a few thousand datasets


@dataclass(frozen=True, slots=True)
class Delivery:
    """The peer's answer, or ``status`` 0 with ``error`` when there was none (transport)."""

    status: int
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, a server error, or the peer asking us to slow down."""
        return self.status == 0 or self.status >= 500 or self.status in (408, 425, 429)

    @property
    def error_code(self) -> str | None:
        """The DSP error ``code`` when the peer answered with an error message."""
        if isinstance(self.body, dict) and isinstance(self.body.get("code"), str):
            return str(self.body["code"])
        return None


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of an http(s) URL (default port made explicit, host lower-case),
    the unit callbacks and data addresses are matched by; ``None`` for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def join_url(base: str, path: str) -> str:
    """``base`` + ``path`` whether or not ``base`` ends in ``/`` (the binding requires both)."""
    return base.rstrip("/") + "/" + path.lstrip("/")


class DspClient:
    """Sends DSP messages as this node's participant over the node's shared session."""

    def __init__(self, session: aiohttp.ClientSession, signer: RequestSigner,
                 *, timeout_s: float = 10.0) -> None:
        self._session = session
        self._signer = signer
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def post(self, url: str, message: dict[str, Any], *, audience: str) -> Delivery:
        """POST a message; never raises for network or peer failures."""
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json",
                   **self._signer.headers(audience=audience, method="POST", url=url, body=body)}
        return await self._send("POST", url, headers, body)

    async def get(self, url: str, *, audience: str) -> Delivery:
        headers = self._signer.headers(audience=audience, method="GET", url=url, body=b"")
        return await self._send("GET", url, headers, None)

    async def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> Delivery:
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Delivery(0, error=f"{type(exc).__name__}: {exc}")
        if len(raw) > MAX_RESPONSE_BYTES:
            return Delivery(status, error=f"response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        error = None if 200 <= status < 300 else f"HTTP {status}: {raw[:500]!r}"
        return Delivery(status, parsed, error)
