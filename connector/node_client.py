"""A small client of a node's management API, for the ``bpc`` consumer commands.

Synchronous (``urllib``) on purpose: a command makes a handful of calls one after another, so
an event loop would add nothing but the problem of running inside someone else's (tests run
the CLI next to nodes on their own loops). Every call carries the operator key as a bearer
token. The node answers errors as problem JSON (RFC 9457); they become ``NodeProblem`` with
the problem's ``status``, ``type``, ``title`` and ``detail`` (and the whole body for its
extensions), so a command can print what the node said and a script can branch on ``slug``.
No answer at all is ``NodeUnreachable``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from connector import __version__

DEFAULT_NODE_URL = "http://127.0.0.1:8181"
#: The node's own outbound calls (a provider's catalog) may take its 30 s timeout; wait longer.
DEFAULT_TIMEOUT_S = 60.0
_MAX_ANSWER_BYTES = 16 * 1024 * 1024


MAX_DATA_BYTES = 64 * 1024 * 1024


class NodeUnreachable(Exception):
    """Nothing answered at the node URL (not running, wrong port, firewall, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"no answer from {url}: {reason}")
        self.url = url
        self.reason = reason


class NodeProblem(Exception):
    """The node refused a request; the fields of its problem JSON."""

    def __init__(self, status: int, type_: str, title: str, detail: str | None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status
        self.type = type_
        self.title = title
        self.detail = detail
        self.body: dict[str, Any] = body or {}

    @property
    def slug(self) -> str:
        """The part of ``type`` after ``#`` (``…/problems#offer-not-found`` → that slug)."""
        return self.type.rsplit("#", 1)[-1]

    @classmethod
    def from_answer(cls, status: int, reason: str, raw: bytes) -> NodeProblem:
        """From an error answer: problem JSON when it is one, else the status line and text."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("title"), str):
            detail = body.get("detail")
            return cls(int(body.get("status") or status), str(body.get("type", "about:blank")),
                       body["title"], detail if isinstance(detail, str) else None, body)
        text = raw[:300].decode("utf-8", "replace").strip() or None
        return cls(status, "about:blank", reason or f"HTTP {status}", text)


def path_segment(value: str) -> str:
    """An id as one URL path segment (DSP ids are IRIs such as ``urn:uuid:…``)."""
    return quote(value, safe=":@")


class NodeClient:
    """The management API of one node, as plain method calls returning its JSON."""

    def __init__(self, base_url: str, api_key: str, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the node URL must be http(s)://host[:port], not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._timeout = timeout_s

    # --- transport ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                query: dict[str, str | None] | None = None) -> Any:
        """Send one request; the decoded JSON answer, or ``NodeProblem``/``NodeUnreachable``."""
        raw = self.request_bytes(method, path, body=body, query=query)
        return json.loads(raw) if raw.strip() else None

    def request_bytes(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                      query: dict[str, str | None] | None = None,
                      max_bytes: int | None = None) -> bytes:
        """Like ``request`` but the answer's bytes as they came (data, not JSON views)."""
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json",
                   "User-Agent": f"bpc/{__version__}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                raw: bytes = answer.read(max_bytes or _MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                raise NodeProblem.from_answer(exc.code, exc.reason, exc.read(65536)) from None
        except urllib.error.URLError as exc:
            raise NodeUnreachable(self.base_url, str(exc.reason)) from None
        except (TimeoutError, ConnectionError) as exc:
            raise NodeUnreachable(self.base_url, str(exc) or type(exc).__name__) from None
        return raw

    def get(self, path: str, **query: str | None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {})

    # --- the consumer side -------------------------------------------------------------------

    @staticmethod
    def _counterparty(address: str | None, did: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if address is not None:
            body["counterPartyAddress"] = address
        if did is not None:
            body["counterPartyId"] = did
        return body

    def catalog(self, address: str, provider_did: str | None = None) -> dict[str, Any]:
        """The provider's catalog, as the node (this participant) sees it."""
        result: dict[str, Any] = self.post("/management/catalog/request",
                                           self._counterparty(address, provider_did))
        return result

    def start_negotiation(self, address: str, offer_id: str,
                          provider_did: str | None = None) -> dict[str, Any]:
        body = {**self._counterparty(address, provider_did), "offerId": offer_id}
        result: dict[str, Any] = self.post("/management/negotiations", body)
        return result

    def negotiation(self, pid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/management/negotiations/{path_segment(pid)}")
        return result

    def start_transfer(self, agreement_id: str, address: str | None = None) -> dict[str, Any]:
        body = {**self._counterparty(address, None), "agreementId": agreement_id}
        result: dict[str, Any] = self.post("/management/transfers", body)
        return result

    def transfer(self, pid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/management/transfers/{path_segment(pid)}")
        return result

    def transfer_action(self, pid: str, action: str, reason: str | None = None) -> dict[str, Any]:
        """``complete``, ``suspend``, ``resume`` or ``terminate`` (the last two with a reason)."""
        body = {"reason": reason} if reason is not None else {}
        result: dict[str, Any] = self.post(
            f"/management/transfers/{path_segment(pid)}/{action}", body)
        return result

    def transfer_data(self, pid: str) -> bytes:
        """The asset data of a STARTED transfer, pulled (and the token refreshed) by the node."""
        return self.request_bytes("GET", f"/management/transfers/{path_segment(pid)}/data",
                                  max_bytes=MAX_DATA_BYTES)

    def page(self, collection: str, **query: str | None) -> dict[str, Any]:
        """One page of ``negotiations``, ``agreements`` or ``transfers``: ``{items, next}``."""
        result: dict[str, Any] = self.get(f"/management/{collection}", **query)
        return result
