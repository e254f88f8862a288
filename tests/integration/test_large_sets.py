# SPDX-License-Identifier: Apache-2.0
"""A set of the largest size a set may have (sets.py MAX_INDICATORS) goes between real nodes,
though its document is several times gRPC's message limit, and reaches the command line."""

from __future__ import annotations

import asyncio

import pytest

from node.cli.local_client import LocalClient
from node.ids import AgencyId
from node.indicators.sets import MAX_INDICATORS, Indicator
from node.transport.channel_options import MAX_MESSAGE_BYTES
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")


@pytest.mark.slow
async def test_a_set_of_the_largest_size_is_shared_and_revoked(fed: Federation) -> None:
    unit = fed.nodes[UNIT].indicators
    created = await unit.create(tlp="TLP:AMBER+STRICT", recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    accounts = [
        Indicator(type="platform_account", value=f"chirper:watcher_{n:06d}")
        for n in range(MAX_INDICATORS)
    ]
    view = await unit.add(set_id, accounts)
    assert len(view.indicator_set.to_bytes()) > 4 * MAX_MESSAGE_BYTES

    await unit.share(set_id, AUTHORITY)
    received = (await fed.nodes[AUTHORITY].indicators.get(set_id)).indicator_set
    assert received == view.indicator_set
    # The Local service hands the whole set to the command line in one answer as well.
    with LocalClient(fed.configs[AUTHORITY].local_socket) as client:
        shown = await asyncio.to_thread(client.get_indicator_set, set_id)
    assert len(shown.indicators) == MAX_INDICATORS

    await unit.revoke(set_id)
    revoked = (await fed.nodes[AUTHORITY].indicators.get(set_id)).indicator_set
    assert revoked.revoked
    assert revoked.indicators == ()
