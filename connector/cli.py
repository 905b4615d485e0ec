"""The ``bpc`` command: keys, DIDs, credentials, the demo and the benchmarks."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from connector import __version__
from connector.consumer_cli import register as register_consumer_commands
from connector.interop_cli import register as register_interop_commands
from connector.keystore_cli import CliError, open_keystore
from connector.passport_cli import passport_app
from connector.plugins.manager import add_plugin_commands
from connector.shipments_cli import register as register_shipment_commands
from connector.trust_cli import register as register_trust_commands
from connector.usage.cli import register as register_usage_commands
from connector.wallet_cli import register as register_wallet_commands
from credentials import (
    ISSUE_FORMATS,
    JWT,
    RDFC,
    CredentialsError,
    DIDResolver,
    HttpDIDFetcher,
    VerificationResult,
    issue_credential,
    issue_jwt_credential,
    verify_credential,
)
from credentials.errors import KeystoreError
from credentials.model import types_of

app = typer.Typer(
    help="Battery passport connector: battery DIDs, verifiable credentials, data-space access.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
key_app = typer.Typer(help="Manage the keys in the encrypted keystore.", no_args_is_help=True)
did_app = typer.Typer(help="Mint and inspect DIDs.", no_args_is_help=True)
vc_app = typer.Typer(help="Issue and verify verifiable credentials.", no_args_is_help=True)
bench_app = typer.Typer(help="Measure performance against reference implementations.",
                        no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(did_app, name="did")
app.add_typer(vc_app, name="vc")
app.add_typer(bench_app, name="bench")
app.add_typer(passport_app, name="passport")
register_consumer_commands(app)
register_usage_commands(app)
register_trust_commands(app)
register_wallet_commands(app)
register_interop_commands(app)  # bpc interop
register_shipment_commands(app)  # bpc shipment
add_plugin_commands(app)  # installed plugins' commands (connector.plugins); last: never replace

out = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False)

KeystoreOption = Annotated[
    Path | None,
    typer.Option("--keystore", help="Keystore folder [default: $BPC_KEYSTORE or "
                 "$XDG_DATA_HOME/bpc/keystore]"),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"bpc {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Battery passport connector."""


@key_app.command("new")
def key_new(label: Annotated[str, typer.Option(help="A note to recognise the key by.")] = "",
            keystore: KeystoreOption = None) -> None:
    """Create an Ed25519 key (a did:key) and store it encrypted."""
    key = open_keystore(keystore, adding=True).new_key(label)
    out.print(key.key_id, soft_wrap=True)


@key_app.command("list")
def key_list(keystore: KeystoreOption = None) -> None:
    """List stored keys (no passphrase needed: only public data is shown)."""
    from rich.table import Table

    from connector.keystore_cli import default_keystore_dir
    from credentials.keystore import Keystore

    table = Table("key id", "label", "created")
    for info in Keystore(keystore or default_keystore_dir(), "").list():
        table.add_row(info.key_id, info.label, info.created_at.isoformat(timespec="seconds"))
    out.print(table)


@did_app.command("mint")
def did_mint(label: Annotated[str, typer.Option(help="e.g. the battery's serial number")] = "",
             keystore: KeystoreOption = None) -> None:
    """Mint a battery DID (did:key); its private key goes into the keystore."""
    key = open_keystore(keystore, adding=True).new_key(label or "battery")
    out.print(key.controller, soft_wrap=True)


def _read_json_or_jwt(path: Path) -> dict[str, Any] | str:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped, parse_constant=_reject_constant)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise CliError(f"{path} is not valid JSON: {exc}") from exc
    if stripped.count(".") == 2 and " " not in stripped:
        return stripped
    raise CliError(f"{path} holds neither a JSON credential nor a compact JWT")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


