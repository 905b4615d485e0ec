"""What a run knows: the two targets, the harness participant, its callback server, settings.

A ``Target`` is one connector: its DSP base URL, and for our own nodes its management URL
and operator key (then the harness drives it through the management API), and the kit's
trigger URLs when it exposes them. ``Context`` is shared by the checks of one run; ``shared``
carries what one interop check hands the next (the agreement a negotiation produced…).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.interop.callback import CallbackServer
from connector.interop.http import Http
from connector.interop.kit import KitConfig
from connector.interop.model import CheckFailed, CheckSkipped, Exchange


@dataclass(slots=True)
class Target:
    """One connector under test."""

    name: str
    dsp_url: str
    management_url: str | None = None
    api_key: str | None = None
    did: str | None = None
    negotiation_trigger: str | None = None
    transfer_trigger: str | None = None

    @property
    def ours(self) -> bool:
        """Driven through our management API (a URL and an operator key are known)."""
        return self.management_url is not None and self.api_key is not None

    def dsp(self, path: str) -> str:
        return self.dsp_url.rstrip("/") + "/" + path.lstrip("/")


@dataclass(slots=True)
class Context:
    provider: Target
    consumer: Target | None
    http: Http
    callback: CallbackServer
    kit: KitConfig = field(default_factory=KitConfig)
    wait_s: float = 10.0
    evidence: list[Exchange] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def harness_did(self) -> str:
        return self.http.did

    def record(self, exchange: Exchange) -> None:
        self.evidence.append(exchange)

    def need_consumer(self) -> Target:
        if self.consumer is None:
            raise CheckSkipped("no consumer given (--consumer)")
        return self.consumer

    async def did_of(self, target: Target) -> str:
        """The target's DID: given, else its DID document's ``id``, else did:web of the URL."""
        if target.did:
            return target.did
        status, body, _ = await self.http.call("GET", target.dsp("/.well-known/did.json"))
        if status == 200 and isinstance(body, dict) and isinstance(body.get("id"), str):
            target.did = body["id"]
            return target.did
        from credentials.did_web import did_web_from_url

        try:
            target.did = did_web_from_url(target.dsp_url)
        except ValueError as exc:
            raise CheckFailed(f"cannot tell the DID of {target.name} ({target.dsp_url}); "
                              f"give it with --{target.name}-did") from exc
        return target.did

    async def manage(self, target: Target, method: str, path: str, body: Any = None,
                     ) -> tuple[int, Any]:
        """A management API call on one of our nodes (with its operator key)."""
        if not target.ours:
            raise CheckSkipped(f"the {target.name} is not driven through a management API "
                               f"(give --{target.name}-key-env)")
        assert target.management_url is not None
        url = target.management_url.rstrip("/") + path
        status, answer, _ = await self.http.call(
            method, url, body=body, headers={"Authorization": f"Bearer {target.api_key}"})
        return status, answer
