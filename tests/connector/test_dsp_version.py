"""``GET /.well-known/dspace-version`` on a real node: unauthenticated, schema-valid 2025-1."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from connector.app import create_app
from connector.dsp.messages import parse_version_response
from connector.dsp.schemas import schema_errors
from connector.serve import running_node
from tests.connector.test_node import node_config, passphrase  # noqa: F401


async def test_version_metadata_is_public_and_schema_valid(tmp_path: Path) -> None:
    config = node_config(tmp_path / "data")
    app = create_app(config)  # registers the version route with the others
    async with running_node(config, app) as node, aiohttp.ClientSession() as session:
        async with session.get(f"{node.url}/.well-known/dspace-version") as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "application/json"
            body = await response.json()
    assert schema_errors(body, "VersionResponse") == []
    assert body == {"protocolVersions": [{"version": "2025-1", "path": "/", "binding": "HTTPS"}]}
    (version,) = parse_version_response(body).protocol_versions
    assert (version.version, version.path, version.binding) == ("2025-1", "/", "HTTPS")
