# SPDX-License-Identifier: Apache-2.0
"""Three running nodes (a cybercrime unit and two central authorities), on each database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.integration.harness import Federation, make_configs, running_federation


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    async with running_federation(make_configs(tmp_path, node_database_urls)) as federation:
        yield federation
