"""``GET /metrics``: the node in the Prometheus text format, from its own registry.

Each app has its own ``CollectorRegistry`` (``NodeMetrics``), never the process-wide default:
tests and the demo run several nodes in one process, and each must report only itself.

Two kinds of numbers:

- *Counted here* (this process since it started; Prometheus' ``rate()`` and ``increase()``
  handle restarts): HTTP requests by route template, method and status, their duration, and
  credentials this node issued and verified (``verifier_metrics``).
- *Read at scrape time from the store* (exact for the whole deployment, whichever replica is
  scraped, and right after a restart): negotiations and transfers by role and state, access
  tokens issued, refreshed, revoked and live, passport credentials. Tokens are store counts
  on purpose: the rows are never deleted, so they are true counters across replicas, which
  per-process counters would not be.

Plugins add their own families through the ``bpc_collect_metrics`` hook (the hub: its source
lag and bridge counters). ``/metrics`` is open unless ``metrics_token`` is set (see
``NodeConfig.metrics_token`` for why not the operator key).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from connector import __version__
from connector.ops.api_docs import Answer, api_operation
from connector.problems import Handler, ProblemDetails, ProblemError
from connector.store.base import StateCounts

logger = logging.getLogger(__name__)

PREFIX = "bpc"
#: A store slower than this to count its rows leaves those families out of one scrape.
STORE_TIMEOUT_S = 5.0
#: Seconds; from a cached GET to a negotiation's round trip to the other node.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Method labels; anything else a client invents is ``OTHER`` (bounded label values).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of requests no route matched (404s, probes): never the raw path.
UNMATCHED = "(unmatched)"


class _ScrapeFamilies(Collector):
    """Families gathered (asynchronously) for the scrape being answered; empty otherwise."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class NodeMetrics:
    """One node's registry and the instruments its code counts with."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests answered, by route template",
            ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=DURATION_BUCKETS, registry=self.registry)
        self.credentials_issued = Counter(
            f"{PREFIX}_credentials_issued", "Credentials this node signed, by the way asked",
            ["via"], registry=self.registry)
        self.verifications = Counter(
            f"{PREFIX}_credential_verifications",
            "Credentials and presentations this node verified, by outcome",
            ["kind", "result"], registry=self.registry)
        self.scrape = _ScrapeFamilies()
        self.registry.register(self.scrape)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def issued(self, via: str) -> None:
        self.credentials_issued.labels(via).inc()


METRICS = web.AppKey("metrics", NodeMetrics)


def metrics_of(app: web.Application | Any) -> NodeMetrics | None:
    """The node's metrics (``request.config_dict`` works too); ``None`` outside a node."""
    return app.get(METRICS)  # type: ignore[no-any-return]


def count_issued(app: web.Application | Any, via: str) -> None:
    """Count one credential the node signed (a no-op in an app without metrics)."""
    metrics = metrics_of(app)
    if metrics is not None:
        metrics.issued(via)


# --- HTTP requests -----------------------------------------------------------------------------


