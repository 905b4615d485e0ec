"""The node's own Bitstring Status Lists: every credential it issues can be revoked or suspended.

Each credential the node issues (VC-API ``/credentials/issue``) gets two entries, one in a
revocation list and one in a suspension list, allocated at random indices
(``credentials.status_list``) in the same store transaction that is committed only once the
credential is signed — a refused issue request allocates nothing. A full list is followed by
a new one (``revocation-2``, …), never by an error for the caller.

The lists are served at ``GET /status/{name}`` (open, as the spec wants) as signed
``BitstringStatusListCredential``s, re-signed only when the list changed (cached per stored
version). Operators revoke, suspend and resume through ``POST /management/status/{action}``.

The node's verifier checks the status of every credential it verifies
(``status_fetcher``): its own lists straight from the store, other issuers' lists over HTTPS
(http only for loopback on a local node), no redirects, a size cap and a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from connector.store import Store, Transaction
from connector.store.records import StatusListRecord
from credentials import RDFC, Ed25519Key
from credentials.did_web import is_loopback_host
from credentials.errors import MalformedDocument
from credentials.status_list import (
    REVOCATION,
    SUSPENSION,
    StatusList,
    attach_status,
    issue_status_list_credential,
    parse_entry,
)

STATUS_PATH = "/status"
PURPOSES = (REVOCATION, SUSPENSION)
MAX_LIST_BYTES = 1024 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)


class StatusError(Exception):
    """A status operation this node cannot do (unknown list or index, wrong purpose)."""


@dataclass(slots=True)
class NodeStatusLists:
    """The status lists one node publishes, kept in its store."""

    store: Store
    key: Ed25519Key
    base_url: str
    #: Told the URL of a list that changed (the node's verifier drops it from its cache).
    on_change: Callable[[str], None] = lambda url: None
    _signed: dict[str, tuple[int, dict[str, Any] | str]] = field(default_factory=dict)

    def url_of(self, name: str) -> str:
        return f"{self.base_url.rstrip('/')}{STATUS_PATH}/{name}"

    def name_of(self, url: str) -> str | None:
        prefix = self.url_of("")
        return url[len(prefix):] if url.startswith(prefix) and "/" not in url[len(prefix):] \
            else None

    async def _open_list(self, tx: Transaction, purpose: str) -> tuple[StatusListRecord,
                                                                       StatusList]:
        """The newest list of ``purpose`` with room, created (or followed by a new one)
        as needed."""
        records = sorted(await tx.list_status_lists(purpose=purpose),
                         key=lambda r: (len(r.url), r.url))
        if records:
            newest = await tx.get_status_list(records[-1].url, for_update=True)
            assert newest is not None
            status_list = StatusList.from_json(newest.state)
            if status_list.free_count:
                return newest, status_list
        url = self.url_of(f"{purpose}-{len(records) + 1}")
        return StatusListRecord(url=url, purpose=purpose, state={}), StatusList(url, purpose)

    async def issue_with_status(
        self, credential: dict[str, Any],
        sign: Callable[[dict[str, Any]], Any],
    ) -> Any:
        """Allocate a revocation and a suspension entry, attach them, ``sign`` (in a worker
        thread) and commit the allocation only if signing succeeded."""
        if "credentialStatus" in credential:
            raise MalformedDocument("this node assigns credentialStatus itself; send the "
                                    "credential without one", path="credentialStatus")
        async with self.store.transaction() as tx:
            entries = []
            for purpose in PURPOSES:
                record, status_list = await self._open_list(tx, purpose)
                entries.append(status_list.allocate_entry())
                await tx.put_status_list(StatusListRecord(
                    url=record.url, purpose=purpose, state=status_list.to_json(),
                    version=record.version, created_at=record.created_at))
            with_status = attach_status(credential, entries)
            return await asyncio.to_thread(sign, with_status)

    async def set_status(self, url: str, index: int, action: str, *, actor: str) -> None:
        """Revoke, suspend or resume the entry ``index`` of this node's list at ``url``."""
        purpose = REVOCATION if action == "revoke" else SUSPENSION
        async with self.store.transaction() as tx:
            record = await tx.get_status_list(url, for_update=True)
            if record is None:
                raise StatusError(f"{url} is not a status list of this node")
            if record.purpose != purpose:
                raise StatusError(f"{url} is a {record.purpose} list; {action} needs a "
                                  f"{purpose} list")
            status_list = StatusList.from_json(record.state)
            if not 0 <= index < status_list.length or not status_list.is_allocated(index):
                raise StatusError(f"index {index} of {url} was never issued")
            {"revoke": status_list.revoke, "suspend": status_list.suspend,
             "resume": status_list.resume}[action](index)
            await tx.put_status_list(StatusListRecord(
                url=url, purpose=purpose, state=status_list.to_json(), version=record.version,
                created_at=record.created_at))
            await tx.append_audit(actor=actor, action=f"status.{action}", subject_id=url,
                                  details={"index": index})
            tx.on_commit(lambda: self.on_change(url))

    async def list_credential(self, url: str) -> dict[str, Any] | str | None:
        """The signed list credential at ``url`` (re-signed only after a change)."""
        async with self.store.read() as reader:
            record = await reader.get_status_list(url)
        if record is None:
            return None
        cached = self._signed.get(url)
        if cached is not None and cached[0] == record.version:
            return cached[1]
        status_list = StatusList.from_json(record.state)
        # Valid from the list's last change, not from "now": that is what it states, and a
        # verifier that asked a moment before signing must not see a validFrom in its future.
        signed = await asyncio.to_thread(issue_status_list_credential, status_list, self.key,
                                         suite=RDFC, now=record.updated_at)
        self._signed[url] = (record.version, signed)
        return signed


