"""``bpc bench credentials``: our proof suites next to didkit and raw Ed25519, in one run.

The machine is shared and noisy, so absolute rates mean little; every figure that matters is a
ratio against a reference measured in the same run, with the rounds of all metrics interleaved
so a burst of load hits ours and the reference alike. The credential is a realistic ~30-field
battery manufacturing credential; didkit gets the same data as VCDM 1.1 (all it accepts) with
our battery context inline (it cannot load contexts).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.samples import manufacturing_credential
from credentials import JCS, RDFC, Verifier, issue_credential, issue_jwt_credential, key_from_seed
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V1
from vocab.contexts_bundle import bundled_context

Operation = Callable[[], Awaitable[object]]

#: (metric, our figure, reference figure) — ratios are ours / reference, bigger is better.
RATIOS = (
    ("jcs_issue_vs_didkit_jwt_issue", "jcs_issue", "didkit_jwt_issue"),
    ("rdfc_issue_vs_didkit_2018_issue", "rdfc_issue", "didkit_2018_issue"),
    ("rdfc_verify_vs_didkit_2018_verify", "rdfc_verify", "didkit_2018_verify"),
    ("jcs_verify_vs_didkit_jwt_verify", "jcs_verify", "didkit_jwt_verify"),
    ("jwt_issue_vs_didkit_jwt_issue", "jwt_issue", "didkit_jwt_issue"),
    ("jwt_verify_vs_didkit_jwt_verify", "jwt_verify", "didkit_jwt_verify"),
    ("rdfc_issue_vs_nacl_sign", "rdfc_issue", "nacl_sign"),
    ("jcs_issue_vs_nacl_sign", "jcs_issue", "nacl_sign"),
)

TARGETS = {
    "jcs_issue_vs_didkit_jwt_issue": 2.0,
    "rdfc_issue_vs_didkit_2018_issue": 1.0,
    "rdfc_verify_vs_didkit_2018_verify": 1.0,
}


class BenchmarkUnavailable(Exception):
    """A reference implementation is missing; the benchmark cannot give its ratios."""


def _sync(fn: Callable[[], object]) -> Operation:
    async def run() -> object:
        return fn()

    return run


async def _operations() -> dict[str, Operation]:
    try:
        import didkit
    except ImportError as exc:
        raise BenchmarkUnavailable(
            "didkit is the reference this benchmark measures against; install it with "
            "pip install 'battery-passport-connector[bench]'"
        ) from exc

    key = key_from_seed(bytes(range(32)))
    battery = key_from_seed(bytes(range(1, 33))).controller
    credential = manufacturing_credential(battery, key.controller, rng=random.Random(42))
    verifier = Verifier()

    rdfc_vc = issue_credential(credential, key, suite=RDFC)
    jcs_vc = issue_credential(credential, key, suite=JCS)
    jwt_vc = issue_jwt_credential(credential, key)
    for secured in (rdfc_vc, jcs_vc, jwt_vc):
        result = await verifier.verify_credential(secured)
        if not result.verified:
            raise RuntimeError(f"benchmark credential does not verify: {result.to_json()}")

    legacy = {k: v for k, v in credential.items() if k != "validFrom"}
    legacy["@context"] = [CREDENTIALS_V1, bundled_context(BATTERY_CONTEXT_V1)["@context"]]
    legacy["issuanceDate"] = credential["validFrom"]
    legacy_json = json.dumps(legacy)
    jwk = json.dumps(key.jwk())
    vm = await didkit.key_to_verification_method("key", jwk)
    opts_2018 = json.dumps({"type": "Ed25519Signature2018", "proofPurpose": "assertionMethod",
                            "verificationMethod": vm})
    opts_jwt = json.dumps({"proofFormat": "jwt", "proofPurpose": "assertionMethod",
                           "verificationMethod": vm})
    didkit_2018 = await didkit.issue_credential(legacy_json, opts_2018, jwk)
    didkit_jwt = await didkit.issue_credential(legacy_json, opts_jwt, jwk)
    for secured, opts in ((didkit_2018, "{}"), (didkit_jwt, '{"proofFormat":"jwt"}')):
        errors = json.loads(await didkit.verify_credential(secured, opts))["errors"]
        if errors:
            raise RuntimeError(f"didkit reference credential does not verify: {errors}")

    message = json.dumps(credential).encode()
    signature = key.sign(message)
    public = key.public_key

    return {
        "rdfc_issue": _sync(lambda: issue_credential(credential, key, suite=RDFC)),
        "rdfc_verify": lambda: verifier.verify_credential(rdfc_vc),
        "jcs_issue": _sync(lambda: issue_credential(credential, key, suite=JCS)),
        "jcs_verify": lambda: verifier.verify_credential(jcs_vc),
        "jwt_issue": _sync(lambda: issue_jwt_credential(credential, key)),
        "jwt_verify": lambda: verifier.verify_credential(jwt_vc),
        "didkit_2018_issue": lambda: didkit.issue_credential(legacy_json, opts_2018, jwk),
        "didkit_2018_verify": lambda: didkit.verify_credential(didkit_2018, "{}"),
        "didkit_jwt_issue": lambda: didkit.issue_credential(legacy_json, opts_jwt, jwk),
        "didkit_jwt_verify": lambda: didkit.verify_credential(didkit_jwt,
                                                              '{"proofFormat":"jwt"}'),
        "nacl_sign": _sync(lambda: key.sign(message)),
        "nacl_verify": _sync(lambda: public.verify(message, signature)),
    }


async def _rate(operation: Operation, seconds: float) -> float:
    """Operations per second over a round of about ``seconds``."""
    count = 0
    batch = 1
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            await operation()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)
        batch = min(batch * 2, 256)


async def _measure(seconds: float, rounds: int) -> dict[str, float]:
    operations = await _operations()
    for operation in operations.values():  # warm caches (contexts, templates, shapes)
        await _rate(operation, min(seconds, 0.05))
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            samples[name].append(await _rate(operation, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def credentials_benchmark(*, seconds: float = 0.5, rounds: int = 3) -> dict[str, Any]:
    """Run the benchmark; the result follows the format in DESIGN.md (Benchmarks)."""
    rates = asyncio.run(_measure(seconds, rounds))
    return {
        "area": "credentials",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "metrics": {name: {"value": round(rate, 1), "unit": "ops/s"}
                    for name, rate in rates.items()},
        "ratios": {name: round(rates[ours] / rates[ref], 3) for name, ours, ref in RATIOS},
    }


def render_table(report: dict[str, Any], console: Console) -> None:
    metrics = Table("metric", "value", "unit", title="bpc bench credentials")
    for name, metric in report["metrics"].items():
        metrics.add_row(name, f"{metric['value']:,.1f}", metric["unit"])
    console.print(metrics)
    ratios = Table("ratio (ours / reference)", "value", "target", "met")
    for name, value in report["ratios"].items():
        target = TARGETS.get(name)
        met = "" if target is None else ("[green]yes[/green]" if value >= target
                                         else "[red]no[/red]")
        ratios.add_row(name, f"{value:.2f}", "" if target is None else f">= {target}", met)
    console.print(ratios)
    machine = report["machine"]
    console.print(f"{machine['cpus']} CPUs, Python {machine['python']}")
