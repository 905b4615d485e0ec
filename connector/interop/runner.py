"""Runs checks one after another; whatever a target does, the run ends with a result for each.

Each check gets its own time limit; a timeout, a ``CheckFailed``/``CheckSkipped`` or any
exception inside a check (a misbehaving target can make a check's own parsing fail) becomes
that check's result, with the HTTP exchanges it made (and the messages the target sent the
harness meanwhile) as evidence. The harness itself never raises out of ``run_checks``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from connector.interop.context import Context
from connector.interop.model import Check, CheckFailed, CheckResult, CheckSkipped, Status

DEFAULT_CHECK_TIMEOUT_S = 60.0


async def run_check(ctx: Context, check: Check,
                    timeout_s: float = DEFAULT_CHECK_TIMEOUT_S) -> CheckResult:
    ctx.evidence = []
    received_before = len(ctx.callback.received)
    started = time.perf_counter()
    try:
        reason = await asyncio.wait_for(check.run(ctx), timeout_s)
        status, why = Status.PASS, reason or "passed"
    except CheckSkipped as exc:
        status, why = Status.SKIP, exc.reason
    except CheckFailed as exc:
        status, why = Status.FAIL, exc.reason
    except TimeoutError:
        status, why = Status.FAIL, f"no result within {timeout_s:g} s (check timeout)"
    except Exception as exc:
        status, why = Status.FAIL, f"harness error: {type(exc).__name__}: {exc}"
    evidence = (*ctx.evidence, *ctx.callback.received[received_before:])
    return CheckResult(check.id, check.title, check.group, status, why,
                       time.perf_counter() - started, check.negative, tuple(evidence))


async def run_checks(ctx: Context, checks: Iterable[Check], *,
                     timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
                     progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    results = []
    for check in checks:
        result = await run_check(ctx, check, timeout_s)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
