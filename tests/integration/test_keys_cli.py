# SPDX-License-Identifier: Apache-2.0
"""A node's own keys on disk: rotation that survives a failure, retiring old keys, and a TLS
private key that other users may read."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.cli.main import main
from node.config import NodeConfig
from node.crypto.keys import AgencyKeys, key_id, rotate_key
from node.errors import ConfigError
from node.federation import ceremony
from node.timeutil import now_ms
from tests.integration.harness import current_directory, make_configs, publish, start

UNIT = "aa-cyber-unit"


@pytest.fixture
def config(tmp_path: Path, node_database_urls: Callable[[str], str]) -> NodeConfig:
    return make_configs(tmp_path, node_database_urls)[UNIT]


def retire(capsys: pytest.CaptureFixture[str], config: NodeConfig, kid: str) -> tuple[int, str]:
    code = main(["node", "retire-key", kid, "--config", str(config.config_path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_old_key_is_retired_only_after_its_overlap(
    config: NodeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    old = AgencyKeys.load(config.keys_dir).signing_key_id
    new_public = rotate_key(config.keys_dir, "signing")
    new = key_id(new_public)

    code, out = retire(capsys, config, new)
    assert code == 1
    assert "current signing key" in out
    # The trusted directory lists the old key without an end yet: peers may still use it.
    code, out = retire(capsys, config, old)
    assert code == 1
    assert "retire it once its overlap has ended" in out
    assert old in AgencyKeys.load(config.keys_dir).signing_keys()

    rotated = ceremony.rotate_key(
        current_directory(config), UNIT, purpose="signing", new_key=new_public,
        overlap_ms=1_000, now_ms=now_ms(),
    )  # fmt: skip
    publish([config], rotated)
    time.sleep(2.1)  # the overlap (instants are whole seconds) ends
    code, out = retire(capsys, config, old)
    assert code == 0, out
    held = AgencyKeys.load(config.keys_dir)
    assert set(held.signing_keys()) == {new}
    retired = config.keys_dir / "retired" / f"signing-{old}.key"
    assert stat.S_IMODE(retired.parent.stat().st_mode) == 0o700
    assert retired.exists()


@pytest.mark.parametrize("kid", ["../signing", "f" * 32])
def test_retiring_a_key_that_is_not_held_is_refused(
    config: NodeConfig, capsys: pytest.CaptureFixture[str], kid: str
) -> None:
    code, out = retire(capsys, config, kid)
    assert code == 1
    assert "32 lowercase hex" in out or "no old signing or encryption key" in out


def test_rotation_that_fails_midway_keeps_the_current_key(
    config: NodeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = AgencyKeys.load(config.keys_dir).signing_key_id
    real_open = os.open
    created: list[str] = []

    def disk_full_after_one_file(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            created.append(str(path))
            if len(created) > 1:
                raise OSError(28, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr("node.files.os.open", disk_full_after_one_file)
    with pytest.raises(ConfigError, match="No space left"):
        rotate_key(config.keys_dir, "signing")
    monkeypatch.undo()
    # The node still starts with the key the directory lists for it.
    assert AgencyKeys.load(config.keys_dir).signing_key_id == before


async def test_a_tls_private_key_readable_by_others_is_refused(config: NodeConfig) -> None:
    config.tls_private_key.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        await start(config, InMemorySpanExporter())
