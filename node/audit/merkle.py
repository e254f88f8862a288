# SPDX-License-Identifier: Apache-2.0
"""RFC 6962 Merkle tree hashing, proofs (RFC 6962 section 2.1) and their verification
(RFC 9162 sections 2.1.3-2.1.4). Pure functions: no I/O.

The hash function and the domain-separation prefixes are fixed here, never taken from a
proof. Sizes and roots given to the verifiers must come from a checkpoint whose signature was
verified, never from the proof itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from node.errors import ComityError, ErrorKind

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ComityError):
    """An inclusion or consistency proof that does not prove what it claims."""

    kind = ErrorKind.INVALID_INPUT
    code = "bad_proof"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


SubtreeHash = Callable[[int, int], bytes]
"""Hash of the subtree over leaves [start, end): how proofs read the stored tree."""


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head over leaf hashes, iteratively (no recursion limit, O(n))."""
    if not hashes:
        return EMPTY_ROOT
    return _subtree(list(hashes), 0, len(hashes))


def _subtree(hashes: list[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return hashes[start]
    k = split_point(end - start)
    return node_hash(_subtree(hashes, start, start + k), _subtree(hashes, start + k, end))


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]), bottom-up (the leaf's sibling first).

    Raises:
        ProofError: ``index`` is not a leaf of a tree of ``size``.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[0:new_size]).

    Raises:
        ProofError: ``old_size`` is not between 1 and ``new_size``.
    """
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    proof: list[bytes] = []

    def subproof(m: int, start: int, end: int, *, whole: bool) -> None:
        n = end - start
        if m == n:
            if not whole:  # the old tree's root is known to the verifier only when whole
                proof.append(subtree(start, end))
            return
        k = split_point(n)
        if m <= k:
            subproof(m, start, start + k, whole=whole)
            proof.append(subtree(start + k, end))
        else:
            subproof(m - k, start + k, end, whole=False)
            proof.append(subtree(start, start + k))

    subproof(old_size, 0, new_size, whole=True)
    return proof


def verify_inclusion(
    *, leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2: ``leaf`` is at ``index`` in the tree ``(size, root)``.

    Raises:
        ProofError: the proof does not prove it.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(proof)
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofError("inclusion proof does not lead to the checkpoint's root")


def verify_consistency(
    *, old_size: int, old_root: bytes, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: the tree ``(new_size, new_root)`` extends ``(old_size,
    old_root)``.

    Raises:
        ProofError: it does not, or the proof is malformed.
    """
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency between sizes {old_size} and {new_size}")
    _check_hashes(proof)
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ProofError("equal sizes need an empty proof and equal roots")
        return
    nodes = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        nodes.insert(0, old_root)
    if not nodes:
        raise ProofError("consistency proof is empty")
    fr, sr, sn = _consistency_roots(nodes, old_size - 1, new_size - 1)
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError("consistency proof does not join the two checkpoints' roots")


def _consistency_roots(nodes: list[bytes], fn: int, sn: int) -> tuple[bytes, bytes, int]:
    """The old and new roots a consistency path leads to, and what is left of ``sn``."""
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr, sr, sn


def _check_hashes(proof: Sequence[bytes]) -> None:
    if any(len(p) != HASH_BYTES for p in proof):
        raise ProofError(f"every proof hash must be {HASH_BYTES} bytes")
    if len(proof) > 64:
        raise ProofError("proof has more than 64 hashes")
