# SPDX-License-Identifier: Apache-2.0
"""The health port of a real node: /livez, and /readyz naming what is not ready."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from node.config import NodeConfig
from node.federation import ceremony
from node.runtime import RunningNode
from node.storage.engine import create_engine
from node.timeutil import now_ms
from tests.integration.harness import current_directory, make_configs, publish, start

DAY_S = 86400


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.getheader("Content-Type") == "application/json"
    return response.status, json.loads(body) if body else {}


async def probe(node: RunningNode, path: str, method: str = "GET") -> tuple[int, dict[str, object]]:
    assert node.health_port is not None
    return await asyncio.to_thread(get, node.health_port, path, method)


def one_config(tmp_path: Path, database_urls: Callable[[str], str]) -> NodeConfig:
    config = make_configs(tmp_path, database_urls)["aa-cyber-unit"]
    return replace(config, health_listen="127.0.0.1:0")


@asynccontextmanager
async def running(config: NodeConfig) -> AsyncIterator[RunningNode]:
    node = await start(config, InMemorySpanExporter())
    try:
        yield node
    finally:
        await node.stop()


def remove_database(url: str) -> None:
    """Take the node's database away: its SQLite file, or its PostgreSQL schema."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink()
        return
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


async def test_ready_until_the_database_is_gone(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    config = one_config(tmp_path, node_database_urls)
    async with running(config) as node:
        assert await probe(node, "/livez") == (200, {"status": "alive"})
        assert await probe(node, "/readyz") == (200, {"status": "ready"})
        remove_database(config.database_url)
        status, body = await probe(node, "/readyz")
        assert status == 503
        assert body["status"] == "not ready"
        failing = body["failing"]
        assert isinstance(failing, dict)
        assert set(failing) == {"database"}
        assert "postgresql" not in str(failing["database"])  # no URL on an open port
        assert await probe(node, "/livez") == (200, {"status": "alive"})


async def test_not_ready_once_the_directory_expires(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    config = one_config(tmp_path, node_database_urls)
    lifetime_s = 6.0
    publish(
        [config],
        ceremony.renew(current_directory(config), now_ms=now_ms(), valid_days=lifetime_s / DAY_S),
    )
    started = time.monotonic()
    async with running(config) as node:
        assert await probe(node, "/readyz") == (200, {"status": "ready"})
        await asyncio.sleep(max(0.0, lifetime_s - (time.monotonic() - started)) + 0.5)
        status, body = await probe(node, "/readyz")
        assert status == 503
        failing = body["failing"]
        assert isinstance(failing, dict)
        assert "directory" in failing
        assert "expired at" in str(failing["directory"])
        assert "database" not in failing


async def test_other_paths_methods_and_garbage_get_plain_refusals(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    config = one_config(tmp_path, node_database_urls)
    async with running(config) as node:
        assert (await probe(node, "/metrics"))[0] == 404
        assert (await probe(node, "/readyz", "POST"))[0] == 405
        head = await probe(node, "/readyz", "HEAD")
        assert head == (200, {})
        assert node.health_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", node.health_port)
        writer.write(b"\x16\x03\x01 not http\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_the_health_port_is_off_unless_configured(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    config = make_configs(tmp_path, node_database_urls)["aa-cyber-unit"]
    async with running(config) as node:
        assert node.health_port is None
