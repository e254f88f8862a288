# SPDX-License-Identifier: Apache-2.0
"""RFC 6962 tree hashing against the Certificate Transparency vectors; every proof under 300."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    SubtreeHash,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency test leaves and the roots of their first n (audit-log.md).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


def test_empty_tree_root() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(("n", "root"), sorted(ROOTS.items()))
def test_known_roots(n: int, root: str) -> None:
    assert root_from_leaf_hashes([leaf_hash(x) for x in LEAVES[:n]]).hex() == root


def tree(size: int) -> tuple[list[bytes], SubtreeHash]:
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    hashes = [leaf_hash(x) for x in leaves]

    @cache
    def subtree(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(hashes[start:end]) if end - start < 4 else _split(start, end)

    def _split(start: int, end: int) -> bytes:
        from node.audit.merkle import node_hash, split_point

        k = split_point(end - start)
        return node_hash(subtree(start, start + k), subtree(start + k, end))

    return leaves, subtree


MAX = 300
LEAVES_300, SUBTREE_300 = tree(MAX)


def test_every_inclusion_proof_below_300_verifies_and_only_for_its_leaf() -> None:
    for size in range(1, MAX):
        root = SUBTREE_300(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, SUBTREE_300)
            verify_inclusion(leaf=LEAVES_300[index], index=index, size=size, proof=proof, root=root)
            if size > 1:
                with pytest.raises(ProofError):
                    verify_inclusion(
                        leaf=LEAVES_300[index],
                        index=(index + 1) % size,
                        size=size,
                        proof=proof,
                        root=root,
                    )


def test_every_consistency_proof_below_300_verifies() -> None:
    for new in range(1, MAX):
        new_root = SUBTREE_300(0, new)
        for old in range(1, new + 1):
            proof = consistency_proof(old, new, SUBTREE_300)
            old_root = SUBTREE_300(0, old)
            verify_consistency(
                old_size=old, old_root=old_root, new_size=new, new_root=new_root, proof=proof
            )
            if old < new:
                with pytest.raises(ProofError):
                    verify_consistency(
                        old_size=old,
                        old_root=new_root,
                        new_size=new,
                        new_root=new_root,
                        proof=proof,
                    )


def test_size_and_root_must_both_come_from_one_checkpoint() -> None:
    """The reference's pitfall: the RFC 9162 algorithm accepts a proof for index 5 of 100
    against size 101 with the size-100 root. Only a size and root taken together from a
    verified checkpoint bind the proof; with the real size-101 root it fails."""
    proof = inclusion_proof(5, 100, SUBTREE_300)
    root_100, root_101 = SUBTREE_300(0, 100), SUBTREE_300(0, 101)
    verify_inclusion(leaf=LEAVES_300[5], index=5, size=101, proof=proof, root=root_100)
    with pytest.raises(ProofError):
        verify_inclusion(leaf=LEAVES_300[5], index=5, size=101, proof=proof, root=root_101)


@pytest.mark.parametrize(("index", "size"), [(-1, 5), (5, 5), (0, 0)])
def test_out_of_range_indices_are_refused(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf=b"", index=index, size=size, proof=[], root=EMPTY_ROOT)


def test_malformed_proofs_are_refused() -> None:
    root = SUBTREE_300(0, 8)
    proof = inclusion_proof(3, 8, SUBTREE_300)
    for bad in ([*proof, proof[0]], proof[:-1], [p[:31] for p in proof]):
        with pytest.raises(ProofError):
            verify_inclusion(leaf=LEAVES_300[3], index=3, size=8, proof=bad, root=root)
    with pytest.raises(ProofError):
        verify_consistency(old_size=4, old_root=root, new_size=4, new_root=root, proof=[root])
    with pytest.raises(ProofError):
        verify_consistency(old_size=0, old_root=root, new_size=4, new_root=root, proof=[])


@given(st.integers(1, MAX - 1), st.data())
def test_any_bit_flip_in_a_proof_is_refused(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, SUBTREE_300)
    if not proof:
        return
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(proof[which])
    flipped[bit // 8] ^= 1 << (bit % 8)
    bad = [*proof[:which], bytes(flipped), *proof[which + 1 :]]
    with pytest.raises(ProofError):
        verify_inclusion(
            leaf=LEAVES_300[index], index=index, size=size, proof=bad, root=SUBTREE_300(0, size)
        )
