# SPDX-License-Identifier: Apache-2.0
"""Running nodes for the people tests, and the CLI run against them as a chosen user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.cli.main import main
from tests.integration.harness import Federation, make_configs, running_federation


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    async with running_federation(make_configs(tmp_path, node_database_urls)) as federation:
        yield federation


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """``comity`` against one node, as its initialising login or with a service token."""

    fed: Federation
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    async def __call__(self, agency: str, *args: str, token: str | None = None) -> Outcome:
        config = str(self.fed.configs[agency].config_path)
        with self.monkeypatch.context() as env:
            if token is None:
                env.delenv("COMITY_TOKEN", raising=False)
            else:
                env.setenv("COMITY_TOKEN", token)
            code = await asyncio.to_thread(main, [*args, "--config", config])
        captured = self.capsys.readouterr()
        return Outcome(code, captured.out, " ".join(captured.err.split()))


@pytest.fixture
def cli(
    fed: Federation, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.delenv("COMITY_TOKEN", raising=False)
    monkeypatch.delenv("COMITY_TOKEN_FILE", raising=False)
    return Cli(fed, capsys, monkeypatch)
