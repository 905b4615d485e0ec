"""Plays the kit's side of one scenario against the connector under test, step by step.

A ``Conversation`` holds the two process ids and the offer/agreement of one scenario. For a
provider under test the harness is the consumer (it sends to the CUT's DSP base and waits on
its callback server); for a consumer under test it is the provider (it triggers the CUT, waits
for the request on its own endpoint and sends to the callback address the request named).
Each step's expectation is the kit's: a sent message is ACKed 2xx (201 when it creates the
process), a ``!`` step is refused with 4xx and leaves the CUT's state as it was (checked with
``GET …/negotiations/{pid}`` / ``…/transfers/{pid}`` where the binding has one), and a
message the CUT must send arrives within the wait, with the expected type, and passes the
official schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.dsp.schemas import schema_errors
from connector.interop.callback import DSP_CONTEXT, Inbound
from connector.interop.context import Context, Target
from connector.interop.kit import Scenario
from connector.interop.model import CheckFailed, CheckSkipped

_RECEIVED = {
    "REQ": "ContractRequestMessage", "OFFER": "ContractOfferMessage",
    "ACCEPT": "ContractNegotiationEventMessage:ACCEPTED", "AGREE": "ContractAgreementMessage",
    "VERIFY": "ContractAgreementVerificationMessage",
    "FINAL": "ContractNegotiationEventMessage:FINALIZED",
    "TERM": "ContractNegotiationTerminationMessage", "TREQ": "TransferRequestMessage",
    "START": "TransferStartMessage", "SUSP": "TransferSuspensionMessage",
    "COMPL": "TransferCompletionMessage", "TTERM": "TransferTerminationMessage",
}
_TRANSFER = {"TREQ", "START", "SUSP", "COMPL", "TTERM"}


def _pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass(slots=True)
class Conversation:
    scenario: Scenario
    target: Target
    target_did: str
    dataset: str = ""
    offer_id: str = ""
    agreement_id: str = ""
    transfer_format: str = "HttpData-PULL"
    consumer_pid: str = ""
    provider_pid: str = ""
    cut_callback: str = ""  # the consumer under test's callback address
    cut_did: str | None = None
    agreement: dict[str, Any] | None = None

    @property
    def transfer(self) -> bool:
        return self.scenario.group.startswith("TP")

    @property
    def cut_is_provider(self) -> bool:
        return self.scenario.role == "provider"

    @property
    def own_pid(self) -> str:
        """The harness's PID, under which the callback server queues the CUT's messages."""
        return self.consumer_pid if self.cut_is_provider else self.provider_pid

    offers_made: int = 0

    def offer(self) -> dict[str, Any]:
        return {"@type": "Offer", "@id": self.offer_id, "target": self.dataset,
                "permission": [{"action": "use"}]}

    def new_offer(self) -> dict[str, Any]:
        """A counter-offer is a new offer: the same terms under a new ``@id`` (so a node that
        answers retries idempotently does not take it for a retry of the previous one)."""
        self.offers_made += 1
        return {**self.offer(), "@id": f"{self.offer_id}:{self.offers_made}"}

    def ids(self) -> dict[str, str]:
        return {"consumerPid": self.consumer_pid, "providerPid": self.provider_pid}


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"@context": [DSP_CONTEXT], "@type": kind, **fields}


async def run_scenario(ctx: Context, scenario: Scenario) -> str:
    target = ctx.provider if scenario.role == "provider" else ctx.need_consumer()
    did = await ctx.did_of(target)
    talk = Conversation(scenario, target, did)
    kit = ctx.kit
    talk.dataset = kit.seed(scenario, "datasetid")
    talk.offer_id = kit.seed(scenario, "offerid")
    talk.agreement_id = kit.seed(scenario, "agreementid")
    talk.transfer_format = kit.seed(scenario, "format")
    done: list[str] = []
    for step in scenario.steps:
        refused = step.endswith("!")
        name = step.strip("<>!")
        if step.startswith("<"):
            await _expect(ctx, talk, name)
        elif name == "SIGNAL":
            await _signal(ctx, talk)
        elif refused:
            await _refused(ctx, talk, name)
        else:
            await _send(ctx, talk, name)
        done.append(step)
    return f"{' '.join(done)} as the kit expects"


# --- the CUT's messages -------------------------------------------------------------------------


async def _expect(ctx: Context, talk: Conversation, name: str) -> None:
    wanted = _RECEIVED[name]
    first_request = name in ("REQ", "TREQ") and not talk.provider_pid
    key = (talk.agreement_id if name == "TREQ" else talk.dataset) if first_request \
        else talk.own_pid
    inbound = await ctx.callback.next(key, ctx.wait_s)
    if inbound is None:
        raise CheckFailed(f"the {talk.scenario.role} under test sent no {wanted} within "
                          f"{ctx.wait_s:g} s")
    _check_inbound(inbound, wanted)
    if first_request:
        body = inbound.body
        talk.consumer_pid = str(body.get("consumerPid"))
        talk.provider_pid = inbound.pid
        talk.cut_callback = str(body.get("callbackAddress") or "")
        talk.cut_did = inbound.caller
        if not talk.cut_callback:
            raise CheckFailed(f"the {wanted} named no callbackAddress")
    if name == "AGREE" and isinstance(inbound.body, dict):
        talk.agreement = inbound.body.get("agreement")


def _check_inbound(inbound: Inbound, wanted: str) -> None:
    if inbound.kind != wanted:
        sent = inbound.kind or "no DSP message"
        raise CheckFailed(f"expected {wanted}, the node under test sent {sent} to "
                          f"{inbound.path}: {str(inbound.body)[:300]}")
    errors = schema_errors(inbound.body, inbound.type)
    if errors:
        raise CheckFailed(f"the {wanted} it sent breaks the official schema: "
                          f"{'; '.join(errors[:3])}")


# --- the harness's messages ---------------------------------------------------------------------


async def _signal(ctx: Context, talk: Conversation) -> None:
    target = talk.target
    if talk.transfer:
        url = target.transfer_trigger
        body = {"agreementId": talk.agreement_id, "format": talk.transfer_format,
                "providerId": ctx.harness_did, "connectorAddress": ctx.callback.url}
    else:
        url = target.negotiation_trigger
        body = {"datasetId": talk.dataset, "offerId": talk.offer_id,
                "providerId": ctx.harness_did, "connectorAddress": ctx.callback.url}
    if not url:
        raise CheckSkipped(f"the consumer has no {'transfer' if talk.transfer else 'negotiation'}"
                           " trigger URL (--consumer-triggers or the kit's *.initiate.url keys)")
    status, answer, _ = await ctx.http.call("POST", url, body=body)
    if not 200 <= status < 300:
        raise CheckFailed(f"the trigger {url} answered {status}: {str(answer)[:300]}")


def _build(ctx: Context, talk: Conversation, name: str) -> tuple[str, dict[str, Any]]:
    """The URL and body of a message from the harness."""
    if talk.cut_is_provider:
        base, peer_pid = talk.target.dsp_url, talk.provider_pid
    else:
        base, peer_pid = talk.cut_callback, talk.consumer_pid
    root = base.rstrip("/") + ("/transfers/" if talk.transfer else "/negotiations/")
    ids = talk.ids()
    reason = {"code": "tck", "reason": ["scripted by the interop harness"]}
    if name == "REQ":
        if not talk.provider_pid:
            talk.consumer_pid = _pid()
            return root + "request", message(
                "ContractRequestMessage", consumerPid=talk.consumer_pid,
                callbackAddress=ctx.callback.url, offer=talk.offer())
        return root + f"{peer_pid}/request", message("ContractRequestMessage", **ids,
                                                     offer=talk.new_offer())
    if name == "OFFER":
        return root + f"{peer_pid}/offers", message("ContractOfferMessage", **ids,
                                                    offer=talk.new_offer())
    if name == "ACCEPT":
        return root + f"{peer_pid}/events", message("ContractNegotiationEventMessage", **ids,
                                                    eventType="ACCEPTED")
    if name == "FINAL":
        return root + f"{peer_pid}/events", message("ContractNegotiationEventMessage", **ids,
                                                    eventType="FINALIZED")
    if name == "VERIFY":
        return (root + f"{peer_pid}/agreement/verification",
                message("ContractAgreementVerificationMessage", **ids))
    if name == "AGREE":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        agreement = {"@id": _pid(), "@type": "Agreement", "target": talk.dataset,
                     "assigner": ctx.harness_did, "assignee": talk.cut_did or talk.target_did,
                     "timestamp": stamp, "permission": [{"action": "use"}]}
        return root + f"{peer_pid}/agreement", message("ContractAgreementMessage", **ids,
                                                       agreement=agreement)
    if name == "TERM":
        return root + f"{peer_pid}/termination", message(
            "ContractNegotiationTerminationMessage", **ids, **reason)
    if name == "TREQ":
        talk.consumer_pid = _pid()
        return root + "request", message(
            "TransferRequestMessage", consumerPid=talk.consumer_pid,
            agreementId=talk.agreement_id, format=talk.transfer_format,
            callbackAddress=ctx.callback.url)
    if name == "START":
        extra: dict[str, Any] = {}
        if not talk.cut_is_provider:
            extra["dataAddress"] = {
                "@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                "endpoint": ctx.callback.url + "/data",
                "endpointProperties": [
                    {"@type": "EndpointProperty", "name": "authorization", "value": "tck"},
                    {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]}
        return root + f"{peer_pid}/start", message("TransferStartMessage", **ids, **extra)
    if name == "SUSP":
        return root + f"{peer_pid}/suspension", message("TransferSuspensionMessage", **ids,
                                                        **reason)
    if name == "COMPL":
        return root + f"{peer_pid}/completion", message("TransferCompletionMessage", **ids)
    return root + f"{peer_pid}/termination", message("TransferTerminationMessage", **ids,
                                                     **reason)


async def _send(ctx: Context, talk: Conversation, name: str) -> None:
    creates = name in ("REQ", "TREQ") and not talk.provider_pid
    url, body = _build(ctx, talk, name)
    status, answer, _ = await ctx.http.call("POST", url, body=body, audience=talk.target_did)
    if not 200 <= status < 300:
        raise CheckFailed(f"{body['@type']} was refused with {status}: {str(answer)[:300]}")
    ack = "TransferProcess" if talk.transfer else "ContractNegotiation"
    if creates:
        if status != 201:
            raise CheckFailed(f"the creating {body['@type']} was answered {status}, not 201")
        if not isinstance(answer, dict) or answer.get("@type") != ack:
            raise CheckFailed(f"the ACK of {body['@type']} is not a {ack}: {str(answer)[:300]}")
        errors = schema_errors(answer, ack)
        if errors:
            raise CheckFailed(f"the {ack} ACK breaks the official schema: {errors[:3]}")
        talk.provider_pid = str(answer.get("providerPid") or "")
        if not talk.provider_pid:
            raise CheckFailed(f"the {ack} ACK names no providerPid")


async def _state(ctx: Context, talk: Conversation) -> str | None:
    """The CUT's state of the process, where the binding lets the other party read it."""
    if talk.cut_is_provider:
        url = talk.target.dsp(("transfers/" if talk.transfer else "negotiations/")
                              + talk.provider_pid)
    elif not talk.transfer:
        url = talk.cut_callback.rstrip("/") + f"/negotiations/{talk.consumer_pid}"
    else:
        return None  # DSP has no consumer-side GET for transfers
    status, answer, _ = await ctx.http.call("GET", url, audience=talk.target_did)
    if status != 200 or not isinstance(answer, dict):
        raise CheckFailed(f"GET {url} answered {status}: {str(answer)[:300]}")
    return str(answer.get("state"))


async def _refused(ctx: Context, talk: Conversation, name: str) -> None:
    before = await _state(ctx, talk)
    url, body = _build(ctx, talk, name)
    status, answer, _ = await ctx.http.call("POST", url, body=body, audience=talk.target_did)
    if not 400 <= status < 500:
        raise CheckFailed(f"the illegal {body['@type']} was answered {status}, not 4xx: "
                          f"{str(answer)[:300]}")
    error_type = "TransferError" if talk.transfer else "ContractNegotiationError"
    if not isinstance(answer, dict) or answer.get("@type") != error_type:
        raise CheckFailed(f"the refusal is not a {error_type}: {str(answer)[:300]}")
    after = await _state(ctx, talk)
    if before != after:
        raise CheckFailed(f"the refused {body['@type']} changed the state {before} -> {after}")
