"""``bpc trust list | add | remove | import``: a running node's trust registry, through its
management API (``/management/trust``, see ``connector.management.trust``).

- ``bpc trust list [--json]``: trusted issuers, trust-list authorities and imported lists.
- ``bpc trust add --type T --issuer DID``: trust DID for credential type T (``--type '*'``:
  every type). ``bpc trust add --authority DID --type T [--type T2 …]``: accept trust lists
  signed by DID for those types (replaces its previous types).
- ``bpc trust remove --type T --issuer DID`` | ``--authority DID`` | ``--list SOURCE``.
- ``bpc trust import FILE``: import a signed trust list (a JSON credential, or a VC-JOSE
  compact JWT).

``--node`` / ``$BPC_NODE_URL`` and ``--api-key`` / ``$BPC_API_KEY`` as for the other commands
that talk to a node. Exit codes: 0 done; 1 the node refused the trust list (its reasons are
printed, one per line); 2 anything else went wrong: bad arguments, a refused request (the
problem's title and detail are printed), nothing to remove, the node unreachable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from connector.consumer_cli import (
    EXIT_ERROR,
    PANEL,
    ApiKeyOption,
    JsonOption,
    NodeOption,
    consoles,
    fold_table,
    node_errors,
    operator_client,
    print_json,
)
from connector.keystore_cli import CliError
from connector.node_client import DEFAULT_NODE_URL, NodeProblem, path_segment

EXIT_REJECTED = 1
TRUST_PATH = "/management/trust"

trust_app = typer.Typer(
    help="The node's trust registry: which issuers it believes, for which credential types.",
    no_args_is_help=True)

TypeOption = Annotated[list[str] | None, typer.Option(
    "--type", help="A credential type, e.g. DismantlerCredential ('*': every type); repeat "
                   "for several.", show_default=False)]
IssuerOption = Annotated[str | None, typer.Option(
    "--issuer", help="The issuer's DID.", show_default=False)]
AuthorityOption = Annotated[str | None, typer.Option(
    "--authority", help="A trust-list authority's DID.", show_default=False)]


def _yes(value: Any) -> str:
    return "yes" if value else "no"


@trust_app.command("list")
def trust_list(node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
               as_json: JsonOption = False) -> None:
    """Trusted issuers (local and imported), authorities and imported trust lists."""
    out, _ = consoles()
    with node_errors(node):
        view = operator_client(node, api_key).get(TRUST_PATH)
    if as_json:
        print_json(view)
        return
    issuers = Table("credential type", "issuer", "source", "active", "from config",
                    title="trusted issuers")
    for entry in view["issuers"]:
        issuers.add_row(escape(entry["credentialType"]), escape(entry["issuer"]),
                        escape(entry["source"]), _yes(entry.get("active")),
                        _yes(entry.get("fromConfig")))
    authorities = Table("authority", "may vouch for", "from config",
                        title="trust-list authorities")
    for entry in view["authorities"]:
        authorities.add_row(escape(entry["issuer"]), escape(", ".join(entry["credentialTypes"])),
                            _yes(entry.get("fromConfig")))
    lists = Table("list", "authority", "valid until", "active", "entries",
                  title="imported trust lists")
    for record in view["lists"]:
        lists.add_row(escape(record["source"]), escape(record["authority"]),
                      escape(record["validUntil"]), _yes(record.get("active")),
                      str(len(record.get("entries", []))))
    for table in (issuers, authorities, lists):
        fold_table(table)
        out.print(table)


def _one_mode(type_: list[str] | None, issuer: str | None, authority: str | None) -> None:
    if (issuer is None) == (authority is None):
        raise CliError("give either --issuer DID or --authority DID")
    if not type_:
        raise CliError("give at least one --type")


@trust_app.command("add")
def trust_add(type_: TypeOption = None, issuer: IssuerOption = None,
              authority: AuthorityOption = None, node: NodeOption = DEFAULT_NODE_URL,
              api_key: ApiKeyOption = None) -> None:
    """Trust --issuer for each --type, or accept --authority's trust lists for the --types."""
    out, _ = consoles()
    with node_errors(node):
        _one_mode(type_, issuer, authority)
        assert type_
        client = operator_client(node, api_key)
        if authority is not None:
            answer = client.post(f"{TRUST_PATH}/authorities",
                                 {"issuer": authority, "credentialTypes": type_})
            out.print(f"authority {escape(answer['issuer'])} may vouch for "
                      f"{escape(', '.join(answer['credentialTypes']))}", soft_wrap=True)
            return
        for kind in type_:
            answer = client.post(f"{TRUST_PATH}/issuers",
                                 {"credentialType": kind, "issuer": issuer})
            out.print(f"trusted: {escape(answer['issuer'])} for "
                      f"{escape(answer['credentialType'])}", soft_wrap=True)


