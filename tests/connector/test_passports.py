"""The node's passport book: appends link to the head, only the custodian may append, two
writers never take one position, another replica's append is picked up, and plugins hear of
each append (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from connector.passports import PassportAppendError, PassportBook
from connector.samples import manufacturing_credential, state_of_health
from connector.store import BatteryRecord, Store, open_store
from credentials.data_integrity import JCS
from credentials.did_key import key_from_seed
from credentials.passport.issuing import issue_passport_credential

MAKER = key_from_seed(bytes(range(32)))
STRANGER = key_from_seed(bytes(range(1, 33)))
BATTERY = "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> Store:
    opened = await open_store(store_url, data_dir=tmp_path)
    async with opened.transaction() as tx:
        await tx.put_battery(BatteryRecord(did=BATTERY, key_id="key-1"))
    yield opened  # type: ignore[misc]
    await opened.close()


def manufactured(previous: str | None) -> dict[str, object]:
    return issue_passport_credential(
        manufacturing_credential(BATTERY, MAKER.controller, rng=random.Random(1),
                                 previous=previous), MAKER, suite=JCS)


def soh(key=MAKER, seed: int = 2):  # type: ignore[no-untyped-def]
    def build(previous: str | None) -> dict[str, object]:
        return issue_passport_credential(
            state_of_health(BATTERY, key.controller, rng=random.Random(seed),
                            previous=previous), key, suite=JCS)
    return build


async def test_appends_link_to_the_head_and_only_the_custodian_may_append(store: Store) -> None:
    book = PassportBook(store)
    first = await book.append(BATTERY, manufactured)
    second = await book.append(BATTERY, soh())
    assert (first.position, second.position) == (0, 1)
    assert second.previous_digest == first.digest
    assert await book.custodian(BATTERY) == MAKER.controller
    with pytest.raises(PassportAppendError, match="holds custody"):
        await book.append(BATTERY, soh(STRANGER))
    with pytest.raises(PassportAppendError, match="no battery"):
        await book.append("did:key:z6MkUnknown", soh())
    async with store.read() as reader:
        assert [r.digest for r in await reader.passport(BATTERY)] == [first.digest,
                                                                       second.digest]


async def test_another_replica_s_append_is_picked_up(store: Store, store_url: str,
                                                     tmp_path: Path) -> None:
    mine, theirs = PassportBook(store), None
    await mine.append(BATTERY, manufactured)
    other = await open_store(store_url, data_dir=tmp_path)
    try:
        theirs = PassportBook(other)
        await theirs.append(BATTERY, soh(seed=3))
        third = await mine.append(BATTERY, soh(seed=4))  # its cached head is stale: reloads
    finally:
        await other.close()
    assert third.position == 2


async def test_concurrent_appends_take_distinct_positions(store: Store) -> None:
    book = PassportBook(store)
    await book.append(BATTERY, manufactured)
    results = await asyncio.gather(*(book.append(BATTERY, soh(seed=10 + n)) for n in range(5)),
                                   return_exceptions=True)
    positions = sorted(r.position for r in results if not isinstance(r, BaseException))
    assert positions == [1, 2, 3, 4, 5], results
