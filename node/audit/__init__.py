# SPDX-License-Identifier: Apache-2.0
"""The privacy-scoped, tamper-evident audit log: Merkle tree, checkpoints, proofs."""
