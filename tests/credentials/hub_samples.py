"""Unsigned sample credentials of the hub bridge's cell-level passport entries.

A plain module shared by the passport tests (pytest puts this folder on ``sys.path``): one
builder per credential type, each a complete, valid credential about ``PACK`` issued by
``ISSUER`` (the custodian), so a test can break one field and see it refused.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import sha256
from typing import Any

from credentials import key_from_seed
from credentials.merkle import encode_hash, merkle_root
from credentials.passport.chain import credential_digest
from credentials.passport.types import HUB_CONTEXTS

ISSUER = "did:web:oem.example"
PACK = key_from_seed(bytes([2] * 32)).controller
HUB = key_from_seed(bytes([40] * 32)).controller
OLD_CELL = key_from_seed(bytes([41] * 32)).controller
NEW_CELL = key_from_seed(bytes([42] * 32)).controller
TECHNICIAN = "did:web:service.example:technicians:7"
#: The PASSPORT.md digest of (a stand-in for) the technician's role credential.
TECHNICIAN_CREDENTIAL = credential_digest({"id": "urn:uuid:7c3e9b1a-0d2f-4e5a-9b8c-1d2e3f4a5b6c"})
OLD_UID = "CELL-UID-0007-A1"
NEW_UID = "CELL-UID-0419-B7"

#: Six events: the leaves are their 32-byte digests (here, digests of stand-in bytes).
EVENT_DIGESTS = [sha256(f"event {n}".encode()).digest() for n in range(6)]
ROOT = encode_hash(merkle_root(EVENT_DIGESTS))


def credential(kind: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": list(HUB_CONTEXTS),
        "id": "urn:uuid:5a0b6c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d",
        "type": ["VerifiableCredential", kind],
        "issuer": ISSUER,
        "validFrom": "2026-03-01T00:00:00Z",
        "credentialSubject": subject,
    }


def cell_event_batch_subject() -> dict[str, Any]:
    return {
        "id": PACK,
        "type": "Battery",
        "hub": HUB,
        "merkleRoot": ROOT,
        "treeSize": 6,
        "firstEventAt": "2026-03-01T10:00:00Z",
        "lastEventAt": "2026-03-01T10:15:00Z",
        "eventCounts": [
            {"eventKind": "cell-summary", "count": 4},
            {"eventKind": "thermal-excursion", "count": 1},
            {"eventKind": "cell-id-mismatch", "count": 1},
        ],
        "cellConfiguration": "unverified",
    }


def cell_replacement_subject() -> dict[str, Any]:
    return {
        "id": PACK,
        "type": "Battery",
        "position": 7,
        "oldCellDid": OLD_CELL,
        "newCellDid": NEW_CELL,
        "oldCellUid": OLD_UID,
        "newCellUid": NEW_UID,
        "technician": TECHNICIAN,
        "technicianCredential": TECHNICIAN_CREDENTIAL,
        "replacedAt": "2026-03-02T09:30:00Z",
        "reason": "cell swelling found at inspection",
    }


def cell_configuration_subject() -> dict[str, Any]:
    return {
        "id": PACK,
        "type": "Battery",
        "cellConfiguration": "unverified",
        "position": 7,
        "expectedCellUid": OLD_UID,
        "observedCellUid": NEW_UID,
        "observedAt": "2026-03-01T10:12:30Z",
        "eventId": "evt-3f9c2a",
    }


def cell_event_batch() -> dict[str, Any]:
    return credential("CellEventBatchCredential", cell_event_batch_subject())


def cell_replacement() -> dict[str, Any]:
    return credential("CellReplacementCredential", cell_replacement_subject())


def cell_configuration() -> dict[str, Any]:
    return credential("CellConfigurationCredential", cell_configuration_subject())


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "CellEventBatchCredential": cell_event_batch,
    "CellReplacementCredential": cell_replacement,
    "CellConfigurationCredential": cell_configuration,
}
