"""``bpc bench dsp``: the Dataspace Protocol between two real nodes on loopback.

What is measured, per store backend (SQLite, then PostgreSQL):

- ``e2e_p50_ms_*`` / ``e2e_p99_ms_*``: one consumer asking for data it has no contract for yet,
  from the catalog request to the first data byte — catalog request, contract negotiation to
  FINALIZED, transfer process to STARTED, then the data-plane pull — over ``runs`` sequential
  runs. The ``phase_*_p50_ms_*`` metrics split the p50 into those four steps, so a regression
  names its step.
- ``negotiations_per_s_*``: ``negotiations`` contract negotiations driven to FINALIZED by
  ``concurrency`` concurrent consumer tasks, counted per wall second (after a warm-up round).
- ``http_rtt_p50_ms_*``: the reference, a signed but trivial round trip between the same two
  nodes (``GET /.well-known/dspace-version`` with a participant token), measured interleaved
  with the end-to-end runs so both see the same load on this shared, noisy machine. The ratio
  ``http_rtt_p50_vs_e2e_p50_*`` is reference / ours (bigger is better, DESIGN.md): how many
  plain round trips one whole catalog-to-data exchange costs, inverted.

How the nodes run (``connector.bench_nodes``): the provider is its own OS process started as
``python -m connector serve`` (so both cores are used, as by two participants), the consumer
runs in this process and is driven through the Python API. Both are did:web nodes on
``http://127.0.0.1:<port>`` with default settings; each backend gets fresh stores (a temp
directory for SQLite, one new schema per node in PostgreSQL, dropped afterwards). When
PostgreSQL is not reachable its metrics are listed under ``unavailable`` with the reason and
the SQLite ones still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from connector.app import HTTP_CLIENT, IDENTITY
from connector.bench import machine_info, met_mark
from connector.bench_nodes import (
    PASSPHRASE_ENV,
    ConsumerNode,
    ProcessFailed,
    ProviderNode,
    SeededAsset,
    consumer_node,
    fresh_schemas,
    log_tail,
    postgres_unreachable,
    provider_process,
    seed_provider,
)
from connector.dsp.client import DspClient
from connector.dsp.messages import CatalogRequestMessage, MessageOffer
from connector.dsp.negotiation_service import dsp_state, start_negotiation
from connector.dsp.routes_version import VERSION_PATH
from connector.dsp.transfer_service import start_transfer
from connector.participant_auth import RequestSigner

AREA = "dsp"
BACKENDS = ("sqlite", "postgres")
DEFAULT_RUNS = 200
DEFAULT_CONCURRENCY = 50
DEFAULT_NEGOTIATIONS = 500
POSTGRES_URL_ENV = "BPC_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://127.0.0.1:5432/test"
#: One negotiation or transfer step that takes longer than this is a failure, not a sample.
STEP_TIMEOUT_S = 60.0
WARMUP_RUNS = 5
PHASES = ("catalog", "negotiation", "transfer", "fetch")

#: Targets on this 2-core machine (DESIGN.md / the issue): at most / at least.
METRIC_CEILINGS = {"e2e_p50_ms_sqlite": 30.0}
METRIC_FLOORS = {"negotiations_per_s_sqlite": 100.0}


def metric_names(backend: str) -> list[str]:
    """Every metric one backend reports, in table order (names are stable across commits)."""
    return [f"e2e_p50_ms_{backend}", f"e2e_p99_ms_{backend}", f"negotiations_per_s_{backend}",
            f"http_rtt_p50_ms_{backend}",
            *(f"phase_{phase}_p50_ms_{backend}" for phase in PHASES)]


def _unit(name: str) -> str:
    return "negotiations/s" if name.startswith("negotiations_per_s") else "ms"


# --- fetching the data --------------------------------------------------------------------------


Fetch = Callable[[ConsumerNode, str], Awaitable[bytes]]


def _fetcher() -> Fetch:
    """The consumer node's own data-plane pull, imported only when the bench runs."""
    from connector.dataplane.pull import fetch_transfer_data

    async def pull(consumer: ConsumerNode, transfer_id: str) -> bytes:
        return await fetch_transfer_data(consumer.app, transfer_id)

    return pull


# --- one pair of nodes --------------------------------------------------------------------------


