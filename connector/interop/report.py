"""The run's results as a rich table, JSON, or JUnit XML (one testcase per check)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from connector.interop.model import CheckResult, Status

_STYLE = {Status.PASS: "green", Status.FAIL: "red", Status.SKIP: "yellow"}


def counts(results: Sequence[CheckResult]) -> dict[str, int]:
    tally = Counter(str(result.status) for result in results)
    return {"total": len(results), "passed": tally["pass"], "failed": tally["fail"],
            "skipped": tally["skip"]}


def table(results: Sequence[CheckResult], title: str = "bpc interop") -> Table:
    summary = counts(results)
    view = Table(title=f"{title}: {summary['passed']} passed, {summary['failed']} failed, "
                       f"{summary['skipped']} skipped", title_justify="left")
    for column in ("check", "title", "result", "reason"):
        view.add_column(column, overflow="fold")
    for result in results:
        style = _STYLE[result.status]
        reason = result.reason
        if result.status is Status.FAIL and result.evidence:
            reason += f" [last: {result.evidence[-1].summary()[:200]}]"
        view.add_row(result.id, escape(result.title[:70]),
                     f"[{style}]{result.status}[/{style}]", escape(reason))
    return view


def to_json(results: Sequence[CheckResult], **about: Any) -> dict[str, Any]:
    return {**about, "summary": counts(results),
            "checks": [result.to_json() for result in results]}


def dumps(results: Sequence[CheckResult], **about: Any) -> str:
    return json.dumps(to_json(results, **about), indent=2, ensure_ascii=False)


def junit(results: Sequence[CheckResult], name: str = "bpc-interop") -> ET.ElementTree:
    summary = counts(results)
    total_time = sum(result.duration_s for result in results)
    suites = ET.Element("testsuites", name=name, tests=str(summary["total"]),
                        failures=str(summary["failed"]), skipped=str(summary["skipped"]),
                        time=f"{total_time:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=name, tests=str(summary["total"]),
                          failures=str(summary["failed"]), errors="0",
                          skipped=str(summary["skipped"]), time=f"{total_time:.3f}")
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=result.group, name=result.id,
                             time=f"{result.duration_s:.3f}")
        ET.SubElement(case, "properties").append(
            ET.Element("property", name="title", value=result.title))
        if result.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", message=result.reason, type="CheckFailed")
            failure.text = "\n".join(exchange.summary() for exchange in result.evidence)
        elif result.status is Status.SKIP:
            ET.SubElement(case, "skipped", message=result.reason)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(results: Sequence[CheckResult], path: str, name: str = "bpc-interop") -> None:
    junit(results, name).write(path, encoding="utf-8", xml_declaration=True)
