"""``bpc bench policy``, small: the report's shape, positive figures, and that what is timed is
the allowed path (a denial would stop at the first unmet constraint and flatter the figure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from rich.console import Console

from connector.bench import render_table
from connector.bench_policy import (
    AGREED,
    METRICS,
    POLICY_RATIOS,
    build_scenario,
    policy_benchmark,
    require_allowed,
)
from credentials import Verifier
from policies import TrustList, evaluate


def check_report(report: dict) -> None:
    assert report["area"] == "policy"
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"]
    assert set(report["metrics"]) == set(METRICS)
    for name, metric in report["metrics"].items():
        assert isinstance(metric["value"], int | float) and metric["value"] > 0, (name, metric)
        assert metric["unit"] == METRICS[name][0] and metric["unit"].endswith("/s")
        assert metric["note"]
    assert "eddsa-jcs-2022" in report["metrics"]["policy_evals_with_verify_per_s"]["note"]
    assert set(report["ratios"]) == {name for name, _, _ in POLICY_RATIOS}
    assert all(value > 0 for value in report["ratios"].values())
    # four signature checks per presentation: never above a quarter of raw Ed25519
    assert report["ratios"]["policy_evals_with_verify_vs_nacl_verify"] < 0.25
    metrics = {name: metric["value"] for name, metric in report["metrics"].items()}
    assert metrics["policy_evals_with_verify_per_s"] < metrics["policy_evals_per_s"]


def test_bench_policy_report_in_process() -> None:
    report = policy_benchmark(rounds=1, seconds=0.02)
    check_report(report)
    console = Console(record=True, width=200)
    render_table(report, console)
    text = console.export_text()
    assert "bpc bench policy" in text and "status_checks_vs_nacl_verify" in text


def test_bench_policy_cli_json() -> None:
    bench = subprocess.run([sys.executable, "-m", "connector", "bench", "policy", "--json",
                            "--rounds", "1"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert bench.returncode == 0, bench.stderr
    check_report(json.loads(bench.stdout))


async def test_the_measured_evaluations_are_allowed() -> None:
    scenario = build_scenario()
    decision = require_allowed(evaluate(scenario.policy, scenario.context()))
    assert decision.granted_by == "permission[0]"
    (delete,) = decision.duties
    assert delete.due_at == AGREED + timedelta(days=7) and delete.due_now is False
    result = await Verifier().verify_presentation(scenario.presentation,
                                                  scenario.verify_options())
    assert result.verified, result.to_json()
    assert {c.suite for c in result.credentials} == {"eddsa-jcs-2022"}
    verified = [c.document for c in result.credentials]
    assert evaluate(scenario.policy, scenario.context(verified)).allowed


def test_a_denied_scenario_is_refused_not_timed() -> None:
    scenario = build_scenario(trust=TrustList())
    decision = evaluate(scenario.policy, scenario.context())
    assert not decision.allowed
    with pytest.raises(RuntimeError, match="not an allow"):
        require_allowed(decision)
