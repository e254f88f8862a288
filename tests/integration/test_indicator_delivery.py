# SPDX-License-Identifier: Apache-2.0
"""Indicator sets through the durable offer queue, with real nodes: a set shared with an agency
that is down, or revoked while one is down, arrives once it returns without anyone acting; a
refusal for good stops the retries and keeps the reason; no value reaches a log line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from node.cli.main import main
from node.config import NodeConfig
from node.errors import PeerRejectedError
from node.ids import AgencyId
from node.indicators.sets import Indicator, IndicatorSet, sign_set
from node.indicators.tlp import TlpEgressError
from node.services.indicators import SetView
from node.services.outbox import OwedState
from node.services.set_offers import SetDelivery
from tests.integration.harness import Federation, make_configs, running_federation, start

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
PHONE, ACCOUNT = "+372 5123 4567", "Chirper:@Orbit_Watch_77"
CANONICAL = ("+37251234567", "chirper:orbit_watch_77")


@pytest.fixture
def configs(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, NodeConfig]:
    built = make_configs(tmp_path, node_database_urls)
    return {a: replace(c, indicator_resend_interval_s=0.1) for a, c in built.items()}


@pytest.fixture
async def fed(configs: dict[str, NodeConfig]) -> AsyncIterator[Federation]:
    async with running_federation(configs) as federation:
        yield federation


async def a_set(
    fed: Federation,
    tlp: str,
    recipients: list[AgencyId],
    clients: dict[str, list[str]] | None = None,
) -> str:
    service = fed.nodes[UNIT].indicators
    created = await service.create(tlp=tlp, recipients=recipients, clients=clients or {})
    indicators = [Indicator.of("phone", PHONE), Indicator.of("platform_account", ACCOUNT)]
    view = await service.add(created.indicator_set.set_id, indicators)
    return view.indicator_set.set_id


async def held(fed: Federation, agency: str, set_id: str) -> IndicatorSet | None:
    views = {v.indicator_set.set_id: v for v in await fed.nodes[agency].indicators.list_sets()}
    view = views.get(set_id)
    return view.indicator_set if view is not None else None


async def eventually_held(
    fed: Federation, agency: str, set_id: str, *, version: int, timeout_s: float = 20.0
) -> IndicatorSet | None:
    """The set as ``agency`` holds it once it has ``version`` (or the last seen at timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = await held(fed, agency, set_id)
        if (found is not None and found.version >= version) or (
            asyncio.get_running_loop().time() > deadline
        ):
            return found
        await asyncio.sleep(0.05)


def delivery_to(view: SetView, recipient: str) -> SetDelivery:
    [found] = [d for d in view.deliveries if d.recipient == recipient]
    return found


async def eventually_delivered(
    fed: Federation, agency: str, set_id: str, recipient: str, timeout_s: float = 20.0
) -> SetDelivery:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        delivery = delivery_to(await fed.nodes[agency].indicators.get(set_id), recipient)
        if delivery.state is OwedState.DELIVERED or asyncio.get_running_loop().time() > deadline:
            return delivery
        await asyncio.sleep(0.05)


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_no_value_logged(caplog: pytest.LogCaptureFixture) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "indicator set" in logged  # the offers were logged, by set id
    for value in (*CANONICAL, PHONE, ACCOUNT):
        assert value not in logged


async def test_a_set_shared_while_the_peer_is_down_arrives_when_it_returns(
    fed: Federation, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_id = await a_set(fed, "TLP:AMBER+STRICT", [AUTHORITY])
    await fed.nodes.pop(AUTHORITY).stop()
    unit = ("--config", str(fed.configs[UNIT].config_path))

    code, out, err = await cli(capsys, "indicators", "share", set_id, "--with", AUTHORITY, *unit)
    assert code == 0, err
    said = " ".join(out.split())
    assert f"queued for {AUTHORITY}" in said
    assert "peer_unavailable" in said
    code, out, err = await cli(capsys, "indicators", "show", set_id, "--json", *unit)
    assert code == 0, err
    [pending] = json.loads(out)["deliveries"]
    assert pending["recipient"] == AUTHORITY
    assert pending["state"] == "pending"
    assert pending["delivered_version"] is None
    assert pending["owed_version"] == 2
    assert "peer_unavailable" in pending["last_error"]
    code, out, err = await cli(capsys, "node", "status", "--json", *unit)
    assert code == 0, err
    assert json.loads(out)["indicator_set_offers"] == {"pending": 1, "failed": 0}

    fed.nodes[AUTHORITY] = await start(fed.configs[AUTHORITY], fed.spans)
    received = await eventually_held(fed, AUTHORITY, set_id, version=2)
    assert received is not None
    assert received.version == 2
    assert sorted(i.value for i in received.indicators) == sorted(CANONICAL)
    delivered = await eventually_delivered(fed, UNIT, set_id, AUTHORITY)
    assert (delivered.state, delivered.delivered_version) == (OwedState.DELIVERED, 2)
    assert delivered.last_error is None
    assert (await fed.nodes[UNIT].indicators.get(set_id)).shared_with == (AUTHORITY,)
    code, out, err = await cli(capsys, "indicators", "show", set_id, *unit)
    assert code == 0, err
    assert "delivered" in out
    code, out, err = await cli(capsys, "node", "status", "--json", *unit)
    assert json.loads(out)["indicator_set_offers"] == {"pending": 0, "failed": 0}
    assert_no_value_logged(caplog)


async def test_a_revocation_reaches_a_holder_that_was_down_and_is_passed_on(
    fed: Federation, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_id = await a_set(fed, "TLP:AMBER", [AUTHORITY], {AUTHORITY: [THIRD]})
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    await fed.nodes[AUTHORITY].indicators.share(set_id, THIRD)
    assert await held(fed, THIRD, set_id) is not None

    # The first holder is down when the owner revokes; the second is down when the first
    # comes back and has to pass the tombstone on.
    await fed.nodes.pop(AUTHORITY).stop()
    await fed.nodes.pop(THIRD).stop()
    unit = ("--config", str(fed.configs[UNIT].config_path))
    code, out, err = await cli(capsys, "indicators", "revoke", set_id, *unit)
    assert code == 0, err
    assert f"Queued for {AUTHORITY} (not reachable now)" in " ".join(out.split())
    revoked = await fed.nodes[UNIT].indicators.get(set_id)
    assert revoked.indicator_set.revoked
    waiting = delivery_to(revoked, AUTHORITY)
    assert (waiting.state, waiting.delivered_version, waiting.owed_version) == (
        OwedState.PENDING,
        2,
        3,
    )

    fed.nodes[AUTHORITY] = await start(fed.configs[AUTHORITY], fed.spans)
    tombstone = await eventually_held(fed, AUTHORITY, set_id, version=3)
    assert tombstone is not None
    assert tombstone.revoked
    assert tombstone.indicators == ()
    onward = delivery_to(await fed.nodes[AUTHORITY].indicators.get(set_id), THIRD)
    assert onward.owed_version == 3
    assert onward.delivered_version == 2

    fed.nodes[THIRD] = await start(fed.configs[THIRD], fed.spans)
    passed_on = await eventually_held(fed, THIRD, set_id, version=3)
    assert passed_on is not None
    assert passed_on.revoked
    assert passed_on.indicators == ()
    assert (await eventually_delivered(fed, AUTHORITY, set_id, THIRD)).delivered_version == 3
    assert (await eventually_delivered(fed, UNIT, set_id, AUTHORITY)).delivered_version == 3
    assert_no_value_logged(caplog)


async def test_a_refusal_for_good_stops_the_retries_and_keeps_the_reason(
    fed: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    set_id = await a_set(fed, "TLP:GREEN", [])
    unit = fed.nodes[UNIT]
    current = (await unit.indicators.get(set_id)).indicator_set
    # The authority already holds a different version 2 of the set, signed by its owner: it
    # refuses the real one (CONFLICT), which no retry can change.
    other = IndicatorSet(**{**current.__dict__, "indicators": current.indicators[:1]}).to_bytes()
    authority = unit.directory.find(AUTHORITY)
    assert authority is not None
    await unit.peers.offer_set(authority, other, sign_set(other, fed.keys(UNIT).signing))

    with pytest.raises(PeerRejectedError) as caught:
        await unit.indicators.share(set_id, AUTHORITY)
    assert caught.value.peer_code == "replayed_message_id"
    failed = delivery_to(await unit.indicators.get(set_id), AUTHORITY)
    assert failed.state is OwedState.FAILED
    assert failed.owed_version == 2
    assert failed.attempts == 1
    assert "replayed_message_id" in (failed.last_error or "")
    assert failed.next_attempt_at_ms is None

    # Nothing due: the background loop leaves it alone.
    assert await unit.indicators.offers.resend_due() == 0
    await asyncio.sleep(0.5)  # several loop intervals
    again = delivery_to(await unit.indicators.get(set_id), AUTHORITY)
    assert (again.state, again.attempts) == (OwedState.FAILED, 1)
    assert_no_value_logged(caplog)


async def test_a_refusal_by_label_is_never_queued(fed: Federation) -> None:
    set_id = await a_set(fed, "TLP:RED", [AUTHORITY])
    with pytest.raises(TlpEgressError, match="TLP:RED allows only the agencies"):
        await fed.nodes[UNIT].indicators.share(set_id, THIRD)
    assert (await fed.nodes[UNIT].indicators.get(set_id)).deliveries == ()
