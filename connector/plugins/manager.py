"""Finding, loading, configuring and calling a node's plugins (a thin layer over pluggy).

Plugins are found through the ``bpc.plugins`` entry point group (``importlib.metadata``;
installing a distribution is what makes a plugin available, nothing is imported to find
it), plus plugin objects an embedder or a test passes to ``create_app(plugins=...)``. A node
imports only the plugins whose ``[plugins.<name>]`` table says ``enabled = true``, in the
order the tables appear, so the operator decides what runs and in which order.

Whatever keeps a plugin from working — its module does not import, it has no ``plugin``
object, a hook has a wrong name or argument, its settings do not validate, its start hook
raises — is a ``PluginError`` whose message starts with ``plugin '<name>':``, raised before
the node serves anything: a node that runs without a plugin the operator enabled would
silently drop the work that plugin was meant to do. The ``bpc`` CLI is more lenient: it
loads every installed plugin for its commands, and a broken one only costs its commands
(a warning on stderr), so ``bpc`` itself stays usable to diagnose it.

Each plugin gets its own settings, so hooks taking ``config`` are called plugin by plugin
(pluggy's ``subset_hook_caller``) instead of once for all.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy
from aiohttp import web
from pydantic import BaseModel, ValidationError

from connector.plugins import hookspecs
from connector.plugins.hookspecs import PROJECT

if TYPE_CHECKING:
    import typer

    from connector.config import NodeConfig

log = logging.getLogger(__name__)

#: The entry point group a distribution declares its plugins in:
#: ``[project.entry-points."bpc.plugins"]`` ``name = "package.module:plugin"``.
ENTRY_POINT_GROUP = "bpc.plugins"
#: The object a plugin module exposes when its entry point names only the module.
PLUGIN_ATTRIBUTE = "plugin"


class PluginError(Exception):
    """A plugin cannot be used; the message starts with ``plugin '<name>':`` and says why."""


@dataclass(frozen=True, slots=True)
class LoadedPlugin:
    """One plugin a node runs: its object, its validated settings, where it came from."""

    name: str
    plugin: object
    config: BaseModel | dict[str, Any]
    source: str


class PluginManager:
    """The plugins of one node (or of the ``bpc`` CLI), registered with one pluggy manager.

    ``available`` adds plugin objects by name to the installed ones (an explicit object
    wins over an installed plugin of the same name: the embedder chose it).
    """

    def __init__(
        self, available: Mapping[str, object] | None = None, *, group: str = ENTRY_POINT_GROUP
    ) -> None:
        self.hooks = pluggy.PluginManager(PROJECT)
        self.hooks.add_hookspecs(hookspecs)
        self._available = dict(available or {})
        self._group = group
        self._entry_points: dict[str, list[EntryPoint]] | None = None
        self._loaded: dict[str, LoadedPlugin] = {}  # insertion order is start order
        self._started: list[str] = []

    # --- what is there ---------------------------------------------------------------------

    def installed(self) -> list[str]:
        """Names of every plugin this manager could load (installed or passed), sorted."""
        return sorted(set(self._discover()) | set(self._available))

    @property
    def names(self) -> tuple[str, ...]:
        """The loaded plugins, in start order."""
        return tuple(self._loaded)

    def get(self, name: str) -> LoadedPlugin | None:
        """A loaded plugin (its object and settings), ``None`` if it is not loaded."""
        return self._loaded.get(name)

    def config(self, name: str) -> BaseModel | dict[str, Any]:
        """A loaded plugin's validated settings (``KeyError`` when it is not loaded)."""
        return self._loaded[name].config

    def _discover(self) -> dict[str, list[EntryPoint]]:
        # Reading entry points touches every distribution's metadata: done once, and only
        # when a plugin is asked for (a node with no [plugins] table never pays for it).
        if self._entry_points is None:
            found: dict[str, list[EntryPoint]] = {}
            for entry_point in entry_points(group=self._group):
                found.setdefault(entry_point.name, []).append(entry_point)
            self._entry_points = found
        return self._entry_points

    # --- loading ---------------------------------------------------------------------------

    def load_enabled(self, tables: Mapping[str, Mapping[str, Any]]) -> None:
        """Load, register and configure every plugin whose table has ``enabled = true``.

        Every table must name an available plugin (a misspelt name would otherwise leave a
        plugin off without a word); disabled plugins are checked for that only, never
        imported.
        """
        if not tables:
            return
        unknown = [name for name in tables if name not in self.installed()]
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            installed = ", ".join(repr(name) for name in self.installed()) or "none"
            raise PluginError(
                f"plugin {names}: not installed (configured in [plugins]); installed plugins:"
                f" {installed}"
            )
        for name, table in tables.items():
            enabled = table.get("enabled", False)
            if not isinstance(enabled, bool):
                raise PluginError(
                    f"plugin {name!r}: plugins.{name}.enabled must be true or false,"
                    f" not {enabled!r}"
                )
            if not enabled:
                log.info("plugin %r is configured but not enabled (enabled = true turns it on)",
                         name)
                continue
            self.load(name, {key: value for key, value in table.items() if key != "enabled"})

    def load(self, name: str, settings: Mapping[str, Any] | None = None) -> LoadedPlugin:
        """Import and register one plugin; with ``settings``, validate them for it too."""
        plugin, source = self._resolve(name)
        self._register(name, plugin, source)
        try:
            config = self._validate(name, settings) if settings is not None else {}
        except BaseException:
            self.hooks.unregister(name=name)
            raise
        loaded = LoadedPlugin(name, plugin, config, source)
        self._loaded[name] = loaded
        return loaded

    def _resolve(self, name: str) -> tuple[object, str]:
        if name in self._available:
            return self._available[name], "passed to create_app"
        candidates = self._discover().get(name, [])
        if not candidates:
            raise PluginError(f"plugin {name!r}: not installed")
        if len(candidates) > 1:
            sources = "; ".join(_describe(entry_point) for entry_point in candidates)
            raise PluginError(f"plugin {name!r}: installed more than once ({sources});"
                              " uninstall all but one")
        return _load_entry_point(name, candidates[0]), _describe(candidates[0])

    def _register(self, name: str, plugin: object, source: str) -> None:
        try:
            self.hooks.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            # pluggy's message spans lines and repeats the name: one line for the operator.
            lines = [line for line in str(exc).splitlines()
                     if line.strip() and not line.startswith("Plugin ")]
            raise PluginError(f"plugin {name!r}: {'; '.join(lines)} ({source})") from exc
        except ValueError as exc:  # the same object registered under two names
            raise PluginError(f"plugin {name!r}: {exc}") from exc
        callers = self.hooks.get_hookcallers(plugin) or []
        unknown = sorted(caller.name for caller in callers if not caller.has_spec())
        problem = None
        if unknown:
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("bpc_")))
            problem = f"{', '.join(unknown)} is not a bpc hook (known hooks: {known})"
        elif not callers:
            problem = ("implements no bpc hook (mark its hook functions with"
                       " connector.plugins.hookimpl)")
        if problem:
            self.hooks.unregister(name=name)
            raise PluginError(f"plugin {name!r}: {problem} ({source})")

    def _validate(
        self, name: str, settings: Mapping[str, Any]
    ) -> BaseModel | dict[str, Any]:
        try:
            models = [model for model in self._call(name, "bpc_plugin_config_model")
                      if model is not None]
        except Exception as exc:
            raise PluginError(f"plugin {name!r}: bpc_plugin_config_model failed:"
                              f" {type(exc).__name__}: {exc}") from exc
        if not models:
            return dict(settings)
        model = models[0]
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PluginError(f"plugin {name!r}: bpc_plugin_config_model returned {model!r},"
                              " not a pydantic model class")
        try:
            return model.model_validate(dict(settings))
        except ValidationError as exc:
            problems = "; ".join(
                ".".join(["plugins", name, *(str(part) for part in error["loc"])])
                + f": {str(error['msg']).removeprefix('Value error, ')}"
                for error in exc.errors()
            )
            raise PluginError(f"plugin {name!r}: invalid settings: {problems}") from None

    # --- calling ---------------------------------------------------------------------------

    def _call(self, name: str, hook: str, **kwargs: Any) -> list[Any]:
        """One plugin's implementations of ``hook`` (its results, pluggy's order)."""
        others = [plugin for other, plugin in self.hooks.list_name_plugin() if other != name]
        return self.hooks.subset_hook_caller(hook, remove_plugins=others)(**kwargs)  # type: ignore[no-any-return]

    def add_routes(self, app: web.Application) -> None:
        """``bpc_add_routes`` of every loaded plugin, in order."""
        for name, loaded in self._loaded.items():
            try:
                self._call(name, "bpc_add_routes", app=app, config=loaded.config)
            except Exception as exc:
                raise PluginError(f"plugin {name!r}: cannot add its routes:"
                                  f" {type(exc).__name__}: {exc}") from exc

    async def start(self, app: web.Application) -> None:
        """``bpc_node_start`` in order; on a failure, stop those started and raise."""
        for name, loaded in self._loaded.items():
            try:
                await _settle(self._call(name, "bpc_node_start", app=app, config=loaded.config))
            except Exception as exc:
                await self.stop(app)
                raise PluginError(f"plugin {name!r}: failed to start:"
                                  f" {type(exc).__name__}: {exc}") from exc
            self._started.append(name)

    async def stop(self, app: web.Application) -> None:
        """``bpc_node_stop`` in reverse start order; a failure is logged, the rest still stop."""
        while self._started:
            name = self._started.pop()
            try:
                await _settle(self._call(name, "bpc_node_stop", app=app))
            except Exception:
                log.exception("plugin %r failed to stop cleanly", name)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """The cleanup context that starts the plugins after the node's resources and stops
        them before those close."""
        await self.start(app)
        try:
            yield
        finally:
            await self.stop(app)

    async def passport_appended(
        self, app: web.Application, battery_did: str, credential: Mapping[str, Any]
    ) -> None:
        """Tell every observer; each gets its own copy, and its failure is only logged."""
        for name in self._loaded:
            try:
                await _settle(self._call(name, "bpc_passport_appended", app=app,
                                         battery_did=battery_did,
                                         credential=copy.deepcopy(dict(credential))))
            except Exception:
                log.exception("plugin %r: passport observer failed for %s (the credential"
                              " stays appended)", name, battery_did)

    async def collect_metrics(self, app: web.Application) -> list[Any]:
        """Every loaded plugin's ``bpc_collect_metrics`` families for one scrape; a plugin that
        fails is logged and left out (the scrape and the other plugins still answer)."""
        families: list[Any] = []
        for name in self._loaded:
            try:
                collected: list[Any] = []
                for result in self._call(name, "bpc_collect_metrics", app=app):
                    found = await result if inspect.isawaitable(result) else result
                    collected.extend(found or ())
                families.extend(collected)
            except Exception:
                log.exception("plugin %r: collecting its metrics failed", name)
        return families

    def access_restriction(self, app: web.Application | Mapping[Any, Any],
                           battery_did: str | None,
                           access_level: str) -> str | None:
        """The first plugin's reason to refuse access, or ``None``. A plugin that fails here
        refuses (fail closed): it was asked because it may know a reason."""
        for name in self._loaded:
            try:
                reasons = self._call(name, "bpc_access_restriction", app=app,
                                     battery_did=battery_did, access_level=access_level)
            except Exception:
                log.exception("plugin %r: access restriction check failed", name)
                return f"plugin {name!r} could not decide access (see the node's log)"
            for reason in reasons:
                if reason:
                    return str(reason)
        return None

    def add_cli(self, name: str, cli: typer.Typer) -> list[str]:
        """One plugin's ``bpc_add_cli``; returns the command names it added.

        A plugin may add commands but never replace one: a name that is already taken (a
        built-in or another plugin's) is removed again and reported."""
        before_commands = list(cli.registered_commands)
        before_groups = list(cli.registered_groups)
        taken = _command_names(before_commands, before_groups)
        try:
            self._call(name, "bpc_add_cli", cli=cli)
        except Exception as exc:
            cli.registered_commands[:] = before_commands
            cli.registered_groups[:] = before_groups
            raise PluginError(f"plugin {name!r}: cannot add its commands:"
                              f" {type(exc).__name__}: {exc}") from exc
        new_commands = [c for c in cli.registered_commands if c not in before_commands]
        new_groups = [g for g in cli.registered_groups if g not in before_groups]
        added = _command_names(new_commands, new_groups)
        clashes = sorted(set(added) & set(taken))
        if clashes:
            cli.registered_commands[:] = before_commands
            cli.registered_groups[:] = before_groups
            raise PluginError(f"plugin {name!r}: command {', '.join(clashes)} already exists;"
                              " none of its commands were added")
        return added


