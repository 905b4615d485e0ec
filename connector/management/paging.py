"""Keyset paging of the management API's lists, one rule for every list.

``?limit=`` (1 to 500, default 100) and ``?after=<last id of the previous page>``; the answer
is ``{"items": [...], "next": <cursor or null>}``. A bad query is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connector.problems import ProblemDetails, ProblemError

MAX_PAGE = 500
DEFAULT_PAGE = 100


def invalid_query(parameter: str, detail: str) -> ProblemError:
    return ProblemError(ProblemDetails(400, "invalid-query", "Invalid query parameter", detail,
                                       {"parameter": parameter}))


def paging(request: web.Request) -> tuple[int, str | None]:
    """``(limit, after)`` from the query; 400 naming ``limit`` when it is out of range."""
    raw = request.query.get("limit", str(DEFAULT_PAGE))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise invalid_query("limit", f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(raw), request.query.get("after") or None


def page(items: list[dict[str, Any]], raw_count: int, limit: int, last: str | None) -> web.Response:
    """One page; ``next`` is the cursor when the page is full (there may be more)."""
    return web.json_response({"items": items, "next": last if raw_count == limit else None})


__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "invalid_query", "page", "paging"]
