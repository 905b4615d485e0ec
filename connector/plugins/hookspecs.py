"""The hooks a node plugin may implement: the one contract between the node and its plugins.

Hook names and argument names are part of the public interface: a plugin built against them
keeps working across node releases, so they are only ever added to, never renamed. pluggy
checks every implementation against these specifications when the plugin is registered (an
argument the spec does not offer, or a ``bpc_*`` hook that does not exist, refuses the
plugin), and an implementation may take fewer arguments than the spec offers.

Hooks that take a ``config`` get *the plugin's own* settings — the ``[plugins.<name>]`` table
of the node's TOML without ``enabled``, validated with the model from
``bpc_plugin_config_model`` (or a plain dict when the plugin has none). The node therefore
calls each plugin's implementation on its own rather than broadcasting one value to all.

Hooks that may do I/O (``bpc_node_start``, ``bpc_node_stop``, ``bpc_passport_appended``) may
be ``async def`` or return an awaitable; the node awaits it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer
    from aiohttp import web
    from pydantic import BaseModel

#: The pluggy project name: markers of another project are not ours and are ignored.
PROJECT = "bpc"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a plugin's hook functions with this (``from connector.plugins import hookimpl``).
hookimpl = pluggy.HookimplMarker(PROJECT)

@hookspec
def bpc_plugin_config_model() -> type[BaseModel] | None:
    """The pydantic model of this plugin's ``[plugins.<name>]`` settings, or ``None``.

    Called once per plugin when the node loads it; the node validates the table with it
    (``enabled`` removed) and refuses to start, naming the plugin and the field, when the
    settings do not fit. Use ``ConfigDict(extra="forbid")`` so a misspelt setting is an
    error rather than silently ignored.
    """


@hookspec
def bpc_add_routes(app: web.Application, config: BaseModel | dict[str, Any]) -> None:
    """Add HTTP routes (or sub-apps, or middlewares) to the node's application.

    Called by ``create_app``, after the node's own routes and before the app is frozen;
    nothing is running yet, so do no I/O here. Management-style routes should check the
    operator key with ``connector.management.auth.require_operator`` and answer errors with
    problem JSON (``connector.problems``), like the node's own routes.
    """


@hookspec
def bpc_node_start(
    app: web.Application, config: BaseModel | dict[str, Any]
) -> Awaitable[None] | None:
    """The node's resources are up (identity, store, verifier, outbox, watches): start.

    Called once per start, after every resource of the node has started, in the order the
    plugins' tables appear in the config; put the plugin's own state on ``app`` under its own
    ``web.AppKey``. Long-running work belongs in a task started here and ended in
    ``bpc_node_stop``. An exception stops the node from starting (plugins started before are
    stopped again) with an error naming the plugin.
    """


@hookspec
def bpc_node_stop(app: web.Application) -> Awaitable[None] | None:
    """The node shuts down: stop tasks, close connections.

    Called in reverse start order, before any of the node's resources close, so the store
    and the HTTP client are still usable. Only plugins whose start succeeded are stopped;
    an exception is logged and does not keep the other plugins from stopping.
    """


@hookspec
def bpc_add_cli(cli: typer.Typer) -> None:
    """Add commands or sub-apps (``cli.add_typer``) to the ``bpc`` command.

    Called when ``bpc`` starts, for every *installed* plugin, enabled or not: the CLI has no
    node config. So the plugin's module is imported on every ``bpc`` run: keep its top-level
    imports cheap and import heavy dependencies inside the commands.
    """


@hookspec
def bpc_passport_appended(
    app: web.Application, battery_did: str, credential: dict[str, Any]
) -> Awaitable[None] | None:
    """Observe: ``credential`` was appended to the passport of ``battery_did``, committed.

    Called after the append is durable, never before; an exception is logged and neither
    undoes nor fails the append. The caller waits for the observers, so keep them quick
    (queue slow work on a task of your own). Do not modify ``credential``.
    """


__all__ = [
    "PROJECT",
    "bpc_add_cli",
    "bpc_add_routes",
    "bpc_collect_metrics",
    "bpc_node_start",
    "bpc_node_stop",
    "bpc_passport_appended",
    "bpc_plugin_config_model",
    "hookimpl",
    "hookspec",
]


@hookspec
def bpc_access_restriction(
    app: web.Application | Mapping[Any, Any], battery_did: str | None, access_level: str
) -> str | None:
    """Veto access to a battery's data at one access level: the reason, or ``None``.

    Asked (synchronously, on every catalog, contract and data-plane request for restricted
    data — keep it to an in-memory lookup) before the node's policies decide; any reason
    refuses, with that reason shown to the requester. The hub bridge uses it to lock a pack's
    cell data while its cell configuration is unverified.
    """


@hookspec
def bpc_collect_metrics(app: web.Application) -> Iterable[Any] | Awaitable[Iterable[Any]] | None:
    """Metrics for one scrape of the node's ``GET /metrics``: ``prometheus_client`` metric
    families (``GaugeMetricFamily``, ``CounterMetricFamily``, … from
    ``prometheus_client.core``), built fresh from the plugin's state on every call.

    Called per scrape, after the node's own families, and may be ``async``; keep it to
    reading in-memory state (a scrape should answer in milliseconds). Name families
    ``bpc_<plugin>_…`` so they never clash with the node's. An exception is logged and only
    this plugin's families are left out of that scrape.
    """