@vc_app.command("issue")
def vc_issue(
    file: Annotated[Path, typer.Argument(help="Unsigned credential (JSON); - for stdin.")],
    suite: Annotated[str, typer.Option(help=f"One of: {', '.join(ISSUE_FORMATS)}.")] = RDFC,
    key: Annotated[str | None, typer.Option(help="Key id (DID URL) [default: oldest key].")]
    = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
    keystore: KeystoreOption = None,
) -> None:
    """Sign a credential. The issuer is the key's DID (filled in when absent)."""
    if suite not in ISSUE_FORMATS:
        raise CliError(f"unknown suite {suite!r}; use one of {', '.join(ISSUE_FORMATS)}")
    credential = _read_json_or_jwt(file)
    if not isinstance(credential, dict):
        raise CliError("issue takes an unsigned JSON credential, not a JWT")
    store = open_keystore(keystore)
    signing_key = store.get(key) if key else store.default_key()
    # Passport credential types are held to their SHACL shapes before anything is signed.
    # (Imported here: pyshacl and rdflib cost every other bpc command a fifth of a second.)
    from credentials.passport.chain import KNOWN_CREDENTIAL_TYPES
    from credentials.passport.shapes import check_shapes

    check = check_shapes if KNOWN_CREDENTIAL_TYPES.intersection(types_of(credential)) else None
    if suite == JWT:
        text = issue_jwt_credential(credential, signing_key, check=check)
    else:
        text = json.dumps(issue_credential(credential, signing_key, suite=suite, check=check),
                          indent=2, ensure_ascii=False)
    if output:
        output.write_text(text + "\n", "utf-8")
    else:
        print(text)


@vc_app.command("verify")
def vc_verify(
    file: Annotated[Path, typer.Argument(help="Credential (JSON or compact JWT); - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    allow_http_loopback: Annotated[bool, typer.Option(
        help="Resolve did:web on loopback hosts over plain http (local test setups).")] = False,
) -> None:
    """Verify a credential. Exit code 0 when valid, 1 when not (problems are printed)."""
    credential = _read_json_or_jwt(file)
    resolver = DIDResolver(web_fetcher=HttpDIDFetcher(allow_http_loopback=allow_http_loopback))
    result = asyncio.run(verify_credential(credential, resolver=resolver))
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_result(result, out)
    raise typer.Exit(0 if result.verified else 1)


def print_result(result: VerificationResult, console: Console) -> None:
    if result.verified:
        console.print(f"[green]valid[/green] {result.format} credential "
                      f"({result.suite}) issued by {result.issuer}", soft_wrap=True)
        return
    console.print(f"[red]invalid[/red] {result.format} credential ({result.suite})",
                  soft_wrap=True)
    for problem in result.problems:
        where = f" at {problem.path}" if problem.path else ""
        console.print(f"  - [bold]{problem.type}[/bold]{escape(where)}: {escape(problem.message)}",
                      soft_wrap=True)


@app.command("demo")
def demo(
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the nodes' configs, data and logs stay afterwards.")] = Path(
        "bpc-demo"),
    keep_running: Annotated[bool, typer.Option(
        "--keep-running", help="Leave the five nodes up when the story ends.")] = False,
) -> None:
    """Five nodes as local processes play one battery's life, mine to recycler and back."""
    from connector.valuechain.demo import run_value_chain_demo

    raise typer.Exit(run_value_chain_demo(out, directory, keep_running=keep_running))


@app.command("devnet")
def devnet(
    compose: Annotated[Path, typer.Option(
        "--compose", help="The compose file whose node services to run as local processes.")],
    directory: Annotated[Path, typer.Option(
        "--dir", help="Where the nodes' configs, data and logs stay afterwards.")] = Path(
        "bpc-devnet"),
    postgres: Annotated[str, typer.Option(
        "--postgres", help="Local PostgreSQL (each node gets a fresh schema in it).")] = (
        "postgresql://postgres@127.0.0.1:5432/test"),
    mqtt: Annotated[str, typer.Option("--mqtt", help="Local MQTT broker host:port.")] = (
        "127.0.0.1:1883"),
    keep_running: Annotated[bool, typer.Option(
        "--keep-running", help="Leave the nodes up (and their schemas) when the story ends.")]
    = False,
) -> None:
    """Run a compose topology's nodes as local processes (local PostgreSQL and Mosquitto) and
    play the value chain through them."""
    from connector.valuechain.devnet import run_devnet

    raise typer.Exit(run_devnet(out, compose, directory, postgres=postgres, mqtt=mqtt,
                                keep_running=keep_running))


@app.command("tour")
def tour() -> None:
    """In one process: passports, recycled content, attacks caught, role proofs, expiry,
    revocation and deletion receipts, hub proofs (the walkthrough of each capability)."""
    from connector.demo import run_demo

    raise typer.Exit(run_demo(out))


@app.command("serve")
def serve(
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Node settings (TOML); BPC_<SETTING> variables override them.",
    )] = None,
) -> None:
    """Run the connector node until SIGTERM / Ctrl-C (prints the operator key at first start)."""
    from connector.serve import serve_command

    raise typer.Exit(serve_command(config))


BenchJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BenchRounds = Annotated[int, typer.Option(help="Rounds per metric (median wins).", min=1)]


