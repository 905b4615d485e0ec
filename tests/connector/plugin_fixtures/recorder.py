"""A test plugin implementing every hook and recording each call in order.

Tests pass fresh ``Recorder`` instances to ``create_app(plugins=...)``; the module-level
``plugin`` is what the test entry points name (``…recorder:plugin``).
"""

from __future__ import annotations

from typing import Any

import typer
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connector.app import STORE
from connector.plugins import hookimpl


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: str
    limit: int = Field(default=3, ge=1)


class Recorder:
    """Records ``(name, hook, detail)`` in ``log`` (shareable between instances)."""

    def __init__(self, name: str = "recorder", log: list[tuple[str, str, Any]] | None = None,
                 *, fail_start: bool = False, fail_observer: bool = False) -> None:
        self.name = name
        self.log = [] if log is None else log
        self.fail_start = fail_start
        self.fail_observer = fail_observer

    def calls(self, hook: str) -> list[Any]:
        return [detail for name, called, detail in self.log
                if name == self.name and called == hook]

    @hookimpl
    def bpc_plugin_config_model(self) -> type[BaseModel]:
        return Settings

    @hookimpl
    def bpc_add_routes(self, app: web.Application, config: Settings) -> None:
        self.log.append((self.name, "add_routes", config))
        name = self.name

        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"plugin": name, "greeting": config.greeting,
                                      "limit": config.limit})

        app.router.add_get(f"/{name}/hello", hello)

    @hookimpl
    async def bpc_node_start(self, app: web.Application, config: Settings) -> None:
        # The store is up: a read works (and proves the hook runs after its context).
        async with app[STORE].read() as reader:
            batteries = await reader.list_batteries()
        self.log.append((self.name, "start", (config, len(batteries))))
        if self.fail_start:
            raise RuntimeError("the broker is unreachable")

    @hookimpl
    def bpc_node_stop(self, app: web.Application) -> None:
        # Still up while plugins stop: the store closes after them.
        self.log.append((self.name, "stop", app[STORE].backend))

    @hookimpl
    def bpc_add_cli(self, cli: typer.Typer) -> None:
        name = self.name

        @cli.command(f"{name}-hello")
        def hello(who: str = "world") -> None:
            """Say hello from the test plugin."""
            print(f"hello {who} from {name}")

    @hookimpl
    async def bpc_passport_appended(self, app: web.Application, battery_did: str,
                                    credential: dict[str, Any]) -> None:
        self.log.append((self.name, "appended", (battery_did, credential)))
        credential["tampered"] = True  # observers get their own copy: this changes nothing
        if self.fail_observer:
            raise ValueError("observer bug")


plugin = Recorder()
