"""Passports over the management API, between two real nodes on loopback ports: a cell maker
mints a battery and starts its passport, hands custody to an OEM, the OEM imports the chain and
appends. Every refusal is problem JSON and changes nothing stored."""

from __future__ import annotations

import copy
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connector import samples
from connector.app import IDENTITY, STORE
from connector.management.auth import OPERATOR_AUTH
from connector.serve import RunningNode, running_node
from connector.store import CredentialRecord
from tests.connector.test_node import assert_problem, bearer, node_config, passphrase  # noqa: F401


class Operator:
    def __init__(self, node: RunningNode, session: aiohttp.ClientSession) -> None:
        key = node.app[OPERATOR_AUTH].take_generated_key()
        assert key is not None
        self.node, self.session, self.headers = node, session, bearer(key)
        self.did = node.app[IDENTITY].did

    async def call(self, method: str, path: str, body: Any = None,
                   status: int | None = None) -> Any:
        async with self.session.request(method, self.node.url + path, json=body,
                                        headers=self.headers) as response:
            text = await response.text()
            if status is not None:
                assert response.status == status, text
            return await response.json(content_type=None)

    def refused(self, method: str, path: str, body: Any) -> Any:
        return self.session.request(method, self.node.url + path, json=body,
                                    headers=self.headers)

    async def chain(self, battery: str) -> list[Any]:
        page = await self.call("GET", f"/management/batteries/{battery}/credentials?limit=500",
                               status=200)
        return [item["credential"] for item in page["items"]]

    async def stored(self, battery: str) -> list[str]:
        async with self.node.app[STORE].read() as reader:
            return [r.digest for r in await reader.passport(battery)]


@pytest.fixture
async def parties(tmp_path: Path) -> AsyncIterator[tuple[Operator, Operator]]:
    maker_config = node_config(tmp_path / "maker")
    oem_config = node_config(tmp_path / "oem")
    async with running_node(maker_config) as maker, running_node(oem_config) as oem, \
            aiohttp.ClientSession() as session:
        yield Operator(maker, session), Operator(oem, session)


async def _started(maker: Operator) -> str:
    minted = await maker.call("POST", "/management/batteries", {"label": "SN-1"}, status=201)
    battery = minted["did"]
    assert battery.startswith("did:key:z6Mk")
    made = samples.manufacturing_credential(battery, maker.did, rng=random.Random(1))
    first = await maker.call("POST", f"/management/batteries/{battery}/credentials",
                             {"credential": made}, status=201)
    assert first["position"] == 0 and first["issuer"] == maker.did
    return battery


async def test_custody_moves_from_node_to_node(parties: tuple[Operator, Operator]) -> None:
    maker, oem = parties
    battery = await _started(maker)
    handover = samples.custody_transfer(battery, maker.did, oem.did, rng=random.Random(2))
    moved = await maker.call("POST", f"/management/batteries/{battery}/credentials",
                             {"credential": handover, "suite": "eddsa-rdfc-2022"}, status=201)
    assert moved["position"] == 1

    chain = await maker.chain(battery)
    imported = await oem.call("POST", "/management/batteries/import",
                              {"credentials": chain}, status=201)
    assert imported == {"battery": battery, "length": 2, "added": 2, "custodian": oem.did,
                        "head": moved["digest"]}
    again = await oem.call("POST", "/management/batteries/import", {"credentials": chain},
                           status=200)
    assert again["added"] == 0

    fitted = samples.vehicle_integration(battery, oem.did, rng=random.Random(3))
    appended = await oem.call("POST", f"/management/batteries/{battery}/credentials",
                              {"credential": fitted, "suite": "jwt"}, status=201)
    assert appended["position"] == 2 and appended["previousDigest"] == moved["digest"]
    assert len(await oem.stored(battery)) == 3

    # the cell maker handed custody on: its node refuses to append
    late = samples.state_of_health(battery, maker.did, rng=random.Random(4))
    async with maker.refused("POST", f"/management/batteries/{battery}/credentials",
                             {"credential": late}) as response:
        body = await assert_problem(response, 409, "not-appended")
    assert "holds custody" in body["detail"]
    assert len(await maker.stored(battery)) == 2


