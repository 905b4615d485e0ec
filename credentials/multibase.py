"""Multibase / multicodec encodings for Ed25519 keys (did:key, Multikey, proofValue)."""

from __future__ import annotations

import base58

from credentials.errors import InvalidDID

ED25519_PUB_PREFIX = b"\xed\x01"
ED25519_PRIV_PREFIX = b"\x80\x26"
X25519_PUB_PREFIX = b"\xec\x01"


def encode_base58btc(data: bytes) -> str:
    """Multibase base58btc: ``z`` + base58 (bitcoin alphabet)."""
    return "z" + base58.b58encode(data).decode("ascii")


def decode_base58btc(value: str) -> bytes:
    if not value.startswith("z"):
        raise ValueError("multibase value must use base58btc (prefix 'z')")
    try:
        return base58.b58decode(value[1:])
    except ValueError as exc:
        raise ValueError(f"invalid base58btc value: {exc}") from exc


def encode_ed25519_public(public_key: bytes) -> str:
    return encode_base58btc(ED25519_PUB_PREFIX + public_key)


def decode_ed25519_public(multibase: str) -> bytes:
    """The raw 32-byte key of an Ed25519 ``publicKeyMultibase`` / did:key suffix."""
    try:
        raw = decode_base58btc(multibase)
    except ValueError as exc:
        raise InvalidDID(str(exc)) from exc
    if not raw.startswith(ED25519_PUB_PREFIX) or len(raw) != 34:
        raise InvalidDID("not an Ed25519 public key (multicodec 0xed01, 32 bytes)")
    return raw[2:]


def encode_ed25519_private(seed: bytes) -> str:
    return encode_base58btc(ED25519_PRIV_PREFIX + seed)


def decode_ed25519_private(multibase: str) -> bytes:
    raw = decode_base58btc(multibase)
    if not raw.startswith(ED25519_PRIV_PREFIX) or len(raw) != 34:
        raise ValueError("not an Ed25519 private key (multicodec 0x8026, 32 bytes)")
    return raw[2:]
