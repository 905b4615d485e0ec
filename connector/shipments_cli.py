"""``bpc shipment declare | verify | cache``: shipment declarations for customs.

``declare`` asks the shipper's node to build and sign a declaration (``POST
/management/shipments``, operator key) and writes it to a file. ``verify`` checks one: through a
node (``POST /shipments/verify``, open) or, with ``--offline-cache DIR``, entirely on this
machine from a cache filled beforehand with ``cache`` (``POST /shipments/cache``): in that mode
no connection is ever opened. The verdict lists, per battery, product (repair / reuse), product
(repurposing) or waste, the rule that decided and what is missing.

Exit codes: 0 every battery is a product; 1 at least one battery is waste (or none could be
read); 2 the command could not run (unreadable file, node unreachable or refusing, no cache).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from connector.consumer_cli import (
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
from connector.node_client import DEFAULT_NODE_URL, NodeClient

EXIT_WASTE = 1
EXIT_ERROR = 2

shipment_app = typer.Typer(
    help="Shipment declarations: is a used battery crossing a border a product or waste?",
    no_args_is_help=True)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {what} from {path}: {exc}") from None


@shipment_app.command("declare")
def declare(
    battery: Annotated[list[str], typer.Option("--battery", help="A battery DID (repeat).")],
    purpose: Annotated[str, typer.Option(help="repair, repurposing or recycling.")],
    agreement: Annotated[str, typer.Option(help="The DSP agreement with the facility.")],
    to: Annotated[str, typer.Option("--to", help="The receiving facility's DID.")],
    country: Annotated[str, typer.Option(help="Destination country (ISO 3166-1).")] = "DE",
    test: Annotated[list[Path] | None, typer.Option(
        "--test", help="A signed FunctionalityTestCredential (JSON file; repeat).")] = None,
    address: Annotated[str | None, typer.Option(
        "--facility-address", help="The facility node's URL (default: from its did:web).")
    ] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Write the declaration here (default: print it).")] = None,
    node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
) -> None:
    """Build and sign a shipment declaration on the shipper's node."""
    out, _ = consoles()
    with node_errors(node):
        if purpose not in ("repair", "repurposing", "recycling"):
            raise CliError("--purpose is repair, repurposing or recycling")
        body: dict[str, Any] = {
            "batteries": battery, "purpose": purpose, "agreementId": agreement,
            "consignee": to, "destinationCountry": country,
            "functionalityTests": [_read_json(p, "a functionality test") for p in test or []]}
        if address:
            body["counterpartyAddress"] = address
        declaration = operator_client(node, api_key).post("/management/shipments", body)
    text = json.dumps(declaration, indent=2, ensure_ascii=False)
    if out_file is None:
        print(text)
        return
    out_file.write_text(text + "\n", "utf-8")
    out.print(f"declaration {escape(str(declaration.get('id')))} of {len(battery)} "
              f"batteries written to {escape(str(out_file))}", soft_wrap=True)


def _verify_offline(declaration: Any, cache_dir: Path, max_age_h: float) -> dict[str, Any]:
    from connector.shipments.rules import classify
    from connector.shipments.verify import OfflineCache, OfflineCacheError, check_signatures
    from credentials.timestamps import now_utc

    cache = OfflineCache(cache_dir)
    now = now_utc()
    try:
        trust = cache.trust()
        verifier = cache.verifier(now, timedelta(hours=max_age_h))
    except (OfflineCacheError, ValueError) as exc:
        raise CliError(str(exc)) from None
    checks = asyncio.run(check_signatures(declaration, verifier, now))
    verdict = classify(declaration, checks, trust, now)
    verdict.sources = cache.sources()
    return verdict.to_json()


def print_verdict(verdict: dict[str, Any]) -> None:
    out, _ = consoles()
    signature = "valid" if verdict.get("signatureValid") else "[red]NOT valid[/red]"
    out.print(f"declaration {escape(str(verdict.get('declaration')))} from "
              f"{escape(str(verdict.get('consignor')))} to "
              f"{escape(str(verdict.get('consignee')))}: shipper's signature {signature}",
              soft_wrap=True)
    table = Table("battery", "purpose", "classification", "rule", "missing or failing")
    for item in verdict.get("items", []):
        missing = "\n".join(f"{m['code']}: {m['message']}" for m in item.get("missing", []))
        colour = "red" if item["classification"] == "waste" else "green"
        table.add_row(escape(str(item["battery"])), escape(str(item["declaredPurpose"])),
                      f"[{colour}]{escape(item['label'])}[/{colour}]", escape(item["rule"]),
                      escape(missing) or "-")
    fold_table(table)
    out.print(table)
    for finding in verdict.get("findings", []):
        out.print(f"  {escape(finding['code'])}: {escape(finding['message'])}", soft_wrap=True)


@shipment_app.command("verify")
def verify(
    declaration_file: Annotated[Path, typer.Argument(metavar="FILE",
                                                     help="The declaration (JSON).")],
    offline_cache: Annotated[Path | None, typer.Option(
        "--offline-cache", help="Verify from this cache only, with no network access.")
    ] = None,
    max_cache_age_h: Annotated[float, typer.Option(
        "--max-cache-age-h", min=0.0,
        help="Older cached status lists do not count (statuses become unknown).")] = 168.0,
    node: NodeOption = DEFAULT_NODE_URL, as_json: JsonOption = False,
) -> None:
    """Classify each battery: product (repair / reuse), product (repurposing) or waste.

    The verdict names the rule that decided and what is missing or failing."""
    with node_errors(node):
        declaration = _read_json(declaration_file, "the declaration")
        if offline_cache is not None:
            verdict = _verify_offline(declaration, offline_cache, max_cache_age_h)
        else:
            verdict = NodeClient(node, "").post("/shipments/verify", declaration)
    if as_json:
        print_json(verdict)
    else:
        print_verdict(verdict)
    items = verdict.get("items") or []
    if not items or any(i["classification"] == "waste" for i in items):
        raise typer.Exit(EXIT_WASTE)


@shipment_app.command("cache")
def cache(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The cache directory.")],
    declaration: Annotated[list[Path] | None, typer.Option(
        "--declaration", help="Also cache what verifying this declaration needs (repeat).")
    ] = None,
    node: NodeOption = DEFAULT_NODE_URL,
) -> None:
    """Fill an offline cache from a node (trust registry, DID documents, status lists).

    The node's trust registry and its trusted issuers' DID documents, plus the DID documents
    and status lists that verifying the given declarations needs."""
    from connector.shipments.verify import OfflineCache

    out, _ = consoles()
    with node_errors(node):
        declarations = [_read_json(p, "a declaration") for p in declaration or []]
        bundle = NodeClient(node, "").post("/shipments/cache", {"declarations": declarations})
        try:
            counts = OfflineCache(directory).store(bundle, node=node)
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot write the cache in {directory}: {exc}") from None
    out.print(f"cache {escape(str(directory))}: trust registry of {escape(node)}, "
              f"{counts['didDocuments']} DID documents, {counts['statusLists']} status lists",
              soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(shipment_app, name="shipment")


__all__ = ["register", "shipment_app"]
