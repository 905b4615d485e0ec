"""Reading one battery's passport from the node's store and turning it into the view model.

One read snapshot for the chain, the original passport a repurposed one continues, and the
node's offers; verification (cached per chain head) runs after the snapshot is closed, since
resolving a did:web issuer may take a network round trip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from connector.app import CONFIG, IDENTITY, STORE, VERIFIER
from connector.store import CredentialRecord
from connector.store.base import Reader
from credentials.errors import CredentialsError
from credentials.passport.chain import ChainEntry, Passport

from .entries import read_entries
from .restricted import restricted_sections
from .verification import VerificationCache
from .view import PassportView, build_view

PAGE_VERIFICATION = web.AppKey("passport_page_verification", VerificationCache)


async def verification_ctx(app: web.Application) -> AsyncIterator[None]:
    """The page's verification cache over the node's verifier (set up after it)."""
    app[PAGE_VERIFICATION] = VerificationCache(
        app[VERIFIER], max_age_s=min(app[CONFIG].status_max_age_s, 300.0))
    yield


async def _original(reader: Reader, first: CredentialRecord) -> Passport | None:
    """For a repurposed battery: the original passport up to the entry the repurposing entry
    links to, when this node holds it (else the audit reports the link as unchecked)."""
    try:
        entry = ChainEntry.read(first.credential)
    except CredentialsError:
        return None
    if not entry.is_repurposing or entry.original_battery is None or entry.previous is None:
        return None
    linked = await reader.get_credential(entry.previous)
    if linked is None or linked.battery_did != entry.original_battery:
        return None
    records = await reader.passport(entry.original_battery, limit=linked.position + 1)
    try:
        return Passport.from_entries([r.credential for r in records],
                                     battery=entry.original_battery)
    except CredentialsError:
        return None


async def load_view(app: web.Application, battery: str) -> PassportView | None:
    """The view of ``battery``'s passport, or None when this node keeps no entry of it."""
    async with app[STORE].read() as reader:
        records = await reader.passport(battery)
        if not records:
            return None
        original = await _original(reader, records[0])
        restricted = await restricted_sections(reader, battery)
    verification = await app[PAGE_VERIFICATION].verify(
        battery, records[-1].digest, [r.credential for r in records], original)
    entries = read_entries(records, verification)
    return build_view(
        battery=battery, entries=entries, chain_ok=verification.ok,
        chain_problems=verification.passport_problems, restricted=restricted,
        public_base_url=app[CONFIG].public_base_url, node_did=app[IDENTITY].did)


__all__ = ["PAGE_VERIFICATION", "load_view", "verification_ctx"]
