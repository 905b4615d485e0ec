"""The consumer's side of the data plane: fetch an asset with the transfer's token, refreshing it.

The provider's ``TransferStartMessage`` carried a ``DataAddress`` (stored on our consumer
``TransferRecord``) with the endpoint, a bearer access token and the Tractus-X refresh data.
``pull`` GETs the endpoint with the token; when the provider answers that the token expired it
refreshes once (a form POST to ``refreshEndpoint`` signed with this node's DID key, ``aud`` =
``refreshAudience``), stores the rotated tokens on the transfer and retries. A refused refresh
means the agreement is over: the provider says so and ends the transfer; we report it.

Where the token may go: only to the origin of the provider's protocol address (the one we
negotiated with). A ``DataAddress`` pointing elsewhere is refused rather than followed, so a
provider cannot use our node to send requests (or its own token) to a third party.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from connector.app import HTTP_CLIENT, IDENTITY, STORE
from connector.dataplane.tokens import (
    PROP_AUTHORIZATION,
    PROP_ENDPOINT,
    PROP_EXPIRES_IN,
    PROP_REFRESH_AUDIENCE,
    PROP_REFRESH_ENDPOINT,
    PROP_REFRESH_TOKEN,
    endpoint_properties,
    local_name,
    with_endpoint_properties,
)
from connector.dsp.client import origin_of
from connector.dsp.messages import TransferState
from connector.dsp.negotiation_service import dsp_state
from connector.participant_auth import RequestSigner
from connector.store import Role, TransferRecord

MAX_PULL_BYTES = 64 * 1024 * 1024
PULL_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10)


@dataclass(frozen=True, slots=True)
class Pulled:
    """The provider's answer: body bytes and content type; ``refreshed`` if a refresh ran."""

    body: bytes
    content_type: str
    refreshed: bool = False


class PullRefused(Exception):
    """No data: ``status`` to answer with (403 refused, 404 unknown, 409 wrong state, 502
    provider trouble), a stable ``code`` and the provider's own words in ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class _Puller:
    def __init__(self, app: web.Application, record: TransferRecord) -> None:
        self.app = app
        self.record = record
        assert record.data_address is not None
        self.address = record.data_address
        self.props = endpoint_properties(self.address)
        allowed = origin_of(record.counterparty_address)
        self.endpoint = str(self.address.get("endpoint") or self.prop(PROP_ENDPOINT) or "")
        self.refresh_endpoint = self.prop(PROP_REFRESH_ENDPOINT)
        for url in filter(None, (self.endpoint, self.refresh_endpoint)):
            if allowed is None or origin_of(url) != allowed:
                raise PullRefused(502, "foreign-endpoint",
                                  f"the provider's DataAddress points to {url}, outside its "
                                  f"own address {record.counterparty_address}; not followed")
        if not self.endpoint:
            raise PullRefused(502, "no-endpoint", "the DataAddress has no endpoint")

    def prop(self, name: str) -> str | None:
        """An endpoint property by its full name (matched by local name, as the provider
        may have sent either)."""
        return self.props.get(local_name(name))

    @property
    def session(self) -> aiohttp.ClientSession:
        return self.app[HTTP_CLIENT]

    async def get(self) -> tuple[int, bytes, str]:
        headers = {"Accept": "application/json"}
        token = self.prop(PROP_AUTHORIZATION)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self.session.get(self.endpoint, headers=headers, allow_redirects=False,
                                        timeout=PULL_TIMEOUT) as response:
                body = await response.content.read(MAX_PULL_BYTES + 1)
                if len(body) > MAX_PULL_BYTES:
                    raise PullRefused(502, "too-large", "the provider's answer exceeds 64 MiB")
                return response.status, body, response.content_type
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PullRefused(502, "provider-unreachable", f"{type(exc).__name__}: {exc}") \
                from None

    async def refresh(self) -> None:
        """Rotate the tokens with the provider; store them on the transfer."""
        refresh_token = self.prop(PROP_REFRESH_TOKEN)
        audience = self.prop(PROP_REFRESH_AUDIENCE) or self.record.counterparty_did
        if not self.refresh_endpoint or not refresh_token:
            raise PullRefused(403, "no-refresh", "the token expired and the provider offered "
                              "no refresh")
        body = urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token})
        data = body.encode()
        signer = RequestSigner(self.app[IDENTITY].signing_key, dsp_state(self.app).settings.clock)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   **signer.headers(audience=audience, method="POST",
                                    url=self.refresh_endpoint, body=data)}
        try:
            async with self.session.post(self.refresh_endpoint, data=data, headers=headers,
                                         allow_redirects=False,
                                         timeout=PULL_TIMEOUT) as response:
                raw = await response.content.read(256 * 1024)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PullRefused(502, "provider-unreachable", f"{type(exc).__name__}: {exc}") \
                from None
        answer = _json(raw)
        if status != 200 or not isinstance(answer.get("access_token"), str):
            detail = str(answer.get("error_description") or answer.get("error") or
                         f"HTTP {status}")
            raise PullRefused(403, "refresh-refused", detail)
        updates = {PROP_AUTHORIZATION: answer["access_token"]}
        if isinstance(answer.get("refresh_token"), str):
            updates[PROP_REFRESH_TOKEN] = answer["refresh_token"]
        if answer.get("expires_in") is not None:
            updates[PROP_EXPIRES_IN] = str(answer["expires_in"])
        self.address = with_endpoint_properties(self.address, updates)
        self.props.update({local_name(k): v for k, v in updates.items()})
        async with self.app[STORE].transaction() as tx:
            current = await tx.get_transfer(self.record.id, for_update=True)
            if current is not None:
                self.record = await tx.put_transfer(replace(current, data_address=self.address))
            await tx.append_audit(actor=self.app[IDENTITY].did, action="dataplane.refreshed",
                                  subject_id=self.record.id, details={})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _refusal(status: int, body: bytes) -> PullRefused:
    answer = _json(body)
    code = str(answer.get("code") or answer.get("error") or f"http-{status}")
    detail = str(answer.get("detail") or answer.get("error_description") or f"HTTP {status}")
    return PullRefused(403 if status in (401, 403) else 502, code, detail)


async def pull(app: web.Application, transfer_id: str) -> Pulled:
    """The data of a STARTED consumer transfer; ``PullRefused`` when there is none to have."""
    async with app[STORE].read() as reader:
        record = await reader.get_transfer(transfer_id)
    if record is None or record.role is not Role.CONSUMER:
        raise PullRefused(404, "unknown-transfer",
                          f"no transfer {transfer_id!r} with this node as consumer")
    if record.state != TransferState.STARTED or record.data_address is None:
        why = "has no DataAddress" if record.state == TransferState.STARTED else \
            f"is {record.state}"
        detail = f"the transfer {why}; data flows only while it is STARTED"
        if record.reason_detail:
            detail += f" ({record.reason_detail})"
        raise PullRefused(409, "transfer-not-started", detail)
    puller = _Puller(app, record)
    status, body, content_type = await puller.get()
    refreshed = False
    if status == 401 and _json(body).get("code") == "expired-token":
        await puller.refresh()
        refreshed = True
        status, body, content_type = await puller.get()
    if not 200 <= status < 300:
        raise _refusal(status, body)
    return Pulled(body, content_type, refreshed)


async def fetch_transfer_data(app: web.Application, transfer_id: str) -> bytes:
    """Just the bytes (benchmarks, scripts); see ``pull``."""
    return (await pull(app, transfer_id)).body


__all__ = ["MAX_PULL_BYTES", "PullRefused", "Pulled", "fetch_transfer_data", "pull"]
