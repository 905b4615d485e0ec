"""The app factory: one aiohttp application per node, its state behind typed ``AppKey``s.

``create_app`` only describes the application; nothing touches the disk or the network until
it starts. Each resource is opened and closed by its own cleanup context (setup before
``yield``, teardown after), in dependency order, so teardown runs in reverse and a resource
is never closed while something that uses it still runs:

1. identity   the node key from the keystore (``identity.load_identity``)
2. operator   the operator API key hash (``management.auth``)
3. http       the one outbound ``aiohttp.ClientSession`` (did:web, other nodes)
4. store      SQLite (default) or PostgreSQL, migrated at open (``connector.store``)
5. verifier   the node's status lists, and credential / presentation verification with DID
              resolution and status checks over (3)
6. outbox     the worker delivering queued Dataspace Protocol messages (``dsp.outbox``)
7. watches    the data plane's check that ends transfers whose agreement ran out, and the
              end of negotiations and transfer requests without progress (``dsp.timeouts``)
8. plugins    the enabled plugins' start / stop hooks, last: every resource is up before
              they start and still up until they stopped (``connector.plugins``)

Operations endpoints (``/health``, ``/ready``, ``/metrics``, ``/openapi.json``) and the
metrics middleware come from ``connector.ops``; the verifier is wrapped to count verifications.

Route modules read the keys defined here (``request.config_dict[IDENTITY]``), so they are
imported when an app is built rather than at the top of this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from connector import __version__
from connector.config import NodeConfig
from connector.identity import NodeIdentity, load_identity, node_verifier
from connector.management.auth import OPERATOR_AUTH, OperatorAuth
from connector.problems import problem_middleware
from connector.store import Store, open_store
from credentials import Verifier
from credentials.status_list import StatusChecker

if TYPE_CHECKING:  # the DSP modules import this one's AppKeys
    from connector.dsp.negotiation_service import DspSettings
    from connector.dsp.transfer_service import TransferSettings

CONFIG = web.AppKey("config", NodeConfig)
IDENTITY = web.AppKey("identity", NodeIdentity)
VERIFIER = web.AppKey("verifier", Verifier)
STORE = web.AppKey("store", Store)
HTTP_CLIENT = web.AppKey("http_client", aiohttp.ClientSession)

__all__ = ["CONFIG", "HTTP_CLIENT", "IDENTITY", "OPERATOR_AUTH", "STORE", "VERIFIER",
           "create_app"]

#: Outbound calls (did:web documents, other connectors) must not hang a request forever.
OUTBOUND_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


def create_app(
    config: NodeConfig,
    *,
    dsp_settings: DspSettings | None = None,
    transfer_settings: TransferSettings | None = None,
    plugins: Mapping[str, object] | None = None,
) -> web.Application:
    """A node application for ``config``; start it with ``web.AppRunner`` (see ``serve``).

    ``dsp_settings`` tunes the Dataspace Protocol side (policy decision, callback rules,
    retries, clock); tests and embedders pass their own, the defaults are strict."""
    # Route modules read this module's AppKeys; see the module docstring.
    from connector import status_lists, usage, vcapi
    from connector.dataplane import routes as dataplane_routes
    from connector.dcp.context import role_proofs_ctx
    from connector.dsp import (
        routes_catalog,
        routes_negotiation,
        routes_transfer,
        routes_version,
        tck_triggers,
    )
    from connector.dsp.negotiation_service import DspSettings
    from connector.dsp.outbox import outbox_ctx
    from connector.dsp.timeouts import timeouts_ctx
    from connector.management import data_access
    from connector.management import routes as management_routes
    from connector.management import status as status_routes
    from connector.policy_monitor import add_policy_monitor

    if dsp_settings is None:
        dsp_settings = DspSettings(
            lease_s=config.outbox_lease_s, poll_interval_s=config.outbox_poll_interval_s,
            max_attempts=config.outbox_max_attempts, backoff_base_s=config.outbox_backoff_base_s,
            backoff_cap_s=config.outbox_backoff_cap_s)
    from connector.ops import health as health_routes
    from connector.ops import metrics as node_metrics
    from connector.ops import openapi

    # Metrics outermost: it counts the status the client gets, after problems are rendered.
    app = web.Application(
        client_max_size=config.max_body_bytes,
        middlewares=[node_metrics.metrics_middleware, problem_middleware],
    )
    app[CONFIG] = config
    node_metrics.install(app)  # the app's own registry and GET /metrics (connector.ops)
    app.cleanup_ctx.append(identity_ctx)
    app.cleanup_ctx.append(operator_auth_ctx)
    app.cleanup_ctx.append(http_client_ctx)
    # After the identity and the HTTP client, before anything that reads or writes state, so
    # it is closed only after all of those have stopped.
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(verifier_ctx)
    # The trust registry (loaded from the store, imports verified with the verifier) and
    # its management routes: connector.trust_registry, connector.management.trust.
    from connector.management import trust as trust_routes
    from connector.trust_registry import trust_ctx
    app.cleanup_ctx.append(trust_ctx)
    trust_routes.add_routes(app)
    # DCP holder: access tokens (a context before the outbox's, which sends them), the
    # credential service and the wallet's management routes.
    from connector.dcp import credential_service
    credential_service.add_routes(app)
    app.cleanup_ctx.append(role_proofs_ctx)
    # Sends protocol messages with the identity, HTTP client and store: stops before them.
    app.cleanup_ctx.append(outbox_ctx)

    health_routes.add_routes(app)  # /health (liveness) and /ready (store, identity)
    # /openapi.json, built from the router and the routes' descriptions (api_spec)
    from connector.management import api_spec  # noqa: F401  (describes the handlers)

    openapi.add_routes(app)
    app.router.add_get("/.well-known/did.json", did_document)
    if urlsplit(config.public_base_url).path:
        # did:web:host:path resolves to <public_base_url>/did.json, not /.well-known/.
        app.router.add_get("/did.json", did_document)
    vcapi.add_routes(app)
    management_routes.add_routes(app)
    data_access.add_routes(app)
    status_lists.add_routes(app)
    status_routes.add_routes(app)
    from connector import passport_page, shipments

    passport_page.add_routes(app)  # the QR-linked passport page
    shipments.add_routes(app)  # shipment declarations: attestations, verification, page
    routes_catalog.add_routes(app)
    routes_negotiation.add_routes(app, dsp_settings)
    routes_transfer.add_routes(app, transfer_settings)
    routes_version.add_routes(app)
    dataplane_routes.add_routes(app, watch_interval_s=config.watch_interval_s)
    add_policy_monitor(app, config.watch_interval_s)
    app.cleanup_ctx.append(timeouts_ctx(timedelta(seconds=config.process_timeout_s),
                                        config.watch_interval_s))
    usage.install(app)  # received data, its purge watch, deletion receipts
    tck_triggers.install(app)  # test-only, only with config.tck_triggers (interop/TCK.md)
    # Last: plugin routes come after the node's own, plugins start after every resource.
    # ``plugins`` adds plugin objects (embedders, tests) to the installed ones; the config
    # enables them. Raises PluginError naming a plugin that cannot be used.
    from connector.plugins.manager import install_plugins
    install_plugins(app, config, plugins)
    return app


# --- resources --------------------------------------------------------------------------------


async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
    """The node key, decrypted once at start (argon2id is slow by design: off the loop)."""
    config = app[CONFIG]
    await asyncio.to_thread(config.data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
    app[IDENTITY] = await asyncio.to_thread(load_identity, config)
    yield


async def operator_auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """The operator key's hash: from the config if set there, else from (or into) data_dir."""
    config = app[CONFIG]
    if config.operator_api_key is not None:
        auth = OperatorAuth.from_key(config.operator_api_key.get_secret_value())
    else:
        auth = await asyncio.to_thread(OperatorAuth.load_or_create, config.data_dir)
    app[OPERATOR_AUTH] = auth
    yield