def entries_of(credential: dict[str, Any]) -> list[tuple[str, int, str]]:
    """``(list URL, index, purpose)`` of each status entry of a credential."""
    raw = credential.get("credentialStatus")
    listed = raw if isinstance(raw, list) else [raw] if raw is not None else []
    found = []
    for position, entry in enumerate(listed):
        parsed = parse_entry(entry, f"credentialStatus[{position}]")
        found.append((parsed.list_url, parsed.index, parsed.purpose))
    return found


def status_fetcher(
    own: NodeStatusLists, session: aiohttp.ClientSession, *, allow_http_loopback: bool,
) -> Callable[[str], Awaitable[dict[str, Any] | str]]:
    """The verifier's way to a status list: the node's own from its store, others over
    HTTPS under the rules in the module docstring. Raises on anything else."""

    async def fetch(url: str) -> dict[str, Any] | str:
        if own.name_of(url) is not None:
            document = await own.list_credential(url)
            if document is None:
                raise LookupError(f"{url}: no such status list on this node")
            return document
        parts = urlsplit(url)
        loopback = is_loopback_host(parts.hostname or "")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback
                                            and allow_http_loopback):
            raise ValueError(f"{url}: status lists are fetched over https only")
        async with session.get(url, allow_redirects=False, timeout=FETCH_TIMEOUT,
                               headers={"Accept": "application/vc+ld+json, application/json"}
                               ) as response:
            raw = await response.content.read(MAX_LIST_BYTES + 1)
            if response.status != 200:
                raise LookupError(f"{url}: HTTP {response.status}")
        if len(raw) > MAX_LIST_BYTES:
            raise ValueError(f"{url}: larger than {MAX_LIST_BYTES} bytes")
        text = raw.decode("utf-8")
        return text.strip() if text.lstrip().startswith("ey") else json.loads(text)

    return fetch


async def get_status_list(request: web.Request) -> web.Response:
    """``GET /status/{name}``: a list credential of this node (open to everyone)."""
    lists: NodeStatusLists = request.config_dict[STATUS_LISTS]
    document = await lists.list_credential(lists.url_of(request.match_info["name"]))
    if document is None:
        raise web.HTTPNotFound(text=f"no status list {request.match_info['name']!r}")
    if isinstance(document, str):
        return web.Response(text=document, content_type="application/vc+jwt")
    return web.json_response(document, content_type="application/vc+ld+json",
                             headers={"Cache-Control": "max-age=60"})


STATUS_LISTS = web.AppKey("status_lists", NodeStatusLists)


def add_routes(app: web.Application) -> None:
    app.router.add_get(STATUS_PATH + "/{name}", get_status_list)


__all__ = [
    "STATUS_LISTS",
    "STATUS_PATH",
    "NodeStatusLists",
    "StatusError",
    "add_routes",
    "entries_of",
    "status_fetcher",
]
