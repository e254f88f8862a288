# SPDX-License-Identifier: Apache-2.0
"""Runs of one replica: a restarted node takes back the claims its earlier (dead) runs left,
leaves other replicas' claims alone and shows them in its status; two processes cannot serve
one socket."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from node.errors import ConfigError
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.replica import replica_name
from node.storage.engine import create_engine, transaction
from node.storage.tables import Outbox
from node.timeutil import now_ms
from node.transport.local_servicer import node_status_to_proto
from tests.integration.harness import Federation, start

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
HOUR_MS = 3_600_000


async def test_a_second_process_cannot_serve_the_same_socket(fed: Federation) -> None:
    with pytest.raises(ConfigError, match="another process serves this node's socket"):
        await start(fed.configs[UNIT], fed.spans)
    await fed.nodes[UNIT].exchange.node_status()  # the first one goes on
    await fed.nodes[UNIT].stop()
    fed.nodes[UNIT] = await start(fed.configs[UNIT], fed.spans)  # its lock went with it


def claim(fed: Federation, claims: dict[str, str]) -> None:
    """Put the outbox rows of the requests named under claims of the owners given, for an
    hour, as runs that died would have left them."""
    engine = create_engine(fed.configs[UNIT].database_url)
    try:
        with transaction(engine) as session:
            for exchange_id, owner in claims.items():
                row = session.exec(select(Outbox).where(Outbox.exchange_id == exchange_id)).one()
                row.claimed_by, row.claim_expires_at_ms = owner, now_ms() + HOUR_MS
                row.next_attempt_at_ms = 0
                session.add(row)
    finally:
        engine.dispose()


async def test_a_restart_takes_back_its_own_dead_claims_and_shows_the_others(
    fed: Federation,
) -> None:
    await fed.nodes[AUTHORITY].stop()  # unreachable: the requests stay pending
    unit = fed.nodes[UNIT]
    mine, theirs = [
        (
            await unit.exchange.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=FORM
            )
        ).request_id
        for _ in range(2)
    ]
    await unit.stop()
    own_replica = replica_name(fed.configs[UNIT])
    claim(fed, {mine: f"{own_replica}/1234-deadbeef", theirs: "0123456789abcdef/99-cafe"})

    fed.nodes[AUTHORITY] = await start(fed.configs[AUTHORITY], fed.spans)
    fed.nodes[UNIT] = unit = await start(fed.configs[UNIT], fed.spans)
    for _ in range(100):  # at once, not in an hour
        if (await unit.exchange.get_request(mine)).state.value == "delivered":
            break
        await asyncio.sleep(0.1)
    assert (await unit.exchange.get_request(mine)).state.value == "delivered"
    # Another replica's claim is its own business until it lapses; the status says so.
    assert (await unit.exchange.get_request(theirs)).state.value == "submitted"
    status = node_status_to_proto(await unit.exchange.node_status())
    [peer] = status.peers
    assert (peer.peer, peer.pending, peer.claimed_elsewhere) == (AUTHORITY, 1, 1)
    assert peer.claims_end_at_ms > now_ms() + HOUR_MS - 60_000
