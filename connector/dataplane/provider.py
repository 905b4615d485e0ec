"""The provider's data plane: serve an asset for a valid token, refresh tokens, end access.

Decisions are ``tokens``' pure functions; this module adds the store and the clock. Every
access is checked against four things, in this order, so a forged token learns nothing about
agreements: the token itself (signature, audience, expiry, asset — ``verify_access_token``),
its stored record (not revoked), the agreement (not terminated by the provider and still in
force at the data plane's clock: *expiry is enforced here, not only by the token's lifetime*)
and the transfer (STARTED; a suspended, completed or terminated transfer serves nothing).

When the agreement has ended, the refusal also ends the transfer: its tokens are revoked and
the transfer is TERMINATED with reason ``policy`` (the consumer is told with a
``TransferTerminationMessage``). ``end_expired_transfers`` does the same for transfers nobody
is fetching, and ``terminate_agreement`` for an agreement the provider ends early.

The clock is the node's DSP clock (``DspSettings.clock``), so tests and the demo move time
forward instead of sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from aiohttp import web

from connector.dataplane.content import asset_content
from connector.dataplane.grants import DataPlaneUrls, Grant, grant_access, token_record
from connector.dataplane.tokens import (
    AccessClaims,
    AccessToken,
    RefreshRefusal,
    RefreshRefusalKind,
    TokenError,
    TokenErrorKind,
    hash_refresh_token,
    refresh,
    verify_access_token,
)
from connector.dsp import transfer as tp
from connector.dsp.agreements import why_agreement_ended
from connector.dsp.messages import TransferState
from connector.dsp.process import TerminationKind, TerminationReason
from connector.plugins.manager import access_restriction
from connector.policy_gate import is_in_force
from connector.store import (
    AgreementRecord,
    AgreementTermination,
    AgreementUsage,
    AlreadyExists,
    AssetRecord,
    Reader,
    Role,
    Store,
    TokenRecord,
)
from credentials.keys import Ed25519Key

log = logging.getLogger(__name__)

LIVE = (TransferState.STARTED, TransferState.SUSPENDED, TransferState.REQUESTED)
AGREEMENT_ENDED = "agreement-ended"


class RefusalCode(StrEnum):
    """Why the data plane refused; stable strings for problem bodies and the audit log."""

    MISSING_TOKEN = "missing-token"
    INVALID_TOKEN = "invalid-token"
    EXPIRED_TOKEN = "expired-token"
    WRONG_ASSET = "wrong-asset"
    REVOKED = "revoked-token"
    AGREEMENT_ENDED = AGREEMENT_ENDED
    TRANSFER_NOT_STARTED = "transfer-not-started"
    UNKNOWN_ASSET = "unknown-asset"
    #: A plugin vetoed access to this battery's data (e.g. an unverified cell configuration).
    RESTRICTED = "restricted"


_TOKEN_CODES = {
    TokenErrorKind.EXPIRED: RefusalCode.EXPIRED_TOKEN,
    TokenErrorKind.WRONG_ASSET: RefusalCode.WRONG_ASSET,
}


class Refusal(Exception):
    """A data plane "no": the HTTP status and a typed code (401 = present a better token,
    403 = this token will never do, 404 = no such asset)."""

    def __init__(self, status: int, code: RefusalCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A successful refresh: the new access token (its refresh token rotated)."""

    access: AccessToken


def battery_of(asset: AssetRecord) -> str | None:
    """The battery an asset is about (the passport's DID; inline data names it too)."""
    named = asset.properties.get("batteryDid")
    return asset.battery_did or (named if isinstance(named, str) else None)


def agreement_end_reason(detail: str) -> TerminationReason:
    return TerminationReason(TerminationKind.POLICY, AGREEMENT_ENDED, detail)


