"""``bpc passport``: import, show, audit and trace battery passports kept in local files."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.keystore_cli import CliError
from connector.passport_files import Credential, PassportFiles
from credentials import DIDResolver, HttpDIDFetcher, Verifier
from credentials.passport.audit import AuditReport, audit
from credentials.passport.chain import (
    Passport,
    credential_digest,
    credential_types,
    issuer_of,
)
from credentials.passport.errors import PassportError
from credentials.passport.mass_balance import (
    MaterialGraph,
    check,
    compare_with_minimums,
    recycled_content,
)
from credentials.passport.trace import trace

passport_app = typer.Typer(help="Battery passports: import, show, audit, trace.",
                           no_args_is_help=True)
out = Console(emoji=False, highlight=False)

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Passport folder [default: $BPC_DATA or "
                 "$XDG_DATA_HOME/bpc/passports]"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def read_credentials(path: Path) -> list[Credential]:
    """Credentials from a file: a JSON credential, a JSON array, JSON Lines, or JWT lines."""
    try:
        text = path.read_text("utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if text.startswith("["):
            items = json.loads(text)
            return [i for i in items if isinstance(i, dict | str)]
        if text.startswith("{") and "\n{" not in text:
            return [json.loads(text)]
        # JSON Lines: objects, or JWTs as JSON strings; bare JWT lines are accepted too
        return [json.loads(line) if line[0] in '{"' else line
                for line in (raw.strip() for raw in text.splitlines()) if line]
    except ValueError as exc:
        raise CliError(f"{path} is not JSON, JSON Lines or JWT lines: {exc}") from exc


def _verifier() -> Verifier:
    return Verifier(DIDResolver(web_fetcher=HttpDIDFetcher()))


@passport_app.command("import")
def passport_import(
    files: Annotated[list[Path], typer.Argument(help="Credential files to add.")],
    data: DataOption = None,
) -> None:
    """Verify credentials and add the valid ones to the local passport folder."""
    store = PassportFiles(data)
    verifier = _verifier()
    rejected = 0
    for path in files:
        for credential in read_credentials(path):
            result = asyncio.run(verifier.verify_credential(credential))
            if result.verified:
                store.add(credential)
                out.print(f"added    {', '.join(credential_types(credential))} "
                          f"{credential_digest(credential)[:16]}…")
            else:
                rejected += 1
                reasons = "; ".join(f"{p.type}: {p.message}" for p in result.problems)
                out.print(f"[red]rejected[/red] {escape(path.name)}: {escape(reasons)}")
    raise typer.Exit(1 if rejected else 0)


def _entries(target: str, data: Path | None) -> list[Credential]:
    path = Path(target)
    if path.is_file():
        return read_credentials(path)
    if not target.startswith("did:"):
        raise CliError(f"{target} is neither a file nor a DID")
    entries = PassportFiles(data).passport(target)
    if not entries:
        raise CliError(f"no passport entries for {target} in {PassportFiles(data).folder}")
    return entries


@passport_app.command("show")
def passport_show(
    did: Annotated[str, typer.Argument(help="Battery DID.")],
    data: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """The passport's entries in chain order, its custodian, and its recycled content."""
    entries = _entries(did, data)
    report = asyncio.run(audit(entries, verifier=_verifier()))
    graph = MaterialGraph.from_credentials(PassportFiles(data).json_credentials())
    verdicts = compare_with_minimums(recycled_content(graph, did), on=date.today())
    if as_json:
        print(json.dumps({"audit": report.to_json(), "recycledContent": [
            _verdict_json(v) for v in verdicts]}, indent=2))
        return
    print_passport(report, entries, out)
    print_recycled_content(verdicts, out)


def print_passport(report: AuditReport, entries: list[Credential], console: Console) -> None:
    table = Table("#", "credential", "issuer", "digest", "findings",
                  title=f"passport of {report.battery}")
    flagged = {f.index for f in report.errors}
    for position, index in enumerate(report.order, start=1):
        entry = entries[index]
        types = [t for t in credential_types(entry) if t != "VerifiableCredential"]
        findings = ", ".join(sorted(str(t) for t in report.types_at(index))) or "-"
        style = "red" if index in flagged else ""
        table.add_row(str(position), ", ".join(types), _short(issuer_of(entry)),
                      report.digests[index][:14] + "…", findings, style=style)
    console.print(table)
    console.print(f"custodian: {report.custodian}", soft_wrap=True)


def print_recycled_content(verdicts: list[Any], console: Console) -> None:
    table = Table("element", "recycled share", "minimum 2031", "minimum 2036", "status",
                  title="recycled content (Regulation (EU) 2023/1542 Art. 8)")
    minimums = {"Co": ("16", "26"), "Li": ("6", "12"), "Ni": ("6", "15"), "Pb": ("85", "85")}
    for verdict in verdicts:
        share = "-" if verdict.share_pct is None else f"{verdict.share_pct:.1f} %"
        low, high = minimums.get(verdict.element, ("-", "-"))
        table.add_row(verdict.element, share, f"{low} %", f"{high} %", str(verdict.status))
    console.print(table)


