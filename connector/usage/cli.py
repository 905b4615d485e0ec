"""``bpc receipts list|overdue`` (provider) and ``bpc received`` (consumer): usage control as a
running node sees it, through its management API (like ``bpc agreements``; same options,
exit codes and ``--json``)."""

from __future__ import annotations

from typing import Annotated

import typer

from connector.consumer_cli import (
    PANEL,
    AfterOption,
    ApiKeyOption,
    JsonOption,
    LimitOption,
    NodeOption,
    list_collection,
    show_time,
)
from connector.node_client import DEFAULT_NODE_URL

AgreementOption = Annotated[str | None, typer.Option(
    "--agreement", help="Only this agreement.")]

receipts_app = typer.Typer(help="Deletion receipts consumers sent this node (as provider).",
                           no_args_is_help=True)


@receipts_app.command("list")
def receipts_list(agreement: AgreementOption = None, limit: LimitOption = 100,
                  after: AfterOption = None, node: NodeOption = DEFAULT_NODE_URL,
                  api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """The signed deletion receipts this node recorded."""
    list_collection("deletion-receipts", node, api_key, as_json, [
        ("receipt", lambda r: r.get("id")), ("agreement", lambda r: r.get("agreementId")),
        ("consumer", lambda r: r.get("consumerId")),
        ("purged", lambda r: show_time(r.get("purgedAt"))),
        ("received", lambda r: show_time(r.get("receivedAt"))),
    ], agreementId=agreement, limit=str(limit), after=after)


@receipts_app.command("overdue")
def receipts_overdue(limit: LimitOption = 100, after: AfterOption = None,
                     node: NodeOption = DEFAULT_NODE_URL, api_key: ApiKeyOption = None,
                     as_json: JsonOption = False) -> None:
    """Agreements whose consumer should have deleted the data and sent a receipt by now."""
    list_collection("deletion-receipts/overdue", node, api_key, as_json, [
        ("agreement", lambda o: o.get("agreementId")), ("consumer", lambda o: o.get("consumerDid")),
        ("asset", lambda o: o.get("assetId")), ("due", lambda o: show_time(o.get("dueAt"))),
        ("overdue (h)", lambda o: f"{o.get('overdueBy', 0) / 3600:.1f}"),
    ], limit=str(limit), after=after)


def received(agreement: AgreementOption = None, limit: LimitOption = 100,
             after: AfterOption = None, node: NodeOption = DEFAULT_NODE_URL,
             api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Data this node received as consumer: when it is (or was) deleted and whether the
    provider took the deletion receipt (the data itself is never shown here)."""
    list_collection("received-data", node, api_key, as_json, [
        ("transfer", lambda d: d.get("transferId")), ("agreement", lambda d: d.get("agreementId")),
        ("asset", lambda d: d.get("assetId")),
        ("received", lambda d: show_time(d.get("receivedAt"))),
        ("purge at", lambda d: show_time(d.get("purgeAt"))),
        ("purged", lambda d: show_time(d.get("purgedAt"))),
        ("receipt sent", lambda d: show_time(d.get("receiptSentAt"))),
    ], agreementId=agreement, limit=str(limit), after=after)


def register(app: typer.Typer) -> None:
    """Add ``receipts`` and ``received`` to the ``bpc`` app (the node-client panel)."""
    app.add_typer(receipts_app, name="receipts", rich_help_panel=PANEL)
    app.command("received", rich_help_panel=PANEL)(received)


__all__ = ["register"]
