"""``bpc bench AREA``: performance figures next to references measured in the same run.

The machine is shared and noisy, so absolute figures mean little; every figure that matters is
a ratio against a reference measured in the same run, with the rounds of all metrics
interleaved so a burst of load hits ours and the reference alike.

- ``credentials``: our proof suites on a realistic ~30-field battery manufacturing credential,
  next to didkit (which gets the same data as VCDM 1.1, all it accepts, with our battery
  context inline: it cannot load contexts) and raw Ed25519.
- ``passport``: auditing a 50-entry passport (JCS and RDFC) next to didkit verifying 50 JWTs,
  and the mass balance of a 10,000-batch supply chain next to a JSON round trip of its data.
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

#: Ratio targets (ours / reference, at least) and metric ceilings (at most), per area.
RATIO_TARGETS = {
    "jcs_issue_vs_didkit_jwt_issue": 2.0,
    "rdfc_issue_vs_didkit_2018_issue": 1.0,
    "rdfc_verify_vs_didkit_2018_verify": 1.0,
}
METRIC_CEILINGS = {"audit_50_jcs_ms": 25.0}


class BenchmarkUnavailable(Exception):
    """A reference implementation is missing; the benchmark cannot give its ratios."""


def as_operation(fn: Callable[[], object]) -> Operation:
    async def run() -> object:
        return fn()

    return run


def _didkit() -> Any:
    try:
        import didkit
    except ImportError as exc:
        raise BenchmarkUnavailable(
            "didkit is the reference this benchmark measures against; install it with "
            "pip install 'battery-passport-connector[bench]'"
        ) from exc
    return didkit


async def _operations() -> dict[str, Operation]:
    didkit = _didkit()

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
        "rdfc_issue": as_operation(lambda: issue_credential(credential, key, suite=RDFC)),
        "rdfc_verify": lambda: verifier.verify_credential(rdfc_vc),
        "jcs_issue": as_operation(lambda: issue_credential(credential, key, suite=JCS)),
        "jcs_verify": lambda: verifier.verify_credential(jcs_vc),
        "jwt_issue": as_operation(lambda: issue_jwt_credential(credential, key)),
        "jwt_verify": lambda: verifier.verify_credential(jwt_vc),
        "didkit_2018_issue": lambda: didkit.issue_credential(legacy_json, opts_2018, jwk),
        "didkit_2018_verify": lambda: didkit.verify_credential(didkit_2018, "{}"),
        "didkit_jwt_issue": lambda: didkit.issue_credential(legacy_json, opts_jwt, jwk),
        "didkit_jwt_verify": lambda: didkit.verify_credential(didkit_jwt,
                                                              '{"proofFormat":"jwt"}'),
        "nacl_sign": as_operation(lambda: key.sign(message)),
        "nacl_verify": as_operation(lambda: public.verify(message, signature)),
    }


async def rate_of(operation: Operation, seconds: float) -> float:
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
        await rate_of(operation, min(seconds, 0.05))
    samples: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            samples[name].append(await rate_of(operation, seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def credentials_benchmark(*, seconds: float = 0.5, rounds: int = 3) -> dict[str, Any]:
    """Run the benchmark; the result follows the format in DESIGN.md (Benchmarks)."""
    rates = asyncio.run(_measure(seconds, rounds))
    return {
        "area": "credentials",
        "machine": machine_info(),
        "metrics": {name: {"value": round(rate, 1), "unit": "ops/s"}
                    for name, rate in rates.items()},
        "ratios": {name: round(rates[ours] / rates[ref], 3) for name, ours, ref in RATIOS},
    }


def machine_info() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version()}


def met_mark(ok: bool) -> str:
    return "[green]yes[/green]" if ok else "[red]no[/red]"


def render_table(report: dict[str, Any], console: Console) -> None:
    metrics = Table("metric", "value", "unit", "target", "met",
                    title=f"bpc bench {report['area']}")
    for name, metric in report["metrics"].items():
        ceiling = METRIC_CEILINGS.get(name)
        metrics.add_row(name, f"{metric['value']:,.1f}", metric["unit"],
                        "" if ceiling is None else f"< {ceiling}",
                        "" if ceiling is None else met_mark(metric["value"] < ceiling))
    console.print(metrics)
    ratios = Table("ratio (bigger is better)", "value", "target", "met")
    for name, value in report["ratios"].items():
        target = RATIO_TARGETS.get(name)
        ratios.add_row(name, f"{value:.2f}", "" if target is None else f">= {target}",
                       "" if target is None else met_mark(value >= target))
    console.print(ratios)
    machine = report["machine"]
    console.print(f"{machine['cpus']} CPUs, Python {machine['python']}")


# --- passport -------------------------------------------------------------------------------

PASSPORT_LENGTH = 50
MASS_BALANCE_BATCHES = 10_000


def _passport_entries(suite: str) -> list[Any]:
    """A realistic 50-entry passport: manufacturing, custody to an OEM, then yearly and
    service state-of-health entries by the OEM, each linked to the one before."""
    from connector import samples
    from credentials.passport.chain import Passport

    rng = random.Random(50)
    cell_maker = key_from_seed(bytes([31] * 32))
    oem = key_from_seed(bytes([32] * 32))
    battery = key_from_seed(bytes([33] * 32)).controller
    passport = Passport(battery)
    made = samples.manufacturing_credential(battery, cell_maker.controller, rng=rng)
    passport.append(issue_credential(made, cell_maker, suite=suite))
    transfer = samples.custody_transfer(battery, cell_maker.controller, oem.controller, rng=rng,
                                        previous=passport.link_for_next())
    passport.append(issue_credential(transfer, cell_maker, suite=suite))
    while len(passport.entries) < PASSPORT_LENGTH:
        health = samples.state_of_health(battery, oem.controller, rng=rng,
                                         previous=passport.link_for_next())
        passport.append(issue_credential(health, oem, suite=suite))
    return list(passport.entries)


def _median_ms(samples_ms: list[float]) -> float:
    return round(statistics.median(samples_ms), 3)


async def _measure_passport(rounds: int) -> dict[str, float]:
    from credentials.passport.audit import audit
    from credentials.passport.mass_balance import MaterialGraph, check
    from credentials.passport.recycled_content import recycled_content
    from credentials.passport.synthetic import synthetic_batch_graph

    didkit = _didkit()
    passports = {suite: _passport_entries(suite) for suite in (JCS, RDFC)}
    verifier = Verifier()
    key = key_from_seed(bytes([31] * 32))
    jwk = json.dumps(key.jwk())
    vm = await didkit.key_to_verification_method("key", jwk)
    opts = json.dumps({"proofFormat": "jwt", "proofPurpose": "assertionMethod",
                       "verificationMethod": vm})
    legacy = {"@context": [CREDENTIALS_V1], "type": ["VerifiableCredential"],
              "issuer": key.controller, "issuanceDate": "2026-01-05T00:00:00Z",
              "credentialSubject": {"id": key.controller}}
    didkit_jwts = [await didkit.issue_credential(json.dumps(legacy), opts, jwk)
                   for _ in range(PASSPORT_LENGTH)]
    batch_credentials = synthetic_batch_graph(MASS_BALANCE_BATCHES, random.Random(2031))

    async def audit_ms(suite: str) -> float:
        began = time.perf_counter()
        report = await audit(passports[suite], verifier=verifier)
        elapsed = (time.perf_counter() - began) * 1000
        if not report.ok:
            raise RuntimeError(f"benchmark passport does not audit: {report.to_json()}")
        return elapsed

    async def didkit_ms() -> float:
        began = time.perf_counter()
        for token in didkit_jwts:
            await didkit.verify_credential(token, '{"proofFormat":"jwt"}')
        return (time.perf_counter() - began) * 1000

    def mass_balance_ms() -> float:
        began = time.perf_counter()
        graph = MaterialGraph.from_credentials(batch_credentials)
        findings = check(graph)
        for battery in graph.batteries:
            recycled_content(graph, battery)
        elapsed = (time.perf_counter() - began) * 1000
        if findings:
            raise RuntimeError(f"synthetic batch graph has findings: {findings[:3]}")
        return elapsed

    def json_roundtrip_ms() -> float:
        began = time.perf_counter()
        json.loads(json.dumps(batch_credentials))
        return (time.perf_counter() - began) * 1000

    samples_ms: dict[str, list[float]] = {
        "audit_50_jcs_ms": [], "audit_50_rdfc_ms": [], "didkit_jwt_verify_50_ms": [],
        "mass_balance_10k_ms": [], "json_roundtrip_10k_ms": [],
    }
    await audit_ms(JCS), await audit_ms(RDFC), await didkit_ms()  # warm caches
    for _ in range(rounds):
        for _ in range(5):  # audits are short: several per round
            samples_ms["audit_50_jcs_ms"].append(await audit_ms(JCS))
            samples_ms["audit_50_rdfc_ms"].append(await audit_ms(RDFC))
            samples_ms["didkit_jwt_verify_50_ms"].append(await didkit_ms())
        samples_ms["mass_balance_10k_ms"].append(mass_balance_ms())
        samples_ms["json_roundtrip_10k_ms"].append(json_roundtrip_ms())
    return {name: _median_ms(values) for name, values in samples_ms.items()}


#: Latency ratios: reference / ours, so bigger is better.
PASSPORT_RATIOS = (
    ("audit_50_jcs_vs_didkit_jwt_verify_50", "didkit_jwt_verify_50_ms", "audit_50_jcs_ms"),
    ("audit_50_rdfc_vs_didkit_jwt_verify_50", "didkit_jwt_verify_50_ms", "audit_50_rdfc_ms"),
    ("mass_balance_10k_vs_json_roundtrip_10k", "json_roundtrip_10k_ms", "mass_balance_10k_ms"),
)


def passport_benchmark(*, rounds: int = 3) -> dict[str, Any]:
    """Audit of a 50-entry passport (JCS, RDFC) and mass balance over 10,000 batches."""
    figures = asyncio.run(_measure_passport(rounds))
    return {
        "area": "passport",
        "machine": machine_info(),
        "metrics": {name: {"value": value, "unit": "ms"} for name, value in figures.items()},
        "ratios": {name: round(figures[ref] / figures[ours], 3)
                   for name, ref, ours in PASSPORT_RATIOS},
    }
