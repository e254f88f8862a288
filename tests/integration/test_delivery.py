# SPDX-License-Identifier: Apache-2.0
"""Delivery through the outbox with real nodes: outages, refusals, silence, overload, replicas."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from node.cli.local_client import LocalClient, LocalNodeError
from node.errors import ErrorKind, OverloadedError, PeerRejectedError
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.members import Member
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.model.request import RequestState, RequestView
from node.services.delivery import DeliverySettings, DeliveryWorker
from node.services.outbox import RetryPolicy
from node.timeutil import now_ms
from tests.integration.harness import (
    Federation,
    make_configs,
    newer_directory_for,
    running_federation,
    set_endpoint,
    start,
)

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


async def file(fed: Federation, recipient: AgencyId = OTHER) -> RequestView:
    return await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=recipient, form_json=FORM
    )


async def wait_for_state(
    fed: Federation, request_id: str, state: RequestState, timeout_s: float = 15.0
) -> RequestView:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        view = await fed.nodes[UNIT].exchange.get_request(request_id)
        if view.state is state or asyncio.get_running_loop().time() > deadline:
            return view
        await asyncio.sleep(0.05)


@pytest.fixture
def configs(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, object]:
    built = make_configs(tmp_path, node_database_urls)
    built[UNIT] = replace(built[UNIT], file_wait_s=0.5)
    return built  # type: ignore[return-value]


@pytest.fixture
async def fed(configs: dict[str, object]) -> AsyncIterator[Federation]:
    async with running_federation(configs) as federation:  # type: ignore[arg-type]
        yield federation


async def test_request_filed_while_peer_is_down_arrives_when_it_returns(fed: Federation) -> None:
    await fed.nodes.pop(OTHER).stop()
    filed = await file(fed)
    assert filed.state is RequestState.SUBMITTED
    assert filed.delivery is not None
    assert filed.delivery.status == "pending"
    assert filed.delivery.attempts >= 1
    assert "peer_unavailable" in (filed.delivery.last_error or "")
    status = await fed.nodes[UNIT].exchange.node_status()
    assert [(p.peer, p.pending) for p in status.peers] == [(OTHER, 1)]

    fed.nodes[OTHER] = await start(fed.configs[OTHER], fed.spans)
    delivered = await wait_for_state(fed, filed.request_id, RequestState.DELIVERED)
    assert delivered.state is RequestState.DELIVERED
    assert delivered.receipt_verified
    received = await fed.nodes[OTHER].exchange.get_request(filed.request_id)
    assert received.state is RequestState.REGISTERED
    assert fed.rows(OTHER)["exchange"] == 1
    assert (await fed.nodes[UNIT].exchange.node_status()).peers == ()


async def test_refusal_no_retry_can_cure_fails_the_delivery_for_good(
    configs: dict[str, object],
) -> None:
    # The recipient trusts a newer directory than the sender addresses it under, and
    # allows no grace period for the older one.
    newer_directory_for(configs[OTHER])  # type: ignore[arg-type]
    configs[OTHER] = replace(configs[OTHER], directory_grace_s=0.0)  # type: ignore[type-var]
    async with running_federation(configs) as fed:  # type: ignore[arg-type]
        with pytest.raises(PeerRejectedError) as caught:
            await file(fed)
        assert caught.value.peer_code == "superseded_directory"
        [view] = (await fed.nodes[UNIT].exchange.list_requests(direction=None, limit=5)).requests
        assert view.state is RequestState.DELIVERY_FAILED
        assert view.delivery is not None
        assert view.delivery.status == "failed"
        assert view.delivery.attempts == 1
        assert "superseded_directory" in (view.last_error or "")
        status = await fed.nodes[UNIT].exchange.node_status()
        assert status.outbox_failed == 1
        assert status.outbox_pending == 0


class _Silent(asyncio.Protocol):
    """Holds each accepted connection open and never writes."""

    def __init__(self, held: list[asyncio.BaseTransport]) -> None:
        self.held = held

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.held.append(transport)


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word."""
    held: list[asyncio.BaseTransport] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Silent(held), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        # Accepts already under way finish on the next loop turns; close them too, so
        # no socket is left for the garbage collector to warn about in a later test.
        await asyncio.sleep(0.05)
        for transport in held:
            transport.close()
        await asyncio.sleep(0)


