"""The kit's identity stub (``connector/dsp/tck_identity.py``): on a node under test, the
literal Authorization header the compatibility kit sends is accepted as its participant; any
other value still needs a signed participant token; the stub cannot be switched on without
``tck_triggers``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from connector.app import create_app
from connector.config import ConfigError, NodeConfig, load_config
from connector.serve import RunningNode, running_node
from tests.connector.interop.test_interop_nodes import (  # noqa: F401
    PASSPHRASE_ENV,
    env,
    free_port,
)

OPERATOR_KEY = "o" * 32
KIT_AUTHORIZATION = '{"clientId":"TCK_PARTICIPANT","audience":"any","scope":"catalog"}'


@pytest.fixture
async def under_test(tmp_path: Path) -> AsyncIterator[RunningNode]:
    port = free_port()
    config = NodeConfig(public_base_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "cut",
                        keystore_passphrase_env=PASSPHRASE_ENV,
                        shutdown_timeout_s=1, tck_triggers=True,
                        tck_authorization=KIT_AUTHORIZATION, operator_api_key=OPERATOR_KEY)
    async with running_node(config, create_app(config)) as node:
        yield node


async def _post(node: RunningNode, path: str, body: object, authorization: str | None,
                ) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with aiohttp.ClientSession() as session, session.post(
            node.url + path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_the_kits_static_header_stands_for_its_participant(
        under_test: RunningNode) -> None:
    status, asset = await _post(under_test, "/management/assets", {
        "batteryDid": "did:key:z6MkKitBattery", "accessLevel": "sustainability",
        "title": "for the kit only", "dataSource": {"kind": "inline", "data": {"x": 1}},
        "allowedParticipants": ["did:web:localhost%3A8083"]}, f"Bearer {OPERATOR_KEY}")
    assert status == 201, asset
    request = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
               "@type": "CatalogRequestMessage"}
    status, catalog = await _post(under_test, "/catalog/request", request, KIT_AUTHORIZATION)
    assert status == 200, catalog
    # the caller is the kit's participant: it sees the seeds and what is allow-listed for it
    assert {d["@id"] for d in catalog["dataset"]} >= {  # type: ignore[union-attr]
        "CAT0101", "CAT0102", asset["id"]}
    for wrong in ("Bearer " + KIT_AUTHORIZATION, KIT_AUTHORIZATION.upper(), "", None):
        status, error = await _post(under_test, "/catalog/request", request, wrong)
        assert status == 401 and error["@type"] == "CatalogError", wrong


def test_the_stub_needs_tck_triggers(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(f"tck_authorization = '{KIT_AUTHORIZATION}'\n")
    with pytest.raises(ConfigError, match="tck_triggers"):
        load_config(path, environ={})
    path.write_text(f"tck_triggers = true\ntck_authorization = '{KIT_AUTHORIZATION}'\n"
                    "tck_participant_did = 'TCK_PARTICIPANT'\n")
    with pytest.raises(ConfigError, match="tck_participant_did"):
        load_config(path, environ={})
