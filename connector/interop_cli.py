"""``bpc interop``: run the conformance and interoperability suite (``connector.interop``).

Exit status: 0 when no check failed (skips allowed), 1 when any failed, 2 for bad usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connector.interop import report
from connector.interop.context import Target
from connector.interop.kit import (
    KEY_CONNECTOR_URL,
    KEY_NEGOTIATION_TRIGGER,
    KEY_TRANSFER_TRIGGER,
    KitConfig,
)
from connector.interop.matrix import MatrixError, load_nodes, matrix_table, run_matrix
from connector.interop.registry import all_checks, select
from connector.interop.session import Options, run_suite

PANEL = "Interoperability"


def _key(env_name: str | None, role: str) -> str | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise typer.BadParameter(f"environment variable {env_name} (the {role}'s operator key) "
                                 "is not set", param_hint=f"--{role}-key-env")
    return value


def _target(name: str, url: str, management: str | None, key_env: str | None,
            did: str | None, triggers: bool, negotiation_trigger: str | None = None,
            transfer_trigger: str | None = None) -> Target:
    key = _key(key_env, name)
    base = url.rstrip("/")
    return Target(name, url, management or (url if key else None), key, did,
                  negotiation_trigger or (f"{base}/tck/negotiations/requests" if triggers
                                          else None),
                  transfer_trigger or (f"{base}/tck/transfers/requests" if triggers else None))


def interop(
    provider: Annotated[str | None, typer.Option(
        help="The provider under test: its DSP base URL.")] = None,
    consumer: Annotated[str | None, typer.Option(
        help="The consumer under test: its DSP base URL.")] = None,
    provider_key_env: Annotated[str | None, typer.Option(
        help="Env variable with the provider's operator key (ours: set-up through its "
             "management API).")] = None,
    consumer_key_env: Annotated[str | None, typer.Option(
        help="Env variable with the consumer's operator key (ours: driven through its "
             "management API).")] = None,
    provider_management: Annotated[str | None, typer.Option(
        help="Provider management URL [default: the provider URL].")] = None,
    consumer_management: Annotated[str | None, typer.Option(
        help="Consumer management URL [default: the consumer URL].")] = None,
    provider_did: Annotated[str | None, typer.Option(
        help="Provider DID [default: from its DID document].")] = None,
    consumer_did: Annotated[str | None, typer.Option(
        help="Consumer DID [default: from its DID document].")] = None,
    consumer_triggers: Annotated[bool, typer.Option(
        help="The consumer serves the kit's trigger endpoints (/tck/…; our node with "
             "tck_triggers).")] = False,
    provider_triggers: Annotated[bool, typer.Option(
        help="The provider serves them too (its CN_C/TP_C scenarios run when it is also "
             "the consumer).")] = False,
    only: Annotated[list[str] | None, typer.Option(
        help="Run only these check ids or globs (repeatable): CN:*, TP_C:03-*, IOP:*.")] = None,
    skip: Annotated[list[str] | None, typer.Option(
        help="Skip these check ids or globs (repeatable).")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here.")] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the results as JSON instead of the table.")] = False,
    matrix: Annotated[Path | None, typer.Option(
        help="Run every pair of the nodes listed in this TOML file.")] = None,
    tck_properties: Annotated[Path | None, typer.Option(
        help="The DSP compatibility kit's properties file (its keys and seed ids).")] = None,
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for a message the target must send.")] = 10.0,
    timeout: Annotated[float, typer.Option(help="Seconds one check may take.")] = 60.0,
    callback_port: Annotated[int, typer.Option(
        help="Loopback port of the harness's own DSP endpoint (0: any free one).")] = 0,
    harness_seed: Annotated[str | None, typer.Option(
        help="Hex seed (32 bytes) of the harness's did:key [default: the fixed test seed].")
    ] = None,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit.")
                           ] = False,
) -> None:
    """Conformance and interoperability checks (DSP 2025-1) between a provider and a
    consumer, including every scenario of the Eclipse DSP compatibility kit."""
    out = Console(emoji=False, highlight=False, soft_wrap=not sys.stdout.isatty())
    if list_checks:
        for check in all_checks():
            marks = ",".join(sorted(check.roles)) + (" negative" if check.negative else "")
            out.print(f"{check.id:<14} {marks:<26} {check.title}", markup=False)
        return
    try:
        checks = select(only or (), skip or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only/--skip") from None
    kit = KitConfig.load(tck_properties) if tck_properties else KitConfig()
    options = Options(check_timeout_s=timeout, wait_s=wait, callback_port=callback_port,
                      harness_seed_hex=harness_seed, kit=kit)
    if matrix is not None:
        raise typer.Exit(_matrix(out, matrix, checks, options))
    provider = provider or kit.get(KEY_CONNECTOR_URL)
    if not provider:
        raise typer.BadParameter("give --provider (or --matrix)", param_hint="--provider")
    provider_target = _target("provider", provider, provider_management, provider_key_env,
                              provider_did, provider_triggers)
    consumer_target = None
    if consumer:
        consumer_target = _target(
            "consumer", consumer, consumer_management, consumer_key_env, consumer_did,
            consumer_triggers, kit.get(KEY_NEGOTIATION_TRIGGER), kit.get(KEY_TRANSFER_TRIGGER))
    results = asyncio.run(run_suite(provider_target, consumer_target, checks, options))
    if junit is not None:
        report.write_junit(results, str(junit))
    if json_output:
        print(report.dumps(results, provider=provider, consumer=consumer))
    else:
        out.print(report.table(results))
    raise typer.Exit(1 if report.counts(results)["failed"] else 0)


def _matrix(out: Console, path: Path, checks: list, options: Options) -> int:
    try:
        nodes = load_nodes(path)
    except MatrixError as exc:
        raise typer.BadParameter(str(exc), param_hint="--matrix") from None
    pairs = asyncio.run(run_matrix(
        nodes, checks, options,
        progress=lambda p, c: out.print(f"running {p} (provider) → {c} (consumer)…")))
    out.print(matrix_table(nodes, pairs))
    for pair in pairs:
        for result in pair.results:
            if result.status.value == "fail":
                out.print(f"[red]{pair.provider}→{pair.consumer} {result.id}[/red]: "
                          f"{result.reason}", markup=True)
    print(json.dumps({"pairs": len(pairs), "failed": sum(p.failed for p in pairs)}))
    return 1 if any(pair.failed for pair in pairs) else 0


def register(app: typer.Typer) -> None:
    app.command("interop", rich_help_panel=PANEL)(interop)
