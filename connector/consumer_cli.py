"""``bpc catalog | negotiate | transfer | fetch | negotiations | agreements | transfers``: the
consumer side of a running node, through its management API.

The commands never speak the Dataspace Protocol themselves: the *node* holds the participant
key, the processes and their state, so the CLI only asks it (``connector.node_client``) and
shows the answer. ``--node`` (``$BPC_NODE_URL``) says which node, ``--api-key``
(``$BPC_API_KEY``) is its operator key, ``--json`` prints the node's JSON for scripts.

Exit codes: 0 done; 1 the process ended TERMINATED (the reason is printed); 2 the request was
refused or the node could not be reached (the problem's title and detail are printed);
3 ``--wait`` gave up before the process settled (it keeps running on the node).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.keystore_cli import CliError
from connector.node_client import DEFAULT_NODE_URL, NodeClient, NodeProblem, NodeUnreachable

NODE_ENV = "BPC_NODE_URL"
API_KEY_ENV = "BPC_API_KEY"
PANEL = "Consumer (through a running node)"
EXIT_TERMINATED = 1
EXIT_ERROR = 2
EXIT_TIMEOUT = 3
_POLL_S = 0.2
NEGOTIATION_DONE = frozenset({"FINALIZED", "TERMINATED"})
TRANSFER_SETTLED = frozenset({"STARTED", "COMPLETED", "TERMINATED"})

NodeOption = Annotated[str, typer.Option(
    "--node", envvar=NODE_ENV, help="The node's management API base URL.")]
ApiKeyOption = Annotated[str | None, typer.Option(
    "--api-key", envvar=API_KEY_ENV, show_default=False,
    help="The node's operator API key, printed by `bpc serve` at first start (required).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the node's JSON answer.")]
ProviderUrl = Annotated[str, typer.Argument(help="The provider's DSP base URL.")]
ProviderDid = Annotated[str | None, typer.Option(
    "--provider-did", help="The provider's DID (default: the did:web of PROVIDER_URL).")]
WaitOption = Annotated[bool, typer.Option(
    "--wait/--no-wait", help="Poll the node until the process settles.")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", min=0.0, help="Seconds --wait polls before giving up (exit 3).")]
RoleOption = Annotated[str | None, typer.Option("--role", help="provider or consumer.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500, help="Rows per page.")]
AfterOption = Annotated[str | None, typer.Option(
    "--after", help="Continue after this id (the 'next' cursor of the previous page).")]


def consoles() -> tuple[Console, Console]:
    """Built per command, so they see the terminal (and ``COLUMNS``) of this invocation."""
    return (Console(emoji=False, highlight=False),
            Console(stderr=True, emoji=False, highlight=False))


def operator_client(node: str, api_key: str | None) -> NodeClient:
    if not api_key:
        raise CliError(f"no operator API key: pass --api-key or set {API_KEY_ENV} (`bpc serve` "
                       "prints it at the node's first start)")
    try:
        return NodeClient(node, api_key)
    except ValueError as exc:
        raise CliError(str(exc)) from None


@contextlib.contextmanager
def node_errors(node: str) -> Iterator[None]:
    """Every failure to talk to the node: printed without a traceback, exit code 2."""
    err = consoles()[1]
    try:
        yield
    except CliError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except NodeUnreachable as exc:
        err.print(f"[red]error:[/red] cannot reach the node ({escape(exc.reason)}): is the node "
                  f"running at {escape(node)}?", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except NodeProblem as exc:
        detail = f": {exc.detail}" if exc.detail else ""
        err.print(f"[red]error:[/red] {escape(exc.title)} (HTTP {exc.status}, {escape(exc.slug)})"
                  f"{escape(detail)}", soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _poll(fetch: Callable[[], dict[str, Any]], done: frozenset[str], view: dict[str, Any],
          timeout_s: float) -> tuple[dict[str, Any], bool]:
    """Re-read ``view`` until its state is in ``done``; ``(last view, settled)``."""
    deadline = time.monotonic() + timeout_s
    while view.get("state") not in done:
        if time.monotonic() >= deadline:
            return view, False
        time.sleep(_POLL_S)
        view = fetch()
    return view, True


def _reason_text(reason: Any) -> str:
    if not isinstance(reason, dict):
        return "no reason given"
    parts = [f"kind {reason.get('kind')}"]
    if reason.get("failedConstraint"):
        parts.append(f"failed constraint {reason['failedConstraint']}")
    text = ", ".join(parts)
    return f"{text}: {reason['detail']}" if reason.get("detail") else text


def _finish(view: dict[str, Any], noun: str, settled: bool, timeout_s: float,
            out: Console, *, as_json: bool) -> None:
    """Exit 1 for TERMINATED (with the reason), 3 when --wait gave up, else return.

    With ``--json`` only the exit code tells: stdout must stay one JSON document."""
    if view.get("state") == "TERMINATED":
        if as_json:
            raise typer.Exit(EXIT_TERMINATED)
        out.print(f"[red]TERMINATED[/red] {noun} {escape(str(view.get('id')))}", soft_wrap=True)
        out.print(f"reason: {escape(_reason_text(view.get('reason')))}", soft_wrap=True)
        raise typer.Exit(EXIT_TERMINATED)
    if not settled:
        if as_json:
            raise typer.Exit(EXIT_TIMEOUT)
        out.print(f"[yellow]still {escape(str(view.get('state')))}[/yellow] after "
                  f"{timeout_s:g} s: {noun} {escape(str(view.get('id')))} goes on in the node",
                  soft_wrap=True)
        raise typer.Exit(EXIT_TIMEOUT)


# --- commands ----------------------------------------------------------------------------------


def catalog(provider_url: ProviderUrl, provider_did: ProviderDid = None,
            node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
            as_json: JsonOption = False) -> None:
    """The provider's catalog as this node sees it: datasets and their offer ids."""
    out, _ = consoles()
    with node_errors(node):
        data = operator_client(node, api_key).catalog(provider_url, provider_did)
    if as_json:
        print_json(data)
        return
    datasets = _datasets(data)
    out.print(f"catalog of {escape(str(data.get('participantId')))}: {len(datasets)} "
              f"dataset{'s' if len(datasets) != 1 else ''}", soft_wrap=True)
    table = Table("dataset", "title", "level", "offer ids")
    for dataset in datasets:
        keywords = dataset.get("dcat:keyword")
        offers = dataset.get("hasPolicy")
        table.add_row(
            escape(str(dataset.get("@id"))), escape(str(dataset.get("dct:title", ""))),
            escape(", ".join(keywords) if isinstance(keywords, list) else str(keywords or "")),
            escape("\n".join(str(o.get("@id")) for o in offers if isinstance(o, dict))
                   if isinstance(offers, list) else ""),
        )
    fold_table(table)
    out.print(table)