@trust_app.command("remove")
def trust_remove(type_: TypeOption = None, issuer: IssuerOption = None,
                 authority: AuthorityOption = None,
                 source: Annotated[str | None, typer.Option(
                     "--list", help="An imported trust list's id (its source).",
                     show_default=False)] = None,
                 node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None) -> None:
    """Stop trusting --issuer for --type, drop an --authority, or forget an imported --list."""
    out, _ = consoles()
    with node_errors(node):
        modes = sum(x is not None for x in (issuer, authority, source))
        if modes != 1 or (issuer is not None) != bool(type_) or (
                issuer is None and type_):
            raise CliError("give --type T --issuer DID, or --authority DID, or --list SOURCE")
        client = operator_client(node, api_key)
        if source is not None:
            client.request("DELETE", f"{TRUST_PATH}/lists/{path_segment(source)}")
            out.print(f"removed trust list {escape(source)} and its entries", soft_wrap=True)
        elif authority is not None:
            client.request("DELETE", f"{TRUST_PATH}/authorities", body={"issuer": authority})
            out.print(f"removed authority {escape(authority)}", soft_wrap=True)
        else:
            assert type_ and issuer
            for kind in type_:
                client.request("DELETE", f"{TRUST_PATH}/issuers",
                               body={"credentialType": kind, "issuer": issuer})
                out.print(f"no longer trusted: {escape(issuer)} for {escape(kind)}",
                          soft_wrap=True)


def _read_list(path: Path) -> dict[str, Any] | str:
    try:
        text = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        if text.count(".") == 2 and " " not in text:
            return text  # a VC-JOSE compact JWT
        raise CliError(f"{path} is neither a JSON credential nor a compact JWT") from None
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold one credential (a JSON object)")
    return data


@trust_app.command("import")
def trust_import(file: Annotated[Path, typer.Argument(help="The signed trust list.")],
                 node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
                 as_json: JsonOption = False) -> None:
    """Import a trust list signed by an authority the node trusts; exit 1 with the reasons if
    the node refuses it."""
    out, err = consoles()
    with node_errors(node):
        credential = _read_list(file)
        client = operator_client(node, api_key)
        try:
            body = ({"verifiableCredential": credential} if isinstance(credential, str)
                    else credential)
            answer = client.post(f"{TRUST_PATH}/lists", body)
        except NodeProblem as exc:
            if exc.status != 422:
                raise
            err.print(f"[red]refused:[/red] {escape(exc.detail or exc.title)}", soft_wrap=True)
            for reason in exc.body.get("reasons", []):
                err.print(f"  - {escape(str(reason))}", soft_wrap=True)
            raise typer.Exit(EXIT_REJECTED) from None
    if as_json:
        print_json(answer)
        return
    out.print(f"imported {escape(answer['source'])} from {escape(answer['authority'])} "
              f"(valid until {escape(answer['validUntil'])}): {len(answer['entries'])} "
              f"entr{'y' if len(answer['entries']) == 1 else 'ies'}", soft_wrap=True)
    for entry in answer["entries"]:
        out.print(f"  {escape(entry['credentialType'])}: {escape(entry['issuer'])}",
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``bpc trust`` to the ``bpc`` app, next to the other commands that need a node."""
    app.add_typer(trust_app, name="trust", rich_help_panel=PANEL)


__all__ = ["EXIT_ERROR", "EXIT_REJECTED", "register", "trust_app"]
