# SPDX-License-Identifier: Apache-2.0
"""Sighting reports through the durable queue, with real nodes: a report made while the set's
owner is down is kept, shown as queued, and arrives once the owner returns without anyone
acting; a refusal for good stops the retries and keeps the reason; replicas sharing a database
do not both send one; no value or note reaches a log line or a span."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from node.cli.main import main
from node.config import NodeConfig
from node.ids import AgencyId
from node.indicators.sets import Indicator
from node.indicators.sightings import SightingKind
from node.services.outbox import OwedState
from node.services.set_offers import OfferSettings
from node.services.sighting_reports import SentReport, SightingReports
from node.storage import leased
from node.storage.engine import transaction
from node.storage.tables import IndicatorSighting, SightingReport
from node.timeutil import now_ms
from tests.integration.harness import Federation, make_configs, running_federation, start

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
PHONE, CANONICAL_PHONE = "+372 5123 4567", "+37251234567"
NOTE = "Seen in the replies to victim V-31's posts"
HOUR_MS = 3_600_000


@pytest.fixture
def configs(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, NodeConfig]:
    built = make_configs(tmp_path, node_database_urls)
    return {a: replace(c, indicator_resend_interval_s=0.1) for a, c in built.items()}


@pytest.fixture
async def fed(configs: dict[str, NodeConfig]) -> AsyncIterator[Federation]:
    async with running_federation(configs) as federation:
        yield federation


async def shared_set(fed: Federation) -> str:
    """A set of the unit's holding one phone number, shared with the authority."""
    service = fed.nodes[UNIT].indicators
    created = await service.create(tlp="TLP:AMBER+STRICT", recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    await service.add(set_id, [Indicator.of("phone", PHONE)])
    await service.share(set_id, AUTHORITY)
    return set_id


def stored_at_owner(fed: Federation) -> int:
    with transaction(fed.nodes[UNIT].engine) as session:
        return int(session.exec(select(func.count()).select_from(IndicatorSighting)).one())


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def status_counts(
    capsys: pytest.CaptureFixture[str], config: tuple[str, str]
) -> dict[str, int]:
    code, out, err = await cli(capsys, "node", "status", "--json", *config)
    assert code == 0, err
    counts: dict[str, int] = json.loads(out)["sighting_reports"]
    return counts


async def eventually_settled(
    fed: Federation, set_id: str, *, timeout_s: float = 20.0
) -> SentReport:
    """The authority's one report about ``set_id`` once it is no longer pending (or as it
    stands at the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        [report] = await fed.nodes[AUTHORITY].sightings.sent_about(set_id)
        if report.state is not OwedState.PENDING or (asyncio.get_running_loop().time() > deadline):
            return report
        await asyncio.sleep(0.05)


def assert_nothing_secret_leaked(fed: Federation, caplog: pytest.LogCaptureFixture) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    traced = json.dumps([span.to_json() for span in fed.spans.get_finished_spans()])
    assert "sighting report" in logged  # the attempts were logged, by report id
    for secret in (NOTE, PHONE, CANONICAL_PHONE):
        assert secret not in logged
        assert secret not in traced


async def test_a_report_made_while_the_owner_is_down_arrives_when_it_returns(
    fed: Federation,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    set_id = await shared_set(fed)
    await fed.nodes.pop(UNIT).stop()
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))

    code, out, err = await cli(
        capsys, "indicators", "report", set_id, "--type", "phone", "--value", PHONE,
        "--kind", "seen", "--note", NOTE, *authority,
    )  # fmt: skip
    assert code == 0, err
    said = " ".join(out.split())
    assert f"queued for {UNIT}, which cannot take it now" in said
    assert "peer_unavailable" in said
    assert "the node will keep offering it" in said
    assert await status_counts(capsys, authority) == {"pending": 1, "failed": 0}
    code, out, err = await cli(capsys, "node", "status", *authority)
    assert code == 0, err
    assert "Sighting reports: 1 still offered to set owners, 0 refused" in " ".join(out.split())
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, "--json", *authority)
    assert code == 0, err
    [queued] = json.loads(out)
    assert (queued["kind"], queued["note"], queued["value"]) == ("seen", NOTE, CANONICAL_PHONE)
    assert queued["delivery"]["state"] == "pending"
    assert queued["delivery"]["to"] == UNIT
    assert "peer_unavailable" in queued["delivery"]["last_error"]

    fed.nodes[UNIT] = await start(fed.configs[UNIT], fed.spans)
    delivered = await eventually_settled(fed, set_id)
    assert delivered.state is OwedState.DELIVERED
    assert delivered.last_error is None
    assert delivered.sighting.sighting_id == queued["sighting_id"]
    [held] = await fed.nodes[UNIT].sightings.list_for(set_id)
    assert held.sighting == delivered.sighting
    assert held.sighting.note == NOTE
    # Once: nothing is left to send, and the owner stored the report a single time.
    assert await fed.nodes[AUTHORITY].sightings.reports.resend_due() == 0
    assert stored_at_owner(fed) == 1
    assert await status_counts(capsys, authority) == {"pending": 0, "failed": 0}
    unit = ("--config", str(fed.configs[UNIT].config_path))
    code, out, err = await cli(capsys, "indicators", "show", set_id, "--json", *unit)
    assert code == 0, err
    assert json.loads(out)["sightings"] == [
        {"type": "phone", "value": CANONICAL_PHONE, "seen": {AUTHORITY: 1}, "false_positive": {}}
    ]
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, *authority)
    assert code == 0, err
    assert "delivered" in out
    assert_nothing_secret_leaked(fed, caplog)


async def test_a_refusal_for_good_stops_the_retries_and_keeps_the_reason(
    fed: Federation, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_id = await shared_set(fed)
    # The owner revokes the set while the authority is down, then goes down itself: the
    # authority, still holding the set, reports on it; the owner, back, refuses the report
    # (its set holds no indicator any more), which no retry can change.
    await fed.nodes.pop(AUTHORITY).stop()
    await fed.nodes[UNIT].indicators.revoke(set_id)
    await fed.nodes.pop(UNIT).stop()
    fed.nodes[AUTHORITY] = await start(fed.configs[AUTHORITY], fed.spans)
    queued = await fed.nodes[AUTHORITY].sightings.report(
        set_id, indicator=("phone", PHONE), kind=SightingKind.SEEN, note=NOTE
    )
    assert queued.state is OwedState.PENDING

    fed.nodes[UNIT] = await start(fed.configs[UNIT], fed.spans)
    refused = await eventually_settled(fed, set_id)
    assert refused.state is OwedState.FAILED
    assert "indicator_not_in_set" in (refused.last_error or "")
    assert refused.next_attempt_at_ms is None
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))
    assert await status_counts(capsys, authority) == {"pending": 0, "failed": 1}

    # Nothing due: the background loop leaves it alone.
    assert await fed.nodes[AUTHORITY].sightings.reports.resend_due() == 0
    await asyncio.sleep(0.5)  # several loop intervals
    [again] = await fed.nodes[AUTHORITY].sightings.sent_about(set_id)
    assert (again.state, again.attempts) == (OwedState.FAILED, refused.attempts)
    assert stored_at_owner(fed) == 0
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, "--json", *authority)
    assert code == 0, err
    [shown] = json.loads(out)
    assert shown["delivery"]["state"] == "failed"
    assert "indicator_not_in_set" in shown["delivery"]["last_error"]
    assert_nothing_secret_leaked(fed, caplog)


async def test_replicas_sharing_a_database_do_not_both_send_a_report(fed: Federation) -> None:
    set_id = await shared_set(fed)
    await fed.nodes.pop(UNIT).stop()
    node = fed.nodes[AUTHORITY]
    queued = await node.sightings.report(set_id, indicator=("phone", PHONE), kind=SightingKind.SEEN)
    assert queued.state is OwedState.PENDING

    # Two more replicas on the authority's database, their clocks an hour on (so the report
    # is due for both): the first to claim it holds it for the length of its lease.
    later = now_ms() + HOUR_MS

    def claim() -> list[str]:
        with transaction(node.engine) as session:
            rows = leased.claim_due(
                session, SightingReport, owner="replica-1", now_ms=later, lease_ms=30_000, limit=16
            )
            return [row.sighting_id for row in rows]

    assert await node.database.run(claim) == [queued.sighting.sighting_id]
    assert await replica(fed, "replica-2", lambda: later).resend_due() == 0
    # Once the lease has run out, another replica takes the report over (still pending: the
    # owner is down).
    past_lease = replica(fed, "replica-2", lambda: later + 60_000)
    assert await past_lease.resend_due() == 1
    [report] = await node.sightings.sent_about(set_id)
    assert report.state is OwedState.PENDING
    assert report.attempts == queued.attempts + 1


def replica(fed: Federation, name: str, clock: Callable[[], int]) -> SightingReports:
    node = fed.nodes[AUTHORITY]
    return SightingReports(
        database=node.database,
        directory=node.directory,
        transport=node.peers,
        clock=clock,
        settings=OfferSettings(owner=name),
    )
