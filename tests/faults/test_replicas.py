# SPDX-License-Identifier: Apache-2.0
"""Two replica processes per node on one PostgreSQL database, one of them killed at random
moments under load: the survivors take over its claims, nothing is lost or applied twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.chaos.campaign import RECEIVER, SENDER, make_nodes, replicas_of, run_campaign
from tests import dbutil

CYCLES = 10


@pytest.fixture
def postgres_urls() -> Iterator[Callable[[str], str]]:
    """One fresh PostgreSQL schema per node (its replicas share it)."""
    dbutil.require_postgres()
    schemas: list[str] = []

    def make(_name: str) -> str:
        schemas.append(dbutil.create_schema())
        return dbutil.schema_url(schemas[-1])

    yield make
    for schema in schemas:
        dbutil.drop_schema(schema)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_replicas_share_outbox_and_inbox_through_kills(
    tmp_path: Path, postgres_urls: Callable[[str], str]
) -> None:
    configs = make_nodes(tmp_path, postgres_urls, replicas=2)
    assert len(replicas_of(configs, SENDER)) == len(replicas_of(configs, RECEIVER)) == 2
    report = run_campaign(configs, tmp_path, cycles=CYCLES, seed=31)
    print("\n".join(report.lines()))  # noqa: T201 (the campaign's figures, shown with -s)
    assert report.sent > CYCLES
    assert report.lost == []
    assert report.duplicated == []
    assert report.disagreements == []
    assert report.undrained == 0
    assert report.delivered == report.sent
    # The shared port spread the senders' connections over both receiver replicas.
    for name in replicas_of(configs, RECEIVER):
        log = tmp_path / f"{name.replace('/', '-')}.log"
        assert "registered message" in log.read_text(), name
