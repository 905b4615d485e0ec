"""Ed25519 signing keys and their public halves, named by DID URLs."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from credentials.multibase import (
    decode_ed25519_private,
    encode_ed25519_private,
    encode_ed25519_public,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key as found in a DID document's verification method."""

    raw: bytes
    _verify_key: VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise ValueError("an Ed25519 public key has 32 bytes")
        object.__setattr__(self, "_verify_key", VerifyKey(self.raw))

    @property
    def multibase(self) -> str:
        return encode_ed25519_public(self.raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._verify_key.verify(message, signature)
        except (BadSignatureError, ValueError):
            return False
        return True

    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(self.raw)}


@dataclass(frozen=True, slots=True)
class Ed25519Key:
    """A private Ed25519 key together with the DID URL that names it (``key_id``).

    The key id is what proofs put in ``verificationMethod``; keeping it beside the key means a
    signer can never sign with one key and name another.
    """

    seed: bytes = field(repr=False)
    key_id: str
    _signing_key: SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")
        object.__setattr__(self, "_signing_key", SigningKey(self.seed))

    @property
    def controller(self) -> str:
        """The DID that controls this key (the key id without its fragment)."""
        return self.key_id.split("#", 1)[0]

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self._signing_key.verify_key))

    @property
    def private_multibase(self) -> str:
        return encode_ed25519_private(self.seed)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature

    def jwk(self) -> dict[str, str]:
        """Private JWK (OKP / Ed25519), as jwcrypto and didkit take it."""
        return {**self.public_key.jwk(), "d": b64url(self.seed)}

    @classmethod
    def from_private_multibase(cls, value: str, key_id: str) -> Ed25519Key:
        return cls(decode_ed25519_private(value), key_id)
