"""Every check, by id, in run order; selection by id or glob (``--only``, ``--skip``).

Check modules register at import (``checks/__init__`` imports them all in suite order), so the
order of the suite is the order of the modules and, within one, of the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from connector.interop.model import Check

_CHECKS: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.id in _CHECKS:
        raise ValueError(f"check id {check.id!r} registered twice")
    _CHECKS[check.id] = check
    return check


def all_checks() -> list[Check]:
    import connector.interop.checks  # noqa: F401 - registers every check module

    return list(_CHECKS.values())


def _matches(check: Check, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(check.id, pattern) or fnmatchcase(check.group, pattern)
               for pattern in patterns)


def select(only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Check]:
    """The checks whose id (or group) matches ``only`` (all when empty) and not ``skip``.

    Patterns are shell globs on the id, e.g. ``CN:*``, ``TP_C:03-*``, ``IOP:*``; an exact id
    works as itself. A pattern that matches nothing is a ``ValueError`` (a typo must not
    silently select nothing)."""
    checks = all_checks()
    only, skip = list(only), list(skip)
    for pattern in [*only, *skip]:
        if not any(_matches(check, [pattern]) for check in checks):
            raise ValueError(f"no check matches {pattern!r} (bpc interop --list shows the ids)")
    chosen = [check for check in checks if not only or _matches(check, only)]
    return [check for check in chosen if not _matches(check, skip)]
