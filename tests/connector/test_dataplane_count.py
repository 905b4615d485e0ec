"""``odrl:count`` is enforced by the data plane: each fetch is counted under a lock on the
agreement's counter, the fetch after the last permitted one is refused (and audited), and the
spent agreement ends its transfer like an expired one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from connector.app import IDENTITY, STORE
from connector.dataplane.pull import PullRefused, pull
from connector.dsp import messages as m
from connector.policy_gate import PARTICIPANT_DID
from tests.connector.test_dataplane_http import (
    BATTERY,
    DISMANTLING,
    OPERATOR_KEY,
    Clock,
    Setup,
    node,
    passphrase,  # noqa: F401 - autouse fixture
    started,
)
from tests.connector.test_dsp_transfer_http import wait_transfer

USES = 2


async def _publish_counted(provider_url: str, session: aiohttp.ClientSession,
                           consumer_did: str) -> tuple[str, m.MessageOffer]:
    headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}

    async def post(path: str, body: dict[str, object]) -> dict[str, object]:
        async with session.post(provider_url + path, json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            return dict(await response.json())

    asset = await post("/management/assets", {
        "batteryDid": BATTERY, "accessLevel": "dismantling-safety", "title": "Dismantling",
        "dataSource": {"kind": "inline", "data": DISMANTLING}})
    policy = await post("/management/policies", {"policy": {
        "@type": "Set", "permission": [{"action": "use", "constraint": [{"and": [
            {"leftOperand": PARTICIPANT_DID, "operator": "isAnyOf",
             "rightOperand": [consumer_did]},
            {"leftOperand": "odrl:count", "operator": "lteq", "rightOperand": str(USES)}]}]}]}})
    offer = await post("/management/offers", {"assetId": asset["id"], "policyId": policy["id"]})
    published = {k: v for k, v in dict(offer["offer"]).items() if k != "@context"}  # type: ignore[arg-type]
    return str(asset["id"]), m.MessageOffer.model_validate({**published,
                                                            "target": asset["id"]})


@pytest.fixture
async def counted(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = Clock()
    async with (
        node(tmp_path / "oem", clock) as provider,
        node(tmp_path / "recycler", clock) as consumer,
        aiohttp.ClientSession() as session,
    ):
        asset, offer = await _publish_counted(provider.url, session,
                                              consumer.app[IDENTITY].did)
        yield Setup(provider, consumer, session, clock, asset, asset, offer)


async def test_the_fetch_after_the_permitted_count_is_refused_and_ends_access(
        counted: Setup) -> None:
    consumer, provider = await started(counted)
    for _ in range(USES):
        pulled = await pull(counted.consumer.app, consumer.id)
        assert json.loads(pulled.body)["data"] == DISMANTLING
    with pytest.raises(PullRefused) as refused:
        await pull(counted.consumer.app, consumer.id)
    assert refused.value.status == 403
    assert "number of uses is spent" in str(refused.value)
    ended = await wait_transfer(counted.provider.app, provider.id, "TERMINATED")
    assert ended.failed_constraint == "agreement-ended"
    async with counted.provider.app[STORE].read() as reader:
        usage = await reader.get_agreement_usage(provider.agreement_id)
        audit = await reader.list_audit(subject_id=provider.id, limit=100)
    assert usage is not None and usage.access_count == USES
    actions = [(e.action, e.details.get("reason")) for e in audit
               if e.action.startswith("dataplane.")]
    assert actions.count(("dataplane.served", None)) == USES
    refusals = [reason for action, reason in actions if action == "dataplane.refused"]
    assert refusals and all("spent" in str(reason) for reason in refusals)


async def test_concurrent_fetches_never_exceed_the_count(counted: Setup) -> None:
    consumer, _ = await started(counted)
    results = await asyncio.gather(*(pull(counted.consumer.app, consumer.id) for _ in range(5)),
                                   return_exceptions=True)
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, PullRefused)]
    assert len(served) == USES
    assert len(served) + len(refused) == 5