@dataclass(slots=True)
class Pair:
    """A provider process, the in-process consumer, and what the consumer negotiates for."""

    provider: ProviderNode
    consumer: ConsumerNode
    asset: SeededAsset
    client: DspClient
    fetch: Fetch

    async def catalog_offer(self) -> MessageOffer:
        """Ask the provider's catalog (signed as the consumer) for the seeded offer."""
        answer = await self.client.post(f"{self.provider.url}/catalog/request",
                                        CatalogRequestMessage().to_json(),
                                        audience=self.provider.did)
        if not answer.ok:
            raise RuntimeError(f"catalog request: HTTP {answer.status} {answer.error}")
        for dataset in answer.body.get("dataset", []):
            if dataset.get("@id") != self.asset.asset_id:
                continue
            for offer in dataset.get("hasPolicy", []):
                if offer.get("@id") == self.asset.offer_id:
                    return MessageOffer.model_validate({**offer, "target": dataset["@id"]})
        raise RuntimeError(f"the catalog does not offer {self.asset.asset_id} to the consumer")

    async def negotiate(self, offer: MessageOffer) -> str:
        """Negotiate ``offer`` to FINALIZED; the agreement id."""
        pid = await start_negotiation(self.consumer.app, self.provider.url, offer)
        record = await self.consumer.watch.negotiation(pid, "FINALIZED", STEP_TIMEOUT_S)
        assert record.agreement_id is not None
        return str(record.agreement_id)

    async def transfer(self, agreement_id: str) -> Any:
        """Start a transfer under ``agreement_id``; the consumer's record once STARTED."""
        pid = await start_transfer(self.consumer.app, self.provider.url, agreement_id)
        return await self.consumer.watch.transfer(pid, "STARTED", STEP_TIMEOUT_S)

    async def end_to_end(self) -> dict[str, float]:
        """One catalog-to-first-byte run; milliseconds per phase."""
        began = time.perf_counter()
        offer = await self.catalog_offer()
        catalog = time.perf_counter()
        agreement_id = await self.negotiate(offer)
        negotiated = time.perf_counter()
        record = await self.transfer(agreement_id)
        started = time.perf_counter()
        data = await self.fetch(self.consumer, record.id)
        fetched = time.perf_counter()
        if not data:
            raise RuntimeError(f"the data plane answered transfer {record.id} with no data")
        return {"catalog": (catalog - began) * 1000, "negotiation": (negotiated - catalog) * 1000,
                "transfer": (started - negotiated) * 1000, "fetch": (fetched - started) * 1000,
                "e2e": (fetched - began) * 1000}

    async def http_rtt(self) -> float:
        """One signed, trivial round trip to the provider (the reference), in ms."""
        began = time.perf_counter()
        answer = await self.client.get(f"{self.provider.url}{VERSION_PATH}",
                                       audience=self.provider.did)
        elapsed = (time.perf_counter() - began) * 1000
        if not answer.ok:
            raise RuntimeError(f"{VERSION_PATH}: HTTP {answer.status} {answer.error}")
        return elapsed


@contextlib.asynccontextmanager
async def node_pair(workdir: Path, *, provider_store: str, consumer_store: str,
                    passphrase: str, fetch: Fetch) -> AsyncIterator[Pair]:
    """Consumer first (the provider's policy names its DID), then the provider process."""
    async with (
        aiohttp.ClientSession() as session,
        consumer_node(workdir / "consumer", store=consumer_store) as consumer,
        provider_process(workdir / "provider", store=provider_store, passphrase=passphrase,
                         session=session) as provider,
    ):
        consumer_did = consumer.app[IDENTITY].did
        asset = await seed_provider(session, provider, consumer_did)
        signer = RequestSigner(consumer.app[IDENTITY].signing_key,
                               dsp_state(consumer.app).settings.clock)  # as its outbox signs
        client = DspClient(consumer.app[HTTP_CLIENT], signer)
        try:
            yield Pair(provider, consumer, asset, client, fetch)
        except ProcessFailed as exc:  # the provider's side of the story is in its log
            raise ProcessFailed(f"{exc}\nprovider log ({provider.log_path.name}):\n"
                                f"{log_tail(provider.log_path)}") from exc


# --- measurements -------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolated between the nearest ranks."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[min(max(round(q) - 1, 0), 98)]


