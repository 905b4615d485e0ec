"""``bpc interop --matrix nodes.toml``: the suite for every ordered pair of N nodes.

The file lists the nodes::

    [[node]]
    name = "oem"
    dsp_url = "http://127.0.0.1:8181"
    management_url = "http://127.0.0.1:8181"   # ours: drive it through the management API
    api_key_env = "OEM_KEY"                      # the env variable holding its operator key
    did = "did:web:127.0.0.1%3A8181"             # optional (read from its DID document)
    tck_triggers = true                          # it serves the kit's /tck/... triggers

Each pair (provider, consumer) with provider ≠ consumer runs the selected checks; the matrix
shows passed/total per pair, provider rows by consumer columns.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from connector.interop.context import Target
from connector.interop.model import Check, CheckResult, Status
from connector.interop.session import Options, run_suite


class MatrixError(ValueError):
    """The nodes file cannot be used; the message says which entry and why."""


def target_of(entry: dict[str, Any], environ: dict[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    name, dsp_url = entry.get("name"), entry.get("dsp_url")
    if not isinstance(name, str) or not isinstance(dsp_url, str):
        raise MatrixError(f"every [[node]] needs name and dsp_url: {entry}")
    key = None
    if entry.get("api_key_env"):
        key = env.get(str(entry["api_key_env"]))
        if not key:
            raise MatrixError(f"node {name}: environment variable {entry['api_key_env']} "
                              "(its operator key) is not set")
    management = entry.get("management_url") or (dsp_url if key else None)
    triggers = bool(entry.get("tck_triggers"))
    base = dsp_url.rstrip("/")
    return Target(name, dsp_url, management, key, entry.get("did"),
                  entry.get("negotiation_trigger") or
                  (f"{base}/tck/negotiations/requests" if triggers else None),
                  entry.get("transfer_trigger") or
                  (f"{base}/tck/transfers/requests" if triggers else None))


def load_nodes(path: Path, environ: dict[str, str] | None = None) -> list[Target]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MatrixError(f"cannot read {path}: {exc}") from exc
    entries = document.get("node")
    if not isinstance(entries, list) or len(entries) < 2:
        raise MatrixError(f"{path} must list at least two [[node]] tables")
    nodes = [target_of(entry, environ) for entry in entries]
    names = [node.name for node in nodes]
    if len(set(names)) != len(names):
        raise MatrixError(f"node names must be unique: {names}")
    return nodes


@dataclass(frozen=True, slots=True)
class PairResult:
    provider: str
    consumer: str
    results: list[CheckResult]

    @property
    def failed(self) -> int:
        return sum(result.status is Status.FAIL for result in self.results)


async def run_matrix(nodes: Sequence[Target], checks: Sequence[Check], options: Options,
                     progress: Callable[[str, str], None] | None = None) -> list[PairResult]:
    pairs = []
    for provider in nodes:
        for consumer in nodes:
            if provider is consumer:
                continue
            if progress is not None:
                progress(provider.name, consumer.name)
            results = await run_suite(_fresh(provider), _fresh(consumer), checks, options)
            pairs.append(PairResult(provider.name, consumer.name, results))
    return pairs


def _fresh(target: Target) -> Target:
    return Target(target.name, target.dsp_url, target.management_url, target.api_key,
                  target.did, target.negotiation_trigger, target.transfer_trigger)


def matrix_table(nodes: Sequence[Target], pairs: Sequence[PairResult]) -> Table:
    view = Table(title="bpc interop matrix (rows: provider, columns: consumer; passed/run, "
                       "skipped)", title_justify="left")
    view.add_column("provider \\ consumer")
    for node in nodes:
        view.add_column(node.name, justify="center")
    by_pair = {(pair.provider, pair.consumer): pair for pair in pairs}
    for provider in nodes:
        row = [provider.name]
        for consumer in nodes:
            pair = by_pair.get((provider.name, consumer.name))
            if pair is None:
                row.append("—")
                continue
            passed = sum(r.status is Status.PASS for r in pair.results)
            skipped = sum(r.status is Status.SKIP for r in pair.results)
            ran = len(pair.results) - skipped
            style = "red" if pair.failed else "green"
            row.append(f"[{style}]{passed}/{ran}[/{style}]" + (f" ({skipped})" if skipped else ""))
        view.add_row(*row)
    return view
