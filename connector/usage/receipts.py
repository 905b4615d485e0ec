"""The deletion receipt: a credential the consumer signs when it purged data of an agreement.

Shape (VCDM 2.0, Data Integrity ``eddsa-jcs-2022`` with the node key)::

    {"@context": [credentials/v2, battery-passport-connector/usage/v1],
     "id": "urn:uuid:…", "type": ["VerifiableCredential", "DataDeletionReceipt"],
     "issuer": <consumer DID>, "validFrom": <purge time>,
     "credentialSubject": {"id": <provider DID>, "agreementId": …, "transferId": …,
                           "assets": [<asset id>], "purgedAt": <purge time>}}

Why a credential and not a plain message: the provider keeps it as evidence that outlives the
HTTP exchange (a third party can check the consumer's signature later), and it is signed with
the key the consumer's DID document already publishes. Every term is defined by a bundled
context (``usage/v1``, our own): the node never signs undefined terms, and the library's term
check refuses the document before signing if one slipped in.

``read_receipt`` is the provider's structural check of what arrives; the signature is the
verifier's job (``connector.app.VERIFIER``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credentials import JCS, CredentialsError, issue_credential
from credentials.keys import Ed25519Key
from credentials.model import issuer_id, types_of
from credentials.timestamps import format_datetime, parse_datetime
from vocab import CREDENTIALS_V2

USAGE_CONTEXT_V1 = "https://w3id.org/battery-passport-connector/usage/v1"
RECEIPT_TYPE = "DataDeletionReceipt"
RECEIPT_SUITE = JCS


class MalformedReceipt(ValueError):
    """The document is not a deletion receipt this node can read; ``path`` names the part."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class ReceiptClaims:
    """What a receipt says, read from its JSON (not yet verified)."""

    id: str
    issuer: str
    subject: str
    agreement_id: str
    transfer_id: str
    assets: tuple[str, ...]
    purged_at: datetime


def deletion_receipt(key: Ed25519Key, *, receipt_id: str, provider_did: str,
                     agreement_id: str, transfer_id: str, assets: Sequence[str],
                     purged_at: datetime) -> dict[str, Any]:
    """The signed receipt (issuer: ``key``'s DID); raises ``CredentialsError`` if the library
    refuses it (an undefined term, a bad date) — never signs anyway."""
    moment = format_datetime(purged_at)
    credential = {
        "@context": [CREDENTIALS_V2, USAGE_CONTEXT_V1],
        "id": receipt_id,
        "type": ["VerifiableCredential", RECEIPT_TYPE],
        "issuer": key.controller,
        "validFrom": moment,
        "credentialSubject": {
            "id": provider_did,
            "agreementId": agreement_id,
            "transferId": transfer_id,
            "assets": list(assets),
            "purgedAt": moment,
        },
    }
    return issue_credential(credential, key, suite=RECEIPT_SUITE, now=purged_at)


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MalformedReceipt(f"{path} must be a non-empty string", path)
    return value


def read_receipt(document: Any) -> ReceiptClaims:
    """The claims of a deletion receipt; ``MalformedReceipt`` when it is not one."""
    if not isinstance(document, dict):
        raise MalformedReceipt("a deletion receipt is a JSON object (a verifiable credential)")
    try:
        types = types_of(document)
        issuer = issuer_id(document)
    except CredentialsError as exc:
        raise MalformedReceipt(str(exc), exc.problem.path or "") from None
    if "VerifiableCredential" not in types or RECEIPT_TYPE not in types:
        raise MalformedReceipt(f"type must include VerifiableCredential and {RECEIPT_TYPE}",
                               "type")
    if not isinstance(document.get("proof"), dict | list):
        raise MalformedReceipt("the receipt carries no proof", "proof")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        raise MalformedReceipt("credentialSubject must be one object", "credentialSubject")
    assets = subject.get("assets")
    if not isinstance(assets, list) or not assets:
        raise MalformedReceipt("credentialSubject.assets must be a non-empty list",
                               "credentialSubject.assets")
    try:
        purged_at = parse_datetime(subject.get("purgedAt"), path="credentialSubject.purgedAt")
    except CredentialsError as exc:
        raise MalformedReceipt(str(exc), "credentialSubject.purgedAt") from None
    return ReceiptClaims(
        id=_text(document.get("id"), "id"),
        issuer=issuer,
        subject=_text(subject.get("id"), "credentialSubject.id"),
        agreement_id=_text(subject.get("agreementId"), "credentialSubject.agreementId"),
        transfer_id=_text(subject.get("transferId"), "credentialSubject.transferId"),
        assets=tuple(_text(a, f"credentialSubject.assets[{i}]") for i, a in enumerate(assets)),
        purged_at=purged_at,
    )


__all__ = [
    "RECEIPT_SUITE",
    "RECEIPT_TYPE",
    "USAGE_CONTEXT_V1",
    "MalformedReceipt",
    "ReceiptClaims",
    "deletion_receipt",
    "read_receipt",
]
