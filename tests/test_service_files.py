# SPDX-License-Identifier: Apache-2.0
"""The systemd unit in ops/systemd: systemd itself parses it without a complaint and rates it
well hardened."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "ops" / "systemd" / "comity-node.service"
INSTALLED_COMMAND = "/opt/comity/bin/comity"
EXPOSURE_THRESHOLD = 25
"""`systemd-analyze security` exposure, in tenths: 2.5 or below is rated "OK"."""

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)


def unit_here(tmp_path: Path) -> Path:
    """The unit with its ExecStart pointed at an executable of this machine (verify checks
    that the command exists)."""
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_COMMAND in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_COMMAND, sys.executable), encoding="utf-8")
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_systemd_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    result = analyze("verify", str(unit_here(tmp_path)))
    assert result.returncode == 0, result.stderr
    # verify exits 0 on a mistyped key or value, which it only warns about and ignores.
    assert result.stderr.strip() == "", result.stderr


def test_the_unit_is_rated_hardened(tmp_path: Path) -> None:
    result = analyze(
        "security", "--offline=true", f"--threshold={EXPOSURE_THRESHOLD}", str(unit_here(tmp_path))
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_the_unit_keeps_the_settings_the_runbook_relies_on() -> None:
    settings = {
        line.strip()
        for line in UNIT.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for expected in (
        "User=comity",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/comity",
        "RuntimeDirectory=comity",
        "KillSignal=SIGTERM",
    ):
        assert expected in settings
