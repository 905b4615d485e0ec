"""The hub bridge as a node plugin: settings, routes, start/stop, and ``bpc hub`` commands.

Enable it in the node's TOML::

    [plugins.hub]
    enabled = true
    source = "simulated"            # or "mqtt" (with [plugins.hub.mqtt]) or "replay"
    [plugins.hub.simulated]         # optional: without it, POST /management/hub/simulations
    battery_did = "did:key:z6Mk…"   # a pack whose passport this node keeps (its custodian)
    cells = 192
    faults = ["overheat:17@5", "swap:42@10"]   # kind:position@tick

Routes (operator key): ``GET /management/hub/status``, ``GET
/management/hub/events/{event_id}/proof`` and ``POST /management/hub/packs`` (register a
pack's hub and cells for MQTT or replay sources). The plugin uses only public node APIs (the
store, the passport book, the app keys) — nothing a third-party plugin could not.

Top-level imports stay cheap: ``bpc`` imports every installed plugin on each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connector.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

log = logging.getLogger(__name__)

_FAULT = re.compile(r"^(overheat|swap|silent):(\d+)@(\d+)$")


class SimulatedPack(BaseModel):
    """The built-in simulated hub of one pack."""

    model_config = ConfigDict(extra="forbid")

    battery_did: str
    cells: int = Field(192, ge=1, le=1000)
    seed: int = 0
    faults: list[str] = Field(default_factory=list,
                              description="kind:position@tick, kind overheat|swap|silent")
    pace_s: float = Field(1.0, gt=0, description="seconds between ticks")
    ticks: int | None = Field(None, ge=1, description="stop after this many ticks")

    @field_validator("faults")
    @classmethod
    def _faults(cls, value: list[str]) -> list[str]:
        for fault in value:
            if not _FAULT.fullmatch(fault):
                raise ValueError(f"fault {fault!r} is not kind:position@tick "
                                 "(kind overheat, swap or silent)")
        return value


class HubSettings(BaseModel):
    """``[plugins.hub]`` (``enabled`` is the node's)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["simulated", "mqtt", "replay"] = "simulated"
    simulated: SimulatedPack | None = None
    mqtt: dict[str, Any] | None = Field(None, description="MqttSettings of the MQTT source")
    replay_path: Path | None = None
    batch_max_events: int = Field(1000, ge=1, le=10_000)
    batch_max_age_s: float = Field(1.0, gt=0)
    summary_period_s: float = Field(60.0, gt=0)
    tick_s: float = Field(0.25, gt=0, description="how often batches and periods are checked")

    @model_validator(mode="after")
    def _source_settings(self) -> HubSettings:
        if self.source == "mqtt":
            if self.mqtt is None:
                raise ValueError("source 'mqtt' needs a [plugins.hub.mqtt] table")
            # Checked here, when the node loads its config, not when the source starts; the
            # module (paho) is imported only for a node that uses MQTT, not on every ``bpc``.
            from connector.plugins.hub.sources.mqtt import MqttSettings

            MqttSettings.model_validate(self.mqtt)
        if self.source == "replay" and self.replay_path is None:
            raise ValueError("source 'replay' needs replay_path")
        return self


def simulated_hub(pack: SimulatedPack) -> Any:
    """The pack's simulated hub. Its key derives from the seed AND the pack, so two packs on
    one bench (same seed) never share a hub identity."""
    import hashlib

    from connector.plugins.hub.simulator import SimulatedHub
    from credentials.did_key import key_from_seed

    key = key_from_seed(hashlib.sha256(f"bpc-simulated-hub|{pack.seed}|"
                                       f"{pack.battery_did}".encode()).digest())
    hub = SimulatedHub(pack.battery_did, pack.cells, seed=pack.seed, hub_key=key)
    for fault in pack.faults:
        match = _FAULT.fullmatch(fault)
        assert match is not None
        kind, position, tick = match[1], int(match[2]), int(match[3])
        {"overheat": hub.overheat, "swap": hub.swap, "silent": hub.silent}[kind](position, tick)
    return hub


class _Running:
    """What the plugin runs inside one node: the bridge, its source and its tasks."""

    def __init__(self, bridge: Any, source: Any, tasks: list[asyncio.Task[None]]) -> None:
        self.bridge = bridge
        self.source = source
        self.tasks = tasks


def _not_processed(group: list[Any], exc: BaseException) -> None:
    # a store outage: the messages stay unacknowledged and come again
    log.error("%d hub message(s) not processed (first on %s): %s", len(group),
              group[0].topic, exc, exc_info=exc)


async def _consume(bridge: Any, source: Any) -> None:
    from connector.plugins.hub.intake import consume

    await consume(bridge, source.messages(), on_error=_not_processed)


async def _tick(bridge: Any, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await bridge.tick()
        except Exception:
            log.exception("hub bridge tick failed")


class HubPlugin:
    """The pluggy hook implementations (``plugin`` below is the entry point's object)."""

    @hookimpl
    def bpc_plugin_config_model(self) -> type[BaseModel]:
        return HubSettings

    @hookimpl
    def bpc_add_routes(self, app: web.Application, config: HubSettings) -> None:
        from connector.plugins.hub.routes import add_routes

        add_routes(app)

    @hookimpl
    async def bpc_node_start(self, app: web.Application, config: HubSettings) -> None:
        from datetime import timedelta

        from connector.app import IDENTITY, STORE
        from connector.dsp.negotiation_service import dsp_state
        from connector.plugins.hub.bridge import HubBridge
        from connector.plugins.hub.routes import BRIDGE

        clock = dsp_state(app).settings.clock
        bridge = HubBridge(app, store=app[STORE], key=app[IDENTITY].signing_key, clock=clock,
                           summary_period=timedelta(seconds=config.summary_period_s),
                           batch_max_events=config.batch_max_events,
                           batch_max_age=timedelta(seconds=config.batch_max_age_s))
        await bridge.register_known_packs()
        source = await self._source(config, bridge, clock)
        await bridge.recover()
        tasks = [asyncio.create_task(_tick(bridge, config.tick_s), name="hub-tick")]
        if source is not None:
            tasks.append(asyncio.create_task(_consume(bridge, source), name="hub-consume"))
        app[BRIDGE] = bridge
        app[RUNNING] = _Running(bridge, source, tasks)

    async def _source(self, config: HubSettings, bridge: Any, clock: Any) -> Any:
        if config.source == "simulated":
            from connector.plugins.hub.simulated_source import SimulatedSource

            if config.simulated is None:  # packs start over the API (hub/simulations.py)
                return None
            hub = simulated_hub(config.simulated)
            await bridge.register_pack(hub.hub_id, hub.battery_did, hub.registered_cells())
            return SimulatedSource(hub, clock, pace_s=config.simulated.pace_s,
                                   ticks=config.simulated.ticks)
        if config.source == "mqtt":
            from connector.plugins.hub.sources.mqtt import MqttSettings, MqttSource

            source = MqttSource(MqttSettings.model_validate(config.mqtt))
            await source.start()
            return source
        from connector.plugins.hub.sources.replay import JsonlReplaySource

        assert config.replay_path is not None
        return JsonlReplaySource(config.replay_path, speed=0)

    @hookimpl
    async def bpc_node_stop(self, app: web.Application) -> None:
        running = app.get(RUNNING)
        if running is None:
            return
        for task in running.tasks:
            task.cancel()
        for task in running.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await running.bridge.flush()
        close = getattr(running.source, "close", None)
        if close is not None:
            await close()

    @hookimpl
    def bpc_access_restriction(self, app: Any, battery_did: str | None,
                               access_level: str) -> str | None:
        from connector.plugins.hub.routes import BRIDGE

        bridge = app.get(BRIDGE)
        return bridge.restriction(battery_did, access_level) if bridge is not None else None

    @hookimpl
    def bpc_collect_metrics(self, app: web.Application) -> list[Any]:
        from connector.plugins.hub.metrics import collect_metrics

        return collect_metrics(app)

    @hookimpl
    def bpc_add_cli(self, cli: typer.Typer) -> None:
        from connector.plugins.hub.cli import hub_app

        cli.add_typer(hub_app, name="hub")


RUNNING = web.AppKey("hub_running", _Running)
plugin = HubPlugin()

__all__ = ["HubPlugin", "HubSettings", "SimulatedPack", "plugin", "simulated_hub"]