def _verdict_json(verdict: Any) -> dict[str, Any]:
    return {"element": verdict.element, "status": str(verdict.status),
            "sharePct": None if verdict.share_pct is None else str(verdict.share_pct),
            "minimumPct": None if verdict.minimum_pct is None else str(verdict.minimum_pct)}


def _short(did: str) -> str:
    return did if len(did) <= 28 else did[:24] + "…"


@passport_app.command("audit")
def passport_audit(
    target: Annotated[str, typer.Argument(help="Battery DID, or a file of its credentials.")],
    original: Annotated[str | None, typer.Option(
        help="For a repurposed battery: the original battery's DID or credentials file.")]
    = None,
    data: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify every signature, link, custody step and validity period. Exit 1 on errors."""
    entries = _entries(target, data)
    try:
        before = Passport.from_entries(_entries(original, data)) if original else None
    except PassportError as exc:
        raise CliError(f"the original passport does not hold together: {exc}") from exc
    report = asyncio.run(audit(entries, verifier=_verifier(), original=before))
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_passport(report, entries, out)
        print_findings(report, out)
    raise typer.Exit(0 if report.ok else 1)


def print_findings(report: AuditReport, console: Console) -> None:
    if not report.findings:
        console.print("[green]audit ok:[/green] every signature, link and custody step holds")
        return
    for finding in report.findings:
        colour = "red" if finding in report.errors else "yellow"
        where = "" if finding.index is None else f"entry {finding.index}: "
        console.print(f"[{colour}]{finding.type}[/{colour}] {escape(where + finding.message)}",
                      soft_wrap=True)


@passport_app.command("trace")
def passport_trace(
    did: Annotated[str, typer.Argument(help="Battery DID.")],
    element: Annotated[str, typer.Option(help="Element symbol, e.g. Co, Li, Ni.")] = "Co",
    data: DataOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where this battery's element came from: mines, countries, certificates, shares."""
    graph = MaterialGraph.from_credentials(PassportFiles(data).json_credentials())
    if did not in graph.batteries:
        raise CliError(f"no manufacturing credential for {did} in the passport folder")
    result = trace(graph, did, element)
    findings = check(graph)
    if as_json:
        print(json.dumps({
            "battery": did, "element": element, "elementMassKg": str(result.element_mass_kg),
            "sources": [{"batch": s.batch, "material": s.material, "country": s.country,
                         "site": s.site, "certifications": list(s.certifications),
                         "sharePct": str(s.share_pct)} for s in result.sources],
            "massBalance": [f.to_json() for f in findings],
        }, indent=2))
        return
    print_trace(result, out)


def print_trace(result: Any, console: Console) -> None:
    table = Table("share", "material", "country", "site", "certifications",
                  title=f"where the {result.element} of {_short(result.battery)} came from "
                        f"({result.element_mass_kg:.2f} kg)")
    for source in sorted(result.sources, key=lambda s: -s.share_pct):
        table.add_row(f"{source.share_pct:.1f} %", source.material or "-", source.country or "-",
                      source.site or "-", ", ".join(source.certifications) or "-")
    console.print(table)
    for batch in result.untraced_inputs:
        console.print(f"[yellow]untraced:[/yellow] no batch credential for input {batch}",
                      soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)


@passport_app.command("qr")
def passport_qr(
    did: Annotated[str, typer.Argument(help="Battery DID (or its passport id).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The label PNG to write.")],
    node: Annotated[str, typer.Option(
        "--node", envvar="BPC_NODE_URL",
        help="The node serving the passport page (its public_base_url).")]
    = "http://127.0.0.1:8181",
    offline: Annotated[bool, typer.Option(
        "--offline", help="Do not ask the node: build the URL from --node and put the DID "
        "under the code.")] = False,
) -> None:
    """Write a printable label: the QR code of the passport page, the battery identifier
    under it. The URL is the one the node serves the page at (asked from the node)."""
    from connector.passport_page.identifiers import UnknownReference, battery_did, page_url
    from connector.passport_page.qr import label_png

    try:
        battery = battery_did(did)
    except UnknownReference as exc:
        raise CliError(str(exc)) from exc
    base = node.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CliError(f"--node must be an http(s) URL, not {node!r}")
    if offline:
        url, lines = page_url(base, battery), [battery]
    else:
        url, lines = _page_from_node(base, battery)
    try:
        output.write_bytes(label_png(url, lines))
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror}") from exc
    out.print(f"wrote {escape(str(output))}: QR code of {escape(url)}", soft_wrap=True)


def _page_from_node(base: str, battery: str) -> tuple[str, list[str]]:
    """The page URL the node publishes for ``battery`` and the label text (the public
    battery identifier, then the DID)."""
    import urllib.error
    import urllib.request

    from connector.passport_page.identifiers import page_path

    request = urllib.request.Request(base + page_path(battery) + "?format=json",
                                     headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            view = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise CliError(f"the node at {base} keeps no passport for {battery}") from exc
        raise CliError(f"the node at {base} answered {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise CliError(f"cannot read the passport page from {base}: {exc} (use --offline to "
                       "build the label without the node)") from exc
    identifier = next((a["value"] for a in view.get("attributes", [])
                       if a.get("term") == "batteryIdentifier"), None)
    lines = [identifier, battery] if identifier else [battery]
    return str(view["pageUrl"]), lines
