"""Merkle trees over event digests, with inclusion proofs (RFC 9162 §2.1, as RFC 6962 §2.1).

The hub bridge signs one credential per batch of events; the credential carries only the
batch's Merkle root, and each event travels with an inclusion proof that anyone can check
offline against that root. The tree is the Certificate Transparency one, so existing
verifiers and their published test vectors apply:

- domain separation: a leaf hashes as ``SHA-256(0x00 || leaf)``, an inner node as
  ``SHA-256(0x01 || left || right)``, so no inner node can pose as a leaf;
- a tree of ``n`` leaves splits at the largest power of two below ``n``; a node without a
  sibling is carried up unchanged, never paired with a copy of itself. Duplicating the last
  node (Bitcoin's rule) lets two different leaf lists share a root (CVE-2012-2459);
- the empty tree's root is ``SHA-256("")``.

A *leaf* here is the bytes the tree commits to (for hub events: the event's 32-byte digest);
the 0x00-prefixed hash of it is computed inside. Proof paths run from the leaf towards the
root, as in RFC 9162.

JSON form: hashes are base64url without padding (RFC 4648 §5, the alphabet JOSE uses
everywhere else in this code base), decoded strictly: one hash has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(NODE_PREFIX + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first, the root's one-element level last.

    Pairing left to right and carrying an odd last node up unchanged builds exactly the
    RFC's recursive tree (its left subtrees are always complete), in O(n) hashes.
    """
    level = [sha256(LEAF_PREFIX + leaf).digest() for leaf in leaves]
    levels = [level]
    while len(level) > 1:
        paired = [
            sha256(NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        levels.append(level)
    return levels


def _path(levels: list[list[bytes]], index: int) -> list[bytes]:
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):  # the last node of an odd level has no sibling: carried up
            path.append(level[sibling])
        index >>= 1
    return path


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of ``leaves`` (``SHA-256("")`` for none)."""
    if not leaves:
        return EMPTY_ROOT
    return _levels(leaves)[-1][0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 9162 §2.1.3.1), leaf side first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    return _path(_levels(leaves), index)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``leaf`` sits at ``index`` of the ``size``-leaf tree with ``root``.

    RFC 9162 §2.1.3.2, step by step. Any wrong index, proof element (or a missing, extra or
    mis-sized one) or root gives ``False``; nothing raises for a bad proof.

    The path alone does not bind ``size``: where another size makes the verifier hash the
    very same pairs (leaf 0 of 3 and of 4, say) it checks too. So ``size`` must come from
    the same signed source as ``root`` (a batch credential carries both, as a CT signed
    tree head does), never from the proof's own claim.
    """
    if (isinstance(index, bool) or isinstance(size, bool)
            or not isinstance(index, int) or not isinstance(size, int)):
        return False
    if not 0 <= index < size or len(root) != HASH_SIZE:
        return False
    fn, sn = index, size - 1
    r = sha256(LEAF_PREFIX + leaf).digest()
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha256(NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:  # climb past levels where this node had no sibling
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


class MerkleTree:
    """The tree of one batch: root and every inclusion proof from one O(n) build.

    Proofs are cut from the stored levels on demand (O(log n) each), so closing a batch
    costs only its ~2n hashes; ``proofs()`` gives them all in O(n log n).
    """

    __slots__ = ("_levels", "size")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels = _levels(leaves) if leaves else [[EMPTY_ROOT]]

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} outside a tree of {self.size} leaves")
        return _path(self._levels, index)

    def inclusion(self, index: int) -> InclusionProof:
        return InclusionProof(index, self.size, tuple(self.proof(index)))

    def proofs(self) -> list[list[bytes]]:
        return [_path(self._levels, index) for index in range(self.size)]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """A leaf's position and audit path, in the JSON shape events carry."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]

    def verify(self, leaf: bytes, root: bytes) -> bool:
        return verify_inclusion(leaf, self.leaf_index, self.tree_size, self.path, root)

    def to_json(self) -> dict[str, Any]:
        return {
            "leafIndex": self.leaf_index,
            "treeSize": self.tree_size,
            "inclusionPath": [encode_hash(node) for node in self.path],
        }

    @classmethod
    def from_json(cls, data: Any) -> InclusionProof:
        """Parse the JSON form; ``ValueError`` for anything that is not exactly it."""
        if not isinstance(data, dict) or set(data) != {"leafIndex", "treeSize", "inclusionPath"}:
            raise ValueError("an inclusion proof has exactly leafIndex, treeSize, inclusionPath")
        index, size, path = data["leafIndex"], data["treeSize"], data["inclusionPath"]
        for name, value in (("leafIndex", index), ("treeSize", size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")
        if not isinstance(path, list):
            raise ValueError("inclusionPath must be a list of hashes")
        return cls(index, size, tuple(decode_hash(node) for node in path))


def encode_hash(digest: bytes) -> str:
    """base64url without padding (43 characters for a SHA-256 hash)."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def decode_hash(text: Any) -> bytes:
    """The 32 bytes of an ``encode_hash`` string; ``ValueError`` for any other spelling."""
    if not isinstance(text, str) or len(text) != 43 or not text.isascii():
        raise ValueError("a hash is 43 base64url characters")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {exc}") from exc
    if encode_hash(raw) != text:  # stray alphabet or non-zero spare bits: a second spelling
        raise ValueError("not canonical base64url")
    return raw
