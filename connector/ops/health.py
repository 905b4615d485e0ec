"""``GET /health`` and ``GET /ready``: what an orchestrator asks before it restarts a node or
sends it traffic. Both are open (no key): they say nothing a caller could use.

``/health`` is liveness: the process runs and its event loop answers. It touches nothing
else, so a slow database never gets a healthy node killed. ``/ready`` is readiness: the
identity is loaded and the store answers a trivial read within ``READY_TIMEOUT_S``; otherwise
503 with a problem body whose ``checks`` name what is not ready, so a load balancer stops
sending traffic to this replica until its database is back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from connector.ops.api_docs import Answer, api_operation
from connector.problems import ProblemDetails

logger = logging.getLogger(__name__)

#: A store slower than this to answer ``SELECT`` of its schema version is not ready.
READY_TIMEOUT_S = 2.0


class Health(BaseModel):
    """The node is alive; ``did`` says which node answered."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]
    did: str


class Readiness(BaseModel):
    """Every check passed (``checks``: name → ``ok``)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ready"]
    checks: dict[str, str] = Field(description="check name → 'ok' or why it failed")


@api_operation(summary="Liveness: the process runs", tag="operations", auth=None,
               answers=(Answer(200, Health, "The node is alive"),), problems=())
async def health(request: web.Request) -> web.Response:
    from connector.app import IDENTITY  # app.py imports this module when building an app

    return web.json_response({"status": "ok", "did": request.config_dict[IDENTITY].did})


async def _store_check(app: web.Application) -> str:
    from connector.app import STORE

    store = app.get(STORE)
    if store is None:
        return "not open"
    try:
        await asyncio.wait_for(store.schema_version(), READY_TIMEOUT_S)
    except TimeoutError:
        return f"no answer within {READY_TIMEOUT_S:g} s"
    except Exception as exc:  # whatever the driver raises: the store is not usable
        # The endpoint is open: the reason goes to the log, the answer names only its kind.
        logger.warning("readiness: the store does not answer: %s", exc)
        return f"failed ({type(exc).__name__})"
    return "ok"


@api_operation(summary="Readiness: identity loaded, store answering", tag="operations",
               auth=None, answers=(Answer(200, Readiness, "Ready for traffic"),),
               problems=(503,))
async def ready(request: web.Request) -> web.Response:
    from connector.app import IDENTITY

    app = request.app
    checks = {"identity": "ok" if IDENTITY in app else "not loaded",
              "store": await _store_check(app)}
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if not failing:
        return web.json_response({"status": "ready", "checks": checks})
    return ProblemDetails(
        503, "not-ready", "The node is not ready",
        "not ready: " + "; ".join(f"{name}: {checks[name]}" for name in failing),
        {"checks": checks, "failing": failing},
    ).response({"Retry-After": "5", "Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)


__all__ = ["READY_TIMEOUT_S", "Health", "Readiness", "add_routes", "health", "ready"]
