"""Running a node: ``bpc serve --config node.toml``.

Starts the app with ``web.AppRunner`` + ``TCPSite`` and stops it on SIGTERM or SIGINT the
graceful way: the listener closes first, requests already in flight get up to
``shutdown_timeout_s`` to finish, then the resources close in reverse order. At first start
the generated operator API key is printed to stdout, once; nothing else goes to stdout, so a
script can capture it. Logs go to stderr, as text or JSON lines (``log_format``,
``connector.ops.logs``), with secrets scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from connector.app import CONFIG, IDENTITY, create_app
from connector.config import ConfigError, NodeConfig, load_config
from connector.identity import IdentityError
from connector.management.auth import OPERATOR_AUTH, OPERATOR_KEY_FILE, OperatorKeyError
from connector.ops.logs import configure_logging
from connector.plugins.manager import PluginError
from connector.store import StoreError
from credentials.errors import CredentialsError

logger = logging.getLogger("connector.serve")


@dataclass(frozen=True, slots=True)
class RunningNode:
    """A started node: its app (for its state), its runner, and where it really listens."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def running_node(
    config: NodeConfig, app: web.Application | None = None
) -> AsyncIterator[RunningNode]:
    """Start ``app`` (default: ``create_app(config)``) and stop it gracefully on exit.

    Port 0 picks a free port; ``RunningNode.port`` tells which. Resources that did start are
    closed even when a later one fails to.
    """
    app = create_app(config) if app is None else app
    runner = web.AppRunner(
        app, shutdown_timeout=config.shutdown_timeout_s, handle_signals=False
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = config.port
        for address in runner.addresses:
            port = address[1]  # the real port when config.port is 0
            break
        yield RunningNode(app, runner, config.host, port)
    finally:
        await runner.cleanup()


def announce_operator_key(node: RunningNode) -> None:
    """Print a newly generated operator key; there is no second chance to see it."""
    key = node.app[OPERATOR_AUTH].take_generated_key()
    if key is None:
        return
    config = node.app[CONFIG]
    print(
        "Operator API key (shown only now; the node keeps only its hash in"
        f" {config.data_dir / OPERATOR_KEY_FILE}):\n"
        f"    {key}\n"
        "Send it as 'Authorization: Bearer <key>'. Lost it? Delete that file and restart.",
        flush=True,
    )


def settle_heap() -> None:
    """Freeze what start-up made (JSON-LD contexts, SHACL graphs, models): it lives as long as
    the process, and without this every full garbage collection walks it again — about a
    tenth of the hub bridge's time per event (``bpc bench hub``)."""
    gc.collect()
    gc.freeze()


async def serve(config: NodeConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running_node(config) as node:
            settle_heap()
            announce_operator_key(node)
            logger.info("node %s listening on %s (public %s)", node.app[IDENTITY].did,
                        node.url, config.public_base_url)
            await stop.wait()
            logger.info("shutting down: in-flight requests get up to %ss to finish",
                        config.shutdown_timeout_s)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("stopped")


def serve_command(config_path: Path | None) -> int:
    """``bpc serve``: 0 after a clean shutdown, 2 when the node cannot start (message only)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format, sys.stderr)
    try:
        asyncio.run(serve(config))
    except (IdentityError, OperatorKeyError, CredentialsError, StoreError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken, or data_dir is not writable
        print(f"error: cannot start the node: {exc}", file=sys.stderr)
        return 2
    return 0