@bench_app.command("credentials")
def bench_credentials(
    as_json: BenchJson = False,
    seconds: Annotated[float, typer.Option(help="Time per measurement round.", min=0.05)] = 0.5,
    rounds: BenchRounds = 3,
) -> None:
    """Issue/verify rates of our suites next to didkit and raw Ed25519, measured in one run."""
    from connector.bench import credentials_benchmark

    _run_benchmark(lambda: credentials_benchmark(seconds=seconds, rounds=rounds), as_json)


@bench_app.command("passport")
def bench_passport(as_json: BenchJson = False, rounds: BenchRounds = 3) -> None:
    """Audit of a 50-entry passport (JCS, RDFC) and mass balance over 10,000 batches."""
    from connector.bench import passport_benchmark

    _run_benchmark(lambda: passport_benchmark(rounds=rounds), as_json)


@bench_app.command("policy")
def bench_policy(as_json: BenchJson = False, rounds: BenchRounds = 3) -> None:
    """Dismantling-policy evaluations (alone, after verifying a presentation), status checks."""
    from connector.bench_policy import policy_benchmark

    _run_benchmark(lambda: policy_benchmark(rounds=rounds), as_json)


@bench_app.command("dsp")
def bench_dsp(
    as_json: BenchJson = False,
    runs: Annotated[int, typer.Option(
        help="Catalog-to-first-byte runs per backend (p50, p99).", min=1)] = 200,
    concurrency: Annotated[int, typer.Option(
        help="Concurrent consumer negotiations for the rate.", min=1)] = 50,
    negotiations: Annotated[int, typer.Option(
        help="Negotiations timed for the rate (after a warm-up round).", min=1)] = 500,
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", help="Store backend to measure: sqlite, postgres (repeat for both) "
        "[default: both]")] = None,
    postgres_url: Annotated[str | None, typer.Option(
        help="PostgreSQL server for the postgres figures (fresh schemas, dropped after) "
        "[default: $BPC_BENCH_POSTGRES_URL or postgresql://127.0.0.1:5432/test]")] = None,
) -> None:
    """Two nodes on loopback: catalog-to-data latency and negotiations per second."""
    from connector.bench_dsp import BACKENDS, dsp_benchmark, render_dsp_table

    chosen = tuple(backend or BACKENDS)
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise CliError(f"unknown backend {', '.join(unknown)}; use {', '.join(BACKENDS)}")
    # An unreachable PostgreSQL is not an error: its metrics come back as "unavailable".
    report = dsp_benchmark(runs=runs, concurrency=concurrency, negotiations=negotiations,
                           backends=chosen, postgres_url=postgres_url)
    # Its own table: the DSP targets include a floor (negotiations/s), which render_table
    # has no notion of, and metrics that could not be measured are listed with the reason.
    if as_json:
        print(json.dumps(report))
    else:
        render_dsp_table(report, out)


@bench_app.command("hub")
def bench_hub(
    as_json: BenchJson = False,
    events: Annotated[int, typer.Option(
        help="Events through the bridge (as many readings, and as many through MQTT).",
        min=1)] = 100_000,
    events_per_message: Annotated[int, typer.Option(
        help="Events per signed hub message (1-250).", min=1, max=250)] = 100,
    packs: Annotated[int, typer.Option(help="Packs taking turns, each its own passport.",
                                       min=1)] = 4,
    mqtt: Annotated[bool, typer.Option(
        "--mqtt/--no-mqtt", help="Also measure through the MQTT broker (an unreachable "
        "broker is reported, not an error).")] = True,
    mqtt_host: Annotated[str, typer.Option(help="MQTT broker host.")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option(help="MQTT broker port.", min=1,
                                           max=65535)] = 1883,
) -> None:
    """Hub messages into stored, Merkle-batched, credentialed cell events, on one core."""
    from connector.bench_hub import hub_benchmark, render_hub_table

    report = hub_benchmark(events=events, events_per_message=events_per_message, packs=packs,
                           mqtt=mqtt, mqtt_host=mqtt_host, mqtt_port=mqtt_port)
    # Its own table: floors and ceilings, the runs' breakdown, what was not measured.
    if as_json:
        print(json.dumps(report))
    else:
        render_hub_table(report, out)


def _run_benchmark(measure: Callable[[], dict[str, Any]], as_json: bool) -> None:
    from connector.bench import BenchmarkUnavailable, render_table

    try:
        report = measure()
    except BenchmarkUnavailable as exc:
        raise CliError(str(exc)) from exc
    if as_json:
        print(json.dumps(report))
    else:
        render_table(report, out)


def main() -> None:
    try:
        app()
    except (CliError, CredentialsError, KeystoreError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
