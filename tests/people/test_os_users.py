# SPDX-License-Identifier: Apache-2.0
"""A second login on the node's machine, created by the test: reaches the socket through the
node's group, and can do nothing until an admin maps it to a Comity user.

The login runs the real CLI in its own process; the kernel, not the caller, tells the node who
it is. Needs root (to create the login and group) and a Python interpreter that other logins
may run (the virtual environment's may live under root's home).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from node.ids import AgencyId
from tests.integration.harness import Federation, make_configs, running_federation
from tests.people.conftest import Cli

UNIT = AgencyId("aa-cyber-unit")
REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd") or not SHARED_PYTHON.exists(),
    reason="needs root, useradd and a system Python of the same version",
)


@dataclass(frozen=True)
class Login:
    name: str
    group: str


@pytest.fixture
def login() -> Iterator[Login]:
    suffix = secrets.token_hex(3)
    created = Login(name=f"comity-officer-{suffix}", group=f"comity-{suffix}")
    subprocess.run(["groupadd", created.group], check=True)
    try:
        subprocess.run(
            ["useradd", "--no-create-home", "--gid", created.group, created.name], check=True
        )
        yield created
    finally:
        subprocess.run(["userdel", created.name], check=False)
        subprocess.run(["groupdel", created.group], check=False)


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str], login: Login
) -> AsyncIterator[Federation]:
    configs = make_configs(tmp_path, node_database_urls)
    socket_dir = Path(f"/tmp/comity-people-{secrets.token_hex(4)}")  # noqa: S108 (the test's own)
    configs[UNIT] = replace(
        configs[UNIT], local_socket=socket_dir / "comity.sock", local_group=login.group
    )
    try:
        async with running_federation(configs) as federation:
            yield federation
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


async def _comity_as(user: str, socket: Path, *args: str) -> tuple[int, str, str]:
    site = next((REPOSITORY / ".venv" / "lib").glob("python*/site-packages"))
    process = await asyncio.create_subprocess_exec(
        "runuser", "-u", user, "--",
        "env", f"COMITY_SOCKET={socket}", f"PYTHONPATH={site}:{REPOSITORY}",
        str(SHARED_PYTHON), "-m", "node.cli.main", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
    )  # fmt: skip
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), " ".join(err.decode().split())


async def test_an_unmapped_login_is_refused_until_an_admin_maps_it(
    fed: Federation, cli: Cli, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = fed.configs[UNIT].local_socket
    monkeypatch.setenv("COMITY_SOCKET", str(socket))  # the admin's CLI, run in this process
    for args in (("whoami",), ("request", "list"), ("users", "list")):
        code, _, err = await _comity_as(login.name, socket, *args)
        assert code == 1
        assert "[unknown_os_user]" in err
        assert f"--os-user {login.name}" in err

    added = await cli(UNIT, "users", "add", "liis", "--unit", "Cyber Unit",
                      "--role", "investigator", "--os-user", login.name)  # fmt: skip
    assert added.code == 0, added.err
    code, out, err = await _comity_as(login.name, socket, "whoami", "--json")
    assert code == 0, err
    me = json.loads(out)
    assert (me["name"], me["signed_in_via"]) == ("liis", "os-user")
    code, _, err = await _comity_as(login.name, socket, "users", "list")
    assert "[access_denied]" in err

    assert (await cli(UNIT, "users", "disable", "liis")).code == 0
    code, _, err = await _comity_as(login.name, socket, "whoami")
    assert "[user_disabled]" in err


async def test_a_login_outside_the_group_cannot_reach_the_socket(fed: Federation) -> None:
    code, _, err = await _comity_as("nobody", fed.configs[UNIT].local_socket, "whoami")
    assert code == 1
    assert "[local_node_unreachable]" in err
