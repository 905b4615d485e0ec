"""Simulated packs started over the management API, and the events a pack's hub raised.

Why at runtime and not only in the node's TOML: along the value chain a battery is minted, and
its passport handed to the OEM, after the OEM's node started; the OEM then puts the pack on
the (simulated) test bench. ``[plugins.hub.simulated]`` stays for a node that simulates one
fixed pack from the start.

- ``POST /management/hub/simulations``: start the built-in simulated hub of a pack whose
  passport this node keeps as custodian (404 unknown battery, 409 not the custodian or already
  simulated); its messages go through the same bridge path as any source's.
- ``GET /management/hub/simulations``: the running ones; ``DELETE …/{batteryDid}`` takes a
  pack off the bench: its last periods and batch are credentialed before the call returns,
  so custody can move on, and its monitors are not reported lost.
- ``DELETE /management/hub/packs/{hubId}``: the same for a pack registered for MQTT or replay.
- ``GET /management/hub/events?batteryDid=…&kind=…``: stored events of a pack, newest batch
  state included, so an operator (or the demo) can pick one to prove.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.management.auth import require_operator
from connector.plugins.hub.bridge import RetireRefused
from connector.plugins.hub.events import EventKind
from connector.plugins.hub.plugin import SimulatedPack, simulated_hub
from connector.plugins.hub.simulated_source import SimulatedSource
from connector.problems import (
    ProblemDetails,
    ProblemError,
    field_errors,
    invalid_request,
    parse_body,
    read_json_object,
)

log = logging.getLogger(__name__)
MAX_EVENTS = 1000
SCAN_PAGE = 5000
SCAN_PAGES = 20


@dataclass
class Simulation:
    battery_did: str
    hub_id: str
    cells: int
    faults: list[str]
    source: SimulatedSource
    task: asyncio.Task[None]

    def to_json(self) -> dict[str, Any]:
        return {"batteryDid": self.battery_did, "hubId": self.hub_id, "cells": self.cells,
                "faults": self.faults, "running": not self.task.done()}


class Simulations:
    """The node's runtime simulations, stopped with the node."""

    def __init__(self) -> None:
        self.by_battery: dict[str, Simulation] = {}

    async def close(self) -> None:
        for simulation in self.by_battery.values():
            await simulation.source.close()
            simulation.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await simulation.task


SIMULATIONS = web.AppKey("hub_simulations", Simulations)


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    battery_did: str = Field(alias="batteryDid", pattern=r"^did:[a-z0-9]+:.+$", max_length=2000)
    cells: int = Field(192, ge=1, le=1000)
    seed: int = Field(0, ge=0)
    faults: list[str] = Field(default_factory=list, max_length=100)
    pace_s: float = Field(1.0, alias="paceS", gt=0, le=3600)
    ticks: int | None = Field(None, ge=1)


