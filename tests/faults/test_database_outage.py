# SPDX-License-Identifier: Apache-2.0
"""The database going away mid-run and coming back (PostgreSQL behind a proxy we control).

While the sender's database is away, filing is refused with UNAVAILABLE and nothing is half
written; while the receiver's database is away, deliveries are refused and retried. When it
comes back, everything filed is delivered, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from node.errors import StorageUnavailableError
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.model.request import RequestState
from ops.chaos.proxy import PartitionProxy
from tests import dbutil
from tests.integration.harness import make_configs, running_federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    dbutil.require_postgres()
    created: list[str] = []
    yield created
    for schema in created:
        dbutil.drop_schema(schema)


def through(proxy_port: int, url: str) -> str:
    parts = urlsplit(url)
    host = (
        f"{parts.username}@127.0.0.1:{proxy_port}" if parts.username else f"127.0.0.1:{proxy_port}"
    )
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@pytest.mark.postgres
async def test_database_outage_refuses_cleanly_and_loses_nothing(
    tmp_path: Path, schemas: list[str]
) -> None:
    server_port = urlsplit(dbutil.postgres_url()).port or 5432
    proxies = {
        UNIT: PartitionProxy(target=server_port),
        AUTHORITY: PartitionProxy(target=server_port),
    }
    for proxy in proxies.values():
        await proxy.start()

    def url(agency: str) -> str:
        schemas.append(dbutil.create_schema())
        direct = dbutil.schema_url(schemas[-1])
        return through(proxies[AgencyId(agency)].port, direct) if agency in proxies else direct

    configs = make_configs(tmp_path, url)
    configs[UNIT] = replace(configs[UNIT], file_wait_s=0.3)
    async with running_federation(configs) as fed:
        unit = fed.nodes[UNIT].exchange
        first = await unit.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=FORM
        )
        assert first.state is RequestState.DELIVERED

        await proxies[UNIT].cut()
        with pytest.raises(StorageUnavailableError, match="database is unavailable"):
            await unit.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=FORM
            )
        await proxies[UNIT].heal()

        await proxies[AUTHORITY].cut()
        during = await unit.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=FORM
        )
        assert during.state is RequestState.SUBMITTED
        assert during.delivery is not None
        error = during.delivery.last_error or ""
        assert "database is unavailable" in error
        assert str(proxies[AUTHORITY].port) not in error  # nothing of its setup reaches a peer
        await proxies[AUTHORITY].heal()

        for _ in range(200):
            if (await unit.get_request(during.request_id)).state is RequestState.DELIVERED:
                break
            await asyncio.sleep(0.05)
        assert (await unit.get_request(during.request_id)).state is RequestState.DELIVERED
        # Off the event loop: the proxies between the nodes and their databases run on it.
        assert (await asyncio.to_thread(fed.rows, AUTHORITY))["exchange"] == 2
        # The refused filing left nothing behind.
        assert (await asyncio.to_thread(fed.rows, UNIT))["exchange"] == 2
    for proxy in proxies.values():
        await proxy.cut()
