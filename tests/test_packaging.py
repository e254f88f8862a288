# SPDX-License-Identifier: Apache-2.0
"""The wheel `python -m build` makes, installed into a fresh virtual environment, runs a node.

The installed project comes from the wheel alone; its dependencies are borrowed from this
environment's site-packages (appended through a ``.pth`` file, which does not run this
environment's editable-install hooks), so the test needs no package index. Every command runs
outside the source tree, without ``COMITY_SCHEMAS_DIR``: the schemas and the migrations must
come from the wheel.
"""

from __future__ import annotations

import os
import signal
import site
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.cli.processes import wait_until_serving
from node.config import load_config
from node.federation.setup import federate
from node.resources import SCHEMAS_ENV
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


class Installed:
    """A virtual environment holding the built wheel, and a clean place to run it from."""

    def __init__(self, venv: Path, work: Path) -> None:
        self.venv = venv
        self.work = work
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in (SCHEMAS_ENV, "PYTHONPATH", "COMITY_CONFIG")
        }

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def comity(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = self.run("comity", *args, timeout=timeout)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    def popen(self, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [str(self.venv / "bin" / args[0]), *args[1:]],
                cwd=self.work,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def _check(command: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    # --no-isolation: build with this environment's setuptools instead of downloading one.
    _check([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), "."], ROOT)
    wheels = list(dist.glob("comity-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    venv = base / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
            "--quiet", str(wheels[0])], base)  # fmt: skip
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "zz_comity_test_dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n"
    )
    work = base / "work"
    work.mkdir()
    return Installed(venv, work)


def test_the_installed_package_is_the_wheel_with_its_schemas(installed: Installed) -> None:
    where = installed.run(
        "python", "-c", "import node, node.resources as r; print(node.__file__, r.schemas_dir())"
    )
    assert where.returncode == 0, where.stderr
    package, schemas = where.stdout.split()
    assert Path(package).is_relative_to(installed.venv)
    assert Path(schemas) == Path(package).parent / "schemas"


def test_version_and_forms_from_the_wheel(installed: Installed) -> None:
    assert installed.comity("--version").stdout.strip() == "comity 0.1.0"
    assert "preservation" in installed.comity("forms", "list").stdout
    shown = installed.comity("forms", "show", "preservation").stdout
    assert "budapest-art29" in shown


def test_a_node_from_the_wheel_initialises_migrates_and_serves(
    installed: Installed, tmp_path: Path
) -> None:
    node_dir = tmp_path / "node"
    installed.comity(
        "node", "init", "--dir", str(node_dir), "--agency-id", "aa-cyber-unit",
        "--country", "EE", "--role", "requesting", "--listen", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    config = load_config(node_dir / "comity.toml")
    federate([config], roots_dir=tmp_path / "roots")
    log = tmp_path / "node.log"
    process = installed.popen(["comity", "node", "serve", "--config", str(config.config_path)], log)
    try:
        wait_until_serving(config, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(480)  # building, four nodes and every step of the demo, on two cores
def test_the_demo_runs_from_the_wheel(installed: Installed) -> None:
    result = installed.comity("demo", timeout=420)
    assert "Demo complete" in result.stdout
