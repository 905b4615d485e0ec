"""JSON-LD vocabulary of the connector: the bundled contexts and the offline document loader.

Every context the node accepts ships as a data file in ``vocab/contexts``; nothing is ever
fetched from the network, so a credential's meaning cannot change under a verifier's feet.
"""

from vocab.contexts_bundle import (
    BATTERY_CONTEXT_V1,
    BATTERY_VOCAB,
    CREDENTIALS_V1,
    CREDENTIALS_V2,
    DATA_INTEGRITY_V2,
    DID_V1,
    ED25519_2020_V1,
    HUB_CONTEXT_V1,
    MULTIKEY_V1,
    ROLES_CONTEXT_V1,
    SHIPMENT_CONTEXT_V1,
    SHIPMENT_VOCAB,
    known_context_urls,
)
from vocab.loader import ContextNotAllowed, document_loader

__all__ = [
    "BATTERY_CONTEXT_V1",
    "BATTERY_VOCAB",
    "CREDENTIALS_V1",
    "CREDENTIALS_V2",
    "DATA_INTEGRITY_V2",
    "DID_V1",
    "ED25519_2020_V1",
    "HUB_CONTEXT_V1",
    "MULTIKEY_V1",
    "ROLES_CONTEXT_V1",
    "SHIPMENT_CONTEXT_V1",
    "SHIPMENT_VOCAB",
    "ContextNotAllowed",
    "document_loader",
    "known_context_urls",
]