async def _latency(pair: Pair, runs: int) -> dict[str, float]:
    """End-to-end runs interleaved with reference round trips (two per run)."""
    for _ in range(WARMUP_RUNS):  # connections, DID documents, code paths
        await pair.end_to_end()
        await pair.http_rtt()
    runs_ms: dict[str, list[float]] = {name: [] for name in (*PHASES, "e2e")}
    rtt_ms: list[float] = []
    for _ in range(runs):
        rtt_ms.append(await pair.http_rtt())
        for name, value in (await pair.end_to_end()).items():
            runs_ms[name].append(value)
        rtt_ms.append(await pair.http_rtt())
    figures = {
        "e2e_p50": statistics.median(runs_ms["e2e"]),
        "e2e_p99": percentile(runs_ms["e2e"], 99),
        "http_rtt_p50": statistics.median(rtt_ms),
    }
    for phase in PHASES:
        figures[f"phase_{phase}_p50"] = statistics.median(runs_ms[phase])
    return figures


async def _throughput(pair: Pair, total: int, concurrency: int) -> float:
    """Negotiations to FINALIZED per wall second with ``concurrency`` concurrent consumers."""
    offer = await pair.catalog_offer()

    async def drive(count: int) -> float:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await pair.negotiate(offer)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
        return count / (time.perf_counter() - began)

    await drive(min(concurrency, total))  # warm-up: one full round of concurrent negotiations
    return await drive(total)


async def _measure_backend(
    workdir: Path, *, provider_store: str, consumer_store: str, passphrase: str, fetch: Fetch,
    runs: int, concurrency: int, negotiations: int,
) -> dict[str, float]:
    async with node_pair(workdir, provider_store=provider_store, consumer_store=consumer_store,
                         passphrase=passphrase, fetch=fetch) as pair:
        await _check_data(pair)
        figures = await _latency(pair, runs)
        figures["negotiations_per_s"] = await _throughput(pair, negotiations, concurrency)
    return figures


async def _check_data(pair: Pair) -> None:
    """Once, before timing: the bytes fetched are the asset's data, so the runs measure a
    real pull and not an error page."""
    record = await pair.transfer(await pair.negotiate(await pair.catalog_offer()))
    document = json.loads(await pair.fetch(pair.consumer, record.id))
    if document.get("data") != pair.asset.data:
        raise RuntimeError(f"the data plane served {document!r:.300}, not the seeded data")


def _postgres_problem(url: str) -> str | None:
    """Why the PostgreSQL figures cannot be measured (``None``: they can)."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return ("asyncpg is not installed: pip install "
                "'battery-passport-connector[postgres]'")
    return postgres_unreachable(url)


async def _measure(backends: Iterable[str], *, runs: int, concurrency: int, negotiations: int,
                   postgres_url: str) -> tuple[dict[str, float], dict[str, str]]:
    """(figures by metric name, unavailable metric → reason)."""
    fetch = _fetcher()
    figures: dict[str, float] = {}
    unavailable: dict[str, str] = {}
    chosen = set(backends)
    passphrase = secrets.token_urlsafe(24)
    previous = os.environ.get(PASSPHRASE_ENV)
    os.environ[PASSPHRASE_ENV] = passphrase  # the in-process consumer reads it from here
    try:
        with tempfile.TemporaryDirectory(prefix="bpc-bench-dsp-") as tmp:
            for backend in BACKENDS:
                if backend not in chosen:
                    for name in metric_names(backend):
                        unavailable[name] = "not measured: not selected with --backend"
                    continue
                workdir = Path(tmp) / backend
                options: dict[str, Any] = {"passphrase": passphrase, "fetch": fetch,
                                           "runs": runs, "concurrency": concurrency,
                                           "negotiations": negotiations}
                if backend == "sqlite":
                    measured = await _measure_backend(
                        workdir, provider_store=f"sqlite:///{workdir / 'provider.db'}",
                        consumer_store=f"sqlite:///{workdir / 'consumer.db'}", **options)
                else:
                    problem = _postgres_problem(postgres_url)
                    if problem is not None:
                        for name in metric_names(backend):
                            unavailable[name] = problem
                        continue
                    async with fresh_schemas(postgres_url, "provider", "consumer") as urls:
                        measured = await _measure_backend(
                            workdir, provider_store=urls[0], consumer_store=urls[1], **options)
                for key, value in measured.items():
                    unit = "" if key == "negotiations_per_s" else "_ms"
                    figures[f"{key}{unit}_{backend}"] = value
    finally:
        if previous is None:
            os.environ.pop(PASSPHRASE_ENV, None)
        else:
            os.environ[PASSPHRASE_ENV] = previous
    return figures, unavailable


def dsp_benchmark(
    *, runs: int = DEFAULT_RUNS, concurrency: int = DEFAULT_CONCURRENCY,
    negotiations: int = DEFAULT_NEGOTIATIONS, backends: Iterable[str] = BACKENDS,
    postgres_url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; the result follows DESIGN.md (Benchmarks), plus ``unavailable``:
    metric → why it was not measured (its name is then absent from ``metrics``)."""
    chosen = tuple(backends)
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; use {', '.join(BACKENDS)}")
    url = postgres_url or os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL
    figures, unavailable = asyncio.run(_measure(
        chosen, runs=runs, concurrency=concurrency, negotiations=negotiations,
        postgres_url=url))
    metrics = {name: {"value": round(figures[name], 3 if _unit(name) == "ms" else 1),
                      "unit": _unit(name)}
               for backend in BACKENDS for name in metric_names(backend) if name in figures}
    ratios = {f"http_rtt_p50_vs_e2e_p50_{backend}":
              round(figures[f"http_rtt_p50_ms_{backend}"] / figures[f"e2e_p50_ms_{backend}"], 4)
              for backend in BACKENDS if f"e2e_p50_ms_{backend}" in figures}
    return {"area": AREA, "machine": machine_info(), "metrics": metrics, "ratios": ratios,
            "unavailable": unavailable}


