"""The node's log lines: for people (``text``) or one JSON object per line (``json``).

Log collectors (Loki, Elasticsearch, CloudWatch) parse JSON lines without fragile patterns, and
``extra={...}`` fields of a call (a process id, a transfer id) arrive as their own keys, so an
operator can filter by them. Either way every finished line is scrubbed (``scrub``): the node
never writes a bearer token, an operator key or an access token to its log, even when a
message, an extra field (aiohttp's access log passes the request line, query string and all)
or an exception quotes one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"

#: What a secret looks like inside a log message: an ``Authorization`` value, the operator key
#: (``bpc_op_…``), a compact JWT (access and refresh tokens are JWTs or opaque bearer values).
_SECRETS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bbpc_op_[A-Za-z0-9_-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)

#: Attributes every ``LogRecord`` has; anything else was passed with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


def scrub(text: str) -> str:
    """``text`` with every secret-looking value replaced (the scheme word is kept)."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: f"{m.group(1)} {REDACTED}" if m.lastindex else REDACTED,
                           text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the ``extra`` fields, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in line:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        # The whole line, extra fields included (aiohttp's access log passes the request line
        # as one): a secret anywhere in it is gone before it is written.
        return scrub(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """The classic one-line format, scrubbed (message, arguments and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: str, log_format: Literal["text", "json"],
                      stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr) in ``log_format``.

    Replaces handlers a previous call installed, so it is safe to call once per ``serve``.
    Returns the handler (tests read what it wrote)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_bpc_node", False)]:
        root.removeHandler(old)
    handler._bpc_node = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "scrub"]