async def test_appends_that_cannot_be_signed_are_refused(
        parties: tuple[Operator, Operator]) -> None:
    maker, _ = parties
    battery = await _started(maker)
    before = await maker.stored(battery)
    path = f"/management/batteries/{battery}/credentials"
    soh = samples.state_of_health(battery, maker.did, rng=random.Random(5))
    cases: list[tuple[str, Any, int, str]] = [
        ("unknown battery", {"credential": soh}, 404, "not-found"),
        ("other issuer", {"credential": {**soh, "issuer": "did:web:someone.example"}},
         422, "wrong-issuer"),
        ("other battery", {"credential": {**soh, "credentialSubject": {
            **soh["credentialSubject"], "id": "did:key:z6MkOther"}}}, 422, "wrong-battery"),
        ("already signed", {"credential": {**soh, "proof": {"type": "DataIntegrityProof"}}},
         422, "already-signed"),
        ("stale head", {"credential": {**soh, "credentialSubject": {
            **soh["credentialSubject"], "previousCredential": "uEiDnotthehead"}}},
         409, "stale-head"),
        ("unknown suite", {"credential": soh, "suite": "rsa"}, 400, "invalid-request"),
        ("unknown field", {"credential": soh, "sign": True}, 400, "invalid-request"),
        ("not a passport type", {"credential": {**soh, "type": ["VerifiableCredential"]}},
         422, "invalid-credential"),
    ]
    for what, body, status, slug in cases:
        target = path.replace(battery, "did:key:z6MkNobody") if status == 404 else path
        async with maker.refused("POST", target, body) as response:
            body = await assert_problem(response, status, slug)
        assert body["status"] == status, what
        assert await maker.stored(battery) == before, what


async def test_a_chain_that_does_not_verify_is_not_imported(
        parties: tuple[Operator, Operator]) -> None:
    maker, oem = parties
    battery = await _started(maker)
    handover = samples.custody_transfer(battery, maker.did, oem.did, rng=random.Random(6))
    await maker.call("POST", f"/management/batteries/{battery}/credentials",
                     {"credential": handover}, status=201)
    chain = await maker.chain(battery)

    tampered = copy.deepcopy(chain)
    tampered[0]["credentialSubject"]["ratedEnergyKWh"] = "99.9"
    async with oem.refused("POST", "/management/batteries/import",
                           {"credentials": tampered}) as response:
        body = await assert_problem(response, 422, "passport-not-verified")
    assert body["findings"]
    async with oem.refused("POST", "/management/batteries/import",
                           {"credentials": chain[::-1]}) as response:
        await assert_problem(response, 422, "passport-not-verified")
    async with oem.refused("POST", "/management/batteries/import",
                           {"credentials": []}) as response:
        await assert_problem(response, 400, "invalid-request")
    async with oem.node.app[STORE].read() as reader:
        assert await reader.get_battery(battery) is None

    # the OEM holds the first entry and, at position 1, an entry the chain sent does not have
    await oem.call("POST", "/management/batteries/import", {"credentials": chain[:1]},
                   status=201)
    first = (await oem.stored(battery))[0]
    async with oem.node.app[STORE].transaction() as tx:
        await tx.add_credential(CredentialRecord(
            battery_did=battery, position=1, digest="uEiDanotherentry", previous_digest=first,
            issuer=maker.did, types=("VerifiableCredential", "StateOfHealthCredential"),
            credential={"credentialSubject": {"id": battery}}))
    async with oem.refused("POST", "/management/batteries/import",
                           {"credentials": chain}) as response:
        body = await assert_problem(response, 409, "diverged")
    assert body["held"] == 2
    assert await oem.stored(battery) == [first, "uEiDanotherentry"]
