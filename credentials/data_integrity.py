"""Data Integrity proofs with Ed25519: eddsa-rdfc-2022, eddsa-jcs-2022, Ed25519Signature2020.

All three sign ``sha256(canonical proof configuration) || sha256(canonical document)`` — proof
hash first — and differ only in the canonicalisation (RDFC-1.0 via pyld, or JCS via rfc8785)
and in the proof type. The official W3C vc-di-eddsa vectors pin every byte of this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from credentials.errors import MalformedDocument, UnsupportedProof
from credentials.jcs import canonical_json
from credentials.jsonld import (
    canonize_rdfc,
    check_contexts_allowed,
    check_terms,
    scan_document,
)
from credentials.keys import Ed25519Key, PublicKey
from credentials.multibase import decode_base58btc, encode_base58btc
from credentials.numbers import check_numbers
from credentials.proof_config import canonize_proof_config

RDFC = "eddsa-rdfc-2022"
JCS = "eddsa-jcs-2022"
ED25519_2020 = "Ed25519Signature2020"
SUITES = (RDFC, JCS, ED25519_2020)

_PROOF_OPTION_KEYS = ("created", "expires", "verificationMethod", "proofPurpose", "challenge",
                      "domain", "nonce", "previousProof")


@dataclass(frozen=True, slots=True)
class ProofOptions:
    """What the signer states about a proof; becomes the proof configuration."""

    verification_method: str
    created: str
    proof_purpose: str = "assertionMethod"
    challenge: str | None = None
    domain: str | None = None
    expires: str | None = None

    def as_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "created": self.created,
            "verificationMethod": self.verification_method,
            "proofPurpose": self.proof_purpose,
        }
        for name, value in (("challenge", self.challenge), ("domain", self.domain),
                            ("expires", self.expires)):
            if value is not None:
                config[name] = value
        return config


@dataclass(frozen=True, slots=True)
class _Suite:
    name: str
    proof_type: str
    cryptosuite: str | None
    canonical_config: Callable[[dict[str, Any]], bytes]
    canonical_document: Callable[[dict[str, Any]], bytes]
    context_in_proof: bool


def _utf8(nquads: str) -> bytes:
    try:
        return nquads.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate survived JSON parsing
        raise MalformedDocument(f"the document holds text that is not Unicode: {exc}") from exc


def _rdfc_config(config: dict[str, Any]) -> bytes:
    return _utf8(canonize_proof_config(config))


def _rdfc_document(document: dict[str, Any]) -> bytes:
    check_numbers(document)
    return _utf8(canonize_rdfc(document))


def _jcs_config(config: dict[str, Any]) -> bytes:
    return canonical_json(config)


def _jcs_document(document: dict[str, Any]) -> bytes:
    # JCS signs the JSON as it is, but the JSON still has to *mean* what it says: the same
    # context allow-list and undefined-term check as the RDF path (cached per shape).
    scan = scan_document(document)
    check_terms(document, scan)
    return canonical_json(document, scan)


_SUITES: dict[str, _Suite] = {
    RDFC: _Suite(RDFC, "DataIntegrityProof", RDFC, _rdfc_config, _rdfc_document, False),
    JCS: _Suite(JCS, "DataIntegrityProof", JCS, _jcs_config, _jcs_document, True),
    ED25519_2020: _Suite(ED25519_2020, ED25519_2020, None, _rdfc_config, _rdfc_document, False),
}


def suite_of_proof(proof: dict[str, Any]) -> str:
    proof_type = proof.get("type")
    if proof_type == "DataIntegrityProof":
        cryptosuite = proof.get("cryptosuite")
        if cryptosuite in (RDFC, JCS):
            return str(cryptosuite)
        raise UnsupportedProof(f"unsupported cryptosuite {cryptosuite!r}", path="proof.cryptosuite")
    if proof_type == ED25519_2020:
        return ED25519_2020
    raise UnsupportedProof(f"unsupported proof type {proof_type!r}", path="proof.type")


def _hash_data(suite: _Suite, config: dict[str, Any], unsecured: dict[str, Any]) -> bytes:
    return (hashlib.sha256(suite.canonical_config(config)).digest()
            + hashlib.sha256(suite.canonical_document(unsecured)).digest())


def create_proof(
    unsecured: dict[str, Any], key: Ed25519Key, suite_name: str, options: ProofOptions
) -> dict[str, Any]:
    """The proof object for ``unsecured`` (a document without ``proof``)."""
    suite = _SUITES.get(suite_name)
    if suite is None:
        raise UnsupportedProof(f"unknown suite {suite_name!r}; use one of {', '.join(SUITES)}")
    check_contexts_allowed(unsecured)
    config: dict[str, Any] = {"type": suite.proof_type}
    if suite.cryptosuite:
        config["cryptosuite"] = suite.cryptosuite
    config |= options.as_config()
    config["@context"] = json.loads(json.dumps(unsecured["@context"]))  # not shared with the doc
    signature = key.sign(_hash_data(suite, config, unsecured))
    proof = dict(config)
    if not suite.context_in_proof:
        del proof["@context"]
    proof["proofValue"] = encode_base58btc(signature)
    return proof


def verify_proof(
    unsecured: dict[str, Any], proof: dict[str, Any], public_key: PublicKey
) -> bool:
    """True when ``proof`` is a valid signature by ``public_key`` over ``unsecured``.

    Raises a ``CredentialsError`` when the document cannot be canonicalised safely (undefined
    term, disallowed context, ...): that is a different finding from a bad signature.
    """
    suite = _SUITES[suite_of_proof(proof)]
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str):
        raise MalformedDocument("proof has no proofValue string", path="proof.proofValue")
    try:
        signature = decode_base58btc(proof_value)
    except ValueError as exc:
        raise MalformedDocument(f"proofValue: {exc}", path="proof.proofValue") from exc
    check_contexts_allowed(unsecured)
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    document_context = unsecured.get("@context")
    proof_context = config.get("@context")
    if proof_context is not None:
        wanted = proof_context if isinstance(proof_context, list) else [proof_context]
        have = document_context if isinstance(document_context, list) else [document_context]
        if suite.context_in_proof:
            # vc-di-eddsa §3.3.2 only asks that the document's context *start with* the
            # proof's, then verifies under the proof's. We ask for equality: a context appended
            # after signing would change what the caller reads without changing the proof.
            if have != wanted:
                check_terms(unsecured)  # say so if the added context is also not allowed
                return False
        else:
            # didkit puts the suite context inside Ed25519Signature2020 proofs when the
            # document lacks it; the signed configuration then carries both, in that order.
            config["@context"] = have + [c for c in wanted if c not in have]
    if "@context" not in config:
        config["@context"] = document_context
    check_contexts_allowed(config)
    return public_key.verify(_hash_data(suite, config, unsecured), signature)


__all__ = ["ED25519_2020", "JCS", "RDFC", "SUITES", "ProofOptions", "create_proof",
           "suite_of_proof", "verify_proof"]
