"""Issuing verifiable credentials: Data Integrity proofs (VCDM 2.0 and 1.1) and VC-JOSE."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from credentials.data_integrity import (
    ED25519_2020,
    JCS,
    RDFC,
    SUITES,
    ProofOptions,
    create_proof,
)
from credentials.errors import (
    IssuerMismatch,
    MalformedDocument,
    NumberOutOfRange,
    UnsupportedProof,
)
from credentials.jose import sign_jwt_credential
from credentials.jsonld import check_contexts_allowed, check_terms
from credentials.keys import Ed25519Key
from credentials.model import check_credential_shape, contexts_of, issuer_id
from credentials.timestamps import format_datetime, now_utc, parse_datetime
from vocab import DATA_INTEGRITY_V2, ED25519_2020_V1

JWT = "jwt"
ISSUE_FORMATS = (*SUITES, JWT)


def _json_copy(credential: dict[str, Any]) -> dict[str, Any]:
    """A deep copy that also proves the input is plain JSON (and is faster than deepcopy)."""
    try:
        copied: dict[str, Any] = json.loads(json.dumps(credential, allow_nan=False))
    except ValueError as exc:
        raise NumberOutOfRange(f"the credential holds a number JSON cannot carry: {exc}") from exc
    except TypeError as exc:
        raise MalformedDocument(f"the credential is not plain JSON: {exc}") from exc
    return copied


def prepare_credential(
    credential: dict[str, Any], key: Ed25519Key, *, suite: str, now: datetime | None = None
) -> dict[str, Any]:
    """A copy of ``credential`` ready to sign: issuer filled in, dates set, contexts complete.

    Refuses (rather than repairs) anything a verifier would later trip over: an issuer that
    is not the key's controller or an existing proof. Numbers, terms and contexts are checked
    where the document is canonicalised, once.
    """
    if not isinstance(credential, dict):
        raise MalformedDocument("a credential must be a JSON object")
    doc = _json_copy(credential)
    if "proof" in doc:
        raise MalformedDocument("the credential already carries a proof", path="proof")
    if "issuer" not in doc:
        doc["issuer"] = key.controller
    contexts = contexts_of(doc)
    moment = format_datetime(now or now_utc())
    if contexts[0] == "https://www.w3.org/2018/credentials/v1":
        doc.setdefault("issuanceDate", moment)
        extra = {RDFC: DATA_INTEGRITY_V2, JCS: DATA_INTEGRITY_V2, ED25519_2020: ED25519_2020_V1}
        needed = extra.get(suite)
        if needed and needed not in contexts:
            doc["@context"] = [*contexts, needed]
    elif suite == ED25519_2020:
        raise UnsupportedProof(
            "Ed25519Signature2020 is a VCDM 1.1 suite; use eddsa-rdfc-2022 for VCDM 2.0"
        )
    check_credential_shape(doc)
    for name in ("validFrom", "validUntil", "issuanceDate", "expirationDate"):
        if name in doc:
            parse_datetime(doc[name], path=name)
    if issuer_id(doc) != key.controller:
        raise IssuerMismatch(
            f"issuer {issuer_id(doc)} is not the controller of key {key.key_id}", path="issuer"
        )
    return doc


def issue_credential(
    credential: dict[str, Any],
    key: Ed25519Key,
    *,
    suite: str = RDFC,
    now: datetime | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Sign ``credential`` with a Data Integrity proof (``suite`` one of ``SUITES``).

    ``check`` sees the credential exactly as it will be signed (issuer and dates filled in)
    and raises to refuse it: the hook for domain rules such as the passport's SHACL shapes.
    """
    if suite not in SUITES:
        raise UnsupportedProof(f"unknown suite {suite!r}; use one of {', '.join(SUITES)}")
    moment = now or now_utc()
    doc = prepare_credential(credential, key, suite=suite, now=moment)
    if check is not None:
        check(doc)
    options = ProofOptions(verification_method=key.key_id, created=format_datetime(moment))
    doc["proof"] = create_proof(doc, key, suite, options)
    return doc


def issue_jwt_credential(
    credential: dict[str, Any],
    key: Ed25519Key,
    *,
    now: datetime | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """Sign ``credential`` as a compact JWS (VC-JOSE for VCDM 2.0, VC-JWT claims for 1.1)."""
    doc = prepare_credential(credential, key, suite=JWT, now=now)
    if check is not None:
        check(doc)
    check_contexts_allowed(doc)
    check_terms(doc)  # also applies the number policy
    return sign_jwt_credential(doc, key)
