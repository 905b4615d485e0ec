"""Reading ``compose/docker-compose.yml`` as the description of a topology, and checking it.

Docker need not be present for the file to be checked honestly: every node service's command
is parsed by the real ``bpc`` command line (an unknown option fails as it would in the
container), its config file is found through the service's bind mount and loaded with the
service's environment (placeholders for variables the operator must set), so a setting the node
would refuse is found here. ``bpc devnet`` then runs the same services as local processes:
only each node's ``public_base_url`` (to a loopback port), its store (a schema in a local
PostgreSQL), its data directory and the MQTT broker's address change.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import typer
import yaml

from connector.config import ConfigError, NodeConfig, load_config
from connector.valuechain.nodes import NodeSpec

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")
PLACEHOLDER = "compose-check"


class ComposeError(ValueError):
    """The compose file describes something the nodes would not run (names the service)."""


@dataclass(frozen=True)
class ComposeNode:
    """One ``bpc serve`` service: its command, config file (on this machine) and settings."""

    service: str
    title: str
    command: tuple[str, ...]
    config_path: Path
    environment: Mapping[str, str]
    settings: Mapping[str, Any]
    config: NodeConfig


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``; a required variable
    that is unset takes ``PLACEHOLDER`` (the check is about the file, not about secrets)."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3) or ""
        if environ.get(name):
            return environ[name]
        return rest if kind == "-" else PLACEHOLDER

    return _VARIABLE.sub(one, value)


def _environment(service: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    return {str(k): interpolate(str(v), environ) for k, v in raw.items()}


def _serve_config_argument(service: str, command: list[str]) -> str:
    """The ``--config`` of a ``bpc serve`` command, parsed by the real CLI."""
    from connector.cli import app

    if len(command) < 2 or command[0] != "bpc":
        raise ComposeError(f"service {service}: command {command} does not run bpc")
    group: Any = typer.main.get_command(app)
    try:
        with group.make_context("bpc", list(command[1:]), resilient_parsing=True) as parent:
            sub = group.get_command(parent, command[1])
            if sub is None:
                raise ComposeError(f"service {service}: bpc has no command {command[1]!r}")
            with sub.make_context(command[1], list(command[2:]), parent=parent) as ctx:
                params = ctx.params
    except typer.TyperException as exc:  # typer's (vendored click's) usage errors
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        raise ComposeError(f"service {service}: {' '.join(command)}: {message}") from None
    if command[1] != "serve" or not params.get("config"):
        raise ComposeError(f"service {service}: a node service runs "
                           "'bpc serve --config FILE'")
    return str(params["config"])


def _host_path(service: str, container_path: str, volumes: list[Any], base: Path) -> Path:
    """The file on this machine that a bind mount puts at ``container_path``."""
    wanted = PurePosixPath(container_path)
    for volume in volumes:
        if not isinstance(volume, str):
            continue
        parts = volume.split(":")
        if len(parts) >= 2 and parts[0].startswith((".", "/")) and \
                PurePosixPath(parts[1]) == wanted:
            return (base / parts[0]).resolve()
    raise ComposeError(f"service {service}: no bind mount provides {container_path}")


def read_compose(path: Path, environ: Mapping[str, str] | None = None) -> list[ComposeNode]:
    """The node services of a compose file, each checked (``ComposeError`` names what not)."""
    environ = {} if environ is None else environ
    try:
        document = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ComposeError(f"{path}: {exc}") from None
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise ComposeError(f"{path}: no services")
    nodes: list[ComposeNode] = []
    for name, service in services.items():
        command = service.get("command")
        if not (isinstance(command, list) and command and command[0] == "bpc"):
            continue
        config_arg = _serve_config_argument(name, [str(c) for c in command])
        config_path = _host_path(name, config_arg, service.get("volumes") or [], path.parent)
        if not config_path.is_file():
            raise ComposeError(f"service {name}: config file {config_path} does not exist")
        environment = _environment(service, environ)
        try:
            config = load_config(config_path, environ=environment)
        except ConfigError as exc:
            raise ComposeError(f"service {name}: {exc}") from None
        settings = tomllib.loads(config_path.read_text("utf-8"))
        title = str((service.get("labels") or {}).get("org.bpc.title", name))
        nodes.append(ComposeNode(name, title, tuple(command), config_path, environment,
                                 settings, config))
    if not nodes:
        raise ComposeError(f"{path}: no service runs 'bpc serve'")
    return nodes


def local_settings(node: ComposeNode, *, port: int, store: str,
                   mqtt: tuple[str, int] | None) -> dict[str, Any]:
    """The node's settings as a local process: loopback URL, local store and broker;
    everything else as the compose file says."""
    settings = {k: v for k, v in node.settings.items()
                if k not in {"data_dir", "host", "keystore_passphrase_env"}}
    settings.update(public_base_url=f"http://127.0.0.1:{port}", port=port, store=store)
    hub = (settings.get("plugins") or {}).get("hub")
    if hub is not None and "mqtt" in hub:
        if mqtt is None:
            raise ComposeError(f"service {node.service}: its hub needs an MQTT broker")
        host, broker_port = mqtt
        settings["plugins"] = {**settings["plugins"], "hub": {
            **hub, "mqtt": {**hub["mqtt"], "host": host, "port": broker_port,
                            "client_id": f"bpc-devnet-{node.service}-{port}"}}}
    return settings


def devnet_specs(nodes: list[ComposeNode], *, ports: Mapping[str, int],
                 stores: Mapping[str, str], mqtt: tuple[str, int] | None) -> list[NodeSpec]:
    return [NodeSpec(n.service, n.title, local_settings(
        n, port=ports[n.service], store=stores[n.service], mqtt=mqtt), port=ports[n.service])
        for n in nodes]


__all__ = ["ComposeError", "ComposeNode", "devnet_specs", "interpolate", "local_settings",
           "read_compose"]
