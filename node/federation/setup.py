# SPDX-License-Identifier: Apache-2.0
"""One-machine federations (demo set-ups, benchmarks, chaos runs, tests): root keys made
locally, every node given the same signed directory. A real federation runs the ceremony
with ``comity federation …`` and root keys held apart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nacl.signing import SigningKey

from node.config import NodeConfig
from node.crypto.keys import save_signing_key
from node.federation import ceremony
from node.federation.document import SignedDirectory
from node.members import read_member_card
from node.timeutil import now_ms

ROOT_COUNT, ROOT_THRESHOLD = 3, 2


def root_key_path(roots_dir: Path, index: int) -> Path:
    return roots_dir / f"root-{index}.key"


def federate(configs: Sequence[NodeConfig], *, roots_dir: Path) -> SignedDirectory:
    """Make root keys in ``roots_dir`` and write a directory listing every node, signed by
    all of them, as each node's directory file. Each node's ``member.toml`` sits beside its
    configuration (``comity node init`` puts it there)."""
    roots_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    roots = [SigningKey.generate() for _ in range(ROOT_COUNT)]
    for index, key in enumerate(roots):
        save_signing_key(root_key_path(roots_dir, index), key)
    cards = [
        read_member_card((c.config_path.parent / "member.toml").read_text(encoding="utf-8"))
        for c in configs
    ]
    document = ceremony.signed_directory(
        cards, root_keys=roots, threshold=ROOT_THRESHOLD, now_ms=now_ms()
    )
    for config in configs:
        config.directory_file.write_bytes(document.to_json())
    return document
