"""The hub bridge's metrics for the node's ``GET /metrics`` (hook ``bpc_collect_metrics``).

Read at scrape time from what the bridge and its source already keep in memory: the source's
lag (``LagSnapshot``: messages received but not yet acknowledged, the age of the oldest, and
the received / acknowledged totals) and the bridge's ``BridgeStats``. Lag is the number an
operator alerts on: a growing ``bpc_hub_source_oldest_unacked_age_seconds`` means the node
falls behind its hub. Nothing here touches the store or the broker.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from connector.plugins.hub.sources.base import LagSnapshot

PREFIX = "bpc_hub"


def lag_families(lag: LagSnapshot, source: str) -> list[Metric]:
    """A source's lag as two gauges and two counters, labelled by the source's kind."""
    unacked = GaugeMetricFamily(f"{PREFIX}_source_unacked",
                                "Hub messages received but not yet acknowledged",
                                labels=["source"])
    unacked.add_metric([source], lag.unacked)
    oldest = GaugeMetricFamily(f"{PREFIX}_source_oldest_unacked_age_seconds",
                               "Age of the oldest unacknowledged hub message (0: none)",
                               labels=["source"])
    oldest.add_metric([source], lag.oldest_unacked_age_s)
    received = CounterMetricFamily(f"{PREFIX}_source_received",
                                   "Hub messages the source received", labels=["source"])
    received.add_metric([source], lag.received_total)
    acked = CounterMetricFamily(f"{PREFIX}_source_acked",
                                "Hub messages the source acknowledged", labels=["source"])
    acked.add_metric([source], lag.acked_total)
    return [unacked, oldest, received, acked]


def stats_families(stats: Any) -> list[Metric]:
    """``BridgeStats`` as counters (since the bridge started)."""
    families: list[Metric] = []
    for name, help_text, value in (
        ("messages", "Hub messages the bridge handled", stats.messages),
        ("events_stored", "Hub events stored", stats.events_stored),
        ("duplicates", "Hub events dropped as already stored", stats.duplicates),
        ("batches", "Event batches sealed", stats.batches),
        ("credentials", "Passport credentials the bridge issued", stats.credentials),
        ("credential_failures", "Passport credentials the bridge failed to issue",
         stats.credential_failures),
    ):
        family = CounterMetricFamily(f"{PREFIX}_{name}", help_text)
        family.add_metric([], value)
        families.append(family)
    rejected = CounterMetricFamily(f"{PREFIX}_rejected", "Hub messages rejected, by reason",
                                   labels=["reason"])
    for reason, count in sorted(stats.rejected.items()):
        rejected.add_metric([str(reason)], count)
    families.append(rejected)
    return families


def collect_metrics(app: web.Application) -> list[Metric]:
    """The hub's families, or none while the plugin is not running (not started, stopped)."""
    from connector.plugins.hub.plugin import RUNNING

    running = app.get(RUNNING)
    if running is None:
        return []
    families = stats_families(running.bridge.stats)
    lag = getattr(running.source, "lag", None)  # the simulated source keeps no lag
    if isinstance(lag, LagSnapshot):
        kind = type(running.source).__name__.removesuffix("Source").lower() or "source"
        families += lag_families(lag, kind)
    return families


__all__ = ["collect_metrics", "lag_families", "stats_families"]