def route_of(request: web.Request) -> str:
    """The route template (``/management/assets/{id}``), never the raw path: bounded labels."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request; outermost, so it sees the status the client gets."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (nginx's convention)
        raise
    finally:
        metrics = request.config_dict.get(METRICS)
        if metrics is not None:
            metrics.observe(request.method, route_of(request), status,
                            time.perf_counter() - started)


# --- scrape time: the store and the plugins ------------------------------------------------------


def store_families(counts: StateCounts) -> list[Metric]:
    """The store's counts as metric families (see the module docstring)."""
    negotiations = GaugeMetricFamily(
        f"{PREFIX}_negotiations", "Contract negotiations by role and state (all replicas)",
        labels=["role", "state"])
    for (role, state), rows in sorted(counts.negotiations.items()):
        negotiations.add_metric([role, state], rows)
    transfers = GaugeMetricFamily(
        f"{PREFIX}_transfers", "Transfer processes by role and state (all replicas)",
        labels=["role", "state"])
    for (role, state), rows in sorted(counts.transfers.items()):
        transfers.add_metric([role, state], rows)
    refreshed = sum(n for (_, by_refresh), n in counts.tokens.items() if by_refresh)
    first = sum(n for (_, by_refresh), n in counts.tokens.items() if not by_refresh)
    revoked = sum(n for (is_revoked, _), n in counts.tokens.items() if is_revoked)
    issued = CounterMetricFamily(
        f"{PREFIX}_access_tokens_issued", "Data-plane access tokens issued (provider side)",
        labels=["grant"])
    issued.add_metric(["transfer-start"], first)
    issued.add_metric(["refresh"], refreshed)
    ended = CounterMetricFamily(
        f"{PREFIX}_access_tokens_revoked",
        "Access tokens revoked because their agreement ended (not rotated by a refresh)")
    ended.add_metric([], max(revoked - refreshed, 0))
    live = GaugeMetricFamily(f"{PREFIX}_access_tokens_live",
                             "Access tokens neither revoked nor expired")
    live.add_metric([], counts.live_tokens)
    passport = CounterMetricFamily(
        f"{PREFIX}_passport_credentials", "Credentials in the passports this node keeps")
    passport.add_metric([], counts.passport_credentials)
    return [negotiations, transfers, issued, ended, live, passport]


async def _from_store(app: web.Application) -> list[Metric]:
    from connector.app import STORE
    from connector.dsp.negotiation_service import DSP_STATE

    up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 when the store answered this scrape")
    store = app.get(STORE)
    families: list[Metric] = []
    if store is not None:
        clock = app[DSP_STATE].settings.clock if DSP_STATE in app else None
        now = clock() if clock is not None else datetime.now(UTC)
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                async with store.read() as reader:
                    families = store_families(await reader.count_states(now))
        except Exception as exc:  # a scrape must still answer, saying the store is down
            logger.warning("metrics: the store did not answer: %s", exc)
            families = []
    up.add_metric([], 1 if families else 0)
    return [up, *families]


async def _from_plugins(app: web.Application) -> list[Metric]:
    from connector.plugins.manager import PLUGINS

    manager = app.get(PLUGINS)
    return list(await manager.collect_metrics(app)) if manager is not None else []


def _info(app: web.Application) -> Metric:
    from connector.app import IDENTITY

    info = GaugeMetricFamily(f"{PREFIX}_node_info", "The node's software version and DID",
                             labels=["version", "did"])
    identity = app.get(IDENTITY)
    info.add_metric([__version__, identity.did if identity is not None else ""], 1)
    return info


# --- the endpoint ------------------------------------------------------------------------------


def _check_token(request: web.Request) -> None:
    from connector.app import CONFIG

    token = request.config_dict[CONFIG].metrics_token
    if token is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.get_secret_value().encode()):
        raise ProblemError(ProblemDetails(
            401, "unauthorized", "Metrics token required",
            "this node's /metrics needs its metrics token: 'Authorization: Bearer <token>'"),
            headers={"WWW-Authenticate": 'Bearer realm="bpc-metrics"'})


@api_operation(summary="Prometheus metrics (text exposition format)", tag="operations",
               auth="metrics", problems=(),
               answers=(Answer(200, None, "The node's metrics",
                               media_type="text/plain"),))
async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format (OpenMetrics when the ``Accept`` header asks for it); open
    unless the node sets ``metrics_token``."""
    _check_token(request)
    app = request.app
    metrics = app[METRICS]
    families: list[Metric] = [_info(app)]
    families += await _from_store(app)
    families += await _from_plugins(app)
    # The format the scraper asks for: Prometheus text 0.0.4 by default, OpenMetrics if asked.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    metrics.scrape.families = families
    try:
        body = encode(metrics.registry)
    finally:
        metrics.scrape.families = []
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "Cache-Control": "no-store"})


def install(app: web.Application) -> NodeMetrics:
    """Give ``app`` its registry and ``GET /metrics`` (the middleware is ``create_app``'s)."""
    metrics = NodeMetrics()
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_endpoint)
    return metrics


__all__ = ["METRICS", "NodeMetrics", "count_issued", "install", "metrics_middleware",
           "metrics_of", "route_of", "store_families"]