class DataPlane:
    """One node's data plane (provider side)."""

    def __init__(self, app: web.Application, *, store: Store, signer: Ed25519Key,
                 urls: DataPlaneUrls,
                 clock: Callable[[], datetime], lifetime_s: int) -> None:
        self._app = app
        self._store = store
        self.signer = signer
        self.urls = urls
        self.clock = clock
        self.lifetime_s = lifetime_s

    # --- grants -----------------------------------------------------------------------------

    def grant(self, agreement: AgreementRecord, consumer_did: str, transfer_id: str) -> Grant:
        """A fresh grant for a transfer the provider is about to start."""
        return grant_access(self.signer, self.urls, agreement, consumer_did,
                            transfer_id=transfer_id, now=self.clock(),
                            lifetime_s=self.lifetime_s)

    # --- serving ----------------------------------------------------------------------------

    async def serve(self, asset_id: str, token: str | None) -> dict[str, Any]:
        """The asset's content for a valid token (or none, for public data); else ``Refusal``."""
        now = self.clock()
        async with self._store.read() as reader:  # one snapshot: asset, token, agreement, data
            asset = await reader.get_asset(asset_id)
            if asset is None or asset.properties.get("withdrawnAt"):
                raise Refusal(404, RefusalCode.UNKNOWN_ASSET, f"no asset {asset_id!r}")
            if asset.access_level == "public":
                return await asset_content(reader, asset)
            claims = self._verified_claims(token, asset_id, now)
            restricted = access_restriction(self._app, battery_of(asset), asset.access_level)
            if restricted is not None:
                raise Refusal(403, RefusalCode.RESTRICTED, restricted)
            record = await reader.get_token(claims.jti)
            if record is None or record.revoked or record.consumer_did != claims.consumer_did:
                raise Refusal(401, RefusalCode.REVOKED, "this token is no longer valid")
            ended = await self._agreement_ended(reader, record.agreement_id, now)
            transfer = (await reader.get_transfer(record.transfer_id)
                        if record.transfer_id else None)
            started = transfer is not None and transfer.state == TransferState.STARTED
            if ended is None and started:
                document = await asset_content(reader, asset)
        if ended is None and not started:
            state = transfer.state if transfer else "unknown"
            detail = f"the transfer is {state}, not STARTED"
            await self._audit("dataplane.refused", record,
                              {"asset": asset_id, "reason": detail})
            raise Refusal(403, RefusalCode.TRANSFER_NOT_STARTED, detail)
        if ended is None:
            ended = await self._count_use(record, asset_id, now)
        else:
            await self._audit("dataplane.refused", record, {"asset": asset_id, "reason": ended})
        if ended is not None:
            await self.end_agreement(record.agreement_id, ended)
            raise Refusal(403, RefusalCode.AGREEMENT_ENDED, ended)
        return document

    async def _count_use(self, record: TokenRecord, asset_id: str, now: datetime) -> str | None:
        """Count this fetch against the agreement (``odrl:count``) and audit it, in one
        transaction that locks the agreement's counter, so two concurrent fetches cannot both
        take the last permitted use. Returns why the agreement is spent instead, if it is."""
        async with self._store.transaction() as tx:
            usage = await tx.get_agreement_usage(record.agreement_id, for_update=True)
            uses = usage.access_count if usage is not None else 0
            agreement = await tx.get_agreement(record.agreement_id)
            if agreement is None or not is_in_force(agreement.agreement, agreement.signed_at,
                                                    now, access_count=uses):
                spent = f"the agreement's permitted number of uses is spent ({uses} so far)"
                await tx.append_audit(
                    actor=record.consumer_did, action="dataplane.refused",
                    subject_id=record.transfer_id or record.agreement_id,
                    details={"asset": asset_id, "jti": record.jti,
                             "agreement": record.agreement_id, "uses": uses, "reason": spent})
                return spent
            await tx.put_agreement_usage(
                replace(usage, access_count=uses + 1, last_access_at=now) if usage is not None
                else AgreementUsage(agreement_id=record.agreement_id, access_count=1,
                                    last_access_at=now))
            await tx.append_audit(actor=record.consumer_did, action="dataplane.served",
                                  subject_id=record.transfer_id or record.agreement_id,
                                  details={"asset": asset_id, "jti": record.jti,
                                           "agreement": record.agreement_id, "use": uses + 1})
        return None

    def _verified_claims(self, token: str | None, asset_id: str, now: datetime) -> AccessClaims:
        """The claims of a token valid for ``asset_id`` now, else the refusal to answer."""
        if not token:
            raise Refusal(401, RefusalCode.MISSING_TOKEN,
                          "restricted data: send the access token from the transfer's "
                          "DataAddress as 'Authorization: Bearer <token>'")
        try:
            return verify_access_token(token, provider_key=self.signer.public_key,
                                       expected_audience=self.urls.audience,
                                       asset_id=asset_id, now=now)
        except TokenError as exc:
            code = _TOKEN_CODES.get(exc.kind, RefusalCode.INVALID_TOKEN)
            status = 403 if code is RefusalCode.WRONG_ASSET else 401
            raise Refusal(status, code, str(exc)) from None

    async def _agreement_ended(self, reader: Reader, agreement_id: str,
                               now: datetime) -> str | None:
        """Why the agreement no longer allows access (``None``: it does)."""
        agreement = await reader.get_agreement(agreement_id)
        if agreement is None:
            return "the agreement is unknown"
        return await why_agreement_ended(reader, agreement, now)

    # --- refresh ----------------------------------------------------------------------------

    async def refresh(self, caller_did: str, presented: str) -> Refreshed | RefreshRefusal:
        """Rotate the refresh token ``presented`` by ``caller_did`` into a new access token.

        The old refresh token stays accepted until the new one is first used (a consumer that
        lost the answer can retry); each refresh revokes the token record it came from.
        """
        presented_hash = hash_refresh_token(presented)
        now = self.clock()
        ended: str | None = None
        async with self._store.transaction() as tx:
            record = await tx.find_token_by_refresh_hash(presented_hash, for_update=True)
            if record is None:
                return RefreshRefusal(RefreshRefusalKind.BAD_REFRESH_TOKEN,
                                      "the refresh token is not one this node issued, or it "
                                      "was already used")
            agreement = await tx.get_agreement(record.agreement_id)
            stored_hash = (record.refresh_token_hash
                           if record.refresh_token_hash == presented_hash
                           else record.previous_refresh_token_hash)
            if agreement is None or stored_hash is None:
                return RefreshRefusal(RefreshRefusalKind.BAD_REFRESH_TOKEN,
                                      "the refresh token is not valid")
            ended = await self._agreement_ended(tx, record.agreement_id, now)
            transfer = (await tx.get_transfer(record.transfer_id)
                        if record.transfer_id else None)
            if ended is None and caller_did == record.consumer_did and (
                    transfer is None or transfer.state != TransferState.STARTED):
                state = transfer.state if transfer else "unknown"
                return RefreshRefusal(RefreshRefusalKind.TRANSFER_NOT_STARTED,
                                      f"the transfer is {state}, not STARTED")
            decision = refresh(
                self.signer, stored_refresh_token_hash=stored_hash,
                presented_refresh_token=presented, caller_did=caller_did,
                consumer_did=record.consumer_did,
                agreement_policy=None if ended else agreement.agreement,
                agreement_start=agreement.signed_at, agreement_id=agreement.id,
                asset_id=record.asset_id, audience=self.urls.audience, now=now,
                lifetime_s=self.lifetime_s)
            if isinstance(decision, RefreshRefusal):
                if decision.kind is not RefreshRefusalKind.AGREEMENT_ENDED:
                    return decision
                ended = ended or "the agreement is no longer in force"
            else:
                await tx.put_token(replace(record, revoked=True))
                await tx.put_token(token_record(decision, transfer_id=record.transfer_id,
                                                previous_refresh_token_hash=presented_hash))
                await tx.append_audit(actor=caller_did, action="dataplane.refreshed",
                                      subject_id=record.transfer_id or record.agreement_id,
                                      details={"old": record.jti, "new": decision.jti})
                return Refreshed(decision)
        await self.end_agreement(record.agreement_id, ended)
        return RefreshRefusal(RefreshRefusalKind.AGREEMENT_ENDED, ended)

    # --- ending access ----------------------------------------------------------------------

    async def end_agreement(self, agreement_id: str, detail: str) -> int:
        """Revoke the agreement's tokens and terminate its live transfers (provider side).

        Returns how many transfers were terminated. Safe to call again: terminal transfers and
        revoked tokens are left alone.
        """
        from connector.dsp.transfer_service import transfer_service_of

        async with self._store.transaction() as tx:
            revoked = await tx.revoke_tokens(agreement_id)
            transfers = await tx.list_transfers(agreement_id=agreement_id, role=Role.PROVIDER,
                                                limit=500)
            if revoked:
                await tx.append_audit(actor=self.signer.controller, action="dataplane.revoked",
                                      subject_id=agreement_id,
                                      details={"tokens": revoked, "reason": detail})
        service = transfer_service_of(self._app)
        reason = agreement_end_reason(detail)
        ended = 0
        for transfer in transfers:
            if TransferState(transfer.state) not in LIVE or transfer.counterparty_pid is None:
                continue
            try:
                await service.act(transfer.id, lambda p: tp.terminate(p, reason))
                ended += 1
            except ValueError as exc:  # ended meanwhile (a peer message, another sweep)
                log.info("transfer %s not terminated: %s", transfer.id, exc)
        return ended

    async def end_expired_transfers(self) -> int:
        """Terminate every live provider transfer whose agreement has ended; how many."""
        now = self.clock()
        ended_agreements: dict[str, str] = {}
        async with self._store.read() as reader:
            for state in LIVE:
                after = None
                while True:
                    page = await reader.list_transfers(state=str(state), role=Role.PROVIDER,
                                                       after=after, limit=500)
                    for transfer in page:
                        if transfer.agreement_id in ended_agreements:
                            continue
                        why = await self._agreement_ended(reader, transfer.agreement_id, now)
                        if why is not None:
                            ended_agreements[transfer.agreement_id] = why
                    if len(page) < 500:
                        break
                    after = page[-1].id
        total = 0
        for agreement_id, why in ended_agreements.items():
            total += await self.end_agreement(agreement_id, why)
        return total

    async def terminate_agreement(self, agreement_id: str, *, actor: str, reason: str) -> int:
        """The provider ends an agreement early: recorded for good, access ends at once.

        Raises ``LookupError`` when this node is not the agreement's provider and
        ``AlreadyExists`` when it was terminated before.
        """
        async with self._store.transaction() as tx:
            agreement = await tx.get_agreement(agreement_id)
            if agreement is None or agreement.provider_did != self.signer.controller:
                raise LookupError(f"no agreement {agreement_id!r} with this node as provider")
            await tx.add_agreement_termination(AgreementTermination(
                agreement_id=agreement_id, at=self.clock(), actor=actor, reason=reason))
            await tx.append_audit(actor=actor, action="agreement.terminated",
                                  subject_id=agreement_id, details={"reason": reason})
        detail = "the provider terminated the agreement" + (f": {reason}" if reason else "")
        return await self.end_agreement(agreement_id, detail)

    async def _audit(self, action: str, record: TokenRecord, details: dict[str, Any]) -> None:
        async with self._store.transaction() as tx:
            await tx.append_audit(actor=record.consumer_did, action=action,
                                  subject_id=record.transfer_id or record.agreement_id,
                                  details={**details, "jti": record.jti,
                                           "agreement": record.agreement_id})


__all__ = [
    "AGREEMENT_ENDED",
    "AlreadyExists",
    "DataPlane",
    "Refreshed",
    "Refusal",
    "RefusalCode",
    "agreement_end_reason",
]
