"""MET: version metadata (``/.well-known/dspace-version``), the kit's MET:01-01."""

from __future__ import annotations

from connector.dsp.schemas import schema_errors
from connector.interop.context import Context, Target
from connector.interop.kit import KEY_BASE_URL, SCENARIOS
from connector.interop.model import Check, CheckFailed
from connector.interop.registry import register

VERSION_PATH = "/.well-known/dspace-version"


async def check_version(ctx: Context, target: Target) -> str:
    base = ctx.kit.get(KEY_BASE_URL) if target is ctx.provider else None
    url = (base or target.dsp_url).rstrip("/") + VERSION_PATH
    status, body, _ = await ctx.http.call("GET", url)
    if status != 200:
        raise CheckFailed(f"GET {url} answered {status}")
    if not isinstance(body, dict):
        raise CheckFailed(f"the version metadata is not a JSON object: {str(body)[:300]}")
    errors = schema_errors(body, "VersionResponse")
    if errors:
        raise CheckFailed(f"the version metadata breaks the official schema: {errors[:3]}")
    entries = [v for v in body.get("protocolVersions", []) if isinstance(v, dict)
               and v.get("version") == "2025-1" and v.get("path") and v.get("binding")]
    if not entries:
        raise CheckFailed(f"no protocolVersions entry for 2025-1 with path and binding: {body}")
    return f"2025-1 at path {entries[0]['path']!r} ({entries[0]['binding']})"


async def _provider(ctx: Context) -> str:
    return await check_version(ctx, ctx.provider)


async def _consumer(ctx: Context) -> str:
    return await check_version(ctx, ctx.need_consumer())


_MET = next(s for s in SCENARIOS if s.id == "MET:01-01")
register(Check(_MET.id, _MET.title, "MET", frozenset({"provider"}), _provider))
register(Check("IOP:MET-02", "Consumer version metadata lists DSP 2025-1", "IOP",
               frozenset({"consumer"}), _consumer))
