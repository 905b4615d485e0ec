"""``bpc bench dsp``, small: the report's shape, positive figures, and what happens without
PostgreSQL. Real nodes (a provider process and an in-process consumer), just few runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from rich.console import Console

from connector.bench_dsp import BACKENDS, dsp_benchmark, metric_names, percentile, render_dsp_table

QUICK = ("--runs", "5", "--concurrency", "5", "--negotiations", "10")
POSTGRES_URL = os.environ.get("BPC_TEST_POSTGRES_URL") or "postgresql://127.0.0.1:5432/test"


def bpc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=300)


def check_backend(report: dict[str, Any], backend: str) -> None:
    """Every metric of ``backend`` is there, a positive number in its unit, and its ratio too."""
    for name in metric_names(backend):
        metric = report["metrics"][name]
        assert isinstance(metric["value"], int | float) and metric["value"] > 0, (name, metric)
        assert metric["unit"] == ("negotiations/s" if "per_s" in name else "ms")
    metrics = {name: report["metrics"][name]["value"] for name in metric_names(backend)}
    assert metrics[f"e2e_p50_ms_{backend}"] <= metrics[f"e2e_p99_ms_{backend}"]
    phases = sum(metrics[f"phase_{phase}_p50_ms_{backend}"]
                 for phase in ("catalog", "negotiation", "transfer", "fetch"))
    assert phases == pytest.approx(metrics[f"e2e_p50_ms_{backend}"], rel=0.5)
    ratio = report["ratios"][f"http_rtt_p50_vs_e2e_p50_{backend}"]
    assert 0 < ratio < 1  # one plain round trip is cheaper than the whole exchange


@pytest.mark.slow
def test_bench_dsp_sqlite_json_has_the_named_metrics() -> None:
    bench = bpc("bench", "dsp", "--json", *QUICK, "--backend", "sqlite")
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert report["area"] == "dsp"
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"]
    check_backend(report, "sqlite")
    assert set(report["metrics"]) == set(metric_names("sqlite"))
    assert set(report["ratios"]) == {"http_rtt_p50_vs_e2e_p50_sqlite"}
    assert set(report["unavailable"]) == set(metric_names("postgres"))


@pytest.mark.slow
def test_bench_dsp_postgres(require_service: Callable[..., None]) -> None:
    parts = urlsplit(POSTGRES_URL)
    require_service("PostgreSQL", parts.hostname or "127.0.0.1", parts.port or 5432)
    report = dsp_benchmark(runs=5, concurrency=5, negotiations=10, backends=["postgres"],
                           postgres_url=POSTGRES_URL)
    check_backend(report, "postgres")
    assert report["unavailable"] == {name: "not measured: not selected with --backend"
                                     for name in metric_names("sqlite")}


def test_unreachable_postgres_is_reported_not_raised() -> None:
    report = dsp_benchmark(runs=1, concurrency=1, negotiations=1, backends=["postgres"],
                           postgres_url="postgresql://127.0.0.1:1/test")
    assert report["metrics"] == {} and report["ratios"] == {}
    reasons = {report["unavailable"][name] for name in metric_names("postgres")}
    assert len(reasons) == 1 and "not reachable at 127.0.0.1:1" in reasons.pop()


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        dsp_benchmark(backends=["oracle"])
    refused = bpc("bench", "dsp", "--backend", "oracle")
    assert refused.returncode == 2 and "unknown backend oracle" in refused.stderr


def test_table_shows_targets_and_unavailable_metrics() -> None:
    values = {"e2e_p50_ms_sqlite": 25.0, "e2e_p99_ms_sqlite": 40.0,
              "negotiations_per_s_sqlite": 80.0}
    report = {
        "area": "dsp", "machine": {"cpus": 2, "python": "3.11.7"},
        "metrics": {name: {"value": values.get(name, 1.0),
                           "unit": "negotiations/s" if "per_s" in name else "ms"}
                    for name in metric_names("sqlite")},
        "ratios": {"http_rtt_p50_vs_e2e_p50_sqlite": 0.04},
        "unavailable": dict.fromkeys(metric_names("postgres"), "PostgreSQL is not reachable"),
    }
    console = Console(record=True, width=200)
    render_dsp_table(report, console)
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "< 30.0" in rows["e2e_p50_ms_sqlite"] and "yes" in rows["e2e_p50_ms_sqlite"]
    assert ">= 100.0" in rows["negotiations_per_s_sqlite"]
    assert "no" in rows["negotiations_per_s_sqlite"].split("│")[5]
    assert "n/a" in rows["*_postgres"]
    assert "unavailable *_postgres: PostgreSQL is not reachable" in text
    assert set(BACKENDS) == {"sqlite", "postgres"}


def test_percentile() -> None:
    samples = [float(n) for n in range(1, 201)]
    assert percentile(samples, 50) == pytest.approx(100.5)
    assert 197 < percentile(samples, 99) <= 200
    assert percentile([3.0], 99) == 3.0
