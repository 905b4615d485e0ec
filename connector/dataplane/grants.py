"""What the provider's data plane hands out and later checks: access grants per transfer.

A *grant* is one access token (plus its refresh token) for one transfer under one agreement,
and the ``DataAddress`` that carries it to the consumer in the ``TransferStartMessage``. The
token itself is minted by the pure ``tokens`` module; this module adds what needs the node: the
data plane's public URLs, the signing key, the clock, and the ``TokenRecord`` the store keeps
(only the refresh token's hash, never the token).

URLs, all under the node's ``public_base_url``:

- ``/dataplane`` is the audience of every access token this node mints (so a token cannot be
  replayed against another node's data plane);
- ``/dataplane/assets/{asset id}`` is the endpoint of one asset (the ``DataAddress`` endpoint);
- ``/dataplane/token`` is the refresh endpoint (Tractus-X ``refreshEndpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connector.dataplane.tokens import AccessToken, data_address, mint_access_token
from connector.store import AgreementRecord, TokenRecord
from credentials.keys import Ed25519Key

DATAPLANE_PATH = "/dataplane"
ASSETS_PATH = DATAPLANE_PATH + "/assets"
TOKEN_PATH = DATAPLANE_PATH + "/token"


@dataclass(frozen=True, slots=True)
class DataPlaneUrls:
    """The data plane's public addresses, derived from one ``public_base_url``."""

    base_url: str

    @property
    def audience(self) -> str:
        return self.base_url.rstrip("/") + DATAPLANE_PATH

    @property
    def refresh_endpoint(self) -> str:
        return self.base_url.rstrip("/") + TOKEN_PATH

    def asset_endpoint(self, asset_id: str) -> str:
        # Asset ids are often IRIs (``urn:…``, ``https://…``): keep them one path segment.
        return self.base_url.rstrip("/") + ASSETS_PATH + "/" + quote(asset_id, safe="")


@dataclass(frozen=True, slots=True)
class Grant:
    """A minted access grant: the ``DataAddress`` JSON for the consumer and the token record
    for the store (to be written in the same transaction as the transfer it belongs to)."""

    data_address: dict[str, Any]
    token: TokenRecord
    access: AccessToken


def token_record(access: AccessToken, *, transfer_id: str | None,
                 previous_refresh_token_hash: str | None = None) -> TokenRecord:
    """What the store keeps of ``access``: who, what, until when, and the refresh hash."""
    return TokenRecord(
        jti=access.jti, agreement_id=access.agreement_id, consumer_did=access.consumer_did,
        asset_id=access.asset_id, expires_at=datetime.fromtimestamp(access.expires_at, UTC),
        transfer_id=transfer_id, audience=access.audience,
        refresh_token_hash=access.refresh_token_hash,
        previous_refresh_token_hash=previous_refresh_token_hash)


def grant_access(
    signer: Ed25519Key, urls: DataPlaneUrls, agreement: AgreementRecord, consumer_did: str,
    *, transfer_id: str, now: datetime, lifetime_s: int,
) -> Grant:
    """A fresh grant for ``consumer_did`` to pull the agreement's asset during one transfer."""
    access = mint_access_token(
        signer, agreement_id=agreement.id, consumer_did=consumer_did,
        asset_id=agreement.asset_id, audience=urls.audience, now=now, lifetime_s=lifetime_s)
    address = data_address(urls.asset_endpoint(agreement.asset_id), access,
                           refresh_endpoint=urls.refresh_endpoint)
    return Grant(address, token_record(access, transfer_id=transfer_id), access)


__all__ = [
    "ASSETS_PATH",
    "DATAPLANE_PATH",
    "TOKEN_PATH",
    "DataPlaneUrls",
    "Grant",
    "grant_access",
    "token_record",
]
