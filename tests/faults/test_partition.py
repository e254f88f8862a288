# SPDX-License-Identifier: Apache-2.0
"""A partition between two nodes under load: everything filed arrives once the link heals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.model.request import RequestState
from ops.chaos.proxy import PartitionProxy
from tests.integration.harness import make_configs, running_federation, set_endpoint
from tests.ports import free_port

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


async def test_partition_then_heal_delivers_everything_once(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    configs[UNIT] = replace(configs[UNIT], file_wait_s=0.3, delivery_timeout_s=0.5)
    authority_port = int(configs[AUTHORITY].listen.rsplit(":", 1)[1])
    proxy = PartitionProxy(target=authority_port)
    proxy.port = free_port()
    await proxy.start()
    set_endpoint(configs, AUTHORITY, f"127.0.0.1:{proxy.port}")
    async with running_federation(configs) as fed:
        unit = fed.nodes[UNIT].exchange

        async def file() -> str:
            view = await unit.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=FORM
            )
            return view.request_id

        before = [await file() for _ in range(5)]
        await proxy.cut()
        during = [await file() for _ in range(15)]
        await asyncio.sleep(1.0)  # retries keep failing while the link is down
        status = await unit.node_status()
        assert status.outbox_pending == 15
        assert status.peers[0].max_attempts >= 2
        await proxy.heal()

        for _ in range(300):  # up to 30 s for the outbox to drain
            if (await unit.node_status()).outbox_pending == 0:
                break
            await asyncio.sleep(0.1)

        for request_id in before + during:
            assert (await unit.get_request(request_id)).state is RequestState.DELIVERED
            received = await fed.nodes[AUTHORITY].exchange.get_request(request_id)
            assert received.state is RequestState.REGISTERED
        # Each received request logs two events: request.received and receipt.sent.
        rows = fed.rows(AUTHORITY)
        assert (rows["exchange"], rows["message"], rows["outbox"], rows["audit_leaf"]) == (
            20,
            20,
            0,
            40,
        )
    await proxy.cut()


async def test_slow_lossy_link_delivers_everything_once(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    configs[UNIT] = replace(configs[UNIT], file_wait_s=0.2, delivery_timeout_s=1.0)
    authority_port = int(configs[AUTHORITY].listen.rsplit(":", 1)[1])
    # 20 ms each way per chunk, and one chunk in eight takes its connection down.
    proxy = PartitionProxy(target=authority_port, delay_s=0.02, drop_rate=0.125, seed=7)
    proxy.port = free_port()
    await proxy.start()
    set_endpoint(configs, AUTHORITY, f"127.0.0.1:{proxy.port}")
    async with running_federation(configs) as fed:
        unit = fed.nodes[UNIT].exchange
        filed = [
            (
                await unit.file_request(
                    request_type="preservation", recipient=AUTHORITY, form_json=FORM
                )
            ).request_id
            for _ in range(10)
        ]
        for _ in range(600):  # up to 60 s through the bad link
            if (await unit.node_status()).outbox_pending == 0:
                break
            await asyncio.sleep(0.1)
        for request_id in filed:
            assert (await unit.get_request(request_id)).state is RequestState.DELIVERED
        assert fed.rows(AUTHORITY)["exchange"] == 10  # each exactly once
    await proxy.cut()


def message(kind: str, **fields: object) -> bytes:
    return json.dumps({"form_version": f"{kind}.v1", **fields}).encode()


async def test_messages_sent_during_a_partition_apply_in_order_after_it(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> None:
    configs = make_configs(tmp_path, node_database_urls)
    configs[UNIT] = replace(configs[UNIT], file_wait_s=0.2, delivery_timeout_s=0.5, max_in_flight=8)
    authority_port = int(configs[AUTHORITY].listen.rsplit(":", 1)[1])
    proxy = PartitionProxy(target=authority_port)
    proxy.port = free_port()
    await proxy.start()
    set_endpoint(configs, AUTHORITY, f"127.0.0.1:{proxy.port}")
    async with running_federation(configs) as fed:
        unit, authority = fed.nodes[UNIT].exchange, fed.nodes[AUTHORITY].exchange
        ids = []
        for _ in range(6):
            view = await unit.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=FORM
            )
            ids.append(view.request_id)
            question = message("clarification-request", questions=["Which accounts?"])
            await authority.send_message(
                request_id=view.request_id, kind="clarification-request", body_json=question
            )
        await proxy.cut()
        # While cut off, the unit answers and then withdraws each request: two messages per
        # exchange wait in its outbox, and after the heal they may arrive in either order.
        for request_id in ids:
            answer = message("clarification-answer", answers=["All three."])
            await unit.send_message(
                request_id=request_id, kind="clarification-answer", body_json=answer
            )
            withdrawal = message("withdrawal", reason="Closed domestically.")
            await unit.send_message(request_id=request_id, kind="withdrawal", body_json=withdrawal)
        await asyncio.sleep(0.5)
        await proxy.heal()
        for _ in range(300):
            if (await unit.node_status()).outbox_pending == 0:
                break
            await asyncio.sleep(0.1)
        for request_id in ids:
            view = await authority.get_request(request_id)
            assert view.state is RequestState.WITHDRAWN
            inbound = [m for m in view.history if m.direction == "inbound"]
            assert [(m.kind, m.sequence, m.state) for m in inbound] == [
                ("request", 1, "applied"),
                ("clarification-answer", 2, "applied"),
                ("withdrawal", 3, "applied"),
            ]
            assert (await unit.get_request(request_id)).state is RequestState.WITHDRAWN
    await proxy.cut()
