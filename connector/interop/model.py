"""What a check is and what it yields: ``Check``, ``CheckResult``, the evidence it keeps.

A check is a coroutine taking the run's ``Context``; it returns the reason it passed (a short
sentence), or raises ``CheckFailed`` / ``CheckSkipped`` with the reason. The HTTP exchanges it
made are its evidence, collected by the context (``Context.evidence``) so a failure report
shows what the target answered without every check having to pass it along.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.interop.context import Context

MAX_EVIDENCE_TEXT = 2000
"""How much of a response body a report keeps (a catalog can be large)."""


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request the harness made or received, and what came back (or went wrong)."""

    method: str
    url: str
    status: int | None = None
    content_type: str | None = None
    text: str = ""
    error: str | None = None
    request: Any = None
    direction: str = "sent"  # "sent": the harness called; "received": the target called us

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {"direction": self.direction, "method": self.method,
                                  "url": self.url, "status": self.status,
                                  "contentType": self.content_type,
                                  "body": self.text[:MAX_EVIDENCE_TEXT]}
        if self.error:
            values["error"] = self.error
        if self.request is not None:
            values["request"] = self.request
        return values

    def summary(self) -> str:
        answer = self.error or f"{self.status} {self.text[:300]}"
        return f"{self.method} {self.url} -> {answer}"


class CheckFailed(Exception):
    """The target did not behave as the check requires."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CheckSkipped(Exception):
    """The check cannot run against these targets (a missing URL, key, trigger, prerequisite)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


CheckRun = Callable[["Context"], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Check:
    """One separately runnable check. ``roles``: which target it examines ("provider",
    "consumer"); ``negative``: it expects the target to refuse something."""

    id: str
    title: str
    group: str
    roles: frozenset[str]
    run: CheckRun
    negative: bool = False


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    title: str
    group: str
    status: Status
    reason: str
    duration_s: float
    negative: bool = False
    evidence: tuple[Exchange, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "group": self.group,
                "status": str(self.status), "reason": self.reason,
                "durationS": round(self.duration_s, 3), "negative": self.negative,
                "evidence": [exchange.to_json() for exchange in self.evidence]}