# --- the node and the CLI ---------------------------------------------------------------------

PLUGINS = web.AppKey("plugins", PluginManager)


def install_plugins(
    app: web.Application, config: NodeConfig, plugins: Mapping[str, object] | None = None
) -> PluginManager:
    """Load the plugins ``config`` enables, let them add routes, and start them with the node.

    Called by ``create_app`` after the node's own routes and cleanup contexts, so plugins
    start once every resource is up and stop before any closes. Raises ``PluginError``.
    """
    manager = PluginManager(plugins)
    manager.load_enabled(config.plugins)
    app[PLUGINS] = manager
    manager.add_routes(app)
    app.cleanup_ctx.append(manager.lifecycle)
    return manager


async def notify_passport_appended(
    app: web.Application, battery_did: str, credential: Mapping[str, Any]
) -> None:
    """Tell the node's plugins that ``credential`` is now in ``battery_did``'s passport.

    Call it after the store transaction committed (never inside it: an observer must not
    see what could still roll back) with the node's root app (``request.config_dict`` holds
    ``PLUGINS`` for sub-apps; pass ``request.app`` of the node's own routes). Never raises
    for an observer's failure.
    """
    manager = app.get(PLUGINS)
    if manager is not None:
        await manager.passport_appended(app, battery_did, credential)