async def test_peer_that_never_answers_is_retried_not_waited_on(
    configs: dict[str, object],
) -> None:
    async with black_hole() as port:
        set_endpoint(configs, OTHER, f"127.0.0.1:{port}")  # type: ignore[arg-type]
        configs[UNIT] = replace(configs[UNIT], delivery_timeout_s=0.3)  # type: ignore[type-var]
        async with running_federation(configs) as fed:  # type: ignore[arg-type]
            filed = await file(fed)
            assert filed.state is RequestState.SUBMITTED
            assert filed.delivery is not None
            assert filed.delivery.attempts >= 1
            # The TLS handshake never completes: the call ends at its deadline, unanswered.
            assert "peer_unavailable" in (filed.delivery.last_error or "")
            status = await fed.nodes[UNIT].exchange.node_status()
            assert status.outbox_pending == 1


async def test_full_outbox_answers_resource_exhausted(configs: dict[str, object]) -> None:
    configs[UNIT] = replace(configs[UNIT], outbox_capacity=1)  # type: ignore[type-var]
    async with running_federation(configs) as fed:  # type: ignore[arg-type]
        await fed.nodes.pop(OTHER).stop()
        await file(fed)
        rows = fed.rows(UNIT)
        with pytest.raises(OverloadedError):
            await file(fed)
        assert fed.rows(UNIT) == rows

        def call_locally() -> None:
            with LocalClient(fed.configs[UNIT].local_socket) as client:
                client.file_request(request_type="preservation", recipient=OTHER, form_json=FORM)

        with pytest.raises(LocalNodeError) as caught:
            await asyncio.to_thread(call_locally)
        assert caught.value.kind is ErrorKind.OVERLOADED
        assert caught.value.code == "overloaded"


class CountingTransport:
    """Counts deliveries that reached the peer, per message id, through the real client."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def deliver(self, member: Member, envelope: SealedEnvelope) -> SignedReceipt:
        await asyncio.sleep(random.uniform(0, 0.02))  # noqa: S311 (interleave the replicas)
        receipt: SignedReceipt = await self.inner.deliver(member, envelope)  # type: ignore[attr-defined]
        self.calls[envelope.header.message_id] += 1
        return receipt


async def test_two_replicas_share_one_outbox_without_double_delivery(fed: Federation) -> None:
    unit = fed.nodes[UNIT]
    await fed.nodes.pop(OTHER).stop()
    filed = [await file(fed) for _ in range(12)]
    await unit.delivery.stop(1.0)  # the node's own worker steps aside
    counting = CountingTransport(unit.peers)
    replicas = [
        DeliveryWorker(
            settings=DeliverySettings(
                owner=f"replica-{i}",
                retry=RetryPolicy(base_s=0.05, cap_s=0.2),
                poll_interval_s=0.05,
                max_in_flight=3,
            ),
            database=unit.database,
            directory=unit.directory,
            transport=counting,
            agency_id=unit.config.agency_id,
            clock=now_ms,
            tracer=unit.tracer_provider.get_tracer("replica"),
        )
        for i in range(2)
    ]
    fed.nodes[OTHER] = await start(fed.configs[OTHER], fed.spans)
    for replica in replicas:
        replica.start()
    try:
        for view in filed:
            done = await wait_for_state(fed, view.request_id, RequestState.DELIVERED)
            assert done.state is RequestState.DELIVERED
    finally:
        for replica in replicas:
            await replica.stop(1.0)
    assert set(counting.calls) == {view_message(fed, v) for v in filed}
    assert max(counting.calls.values()) == 1
    assert fed.rows(OTHER)["exchange"] == 12


def view_message(fed: Federation, view: RequestView) -> str:
    from node.storage import exchange_repo
    from node.storage.engine import transaction

    with transaction(fed.nodes[UNIT].engine) as session:
        return exchange_repo.messages_for_exchange(session, view.request_id)[0].message_id


def test_retry_delays_grow_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=8.0)
    rng = random.Random(7)  # noqa: S311 (jitter, not secrets)
    for attempts, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay_ms(attempts, rng) for _ in range(50)]
        assert all(ceiling * 500 <= d <= ceiling * 1000 for d in delays)
        assert len(set(delays)) > 1
