"""One run of the suite: the harness participant, its callback server, the two targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from connector.interop.callback import CallbackServer
from connector.interop.context import Context, Target
from connector.interop.http import Http, harness_key
from connector.interop.kit import KitConfig
from connector.interop.model import Check, CheckResult
from connector.interop.runner import DEFAULT_CHECK_TIMEOUT_S, run_checks


@dataclass(frozen=True, slots=True)
class Options:
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S
    wait_s: float = 10.0
    http_timeout_s: float = 10.0
    callback_host: str = "127.0.0.1"
    callback_port: int = 0
    harness_seed_hex: str | None = None
    kit: KitConfig = field(default_factory=KitConfig)


async def run_suite(provider: Target, consumer: Target | None, checks: Sequence[Check],
                    options: Options = Options(),
                    progress: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    callback = CallbackServer(options.callback_host, options.callback_port)
    await callback.start()
    try:
        async with aiohttp.ClientSession() as session:
            evidence: list[Context] = []
            http = Http(session, harness_key(options.harness_seed_hex),
                        lambda exchange: evidence[0].record(exchange),
                        timeout_s=options.http_timeout_s)
            ctx = Context(provider, consumer, http, callback, options.kit,
                          wait_s=options.kit.wait_s(options.wait_s))
            evidence.append(ctx)
            return await run_checks(ctx, checks, timeout_s=options.check_timeout_s,
                                    progress=progress)
    finally:
        await callback.stop()
