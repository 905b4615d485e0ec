"""Merkle trees and inclusion proofs: the Certificate Transparency vectors, then properties.

The vectors are the RFC 6962 reference ones (eight leaves, the roots of every prefix and a
few inclusion paths) that Certificate Transparency implementations test against.
"""

from __future__ import annotations

import base64
import hashlib
import random
from functools import cache

import pytest

from credentials.merkle import (
    EMPTY_ROOT,
    InclusionProof,
    MerkleTree,
    decode_hash,
    encode_hash,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_inclusion,
)

h = bytes.fromhex

CT_LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                            "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf index, tree size, path): RFC 6962 reference inclusion proofs.
CT_PROOFS = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# Reference: the RFC's recursive definitions, written as plainly as possible -------------

def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def _ref_mth(leaves: tuple[bytes, ...]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + _ref_mth(leaves[:k]) + _ref_mth(leaves[k:])).digest()


def _ref_path(m: int, leaves: tuple[bytes, ...]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*_ref_path(m, leaves[:k]), _ref_mth(leaves[k:])]
    return [*_ref_path(m - k, leaves[k:]), _ref_mth(leaves[:k])]


def _directions(index: int, size: int) -> list[bool] | None:
    """Which side each path node joins on (RFC 9162 §2.1.3.2), None if no path fits."""
    if not 0 <= index < size:
        return None
    fn, sn, out = index, size - 1, []
    while sn:
        if fn & 1 or fn == sn:
            out.append(True)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            out.append(False)
        fn, sn = fn >> 1, sn >> 1
    return out


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


# Vectors -------------------------------------------------------------------------------

def test_empty_tree_root_is_the_hash_of_nothing():
    assert merkle_root([]) == EMPTY_ROOT == h(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert MerkleTree([]).root == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_rfc6962_vectors(size):
    assert merkle_root(CT_LEAVES[:size]) == CT_ROOTS[size - 1]
    assert MerkleTree(CT_LEAVES[:size]).root == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), CT_PROOFS)
def test_inclusion_proofs_match_the_rfc6962_vectors(index, size, path):
    leaves = CT_LEAVES[:size]
    expected = [h(node) for node in path]
    assert inclusion_proof(leaves, index) == expected
    assert MerkleTree(leaves).proof(index) == expected
    assert verify_inclusion(leaves[index], index, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("index", "size", "path"), [p for p in CT_PROOFS if p[2]])
def test_corrupted_vector_proofs_fail(index, size, path):
    """The corruptions CT verifiers are tested with: every one must fail."""
    leaf, root = CT_LEAVES[index], CT_ROOTS[size - 1]
    proof = [h(node) for node in path]
    probes = [
        (leaf, index - 1, size, proof, root), (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root), (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root), (b"WrongLeaf", index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT), (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], root), (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [b"", *proof], root), (leaf, index, size, [root, *proof], root),
        (leaf, index, size, proof[:-1], root),
    ]
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root))
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((leaf, index, size, flipped, root))
    for probe in probes:
        assert not verify_inclusion(*probe), probe


def test_single_leaf_tree():
    root = leaf_hash(b"data")
    assert merkle_root([b"data"]) == root
    assert verify_inclusion(b"data", 0, 1, [], root)
    assert not verify_inclusion(b"data", 0, 1, [], b"")
    assert not verify_inclusion(b"data", 0, 1, [root], root)  # trailing garbage
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)):
        assert not verify_inclusion(b"data", index, size, [], root)


def test_odd_node_is_carried_up_not_duplicated():
    """CVE-2012-2459: with last-node duplication [a, b, c] and [a, b, c, c] share a root."""
    a, b, c = b"a", b"b", b"c"
    assert merkle_root([a, b, c]) == node_hash(node_hash(leaf_hash(a), leaf_hash(b)),
                                               leaf_hash(c))
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    # and a leaf cannot pose as an inner node (domain separation)
    inner = node_hash(leaf_hash(a), leaf_hash(b))
    assert merkle_root([a, b]) != merkle_root([inner])


def test_index_errors_and_argument_types():
    leaves = _leaves(3)
    with pytest.raises(IndexError):
        inclusion_proof(leaves, 3)
    with pytest.raises(IndexError):
        inclusion_proof(leaves, -1)
    with pytest.raises(IndexError):
        MerkleTree(leaves).proof(5)
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 1)
    assert not verify_inclusion(leaves[1], True, 3, proof, root)  # bool is not an index
    assert not verify_inclusion(leaves[1], 1, 3.0, proof, root)  # type: ignore[arg-type]