def access_restriction(app: web.Application | Mapping[Any, Any], battery_did: str | None,
                       access_level: str) -> str | None:
    """Why plugins refuse access to this battery's data at this level (``None``: they do not)."""
    manager = app.get(PLUGINS)
    if manager is None:
        return None
    return manager.access_restriction(app, battery_did, access_level)


def add_plugin_commands(
    cli: typer.Typer, *, available: Mapping[str, object] | None = None,
    group: str = ENTRY_POINT_GROUP,
) -> list[str]:
    """Let every installed plugin add its commands to ``cli``; returns the names added.

    The CLI has no node config, so every installed plugin is loaded (enabled or not); a
    broken one is reported on stderr and skipped, the rest of ``bpc`` keeps working.
    """
    manager = PluginManager(available, group=group)
    added: list[str] = []
    for name in manager.installed():
        try:
            manager.load(name)
            added += manager.add_cli(name, cli)
        except PluginError as exc:
            print(f"warning: {exc}; its commands are not available", file=sys.stderr)
    return added


# --- helpers ----------------------------------------------------------------------------------


def _load_entry_point(name: str, entry_point: EntryPoint) -> object:
    """The plugin object an entry point names (``module:attr``, or the module's ``plugin``).

    Imported in two steps so that a module that does not import and a module without the
    object get different messages."""
    source = _describe(entry_point)
    try:
        module = importlib.import_module(entry_point.module)
    except Exception as exc:
        raise PluginError(f"plugin {name!r}: cannot import {entry_point.module!r} ({source}):"
                          f" {type(exc).__name__}: {exc}") from exc
    path = entry_point.attr or PLUGIN_ATTRIBUTE
    target: object = module
    for part in path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginError(f"plugin {name!r}: module {entry_point.module!r} has no"
                              f" {path!r} object ({source})") from None
    return target


def _describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"entry point {entry_point.value!r} of {where}"


async def _settle(results: Iterable[Any]) -> None:
    for result in results:
        if inspect.isawaitable(result):
            await result


def _command_names(commands: Iterable[Any], groups: Iterable[Any]) -> list[str]:
    from typer.main import get_command_name

    names = [command.name or get_command_name(command.callback.__name__)
             for command in commands if command.name or command.callback]
    names += [group.name or group.typer_instance.info.name for group in groups
              if group.name or group.typer_instance.info.name]
    return [str(name) for name in names]


__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS",
    "PLUGIN_ATTRIBUTE",
    "LoadedPlugin",
    "PluginError",
    "PluginManager",
    "add_plugin_commands",
    "install_plugins",
    "notify_passport_appended",
]