async def http_client_ctx(app: web.Application) -> AsyncIterator[None]:
    """One pooled client session for every outbound call, closed after the last user."""
    async with aiohttp.ClientSession(
        timeout=OUTBOUND_TIMEOUT, headers={"User-Agent": f"bpc-node/{__version__}"}
    ) as session:
        app[HTTP_CLIENT] = session
        yield


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The node's durable state; closed last among the resources that use it."""
    config = app[CONFIG]
    from connector.dsp.negotiation_service import DSP_STATE

    # Records are stamped with the node's clock (the DSP settings'), the one the process
    # timeouts and agreement windows are judged by: with a shifted clock (demo, tests), a
    # process made after the shift must not look a day old to the stale-process watch.
    clock = app[DSP_STATE].settings.clock if DSP_STATE in app else None
    store = await open_store(config.store, data_dir=config.data_dir,
                             **({"clock": clock} if clock is not None else {}))
    app[STORE] = store
    from connector.passports import PASSPORT_BOOK, PassportBook

    app[PASSPORT_BOOK] = PassportBook(store)
    if store.backend == "postgresql":  # replicas may share it: so must their replay check
        from connector.participant_auth import StoreReplayCache

        if DSP_STATE in app:
            app[DSP_STATE].replay_cache = StoreReplayCache(store)
    try:
        yield
    finally:
        await store.close()


async def verifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """The node's status lists and its verifier, which resolves the node's own DID from
    memory and others' over ``http`` and checks every credential's status."""
    from connector.status_lists import STATUS_LISTS, NodeStatusLists, status_fetcher

    config = app[CONFIG]
    lists = NodeStatusLists(app[STORE], app[IDENTITY].signing_key, config.public_base_url)
    app[STATUS_LISTS] = lists
    verifier = node_verifier(
        app[IDENTITY], app[HTTP_CLIENT], allow_http_loopback=config.is_local,
        status_fetcher=status_fetcher(lists, app[HTTP_CLIENT],
                                      allow_http_loopback=config.is_local),
        status_max_age_s=config.status_max_age_s, status_unavailable=config.status_unavailable,
    )
    checker = verifier.status_checker
    if isinstance(checker, StatusChecker):  # our own changes are seen at once, not after max age
        lists.on_change = checker.forget
    from connector.ops.metrics import METRICS
    from connector.ops.verifier_metrics import CountingVerifier

    # Every verification the node makes passes here: counted once, for /metrics.
    app[VERIFIER] = CountingVerifier(verifier, app[METRICS].verifications)
    yield


# --- small routes -----------------------------------------------------------------------------


async def did_document(request: web.Request) -> web.Response:
    """The node's DID document, where did:web resolution looks for it."""
    return web.json_response(
        request.config_dict[IDENTITY].did_document(),
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=300"},
    )
