"""did:key for batteries, cells, devices and test issuers (Ed25519 only).

did:key needs no registry and resolves offline: the DID *is* the public key. That is why each
battery gets one: a passport stays verifiable even after the company that minted it is gone.
"""

from __future__ import annotations

from typing import Any, Literal

import nacl.bindings
import nacl.utils

from credentials.errors import InvalidDID
from credentials.keys import Ed25519Key, PublicKey, b64url
from credentials.multibase import (
    X25519_PUB_PREFIX,
    decode_ed25519_public,
    encode_base58btc,
    encode_ed25519_public,
)

DID_KEY_PREFIX = "did:key:"

KeyFormat = Literal[
    "Multikey", "Ed25519VerificationKey2018", "Ed25519VerificationKey2020", "JsonWebKey2020"
]

_LEGACY_CONTEXTS: dict[str, list[str]] = {
    "Ed25519VerificationKey2018": [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/suites/ed25519-2018/v1",
        "https://w3id.org/security/suites/x25519-2019/v1",
    ],
    "JsonWebKey2020": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
}


def did_key_from_public_key(public_key: bytes) -> str:
    return DID_KEY_PREFIX + encode_ed25519_public(public_key)


def key_from_seed(seed: bytes) -> Ed25519Key:
    """The did:key signing key for a 32-byte seed; its key id is ``did:key:z…#z…``."""
    public = nacl.bindings.crypto_sign_seed_keypair(seed)[0]
    did = did_key_from_public_key(public)
    return Ed25519Key(seed, f"{did}#{did[len(DID_KEY_PREFIX):]}")


def mint_battery_did() -> tuple[str, Ed25519Key]:
    """A fresh Ed25519 key and the battery DID it defines.

    The caller stores the key (normally in the keystore); losing it means nobody can append
    to this battery's passport in its name again.
    """
    key = key_from_seed(nacl.utils.random(32))
    return key.controller, key


def public_key_of_did_key(did: str) -> PublicKey:
    if not did.startswith(DID_KEY_PREFIX):
        raise InvalidDID(f"not a did:key: {did!r}")
    suffix = did[len(DID_KEY_PREFIX):]
    if not suffix or "#" in suffix or ":" in suffix:
        raise InvalidDID(f"malformed did:key: {did!r}")
    return PublicKey(decode_ed25519_public(suffix))


def resolve_did_key(did: str, key_format: KeyFormat = "Multikey") -> dict[str, Any]:
    """The DID document of a did:key, built offline.

    ``Multikey`` is what the did:key spec prescribes today; ``Ed25519VerificationKey2018`` and
    ``JsonWebKey2020`` reproduce the published test vectors (with the derived X25519
    key-agreement key) and ``Ed25519VerificationKey2020`` suits legacy verifiers.
    """
    public = public_key_of_did_key(did)
    suffix = did[len(DID_KEY_PREFIX):]
    vm_id = f"{did}#{suffix}"
    method: dict[str, Any] = {"id": vm_id, "type": key_format, "controller": did}
    legacy = key_format in _LEGACY_CONTEXTS
    if key_format == "Ed25519VerificationKey2018":
        method["publicKeyBase58"] = encode_base58btc(public.raw)[1:]
    elif key_format == "JsonWebKey2020":
        method["publicKeyJwk"] = public.jwk()
    if legacy:
        contexts = _LEGACY_CONTEXTS[key_format]
    else:
        method["publicKeyMultibase"] = suffix
        contexts = [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1"
            if key_format == "Multikey"
            else "https://w3id.org/security/suites/ed25519-2020/v1",
        ]
    doc: dict[str, Any] = {
        "@context": contexts,
        "id": did,
        "verificationMethod": [method],
        "assertionMethod": [vm_id],
        "authentication": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }
    if legacy:
        x25519 = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public.raw)
        ka_id = f"{did}#{encode_base58btc(X25519_PUB_PREFIX + x25519)}"
        agreement: dict[str, Any] = {"id": ka_id, "controller": did}
        if key_format == "JsonWebKey2020":
            agreement |= {
                "type": "JsonWebKey2020",
                "publicKeyJwk": {"kty": "OKP", "crv": "X25519", "x": b64url(x25519)},
            }
        else:
            agreement |= {
                "type": "X25519KeyAgreementKey2019",
                "publicKeyBase58": encode_base58btc(x25519)[1:],
            }
        doc["verificationMethod"].append(agreement)
        doc["keyAgreement"] = [ka_id]
    return doc