# --- the table ----------------------------------------------------------------------------------


def _target(name: str, value: float | None) -> tuple[str, str]:
    if name in METRIC_CEILINGS:
        ceiling = METRIC_CEILINGS[name]
        return f"< {ceiling}", "" if value is None else met_mark(value < ceiling)
    if name in METRIC_FLOORS:
        floor = METRIC_FLOORS[name]
        return f">= {floor}", "" if value is None else met_mark(value >= floor)
    return "", ""


def render_dsp_table(report: dict[str, Any], console: Console) -> None:
    """The report as ``bench.render_table`` prints its areas, plus targets that are floors
    (negotiations/s) and the metrics that could not be measured, with why."""
    metrics = Table("metric", "value", "unit", "target", "met",
                    title=f"bpc bench {report['area']}")
    unavailable: dict[str, str] = report.get("unavailable", {})
    for backend in BACKENDS:
        names = metric_names(backend)
        if all(name in unavailable for name in names):  # one row, the reason is below
            metrics.add_row(f"*_{backend}", "[dim]n/a[/dim]", "", "", "[dim]n/a[/dim]")
            continue
        for name in names:
            metric = report["metrics"].get(name)
            if metric is not None:
                target, met = _target(name, metric["value"])
                metrics.add_row(name, f"{metric['value']:,.1f}", metric["unit"], target, met)
            elif name in unavailable:
                target, _ = _target(name, None)
                metrics.add_row(name, "[dim]n/a[/dim]", _unit(name), target, "[dim]n/a[/dim]")
    console.print(metrics)
    ratios = Table("ratio (bigger is better)", "value", "target", "met")
    for name, value in report["ratios"].items():
        ratios.add_row(name, f"{value:.3f}", "", "")
    console.print(ratios)
    for reason in dict.fromkeys(unavailable.values()):
        names = [name for name, why in unavailable.items() if why == reason]
        console.print(f"[yellow]unavailable[/yellow] {_span(names)}: {reason}", soft_wrap=True)
    machine = report["machine"]
    console.print(f"{machine['cpus']} CPUs, Python {machine['python']}")


def _span(names: list[str]) -> str:
    """``*_postgres`` for all of one backend's metrics, else the names."""
    for backend in BACKENDS:
        if names == metric_names(backend):
            return f"*_{backend}"
    return ", ".join(names)


__all__ = [
    "BACKENDS",
    "METRIC_CEILINGS",
    "METRIC_FLOORS",
    "dsp_benchmark",
    "metric_names",
    "percentile",
    "render_dsp_table",
]
