"""The harness's own DSP endpoint: where the connector under test sends its messages.

For provider scenarios the harness is the consumer and this is its callback address; for
consumer scenarios it is the provider the node was triggered to negotiate with. One loopback
server serves both: every POST under ``/negotiations`` or ``/transfers`` is recorded and
queued for the process it names (the harness's PID in the path), and answered 200 with the
``ContractNegotiation`` / ``TransferProcess`` ACK. A creating request (``…/request`` without a
PID, from a consumer under test) gets a fresh provider PID and 201, and is queued under its
offer target (negotiation) or agreement id (transfer), which is how a scenario finds the
process its trigger started. ``GET /negotiations/{pid}`` answers the last state seen.

The harness does not verify the caller's token (the kit does not either); it records the
caller's ``iss`` claim as the node's DID, the assignee of the agreements it sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connector.interop.model import Exchange

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
_STATES = {
    "ContractRequestMessage": "REQUESTED", "ContractOfferMessage": "OFFERED",
    "ContractAgreementMessage": "AGREED", "ContractAgreementVerificationMessage": "VERIFIED",
    "ContractNegotiationTerminationMessage": "TERMINATED",
    "TransferRequestMessage": "REQUESTED", "TransferStartMessage": "STARTED",
    "TransferSuspensionMessage": "SUSPENDED", "TransferCompletionMessage": "COMPLETED",
    "TransferTerminationMessage": "TERMINATED",
}


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message the node under test sent the harness."""

    path: str
    body: Any
    caller: str | None
    pid: str

    @property
    def type(self) -> str:
        return str(self.body.get("@type")) if isinstance(self.body, dict) else ""

    @property
    def kind(self) -> str:
        """``@type``, with the event type for event messages (``…EventMessage:ACCEPTED``)."""
        if self.type == "ContractNegotiationEventMessage":
            return f"{self.type}:{self.body.get('eventType')}"
        return self.type


def _caller_of(request: web.Request) -> str | None:
    """The unverified ``iss`` of the bearer token (the node's DID, as it claims)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    parts = token.split(".")
    if scheme.lower() != "bearer" or len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


class CallbackServer:
    """A loopback DSP endpoint recording what the node under test sends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._queues: dict[str, asyncio.Queue[Inbound]] = defaultdict(asyncio.Queue)
        self._states: dict[str, str] = {}
        self.received: list[Exchange] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/{area:negotiations|transfers}/request", self._create)
        app.router.add_post("/negotiations/offers", self._create)
        app.router.add_get("/negotiations/{pid}", self._get)
        app.router.add_post("/{area:negotiations|transfers}/{pid}/{rest:.+}", self._message)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
            break

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def next(self, key: str, timeout_s: float) -> Inbound | None:
        """The next message queued under ``key`` (a PID, dataset or agreement id)."""
        try:
            return await asyncio.wait_for(self._queues[key].get(), timeout_s)
        except TimeoutError:
            return None

    def set_state(self, pid: str, state: str) -> None:
        self._states[pid] = state

    async def _read(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.received.append(Exchange(request.method, str(request.url), None,
                                      request.headers.get("Content-Type"),
                                      raw[:2000].decode("utf-8", "replace"),
                                      direction="received"))
        return body

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if not isinstance(body, dict):
            return web.json_response({"@context": [DSP_CONTEXT],
                                      "@type": "ContractNegotiationError", "code": "invalid",
                                      "reason": ["not a JSON object"]}, status=400)
        provider_pid = f"urn:uuid:{uuid.uuid4()}"
        consumer_pid = str(body.get("consumerPid", ""))
        if body.get("@type") == "TransferRequestMessage":
            key, ack_type = str(body.get("agreementId")), "TransferProcess"
        else:
            offer = body.get("offer") if isinstance(body.get("offer"), dict) else {}
            key, ack_type = str(offer.get("target")), "ContractNegotiation"
        inbound = Inbound(request.path, body, _caller_of(request), provider_pid)
        self._states[provider_pid] = "REQUESTED"
        self._queues[key].put_nowait(inbound)
        return web.json_response({"@context": [DSP_CONTEXT], "@type": ack_type,
                                  "consumerPid": consumer_pid, "providerPid": provider_pid,
                                  "state": "REQUESTED"}, status=201)

    async def _message(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        pid = request.match_info["pid"]
        inbound = Inbound(request.path, body, _caller_of(request), pid)
        state = _STATES.get(inbound.type)
        if inbound.type == "ContractNegotiationEventMessage":
            state = str(body.get("eventType"))
        if state:
            self._states[pid] = state
        self._queues[pid].put_nowait(inbound)
        area = request.match_info["area"]
        ids = body if isinstance(body, dict) else {}
        return web.json_response({
            "@context": [DSP_CONTEXT],
            "@type": "ContractNegotiation" if area == "negotiations" else "TransferProcess",
            "consumerPid": ids.get("consumerPid", ""), "providerPid": ids.get("providerPid", ""),
            "state": self._states.get(pid, "REQUESTED")})

    async def _get(self, request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        if pid not in self._states:
            return web.json_response({"@context": [DSP_CONTEXT],
                                      "@type": "ContractNegotiationError", "code": "404",
                                      "reason": [f"no negotiation {pid}"]}, status=404)
        return web.json_response({"@context": [DSP_CONTEXT], "@type": "ContractNegotiation",
                                  "consumerPid": pid, "providerPid": pid,
                                  "state": self._states[pid]})
