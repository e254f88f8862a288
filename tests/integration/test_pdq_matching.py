# SPDX-License-Identifier: Apache-2.0
"""PDQ matching on real nodes: the in-memory index follows the sets as they change (new
versions, revocation, passing on), and expired hashes stop matching on time."""

from __future__ import annotations

import asyncio
import json

import pytest

from node.cli.main import main
from node.ids import AgencyId
from node.indicators.sets import Indicator
from node.timeutil import now_ms
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FIRST, SECOND, FLEETING, STALE = "c3" * 32, "5a" * 32, "0f" * 32, "e7" * 32


def near(pdq: str, bits: int) -> str:
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


async def found(fed: Federation, agency: str, query: str) -> list[tuple[str, int]]:
    matches = await fed.nodes[agency].indicators.match_pdq(query)
    return [(m.value, m.distance) for m in matches]


async def test_the_index_follows_new_versions_and_revocation(fed: Federation) -> None:
    unit = fed.nodes[UNIT].indicators
    created = await unit.create(tlp="TLP:RED", recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    await unit.add(set_id, [Indicator(type="pdq", value=FIRST)])
    await unit.share(set_id, AUTHORITY)
    assert await found(fed, AUTHORITY, near(FIRST, 31)) == [(FIRST, 31)]
    assert await found(fed, AUTHORITY, near(FIRST, 32)) == []
    assert await found(fed, AUTHORITY, SECOND) == []

    await unit.add(set_id, [Indicator(type="pdq", value=SECOND)])
    await unit.share(set_id, AUTHORITY)
    assert await found(fed, AUTHORITY, near(SECOND, 3)) == [(SECOND, 3)]
    batch = await fed.nodes[AUTHORITY].indicators.match_pdq_many([FIRST, SECOND, near(FIRST, 40)])
    assert [[m.value for m in ms] for ms in batch] == [[FIRST], [SECOND], []]

    # Another set of the same hash: revoking the first leaves the other's match in place.
    other = await unit.create(tlp="TLP:RED", recipients=[AUTHORITY], clients={})
    await unit.add(other.indicator_set.set_id, [Indicator(type="pdq", value=FIRST)])
    assert len(await found(fed, UNIT, FIRST)) == 2
    await unit.revoke(set_id)
    assert await found(fed, AUTHORITY, FIRST) == []
    [kept] = await fed.nodes[UNIT].indicators.match_pdq(FIRST)
    assert kept.set_id == other.indicator_set.set_id


async def test_expired_hashes_stop_matching_without_a_change(fed: Federation) -> None:
    unit = fed.nodes[UNIT].indicators
    created = await unit.create(tlp="TLP:AMBER+STRICT", recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    soon = now_ms() + 1500
    await unit.add(
        set_id,
        [
            Indicator(type="pdq", value=FLEETING, expires_ms=soon),
            Indicator(type="pdq", value=STALE, expires_ms=now_ms() - 1),
        ],
    )
    assert await found(fed, UNIT, FLEETING) == [(FLEETING, 0)]
    assert await found(fed, UNIT, STALE) == []
    await asyncio.sleep((soon - now_ms()) / 1000 + 0.1)
    assert await found(fed, UNIT, FLEETING) == []


async def test_match_pdq_through_the_cli_sees_a_set_shared_after_the_first_match(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))

    async def match(query: str) -> list[dict[str, object]]:
        code = await asyncio.to_thread(
            main, ["indicators", "match-pdq", query, "--json", *authority]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        result: list[dict[str, object]] = json.loads(captured.out)
        return result

    assert await match(FIRST) == []
    unit = fed.nodes[UNIT].indicators
    created = await unit.create(tlp="TLP:RED", recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    await unit.add(set_id, [Indicator(type="pdq", value=FIRST)])
    await unit.share(set_id, AUTHORITY)
    assert await match(near(FIRST, 7)) == [
        {"set_id": set_id, "owner": UNIT, "value": FIRST, "distance": 7}
    ]
