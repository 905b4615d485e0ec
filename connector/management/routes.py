"""The management API routes: assets, policies, offers, batteries, catalog explain.

Every route requires the operator key (``require_operator``) and answers errors as problem
JSON (the app's ``problem_middleware`` renders ``ProblemError``). Bodies are read with
``read_json_object`` (malformed JSON → 400 ``malformed-json``) and validated with pydantic
models that forbid unknown fields (400 ``invalid-request`` naming each field). Checks that
need the store run inside the write transaction and raise before anything is written, so a
refused request leaves the store unchanged.

Lists page by key (``paging``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connector.dcp.context import evidence_of, explained_context
from connector.dcp.presentations import RoleProof
from connector.dsp.catalog import explain_offers, offered_asset
from connector.dsp.negotiation_service import service_of
from connector.dsp.routes_catalog import restriction_of
from connector.management import consumer, passports
from connector.management.assets import (
    AssetCreate,
    OfferCreate,
    PolicyCreate,
    asset_json,
    battery_json,
    create_asset,
    create_offer,
    create_policy,
    credential_json,
    field_problem,
    is_withdrawn,
    live_asset,
    not_found,
    offer_json,
    policy_json,
    withdraw_asset,
)
from connector.management.auth import require_operator
from connector.management.paging import page, paging
from connector.policy_gate import POLICY_GATE, PolicyGate
from connector.problems import ProblemDetails, ProblemError, parse_body, read_json_object
from connector.store import AlreadyExists, Store


def _store(request: web.Request) -> Store:
    from connector.app import STORE  # app.py imports route modules lazily; mirror that here

    return request.config_dict[STORE]


def _gate(request: web.Request) -> PolicyGate:
    return request.config_dict[POLICY_GATE]


def _already_exists(exc: AlreadyExists) -> ProblemError:
    return ProblemError(ProblemDetails(409, "already-exists", "Already exists", str(exc)))


# --- assets ------------------------------------------------------------------------------------


@require_operator
async def post_asset(request: web.Request) -> web.Response:
    body = parse_body(AssetCreate, await read_json_object(request))
    try:
        async with _store(request).transaction() as tx:
            asset, offer = await create_asset(tx, body, _gate(request))
    except AlreadyExists as exc:
        raise _already_exists(exc) from None
    answer = asset_json(asset)
    answer["defaultOffer"] = offer_json(offer) if offer else None
    return web.json_response(answer, status=201,
                             headers={"Location": f"/management/assets/{asset.id}"})


@require_operator
async def list_assets(request: web.Request) -> web.Response:
    limit, after = paging(request)
    level = request.query.get("accessLevel") or None
    battery = request.query.get("batteryDid") or None
    async with _store(request).read() as reader:
        rows = await reader.list_assets(access_level=level, battery_did=battery, after=after,
                                        limit=limit)
    items = [asset_json(row) for row in rows if not is_withdrawn(row)]
    return page(items, len(rows), limit, rows[-1].id if rows else None)


@require_operator
async def get_asset(request: web.Request) -> web.Response:
    async with _store(request).read() as reader:
        record = await live_asset(reader, request.match_info["id"])
    return web.json_response(asset_json(record))


@require_operator
async def delete_asset(request: web.Request) -> web.Response:
    async with _store(request).transaction() as tx:
        await withdraw_asset(tx, request.match_info["id"], datetime.now(UTC))
    return web.Response(status=204)


# --- policies and offers -----------------------------------------------------------------------


@require_operator
async def post_policy(request: web.Request) -> web.Response:
    body = parse_body(PolicyCreate, await read_json_object(request))
    try:
        async with _store(request).transaction() as tx:
            record = await create_policy(tx, body, _gate(request))
    except AlreadyExists as exc:
        raise _already_exists(exc) from None
    return web.json_response(policy_json(record), status=201)


@require_operator
async def list_policies(request: web.Request) -> web.Response:
    limit, after = paging(request)
    async with _store(request).read() as reader:
        rows = await reader.list_policies(after=after, limit=limit)
    return page([policy_json(r) for r in rows], len(rows), limit, rows[-1].id if rows else None)


@require_operator
async def post_offer(request: web.Request) -> web.Response:
    body = parse_body(OfferCreate, await read_json_object(request))
    try:
        async with _store(request).transaction() as tx:
            record = await create_offer(tx, body)
    except AlreadyExists as exc:
        raise _already_exists(exc) from None
    return web.json_response(offer_json(record), status=201)


@require_operator
async def list_offers(request: web.Request) -> web.Response:
    limit, after = paging(request)
    async with _store(request).read() as reader:
        rows = await reader.list_offers(asset_id=request.query.get("assetId") or None,
                                        after=after, limit=limit)
    return page([offer_json(r) for r in rows], len(rows), limit, rows[-1].id if rows else None)


# --- batteries (read-only views of the store) --------------------------------------------------


@require_operator
async def list_batteries(request: web.Request) -> web.Response:
    limit, after = paging(request)
    async with _store(request).read() as reader:
        rows = await reader.list_batteries(after=after, limit=limit)
    return page([battery_json(r) for r in rows], len(rows), limit,
                 rows[-1].did if rows else None)


@require_operator
async def battery_credentials(request: web.Request) -> web.Response:
    did = request.match_info["did"]
    limit, after = paging(request)
    start = int(after) + 1 if after and after.isdigit() else 0
    async with _store(request).read() as reader:
        if await reader.get_battery(did) is None:
            raise not_found("battery", did)
        rows = await reader.passport(did, from_position=start, limit=limit)
    last = str(rows[-1].position) if rows else None
    return page([credential_json(r) for r in rows], len(rows), limit, last)


# --- catalog explain ---------------------------------------------------------------------------


@require_operator
async def explain_catalog(request: web.Request) -> web.Response:
    """Why a participant does or does not see a dataset: one decision per offer."""
    dataset = request.query.get("dataset", "")
    participant = request.query.get("participant", "")
    if not dataset:
        raise field_problem("dataset", "query parameter 'dataset' is required")
    if not participant.startswith("did:"):
        raise field_problem("participant", "query parameter 'participant' must be a DID")
    now = service_of(request.app).settings.clock()
    async with _store(request).read() as reader:
        item = await offered_asset(reader, dataset)
    if item is None:
        raise not_found("dataset", dataset)
    context, proof = await explained_context(request.config_dict, participant, item.offers, now)
    decisions = explain_offers(item, context, _gate(request), restriction_of(request))
    visible = any(decision.allowed for _, decision in decisions)
    return web.json_response({
        "dataset": dataset,
        "participant": participant,
        "at": now.isoformat().replace("+00:00", "Z"),
        "visible": visible,
        "offers": [{"offerId": offer_id, **decision.to_json()}
                   for offer_id, decision in decisions],
        "roleProof": _proof_json(proof),
    })


def _proof_json(proof: RoleProof | None) -> dict[str, Any]:
    """What explain knew of the participant's credentials, and where from."""
    if proof is None:
        return {"source": "none", "credentials": [],
                "note": "no presentation from this participant is cached: credentials it "
                        "would prove in a request are not known here"}
    return {"source": "cached presentation" if proof.cached else "none needed",
            "credentials": evidence_of(proof.credentials), "problems": list(proof.problems)}


def add_routes(app: web.Application) -> None:
    """Register the management API on ``app`` (every route checks the operator key)."""
    if POLICY_GATE not in app:
        app[POLICY_GATE] = PolicyGate()
    app.router.add_post("/management/assets", post_asset)
    app.router.add_get("/management/assets", list_assets)
    app.router.add_get("/management/assets/{id}", get_asset)
    app.router.add_delete("/management/assets/{id}", delete_asset)
    app.router.add_post("/management/policies", post_policy)
    app.router.add_get("/management/policies", list_policies)
    app.router.add_post("/management/offers", post_offer)
    app.router.add_get("/management/offers", list_offers)
    app.router.add_get("/management/batteries", list_batteries)
    app.router.add_get("/management/batteries/{did}/credentials", battery_credentials)
    app.router.add_get("/management/catalog/explain", explain_catalog)
    consumer.add_routes(app)
    passports.add_routes(app)