# Properties over sizes 1..200 ----------------------------------------------------------

@pytest.mark.parametrize("size", range(1, 65))
def test_tree_matches_the_recursive_definition(size):
    leaves = _leaves(size)
    tree = MerkleTree(leaves)
    assert tree.root == _ref_mth(tuple(leaves)) == merkle_root(leaves)
    ref = tuple(leaves)
    assert tree.proofs() == [_ref_path(m, ref) for m in range(size)]


def test_every_proof_verifies_and_every_mutation_fails_for_sizes_1_to_200():
    rng = random.Random(2459)
    for size in range(1, 201):
        leaves = _leaves(size)
        tree = MerkleTree(leaves)
        root = tree.root
        assert root == _ref_mth(tuple(leaves))
        proofs = tree.proofs()
        for index, proof in enumerate(proofs):
            assert verify_inclusion(leaves[index], index, size, proof, root), (size, index)
        for index in sorted({0, 1 % size, size // 2, size - 2 if size > 1 else 0, size - 1,
                             rng.randrange(size)}):
            _assert_mutations_fail(leaves, index, proofs[index], root)


def _assert_mutations_fail(leaves, index, proof, root):
    size, leaf = len(leaves), leaves[index]
    for other in range(max(0, index - 2), min(size, index + 3)):
        if other != index:
            assert not verify_inclusion(leaf, other, size, proof, root), ("index", other)
    for other_size in {size - 1, size + 1, size * 2, size // 2, 0}:
        if other_size != size:
            # A path does not bind the tree size on its own: where the other size makes the
            # verifier hash the very same pairs, it checks (hence the size comes from the
            # signed batch, as CT takes it from the signed tree head); otherwise it fails.
            same_hashing = _directions(index, other_size) == _directions(index, size)
            assert verify_inclusion(leaf, index, other_size, proof, root) == same_hashing
    for i, node in enumerate(proof):
        for bit in (0, 7, 255):
            flipped = list(proof)
            flipped[i] = node[: bit // 8] + bytes([node[bit // 8] ^ (1 << bit % 8)]) + (
                node[bit // 8 + 1:])
            assert not verify_inclusion(leaf, index, size, flipped, root)
    for bit in (0, 100, 255):
        bad_root = bytearray(root)
        bad_root[bit // 8] ^= 1 << bit % 8
        assert not verify_inclusion(leaf, index, size, proof, bytes(bad_root))
        bad_leaf = bytearray(leaf)
        bad_leaf[bit // 8] ^= 1 << bit % 8
        assert not verify_inclusion(bytes(bad_leaf), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, [*proof, proof[-1] if proof else root], root)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
        assert not verify_inclusion(leaf, index, size, [node + b"\x00" for node in proof], root)


def test_other_leaves_of_the_same_tree_do_not_verify_at_a_foreign_index():
    leaves = _leaves(13)
    tree = MerkleTree(leaves)
    for index in range(13):
        proof = tree.proof(index)
        for other in range(13):
            assert verify_inclusion(leaves[other], index, 13, proof, tree.root) == (
                other == index)


# JSON encodings ------------------------------------------------------------------------

def test_hash_encoding_is_unpadded_base64url_with_one_spelling():
    digest = bytes(range(32))
    text = encode_hash(digest)
    assert len(text) == 43 and "=" not in text
    assert text == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert decode_hash(text) == digest
    tampered_bits = text[:-1] + chr(ord(text[-1]) + 1)  # spare bits set, or off the alphabet
    for bad in (text + "=", text[:-1], text[:-1] + "+", text.replace(text[0], "/", 1),
                tampered_bits, text + "A", "", 43 * "é", None, 5, digest):
        with pytest.raises(ValueError):
            decode_hash(bad)


def test_inclusion_proof_json_round_trip_and_refusals():
    leaves = _leaves(7)
    tree = MerkleTree(leaves)
    proof = tree.inclusion(4)
    data = proof.to_json()
    assert set(data) == {"leafIndex", "treeSize", "inclusionPath"}
    assert data["leafIndex"] == 4 and data["treeSize"] == 7
    parsed = InclusionProof.from_json(data)
    assert parsed == proof and parsed.verify(leaves[4], tree.root)
    bad = [
        [], {**data, "extra": 1}, {k: v for k, v in data.items() if k != "treeSize"},
        {**data, "leafIndex": True}, {**data, "leafIndex": -1}, {**data, "treeSize": "7"},
        {**data, "inclusionPath": "abc"}, {**data, "inclusionPath": ["short"]},
    ]
    for item in bad:
        with pytest.raises(ValueError):
            InclusionProof.from_json(item)
