"""JSON views of negotiations, agreements and transfers for the management API, and the query
parameters that filter their lists.

The views are deliberately *whitelists*: a stored transfer's ``data_address`` holds the access
and refresh tokens the provider issued (``endpointProperties``), and an operator listing
transfers must not copy them into logs, terminals or tickets. So the transfer view names only
the endpoint, its type and whether a token is there (``hasToken``); the tokens leave the node
only through the data plane fetch, which uses them on the operator's behalf.

Lists page like the rest of the management API (``paging``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from connector.dataplane.tokens import endpoint_properties
from connector.dsp.messages import NegotiationState, TransferState
from connector.management.paging import invalid_query
from connector.store import AgreementRecord, NegotiationRecord, TransferRecord
from connector.store import Role as StoreRole

#: Transfer states whose stored reason is the current one (a resumed transfer keeps the
#: suspension's reason columns; showing it next to STARTED would mislead).
_TRANSFER_REASON_STATES = {TransferState.SUSPENDED.value, TransferState.TERMINATED.value}

E = TypeVar("E", bound=StrEnum)


# --- query parameters --------------------------------------------------------------------------


def role_query(request: web.Request) -> StoreRole | None:
    """``?role=provider|consumer`` (absent: both); a typo is a 400, not an empty list."""
    raw = request.query.get("role") or None
    if raw is None:
        return None
    try:
        return StoreRole(raw.lower())
    except ValueError:
        raise invalid_query("role", f"role must be provider or consumer, not {raw!r}") from None


def enum_query(request: web.Request, name: str, values: type[E]) -> E | None:
    """An upper-case state filter such as ``?state=FINALIZED`` (case-insensitive)."""
    raw = request.query.get(name) or None
    if raw is None:
        return None
    try:
        return values(raw.upper())
    except ValueError:
        allowed = ", ".join(value.value for value in values)
        raise invalid_query(name, f"{name} must be one of {allowed}, not {raw!r}") from None


def negotiation_state_query(request: web.Request) -> NegotiationState | None:
    return enum_query(request, "state", NegotiationState)


def transfer_state_query(request: web.Request) -> TransferState | None:
    return enum_query(request, "state", TransferState)


# --- views -------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def reason_json(kind: str | None, constraint: str | None, detail: str | None) -> Any:
    """The typed termination (or suspension) reason, or ``None`` when there is none."""
    if kind is None:
        return None
    return {"kind": kind, "failedConstraint": constraint, "detail": detail}


def negotiation_json(record: NegotiationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "role": record.role.value,
        "state": record.state,
        "counterPartyId": record.counterparty_did,
        "counterPartyAddress": record.counterparty_address,
        "counterPartyPid": record.counterparty_pid,
        "assetId": record.asset_id,
        "offerId": record.offer_id,
        "agreementId": record.agreement_id,
        "reason": reason_json(record.reason_kind, record.failed_constraint,
                              record.reason_detail),
        "createdAt": _time(record.created_at),
        "updatedAt": _time(record.updated_at),
    }


def agreement_role(record: AgreementRecord, own_did: str) -> StoreRole:
    return StoreRole.PROVIDER if record.provider_did == own_did else StoreRole.CONSUMER


def agreement_json(record: AgreementRecord, own_did: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "assetId": record.asset_id,
        "providerId": record.provider_did,
        "consumerId": record.consumer_did,
        "role": agreement_role(record, own_did).value,
        "signedAt": _time(record.signed_at),
        "notAfter": _time(record.not_after),
        "negotiationId": record.negotiation_id,
        "policy": record.agreement,
    }


def data_address_json(address: dict[str, Any] | None) -> dict[str, Any] | None:
    """Endpoint, endpoint type and whether a token came with it — never the token itself."""
    if not address:
        return None
    properties = endpoint_properties(address)
    return {
        "endpoint": address.get("endpoint") or properties.get("endpoint"),
        "endpointType": address.get("endpointType") or properties.get("endpointType"),
        "hasToken": bool(properties.get("authorization")),
    }


def transfer_json(record: TransferRecord) -> dict[str, Any]:
    reason = None
    if record.state in _TRANSFER_REASON_STATES:
        reason = reason_json(record.reason_kind, record.failed_constraint, record.reason_detail)
    return {
        "id": record.id,
        "role": record.role.value,
        "state": record.state,
        "agreementId": record.agreement_id,
        "assetId": record.asset_id,
        "counterPartyId": record.counterparty_did,
        "counterPartyAddress": record.counterparty_address,
        "counterPartyPid": record.counterparty_pid,
        "format": record.format,
        "dataAddress": data_address_json(record.data_address),
        "reason": reason,
        "createdAt": _time(record.created_at),
        "updatedAt": _time(record.updated_at),
    }
