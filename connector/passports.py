"""Appending to a battery's passport in the node's store, as its custodian.

Why here and not in each caller: an entry must link to the passport's head and be issued by
the current custodian (``credentials.passport.chain``), the store must take it at exactly the
next position, and the node's plugins must hear about it (``bpc_passport_appended``). The hub
bridge appends a batch credential every few seconds per pack, so replaying a long chain for
every append would cost O(n) each: ``PassportBook`` keeps each battery's ``Passport`` in memory
and reloads it only when the store's head is not the one it holds (another replica appended).

``append`` builds the credential from the link it must carry (``build(previous_digest)`` signs
it), checks it against the chain, and stores it, all under the battery row's lock, so two
writers never both take one position; the plugin observers run after the commit.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from connector.store import CredentialRecord, Reader, Store, Transaction
from credentials.passport.chain import ChainEntry, Passport, PassportError, Secured


class PassportAppendError(Exception):
    """The entry does not fit the passport (unknown battery, not the custodian, bad link)."""


class PassportBook:
    """The node's passports, loaded lazily and kept in step with the store's head."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._passports: dict[str, Passport] = {}

    async def _current(self, reader: Reader, battery_did: str) -> Passport:
        head = await reader.passport_head(battery_did)
        cached = self._passports.get(battery_did)
        if cached is not None and cached.head == (head.digest if head else None):
            return cached
        entries = [record.credential for record in await reader.passport(battery_did)]
        try:
            passport = Passport.from_entries(entries, battery=battery_did)
        except PassportError as exc:  # the store's own chain: a bug or a hand edit
            raise PassportAppendError(f"the stored passport of {battery_did} is broken: "
                                      f"{exc}") from exc
        self._passports[battery_did] = passport
        return passport

    async def custodian(self, battery_did: str) -> str | None:
        """Who may append to ``battery_did``'s passport now (None: unknown or empty)."""
        async with self._store.read() as reader:
            return (await self._current(reader, battery_did)).custodian

    async def append(self, battery_did: str, build: Callable[[str | None], Secured],
                     ) -> CredentialRecord:
        """Sign (``build(previous)``) and store the next entry of ``battery_did``."""
        async with self._store.transaction() as tx:
            record = await self._append_in(tx, battery_did, build)
        return record

    async def _append_in(self, tx: Transaction, battery_did: str,
                         build: Callable[[str | None], Secured]) -> CredentialRecord:
        if await tx.get_battery(battery_did, for_update=True) is None:
            raise PassportAppendError(f"no battery {battery_did} in this node's store")
        passport = await self._current(tx, battery_did)
        previous = passport.link_for_next()
        secured = build(previous)
        try:
            entry: ChainEntry = passport.check(secured)
        except PassportError as exc:
            raise PassportAppendError(str(exc)) from exc
        record = CredentialRecord(
            battery_did=battery_did, position=len(passport), digest=entry.digest,
            previous_digest=previous, issuer=entry.issuer,
            types=tuple(entry.types), credential=secured)
        stored = await tx.add_credential(record)
        passport.append(secured)  # the transaction may still roll back: then the head differs
        return stored


PASSPORT_BOOK = web.AppKey("passport_book", PassportBook)


async def append_to_passport(app: web.Application, battery_did: str,
                             build: Callable[[str | None], Secured]) -> CredentialRecord:
    """Append through the node's ``PassportBook`` and tell its plugins."""
    from connector.plugins.manager import notify_passport_appended

    record = await app[PASSPORT_BOOK].append(battery_did, build)
    credential = record.credential
    if isinstance(credential, dict):
        await notify_passport_appended(app, battery_did, credential)
    return record


async def start_sample_passport(app: web.Application, battery_did: str, *,
                                seed: int = 0) -> CredentialRecord:
    """Register ``battery_did`` and start its passport with a sample manufacturing entry
    signed by the node, which so becomes its custodian: the setup the demo, the benchmarks
    and the tests need before the node may append (hub batches, say)."""
    import random

    from connector.app import IDENTITY, STORE
    from connector.samples import manufacturing_credential
    from connector.store import BatteryRecord
    from credentials.data_integrity import JCS
    from credentials.passport.issuing import issue_passport_credential

    key = app[IDENTITY].signing_key
    async with app[STORE].transaction() as tx:
        await tx.put_battery(BatteryRecord(did=battery_did, key_id="key-1"))

    def build(previous: str | None) -> Secured:
        unsigned = manufacturing_credential(battery_did, key.controller,
                                            rng=random.Random(seed), previous=previous)
        return issue_passport_credential(unsigned, key, suite=JCS)

    return await append_to_passport(app, battery_did, build)


__all__ = ["PASSPORT_BOOK", "PassportAppendError", "PassportBook", "append_to_passport",
           "start_sample_passport"]
