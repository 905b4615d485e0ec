"""DSP 2025-1 version discovery: ``GET /.well-known/dspace-version``.

Unversioned and unauthenticated (common.protocol.md): anyone may ask which DSP versions this
node speaks before it can authenticate. We speak exactly one, ``2025-1``, over the HTTPS
binding, with the protocol endpoints at the node's root (path ``/``, so ``<base>`` =
``public_base_url``). The body is plain JSON (no ``@context``), valid against
``common/protocol-version-schema.json``.
"""

from __future__ import annotations

from aiohttp import web

from connector.dsp.messages import Version, VersionResponse

PROTOCOL_VERSION = "2025-1"
VERSION_PATH = "/.well-known/dspace-version"

VERSION_RESPONSE = VersionResponse(
    protocol_versions=[Version(version=PROTOCOL_VERSION, path="/", binding="HTTPS")],
)


async def dspace_version(request: web.Request) -> web.Response:
    """``GET /.well-known/dspace-version``: the version metadata, to anyone."""
    return web.json_response(VERSION_RESPONSE.to_json())


def add_routes(app: web.Application) -> None:
    """Register the version metadata endpoint on ``app``."""
    app.router.add_get(VERSION_PATH, dspace_version)