def show_time(value: Any) -> str | None:
    """A view's timestamp to the second: tables are read by people."""
    return None if not isinstance(value, str) else value[:19].replace("T", " ")


def _datasets(data: dict[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("dataset")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    return [item for item in items if isinstance(item, dict)]


def fold_table(table: Table) -> None:
    """Ids are long IRIs: fold them over lines rather than cut them with an ellipsis."""
    for column in table.columns:
        column.overflow = "fold"


def negotiate(provider_url: ProviderUrl,
              offer: Annotated[str, typer.Option("--offer", help="An offer id (`bpc catalog`).")],
              provider_did: ProviderDid = None, wait: WaitOption = True,
              timeout: TimeoutOption = 30.0, node: NodeOption = DEFAULT_NODE_URL,
              api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Negotiate a contract for an offer of the provider's catalog; prints the agreement id."""
    out, _ = consoles()
    with node_errors(node):
        client = operator_client(node, api_key)
        view = client.start_negotiation(provider_url, offer, provider_did)
        settled = True
        if wait:
            pid = str(view["id"])
            view, settled = _poll(lambda: client.negotiation(pid), NEGOTIATION_DONE, view,
                                  timeout)
    if as_json:
        print_json(view)
    elif view.get("state") != "TERMINATED":
        out.print(f"negotiation {escape(str(view['id']))}: {escape(str(view['state']))}",
                  soft_wrap=True)
        if view.get("agreementId"):
            out.print(f"agreement {escape(str(view['agreementId']))}", soft_wrap=True)
    _finish(view, "negotiation", settled, timeout, out, as_json=as_json)


def transfer(provider_url: ProviderUrl,
             agreement: Annotated[str, typer.Option("--agreement", help="The agreement id.")],
             wait: WaitOption = True, timeout: TimeoutOption = 30.0,
             node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
             as_json: JsonOption = False) -> None:
    """Start a transfer under an agreement; waits until the provider starts it."""
    out, _ = consoles()
    with node_errors(node):
        client = operator_client(node, api_key)
        view = client.start_transfer(agreement, provider_url)
        settled = True
        if wait:
            pid = str(view["id"])
            view, settled = _poll(lambda: client.transfer(pid), TRANSFER_SETTLED, view, timeout)
    if as_json:
        print_json(view)
    elif view.get("state") != "TERMINATED":
        out.print(f"transfer {escape(str(view['id']))}: {escape(str(view['state']))}",
                  soft_wrap=True)
        address = view.get("dataAddress")
        if isinstance(address, dict):
            token = "with an access token" if address.get("hasToken") else "no token"
            out.print(f"endpoint {escape(str(address.get('endpoint')))} ({token})",
                      soft_wrap=True)
    _finish(view, "transfer", settled, timeout, out, as_json=as_json)


def fetch(transfer_id: Annotated[str, typer.Argument(help="The transfer id (ours).")],
          output: Annotated[Path | None, typer.Option(
              "--output", "-o", help="Write the data to this file instead of stdout.")] = None,
          node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None) -> None:
    """Get a STARTED transfer's data; the node uses the transfer's token and refreshes it
    while the agreement allows (exit 2 with the provider's reason once it does not)."""
    out, _ = consoles()
    with node_errors(node):
        data = operator_client(node, api_key).transfer_data(transfer_id)
    if output is not None:
        output.write_bytes(data)
        out.print(f"{len(data)} bytes written to {escape(str(output))}", soft_wrap=True)
        return
    try:
        print_json(json.loads(data))
    except ValueError:
        typer.echo(data.decode("utf-8", errors="replace"))


def list_collection(collection: str, node: str, api_key: str | None, as_json: bool,
          columns: list[tuple[str, Callable[[dict[str, Any]], Any]]], **query: str | None) -> None:
    out, _ = consoles()
    with node_errors(node):
        data = operator_client(node, api_key).page(collection, **query)
    if as_json:
        print_json(data)
        return
    table = Table(*(name for name, _ in columns))
    for item in data.get("items", []):
        table.add_row(*(escape("" if (value := get(item)) is None else str(value))
                        for _, get in columns))
    fold_table(table)
    out.print(table)
    if data.get("next"):
        out.print(f"more: --after {escape(str(data['next']))}", soft_wrap=True)


def negotiations(role: RoleOption = None,
                 state: Annotated[str | None, typer.Option("--state", help="e.g. FINALIZED.")]
                 = None,
                 limit: LimitOption = 100, after: AfterOption = None,
                 node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
                 as_json: JsonOption = False) -> None:
    """The node's contract negotiations (both roles unless --role)."""
    list_collection("negotiations", node, api_key, as_json, [
        ("id", lambda n: n.get("id")), ("role", lambda n: n.get("role")),
        ("state", lambda n: n.get("state")), ("counterparty", lambda n: n.get("counterPartyId")),
        ("asset", lambda n: n.get("assetId")), ("agreement", lambda n: n.get("agreementId")),
        ("updated", lambda n: show_time(n.get("updatedAt"))),
    ], role=role, state=state, limit=str(limit), after=after)


def agreements(role: RoleOption = None,
               asset: Annotated[str | None, typer.Option("--asset", help="Only this asset.")]
               = None,
               limit: LimitOption = 100, after: AfterOption = None,
               node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
               as_json: JsonOption = False) -> None:
    """The node's contract agreements, as provider and as consumer."""
    list_collection("agreements", node, api_key, as_json, [
        ("id", lambda a: a.get("id")), ("role", lambda a: a.get("role")),
        ("asset", lambda a: a.get("assetId")), ("provider", lambda a: a.get("providerId")),
        ("consumer", lambda a: a.get("consumerId")),
        ("signed", lambda a: show_time(a.get("signedAt"))),
    ], role=role, assetId=asset, limit=str(limit), after=after)


def transfers(role: RoleOption = None,
              state: Annotated[str | None, typer.Option("--state", help="e.g. STARTED.")] = None,
              agreement: Annotated[str | None, typer.Option(
                  "--agreement", help="Only transfers under this agreement.")] = None,
              limit: LimitOption = 100, after: AfterOption = None,
              node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
              as_json: JsonOption = False) -> None:
    """The node's transfer processes (tokens are never shown)."""
    list_collection("transfers", node, api_key, as_json, [
        ("id", lambda t: t.get("id")), ("role", lambda t: t.get("role")),
        ("state", lambda t: t.get("state")), ("agreement", lambda t: t.get("agreementId")),
        ("asset", lambda t: t.get("assetId")),
        ("endpoint", lambda t: (t.get("dataAddress") or {}).get("endpoint")),
        ("updated", lambda t: show_time(t.get("updatedAt"))),
    ], role=role, state=state, agreementId=agreement, limit=str(limit), after=after)


status_app = typer.Typer(
    help="Revoke, suspend or resume a credential this node issued (its status lists).",
    no_args_is_help=True)

CredentialFile = Annotated[Path | None, typer.Option(
    "--credential", help="The issued credential (JSON file): its own status entry is used.")]
ListUrl = Annotated[str | None, typer.Option(
    "--list", help="A status list URL of this node (with --index).")]
ListIndex = Annotated[int | None, typer.Option("--index", min=0, help="The entry's index.")]


def _change_status(action: str, credential: Path | None, list_url: str | None,
                   index: int | None, node: str, api_key: str | None) -> None:
    out, _ = consoles()
    with node_errors(node):
        if (credential is None) == (list_url is None) or (list_url is None) != (index is None):
            raise CliError("give either --credential FILE, or --list URL with --index N")
        if credential is not None:
            try:
                body: dict[str, Any] = {"credential": json.loads(credential.read_text("utf-8"))}
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read {credential}: {exc}") from None
        else:
            body = {"statusListCredential": list_url, "statusListIndex": str(index)}
        answer = operator_client(node, api_key).post(f"/management/status/{action}", body)
    out.print(f"{action}: index {answer['statusListIndex']} of "
              f"{escape(answer['statusListCredential'])}", soft_wrap=True)


@status_app.command("revoke")
def status_revoke(credential: CredentialFile = None, list_url: ListUrl = None,
                  index: ListIndex = None, node: NodeOption = DEFAULT_NODE_URL,
                  api_key: ApiKeyOption = None) -> None:
    """Revoke for good: every verifier refuses the credential from its next status check."""
    _change_status("revoke", credential, list_url, index, node, api_key)


@status_app.command("suspend")
def status_suspend(credential: CredentialFile = None, list_url: ListUrl = None,
                   index: ListIndex = None, node: NodeOption = DEFAULT_NODE_URL,
                   api_key: ApiKeyOption = None) -> None:
    """Suspend until resumed."""
    _change_status("suspend", credential, list_url, index, node, api_key)


@status_app.command("resume")
def status_resume(credential: CredentialFile = None, list_url: ListUrl = None,
                  index: ListIndex = None, node: NodeOption = DEFAULT_NODE_URL,
                  api_key: ApiKeyOption = None) -> None:
    """Lift a suspension."""
    _change_status("resume", credential, list_url, index, node, api_key)


policy_app = typer.Typer(help="Ask the node about its policies.", no_args_is_help=True)


@policy_app.command("explain")
def policy_explain(
    dataset: Annotated[str, typer.Argument(help="The dataset (asset) id.")],
    participant: Annotated[str, typer.Option("--participant",
                                             help="The participant's DID.")],
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why DATASET is (not) in the catalog PARTICIPANT sees: per offer, the constraint that
    fails and what is missing. Exit 0 when it is offered, 1 when it is not."""
    out, _ = consoles()
    with node_errors(node):
        answer = operator_client(node, api_key).get("/management/catalog/explain", dataset=dataset,
                                            participant=participant)
    if as_json:
        print_json(answer)
    else:
        verdict = "offered to" if answer["visible"] else "NOT offered to"
        out.print(f"{escape(dataset)} is {verdict} {escape(participant)}", soft_wrap=True)
        table = Table("offer", "allowed", "failing constraint", "reason", "missing")
        for offer in answer["offers"]:
            failing = offer.get("failedConstraint") or ""
            if offer.get("leftOperand"):
                failing += f" ({offer['leftOperand']})"
            table.add_row(escape(str(offer["offerId"])), "yes" if offer["allowed"] else "no",
                          escape(failing), escape(str(offer.get("reason") or "")),
                          escape(str(offer.get("missing") or "")))
        out.print(table)
    if not answer["visible"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the commands that talk to a running node to the ``bpc`` app (their own panel)."""
    for name, command in (("catalog", catalog), ("negotiate", negotiate),
                          ("transfer", transfer), ("fetch", fetch),
                          ("negotiations", negotiations),
                          ("agreements", agreements), ("transfers", transfers)):
        app.command(name, rich_help_panel=PANEL)(command)
    app.add_typer(status_app, name="status", rich_help_panel=PANEL)
    app.add_typer(policy_app, name="policy", rich_help_panel=PANEL)