def _problem(status: int, slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(ProblemDetails(status, slug, title, detail))


async def _consume(bridge: Any, source: SimulatedSource) -> None:
    from connector.plugins.hub.intake import consume

    def skipped(group: list[Any], exc: BaseException) -> None:
        # a store outage: a simulated stream has nothing to redeliver, it just moves on
        log.error("%d simulated hub message(s) not processed: %s", len(group), exc,
                  exc_info=exc)

    await consume(bridge, source.messages(), on_error=skipped)


@require_operator
async def start_simulation(request: web.Request) -> web.Response:
    from connector.app import IDENTITY, STORE
    from connector.dsp.negotiation_service import dsp_state
    from connector.passports import PASSPORT_BOOK
    from connector.plugins.hub.routes import _bridge

    body = parse_body(SimulationRequest, await read_json_object(request))
    try:
        pack = SimulatedPack(battery_did=body.battery_did, cells=body.cells, seed=body.seed,
                             faults=body.faults, pace_s=body.pace_s, ticks=body.ticks)
    except ValidationError as exc:
        raise invalid_request(field_errors(exc)) from None
    bridge = _bridge(request)
    simulations = request.app[SIMULATIONS]
    if body.battery_did in simulations.by_battery:
        raise _problem(409, "already-simulated", "The pack is already on the bench",
                       f"a simulated hub already streams for {body.battery_did}")
    async with request.app[STORE].read() as reader:
        if await reader.get_battery(body.battery_did) is None:
            raise _problem(404, "not-found", "No such battery",
                           f"no battery {body.battery_did!r} in this node's store")
    custodian = await request.app[PASSPORT_BOOK].custodian(body.battery_did)
    if custodian != request.app[IDENTITY].did:
        raise _problem(409, "not-custodian", "This node is not the pack's custodian",
                       f"{custodian or 'nobody'} holds custody of {body.battery_did}; the "
                       "bridge could not append its credentials")
    hub = simulated_hub(pack)
    await bridge.register_pack(hub.hub_id, hub.battery_did, hub.registered_cells())
    source = SimulatedSource(hub, dsp_state(request.app).settings.clock, pace_s=pack.pace_s,
                             ticks=pack.ticks)
    task = asyncio.create_task(_consume(bridge, source), name=f"hub-sim-{hub.hub_id[-8:]}")
    simulation = Simulation(body.battery_did, hub.hub_id, pack.cells, pack.faults, source, task)
    simulations.by_battery[body.battery_did] = simulation
    return web.json_response(simulation.to_json(), status=201)


@require_operator
async def stop_simulation(request: web.Request) -> web.Response:
    """Take the pack off the bench: the stream stops, its open periods and batch close and
    are credentialed now (``HubBridge.retire_pack``), so custody can move on."""
    from connector.plugins.hub.routes import _bridge

    battery = request.match_info["battery_did"]
    simulation = request.app[SIMULATIONS].by_battery.get(battery)
    if simulation is None:
        raise _problem(404, "not-found", "No such simulation",
                       f"no simulated hub streams for {battery!r}")
    blocker = await _bridge(request).retire_blocker(simulation.hub_id)
    if blocker is not None:  # checked before the stream stops: a refusal changes nothing
        raise _problem(409, "unverified-cells", "The pack's tamper lock is on", blocker)
    request.app[SIMULATIONS].by_battery.pop(battery, None)
    await simulation.source.close()
    simulation.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await simulation.task
    closing = await _retire(request, simulation.hub_id)
    return web.json_response({**simulation.to_json(), "running": False,
                              "closingEvents": closing})


@require_operator
async def retire_pack(request: web.Request) -> web.Response:
    """Take a registered pack's hub off the bridge (MQTT or replay sources): the counterpart
    of ``POST /management/hub/packs`` and of stopping a simulation."""
    from connector.plugins.hub.routes import _bridge

    hub_id = request.match_info["hub_id"]
    bridge = _bridge(request)
    if not any(h["hub"] == hub_id for h in (await bridge.status())["hubs"]):
        raise _problem(404, "not-found", "No such hub", f"hub {hub_id!r} is not registered")
    closing = await _retire(request, hub_id)
    return web.json_response({"hubId": hub_id, "closingEvents": closing})


async def _retire(request: web.Request, hub_id: str) -> int:
    from connector.plugins.hub.routes import _bridge

    try:
        return await _bridge(request).retire_pack(hub_id)
    except RetireRefused as exc:
        raise _problem(409, "unverified-cells", "The pack's tamper lock is on",
                       str(exc)) from None


@require_operator
async def list_simulations(request: web.Request) -> web.Response:
    items = [s.to_json() for s in request.app[SIMULATIONS].by_battery.values()]
    return web.json_response({"items": items})


@require_operator
async def list_events(request: web.Request) -> web.Response:
    from connector.app import STORE

    battery = request.query.get("batteryDid", "")
    kind = request.query.get("kind") or None
    if not battery.startswith("did:"):
        raise invalid_request([{"field": "batteryDid", "message": "a DID is required"}])
    if kind is not None and kind not in {str(k) for k in EventKind}:
        raise invalid_request([{"field": "kind", "message": f"unknown event kind {kind!r}"}])
    items: list[dict[str, Any]] = []
    after: str | None = None
    async with request.app[STORE].read() as reader:
        for _ in range(SCAN_PAGES):  # the store lists by id, not by kind: scan, bounded
            page = await reader.list_hub_events(battery_did=battery, after=after,
                                                limit=SCAN_PAGE)
            items.extend({"event": e.event, "batchId": e.batch_id} for e in page
                         if kind is None or e.kind == kind)
            if len(page) < SCAN_PAGE or len(items) >= MAX_EVENTS:
                break
            after = page[-1].event_id
    return web.json_response({"items": items[:MAX_EVENTS]})


async def _simulations_ctx(app: web.Application) -> Any:
    app[SIMULATIONS] = Simulations()
    yield
    await app[SIMULATIONS].close()


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_simulations_ctx)
    app.router.add_post("/management/hub/simulations", start_simulation)
    app.router.add_get("/management/hub/simulations", list_simulations)
    app.router.add_delete("/management/hub/simulations/{battery_did}", stop_simulation)
    app.router.add_get("/management/hub/events", list_events)
    app.router.add_delete("/management/hub/packs/{hub_id}", retire_pack)


__all__ = ["SIMULATIONS", "SimulationRequest", "Simulations", "add_routes"]
