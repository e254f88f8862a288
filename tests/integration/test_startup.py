# SPDX-License-Identifier: Apache-2.0
"""A node that cannot start says why and leaves nothing open behind it."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from node.errors import ConfigError
from tests.integration.harness import make_configs, start
from tests.integration.test_campaigns import UNIT


async def test_a_node_whose_port_is_taken_closes_its_database(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    config = make_configs(tmp_path, node_database_urls)[UNIT]
    host, port = config.listen.rsplit(":", 1)
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        with pytest.raises(ConfigError, match="cannot listen"):
            await start(config, InMemorySpanExporter())
    # An engine left open would warn when collected, and warnings fail the suite.
    gc.collect()
