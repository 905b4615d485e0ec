"""Holders build and sign presentations to prove a role to another node.

The verifier picks the ``challenge`` (a fresh nonce) and the ``domain`` (itself); signing both
with the authentication purpose keeps a captured presentation from being replayed elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from credentials.data_integrity import RDFC, ProofOptions, create_proof
from credentials.errors import MalformedDocument
from credentials.keys import Ed25519Key
from credentials.timestamps import format_datetime, now_utc
from vocab import CREDENTIALS_V2

_JWT_DATA_URL = "data:application/vc+jwt,"


def create_presentation(
    credentials: list[dict[str, Any] | str], holder: str, *, presentation_id: str | None = None
) -> dict[str, Any]:
    """A VCDM 2.0 presentation; JWT credentials travel as EnvelopedVerifiableCredential."""
    items: list[dict[str, Any]] = []
    for credential in credentials:
        if isinstance(credential, str):
            items.append({"@context": CREDENTIALS_V2, "type": "EnvelopedVerifiableCredential",
                          "id": _JWT_DATA_URL + credential})
        else:
            items.append(credential)
    presentation: dict[str, Any] = {
        "@context": [CREDENTIALS_V2],
        "type": ["VerifiablePresentation"],
        "holder": holder,
        "verifiableCredential": items,
    }
    if presentation_id:
        presentation["id"] = presentation_id
    return presentation


def sign_presentation(
    presentation: dict[str, Any],
    key: Ed25519Key,
    *,
    challenge: str,
    domain: str,
    suite: str = RDFC,
    now: datetime | None = None,
) -> dict[str, Any]:
    if not challenge:
        raise MalformedDocument("a presentation needs the verifier's challenge", path="challenge")
    holder = presentation.get("holder")
    if holder not in (None, key.controller):
        raise MalformedDocument(f"holder {holder} does not control key {key.key_id}",
                                path="holder")
    doc = {**presentation, "holder": key.controller}
    options = ProofOptions(
        verification_method=key.key_id,
        created=format_datetime(now or now_utc()),
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
    )
    doc["proof"] = create_proof(doc, key, suite, options)
    return doc
