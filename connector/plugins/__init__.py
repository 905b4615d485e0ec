"""Node plugins: extend a connector node without changing it.

A plugin is any object (usually a module) with functions marked ``@hookimpl`` whose names
are hooks from ``connector.plugins.hookspecs``; it implements only the hooks it needs:

=========================== ===============================================================
``bpc_plugin_config_model`` the pydantic model of its ``[plugins.<name>]`` settings
``bpc_add_routes``          add HTTP routes while the node's app is built
``bpc_node_start``          start once the node's store, verifier, outbox … are up
``bpc_node_stop``           stop at shutdown (reverse order), before those close
``bpc_add_cli``             add commands to ``bpc``
``bpc_passport_appended``   observe each credential appended to a battery's passport
=========================== ===============================================================

**Installing.** A distribution declares its plugin as an entry point in the ``bpc.plugins``
group; the name is how the node's config refers to it::

    [project.entry-points."bpc.plugins"]
    thermal = "acme_thermal.plugin"            # the module's `plugin` object
    # or: thermal = "acme_thermal.plugin:plugin"

**Enabling.** Nothing runs until the operator turns it on in the node's TOML; the rest of
the table is the plugin's own settings, checked with its model before the node starts::

    [plugins.thermal]
    enabled = true
    threshold_c = 60

A plugin that cannot be imported, has no ``plugin`` object, or whose settings do not
validate stops the node with ``error: plugin 'thermal': …``; so does a table naming a plugin
that is not installed. ``create_app(config, plugins={"thermal": obj})`` passes plugin objects
directly (embedders, tests); they are enabled through the config the same way.

**Writing one** (``acme_thermal/plugin.py``)::

    import asyncio
    from aiohttp import web
    from pydantic import BaseModel, ConfigDict
    from connector.plugins import PLUGINS, hookimpl

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")   # a misspelt setting is an error
        threshold_c: float = 60.0

    ALERTS = web.AppKey("acme_thermal_alerts", list)

    class ThermalPlugin:
        @hookimpl
        def bpc_plugin_config_model(self) -> type[BaseModel]:
            return Settings

        @hookimpl
        def bpc_add_routes(self, app: web.Application, config: Settings) -> None:
            async def alerts(request: web.Request) -> web.Response:
                return web.json_response(request.config_dict[ALERTS])
            app.router.add_get("/thermal/alerts", alerts)

        @hookimpl
        async def bpc_node_start(self, app: web.Application, config: Settings) -> None:
            app[ALERTS] = []

        @hookimpl
        async def bpc_passport_appended(self, app, battery_did: str, credential: dict) -> None:
            limit = app[PLUGINS].config("thermal").threshold_c
            if credential.get("credentialSubject", {}).get("maxTemperature", 0) > limit:
                app[ALERTS].append(battery_did)

    plugin = ThermalPlugin()

Keep the module's top-level imports cheap: ``bpc`` imports every installed plugin to offer
its commands (``bpc_add_cli``), on every run. Use only public interfaces — the app's
``AppKey``s in ``connector.app`` (``STORE``, ``IDENTITY``, ``HTTP_CLIENT``, ``VERIFIER``),
``connector.management.auth.require_operator``, ``connector.problems`` — as the built-in hub
bridge does.
"""

from connector.plugins.hookspecs import hookimpl
from connector.plugins.manager import (
    ENTRY_POINT_GROUP,
    PLUGINS,
    LoadedPlugin,
    PluginError,
    PluginManager,
    add_plugin_commands,
    install_plugins,
    notify_passport_appended,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS",
    "LoadedPlugin",
    "PluginError",
    "PluginManager",
    "add_plugin_commands",
    "hookimpl",
    "install_plugins",
    "notify_passport_appended",
]
