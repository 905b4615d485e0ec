"""IOP: interoperability between the provider and the consumer given (our consumer is driven
through its management API; our provider is set up through its own).

The checks run in order and hand each other what they made (``ctx.shared``): set-up (an
allow-listed dataset for the consumer and a credential-gated one), catalog, negotiation to
FINALIZED, transfer start, suspend, resume, data access with the token, complete, a second
transfer terminated, refusal without the required credential, refusal after the agreement
ended. A check whose prerequisite failed is skipped, naming it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from connector.interop.context import Context, Target
from connector.interop.model import Check, CheckFailed, CheckRun, CheckSkipped
from connector.interop.registry import register
from policies.defaults import default_policy

_BATTERY = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
_DATA = {"interop": "bpc", "kind": "battery passport excerpt"}
_POLL_S = 0.05


async def _until(ctx: Context, target: Target, path: str, states: set[str]) -> dict[str, Any]:
    """Poll a management view until its state is one of ``states`` (or the wait is over)."""
    deadline = time.monotonic() + ctx.wait_s
    view: Any = {}
    while time.monotonic() < deadline:
        status, view = await ctx.manage(target, "GET", path)
        if status == 200 and isinstance(view, dict) and view.get("state") in states:
            return view
        await asyncio.sleep(_POLL_S)
    raise CheckFailed(f"{path} did not reach {sorted(states)} within {ctx.wait_s:g} s: {view}")


def _need(ctx: Context, key: str, check_id: str) -> Any:
    if key not in ctx.shared:
        raise CheckSkipped(f"needs {check_id}, which did not pass")
    return ctx.shared[key]


async def _consumer(ctx: Context) -> Target:
    consumer = ctx.need_consumer()
    if not consumer.ours:
        raise CheckSkipped("the consumer is not ours: give --consumer-key-env to drive it "
                           "through its management API")
    return consumer


async def setup(ctx: Context) -> str:
    provider, consumer = ctx.provider, await _consumer(ctx)
    if not provider.ours:
        raise CheckSkipped("the provider is not ours (no --provider-key-env): its datasets "
                           "cannot be set up")
    consumer_did = await ctx.did_of(consumer)
    suffix = uuid.uuid4().hex[:8]
    offers: dict[str, Any] = {}
    for name, extra in (("open", {"allowedParticipants": [consumer_did]}),
                        ("gated", {"defaultPolicy": "none"})):
        status, asset = await ctx.manage(provider, "POST", "/management/assets", {
            "id": f"urn:bpc:interop:{name}:{suffix}", "batteryDid": _BATTERY,
            "accessLevel": "dismantling-safety" if name == "gated" else "sustainability",
            "title": f"interop {name} dataset", "dataSource": {"kind": "inline", "data": _DATA},
            **extra})
        if status != 201 or not isinstance(asset, dict):
            raise CheckFailed(f"the provider refused the {name} asset: {status} {asset}")
        published = (asset.get("defaultOffer") or {}).get("offer") or {}
        if name == "gated":
            published = await _unsatisfiable_offer(ctx, provider, asset["id"], suffix)
        offers[name] = {**{k: v for k, v in published.items() if k != "@context"},
                        "target": asset["id"]}
    ctx.shared["offers"] = offers
    return (f"provider offers two datasets: allow-listed for {consumer_did}, and one gated by "
            "a credential no consumer holds")


async def _unsatisfiable_offer(ctx: Context, provider: Any, asset_id: str,
                               suffix: str) -> dict[str, Any]:
    """The Catena-X dismantling policy narrowed to a vehicle brand made up for this run: a
    consumer that is a certified dismantler (the demo's recycler is) still holds no credential
    that satisfies it, so the refusal checks do not depend on who the consumer is."""
    policy = default_policy("dismantling-safety", f"urn:bpc:interop:policy:{suffix}")
    policy["permission"][0]["constraint"][0]["and"].append({
        "leftOperand": "https://w3id.org/catenax/policy/Dismantler.allowedBrands",
        "operator": "isAnyOf", "rightOperand": [f"interop-brand-{suffix}"]})
    status, stored = await ctx.manage(provider, "POST", "/management/policies",
                                      {"id": policy["@id"], "policy": policy})
    if status != 201 or not isinstance(stored, dict):
        raise CheckFailed(f"the provider refused the gating policy: {status} {stored}")
    status, offer = await ctx.manage(provider, "POST", "/management/offers",
                                     {"assetId": asset_id, "policyId": policy["@id"]})
    if status != 201 or not isinstance(offer, dict):
        raise CheckFailed(f"the provider refused the gated offer: {status} {offer}")
    return dict(offer.get("offer") or {})


async def catalog(ctx: Context) -> str:
    offers = _need(ctx, "offers", "IOP:SETUP-01")
    consumer = await _consumer(ctx)
    status, answer = await ctx.manage(consumer, "POST", "/management/catalog/request",
                                      {"counterPartyAddress": ctx.provider.dsp_url})
    if status != 200 or not isinstance(answer, dict):
        raise CheckFailed(f"the consumer could not fetch the catalog: {status} {answer}")
    ids = [d.get("@id") for d in answer.get("dataset", []) if isinstance(d, dict)]
    if offers["open"]["target"] not in ids:
        raise CheckFailed(f"the allow-listed dataset is not in the consumer's catalog: {ids}")
    if offers["gated"]["target"] in ids:
        raise CheckFailed("the credential-gated dataset is shown to a consumer without a "
                          "credential that satisfies it")
    return f"consumer sees {len(ids)} dataset(s): the allow-listed one, not the gated one"


async def _negotiate(ctx: Context, offer: dict[str, Any]) -> dict[str, Any]:
    consumer = await _consumer(ctx)
    status, started = await ctx.manage(consumer, "POST", "/management/negotiations", {
        "counterPartyAddress": ctx.provider.dsp_url, "offer": offer})
    if status != 201 or not isinstance(started, dict):
        raise CheckFailed(f"the consumer did not start the negotiation: {status} {started}")
    return await _until(ctx, consumer, f"/management/negotiations/{started['id']}",
                        {"FINALIZED", "TERMINATED"})


async def negotiation(ctx: Context) -> str:
    offers = _need(ctx, "offers", "IOP:SETUP-01")
    view = await _negotiate(ctx, offers["open"])
    if view.get("state") != "FINALIZED":
        raise CheckFailed(f"the negotiation ended {view.get('state')}: {view.get('reason')}")
    ctx.shared["agreement"] = view.get("agreementId")
    return f"FINALIZED, agreement {view.get('agreementId')}"


async def _transfer(ctx: Context) -> str:
    agreement = _need(ctx, "agreement", "IOP:CN-01")
    consumer = await _consumer(ctx)
    status, started = await ctx.manage(consumer, "POST", "/management/transfers", {
        "agreementId": agreement, "counterPartyAddress": ctx.provider.dsp_url})
    if status != 201 or not isinstance(started, dict):
        raise CheckFailed(f"the consumer did not request the transfer: {status} {started}")
    path = f"/management/transfers/{started['id']}"
    view = await _until(ctx, consumer, path, {"STARTED", "TERMINATED", "COMPLETED"})
    if view.get("state") != "STARTED":
        raise CheckFailed(f"the transfer ended {view.get('state')}: {view.get('reason')}")
    return path


async def transfer_start(ctx: Context) -> str:
    ctx.shared["transfer"] = await _transfer(ctx)
    return "transfer STARTED with the provider's data address"


def _act(action: str, expected: str, needs: str = "IOP:TP-01") -> CheckRun:
    async def run(ctx: Context) -> str:
        path = _need(ctx, "transfer", needs)
        consumer = await _consumer(ctx)
        status, view = await ctx.manage(consumer, "POST", f"{path}/{action}", {})
        if status != 200:
            raise CheckFailed(f"{action} was refused: {status} {view}")
        view = await _until(ctx, consumer, path, {expected})
        return f"{action}: consumer's transfer {view['state']}"

    return run


async def data_access(ctx: Context) -> str:
    path = _need(ctx, "transfer", "IOP:TP-01")
    consumer = await _consumer(ctx)
    status, body = await ctx.manage(consumer, "GET", f"{path}/data")
    if status != 200 or not isinstance(body, dict):
        raise CheckFailed(f"the consumer could not pull the data with its token: {status} {body}")
    if body.get("data") != _DATA and body != _DATA:
        raise CheckFailed(f"the data pulled is not what the provider published: {body}")
    return "data pulled through the provider's data plane with the transfer's token"


async def transfer_terminate(ctx: Context) -> str:
    path = await _transfer(ctx)
    ctx.shared["transfer2"] = path
    consumer = await _consumer(ctx)
    status, view = await ctx.manage(consumer, "POST", f"{path}/terminate",
                                    {"reason": "interop check"})
    if status != 200:
        raise CheckFailed(f"terminate was refused: {status} {view}")
    await _until(ctx, consumer, path, {"TERMINATED"})
    return "a second transfer STARTED and TERMINATED by the consumer"


async def no_credential(ctx: Context) -> str:
    offers = _need(ctx, "offers", "IOP:SETUP-01")
    view = await _negotiate(ctx, offers["gated"])
    if view.get("state") != "TERMINATED":
        raise CheckFailed(f"a consumer without a satisfying credential got "
                          f"{view.get('state')}")
    return f"TERMINATED: {view.get('reason')}"


async def after_agreement_end(ctx: Context) -> str:
    agreement = _need(ctx, "agreement", "IOP:CN-01")
    consumer = await _consumer(ctx)
    status, ended = await ctx.manage(ctx.provider, "POST",
                                     f"/management/agreements/{agreement}/terminate",
                                     {"reason": "interop check: agreement ended"})
    if status != 200:
        raise CheckFailed(f"the provider could not end the agreement: {status} {ended}")
    status, started = await ctx.manage(consumer, "POST", "/management/transfers", {
        "agreementId": agreement, "counterPartyAddress": ctx.provider.dsp_url})
    if status == 201 and isinstance(started, dict):
        view = await _until(ctx, consumer, f"/management/transfers/{started['id']}",
                            {"STARTED", "TERMINATED"})
        if view.get("state") != "TERMINATED":
            raise CheckFailed("a transfer under an ended agreement was started")
    elif not 400 <= status < 500:
        raise CheckFailed(f"the transfer request was answered {status}: {started}")
    return "after the agreement ended the provider refuses a new transfer"


def _check(check_id: str, title: str, run: CheckRun, *, negative: bool = False) -> Check:
    return register(Check(check_id, title, "IOP", frozenset({"provider", "consumer"}), run,
                          negative))


CHECKS = [
    _check("IOP:SETUP-01", "Provider publishes an allow-listed and a credential-gated dataset",
           setup),
    _check("IOP:CAT-01", "Consumer fetches the provider's catalog, filtered for it", catalog),
    _check("IOP:CN-01", "Consumer negotiates an agreement to FINALIZED", negotiation),
    _check("IOP:TP-01", "Consumer requests a transfer; provider starts it", transfer_start),
    _check("IOP:DP-01", "Consumer pulls the data with the transfer's token", data_access),
    _check("IOP:TP-02", "Consumer suspends the transfer", _act("suspend", "SUSPENDED")),
    _check("IOP:TP-03", "Consumer resumes the transfer", _act("resume", "STARTED")),
    _check("IOP:TP-04", "Consumer completes the transfer", _act("complete", "COMPLETED")),
    _check("IOP:TP-05", "Consumer terminates a second transfer", transfer_terminate),
    _check("IOP:POL-01", "Negotiation refused without the required credential", no_credential,
           negative=True),
    _check("IOP:POL-02", "Transfer refused after the agreement ended", after_agreement_end,
           negative=True),
]
