"""``bpc wallet add | list | show | remove``: the credentials issued to a running node, which it
presents to verifiers (DCP role proofs), through its management API.

Like the consumer commands (``connector.consumer_cli``), the CLI holds no key: the node checks
each credential (proof, status, that it was issued to the node's DID) before keeping it, and
the command prints what the node said. ``add`` takes a file or ``-`` for standard input, and
also the VC-API's issue answer (``{"verifiableCredential": …}``), unwrapped here.

Exit codes: 0 done; 2 the node refused (the problem is printed) or could not be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from connector.consumer_cli import (
    PANEL,
    AfterOption,
    ApiKeyOption,
    JsonOption,
    LimitOption,
    NodeOption,
    consoles,
    fold_table,
    node_errors,
    operator_client,
    print_json,
)
from connector.keystore_cli import CliError
from connector.node_client import DEFAULT_NODE_URL, path_segment

COLLECTION = "/management/wallet/credentials"

wallet_app = typer.Typer(
    help="The credentials issued to the node, which it presents to verifiers (DCP).",
    no_args_is_help=True)


def read_credential(source: str) -> dict[str, Any]:
    """The credential in ``source`` (a path, or ``-`` for stdin); a VC-API issue answer is
    unwrapped to its ``verifiableCredential``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
        document = json.loads(text)
    except (OSError, ValueError) as exc:
        where = "standard input" if source == "-" else source
        raise CliError(f"cannot read a JSON credential from {where}: {exc}") from None
    if isinstance(document, dict) and set(document) == {"verifiableCredential"}:
        document = document["verifiableCredential"]
    if not isinstance(document, dict):
        raise CliError("the credential must be a JSON object (a JWT credential is not taken)")
    return document


def _types(view: dict[str, Any]) -> str:
    return ", ".join(str(name) for name in view.get("types") or [])


@wallet_app.command("add")
def wallet_add(
    source: Annotated[str, typer.Argument(metavar="FILE",
                                          help="The credential (JSON file), or - for stdin.")],
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put a credential issued to the node into its wallet (the node verifies it first)."""
    out, _ = consoles()
    with node_errors(node):
        document = read_credential(source)
        view = operator_client(node, api_key).post(COLLECTION, document)
    if as_json:
        print_json(view)
        return
    out.print(f"added {escape(str(view['id']))} ({escape(_types(view))}) issued by "
              f"{escape(str(view['issuer']))}", soft_wrap=True)


@wallet_app.command("list")
def wallet_list(
    removed: Annotated[bool, typer.Option("--all", help="Include removed credentials.")]
    = False,
    limit: LimitOption = 100, after: AfterOption = None,
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """The credentials the node holds."""
    out, _ = consoles()
    with node_errors(node):
        data = operator_client(node, api_key).get(COLLECTION, limit=str(limit), after=after,
                                          includeRemoved="true" if removed else None)
    if as_json:
        print_json(data)
        return
    table = Table("id", "types", "issuer", "valid until", *(["removed"] if removed else []))
    for item in data.get("items", []):
        row = [item.get("id"), _types(item), item.get("issuer"), item.get("validUntil")]
        if removed:
            row.append(item.get("removedAt"))
        table.add_row(*(escape("" if value is None else str(value)) for value in row))
    fold_table(table)
    out.print(table)
    if data.get("next"):
        out.print(f"more: --after {escape(str(data['next']))}", soft_wrap=True)


@wallet_app.command("show")
def wallet_show(
    credential_id: Annotated[str, typer.Argument(metavar="ID", help="The credential's id.")],
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
) -> None:
    """One held credential, as JSON."""
    with node_errors(node):
        view = operator_client(node, api_key).get(f"{COLLECTION}/{path_segment(credential_id)}")
    print_json(view)


@wallet_app.command("remove")
def wallet_remove(
    credential_id: Annotated[str, typer.Argument(metavar="ID", help="The credential's id.")],
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
) -> None:
    """Stop presenting a credential (the node keeps the record, marked removed)."""
    out, _ = consoles()
    with node_errors(node):
        operator_client(node, api_key).request(
            "DELETE", f"{COLLECTION}/{path_segment(credential_id)}")
    out.print(f"removed {escape(credential_id)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``bpc wallet`` to the ``bpc`` app, beside the other commands that need a node."""
    app.add_typer(wallet_app, name="wallet", rich_help_panel=PANEL)


__all__ = ["read_credential", "register", "wallet_app"]
