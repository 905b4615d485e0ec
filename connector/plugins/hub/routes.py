"""The hub bridge's management routes (operator key, problem JSON on errors).

- ``GET /management/hub/status``: hubs, counters (refused messages by reason, duplicates,
  batches, credentials), open batches, unverified cells;
- ``GET /management/hub/events/{event_id}/proof``: the event, its inclusion proof and the
  batch credential that carries the root — everything an offline verifier needs;
- ``POST /management/hub/cells/replace``: an authorised technician's replacement of a cell
  whose ID no longer matched (lifts the lock on the pack's cell data);
- ``POST /management/hub/packs``: register a pack's hub and its cells (position, unique cell
  ID, monitor DID) for MQTT or replay sources; cells already registered keep what is stored.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connector.management.auth import require_operator
from connector.plugins.hub.bridge import HubBridge, ReplacementRefused
from connector.plugins.hub.events import RegisteredCell
from connector.plugins.hub.plugin import RUNNING
from connector.problems import ProblemDetails, ProblemError, parse_body, read_json_object
from credentials.did_key import public_key_of_did_key
from credentials.errors import CredentialsError

BRIDGE = web.AppKey("hub_bridge", HubBridge)


def _bridge(request: web.Request) -> HubBridge:
    bridge = request.config_dict.get(BRIDGE)
    if bridge is None:
        raise ProblemError(ProblemDetails(503, "hub-not-running", "The hub bridge is not running",
                                          "the hub plugin is enabled but has not started"))
    return bridge


@require_operator
async def status(request: web.Request) -> web.Response:
    """The bridge's status and its source's lag gauge (received, not yet acknowledged)."""
    view = await _bridge(request).status()
    running = request.config_dict.get(RUNNING)
    lag = getattr(running.source, "lag", None) if running is not None else None
    view["sourceLag"] = asdict(lag) if lag is not None else None
    return web.json_response(view)


@require_operator
async def proof(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    found = await _bridge(request).prove(event_id)
    if found is None:
        raise ProblemError(ProblemDetails(404, "not-found", "No such hub event",
                                          f"no hub event {event_id!r}"))
    return web.json_response(found)


class _Cell(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    position: int = Field(ge=0, le=10_000)
    cell_uid: str = Field(alias="cellUid", min_length=1, max_length=200)
    monitor_did: str = Field(alias="monitorDid", pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")


class PackRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    hub_id: str = Field(alias="hubId", pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
    battery_did: str = Field(alias="batteryDid", pattern=r"^did:[a-z0-9]+:.+$", max_length=2000)
    cells: list[_Cell] = Field(min_length=1, max_length=10_000)


@require_operator
async def register(request: web.Request) -> web.Response:
    body = parse_body(PackRegistration, await read_json_object(request))
    positions = [cell.position for cell in body.cells]
    if len(set(positions)) != len(positions):
        raise ProblemError(ProblemDetails(400, "invalid-request", "Duplicate cell positions",
                                          "each position appears once"))
    try:
        public_key_of_did_key(body.hub_id)
    except (CredentialsError, ValueError):
        detail = f"hubId {body.hub_id!r} is not an Ed25519 did:key"
        raise ProblemError(ProblemDetails(400, "invalid-request", "Not a did:key",
                                          detail)) from None
    await _bridge(request).register_pack(body.hub_id, body.battery_did, {
        c.position: RegisteredCell(c.cell_uid, c.monitor_did) for c in body.cells})
    answer: dict[str, Any] = {"hubId": body.hub_id, "batteryDid": body.battery_did,
                              "cells": len(body.cells)}
    return web.json_response(answer, status=201)


class Replacement(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    hub_id: str = Field(alias="hubId", pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
    position: int = Field(ge=0, le=10_000)
    new_cell_uid: str = Field(alias="newCellUid", min_length=1, max_length=200)
    new_cell_did: str = Field(alias="newCellDid", pattern=r"^did:key:z[1-9A-HJ-NP-Za-km-z]+$")
    technician_credential: dict[str, Any] = Field(alias="technicianCredential")


@require_operator
async def replace_cell(request: web.Request) -> web.Response:
    """An authorised technician registers the cell now at a position (see
    ``HubBridge.replace_cell``); 201 with the appended ``CellReplacementCredential``."""
    from connector.app import VERIFIER
    from connector.dcp.context import node_trust

    body = parse_body(Replacement, await read_json_object(request))
    try:
        record = await _bridge(request).replace_cell(
            body.hub_id, body.position, new_cell_uid=body.new_cell_uid,
            new_cell_did=body.new_cell_did, technician_credential=body.technician_credential,
            verifier=request.config_dict[VERIFIER], trust=node_trust(request.config_dict))
    except ReplacementRefused as exc:
        raise ProblemError(ProblemDetails(exc.status, exc.code, "Replacement refused",
                                          exc.detail)) from None
    return web.json_response({"position": record.position, "digest": record.digest,
                              "credential": record.credential}, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/management/hub/cells/replace", replace_cell)
    app.router.add_get("/management/hub/status", status)
    app.router.add_get("/management/hub/events/{event_id}/proof", proof)
    app.router.add_post("/management/hub/packs", register)
    from connector.plugins.hub import simulations

    simulations.add_routes(app)


__all__ = ["BRIDGE", "add_routes"]
