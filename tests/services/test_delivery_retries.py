# SPDX-License-Identifier: Apache-2.0
"""Delivery through the outbox while the network misbehaves: retried while the peer cannot
be reached, is slow, is busy or loses its answers; registered there exactly once; given up
for good on a refusal no retry can cure, or when the envelope expires first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from node.errors import FormValidationError, OverloadedError, PeerRejectedError
from node.model.request import Direction, RequestState, RequestView
from tests.services.federation import (
    AUTHORITY,
    OTHER,
    UNIT,
    Federation,
    Tuning,
    eventually,
    example_form,
    in_memory_federation,
)

DAY_MS = 24 * 3_600_000


@pytest.fixture
async def fed(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """Filing waits only briefly for a receipt (the tests watch the delivery after it)."""
    tuning = Tuning(file_wait_s=0.05)
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=agency_database_urls, tuning=tuning
    ) as federation:
        yield federation


async def file(fed: Federation) -> RequestView:
    return await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form()
    )


async def delivered(fed: Federation, request_id: str) -> None:
    async def done() -> bool:
        view = await fed[UNIT].exchange.get_request(request_id)
        return view.state is RequestState.DELIVERED

    await eventually(done, what=f"delivery of {request_id}")


async def retried(fed: Federation, request_id: str, *, attempts: int) -> RequestView:
    """The request once its delivery has failed ``attempts`` times and is still pending."""
    views: list[RequestView] = []

    async def enough() -> bool:
        views.append(await fed[UNIT].exchange.get_request(request_id))
        return views[-1].delivery is not None and views[-1].delivery.attempts >= attempts

    await eventually(enough, what=f"{attempts} attempts")
    return views[-1]


async def assert_registered_once(fed: Federation, request_id: str) -> None:
    """The peer holds the request once, logged once, and the sender logged its receipt once."""
    [inbound] = (
        await fed[AUTHORITY].exchange.list_requests(direction=Direction.INBOUND, limit=10)
    ).requests
    assert inbound.request_id == request_id
    assert await fed[AUTHORITY].events() == ["request.received", "receipt.sent"]
    assert await fed[UNIT].events() == ["request.sent", "receipt.received"]
    [message_id] = {c.envelope.header.message_id for c in fed.network.calls}
    assert fed.network.delivered(message_id) == 1


async def test_a_request_filed_while_the_peer_is_unreachable_arrives_once_it_returns(
    fed: Federation,
) -> None:
    fed.network.conditions(AUTHORITY).unreachable = True
    filed = await file(fed)
    assert filed.state is RequestState.SUBMITTED
    pending = await retried(fed, filed.request_id, attempts=2)
    assert pending.delivery is not None
    assert pending.delivery.status == "pending"
    assert "peer_unavailable" in (pending.delivery.last_error or "")
    [backlog] = (await fed[UNIT].exchange.node_status()).peers
    assert (backlog.peer, backlog.pending) == (AUTHORITY, 1)
    assert (await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests == ()

    fed.network.heal()
    await delivered(fed, filed.request_id)
    await assert_registered_once(fed, filed.request_id)
    assert (await fed[UNIT].exchange.node_status()).outbox_pending == 0


async def test_answers_lost_after_the_peer_stored_the_request_change_nothing_there(
    fed: Federation,
) -> None:
    fed.network.conditions(AUTHORITY).lose_answers = 2
    filed = await file(fed)
    await delivered(fed, filed.request_id)
    await assert_registered_once(fed, filed.request_id)
    outcomes = [c.outcome for c in fed.network.calls]
    assert outcomes == ["peer_unavailable", "peer_unavailable", "delivered"]
    # Every attempt reached the peer; the repeats were answered with the first receipt.
    sent = await fed[UNIT].exchange.get_request(filed.request_id)
    received = await fed[AUTHORITY].exchange.get_request(filed.request_id)
    assert sent.receipt == received.receipt


async def test_a_peer_slower_than_the_call_timeout_is_retried_not_waited_on(
    fed: Federation,
) -> None:
    fed.network.timeout_s = 0.1
    fed.network.conditions(AUTHORITY).latency_s = 1.0
    filed = await file(fed)
    pending = await retried(fed, filed.request_id, attempts=2)
    assert pending.state is RequestState.SUBMITTED
    fed.network.conditions(AUTHORITY).latency_s = 0.0
    fed.network.timeout_s = 5.0
    await delivered(fed, filed.request_id)
    await assert_registered_once(fed, filed.request_id)


async def test_a_busy_peer_is_retried_until_it_takes_the_request(fed: Federation) -> None:
    fed.network.conditions(AUTHORITY).refuse_with = OverloadedError("too many deliveries")
    filed = await file(fed)
    pending = await retried(fed, filed.request_id, attempts=2)
    assert pending.delivery is not None
    assert "overloaded" in (pending.delivery.last_error or "")
    fed.network.heal()
    await delivered(fed, filed.request_id)
    await assert_registered_once(fed, filed.request_id)


async def test_a_refusal_no_retry_can_cure_fails_the_request_for_good(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    # Filing waits long enough here to see the refusal.
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=agency_database_urls
    ) as fed:
        await refused_for_good(fed)


async def refused_for_good(fed: Federation) -> None:
    fed.network.conditions(AUTHORITY).refuse_with = FormValidationError("$.offence: missing")
    with pytest.raises(PeerRejectedError) as caught:
        await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=example_form()
        )
    assert caught.value.peer_code == "form_invalid"
    [view] = (await fed[UNIT].exchange.list_requests(direction=None, limit=10)).requests
    assert view.state is RequestState.DELIVERY_FAILED
    assert view.delivery is not None
    assert view.delivery.status == "failed"
    assert "form_invalid" in (view.last_error or "")
    fed.network.heal()
    await asyncio.sleep(0.2)  # several poll intervals: nothing claims a failed delivery
    assert len(fed.network.calls) == 1
    assert (await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests == ()


async def test_an_envelope_that_expires_before_it_could_be_delivered_is_given_up(
    fed: Federation,
) -> None:
    fed.network.conditions(AUTHORITY).unreachable = True
    filed = await file(fed)
    await retried(fed, filed.request_id, attempts=1)
    fed.clock.advance(DAY_MS + 1)  # past the message lifetime

    async def failed() -> bool:
        view = await fed[UNIT].exchange.get_request(filed.request_id)
        return view.state is RequestState.DELIVERY_FAILED

    await eventually(failed, what="giving up the expired delivery")
    view = await fed[UNIT].exchange.get_request(filed.request_id)
    assert "expired_before_delivery" in (view.last_error or "")
    calls = len(fed.network.calls)
    fed.network.heal()
    await asyncio.sleep(0.2)
    assert len(fed.network.calls) == calls


async def test_a_peer_that_cannot_be_reached_holds_up_no_delivery_to_another(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    async with in_memory_federation(
        [UNIT, AUTHORITY, OTHER],
        directory_dir=tmp_path,
        database_url=agency_database_urls,
        tuning=Tuning(file_wait_s=0.05),
    ) as fed:
        fed.network.conditions(AUTHORITY).unreachable = True
        stuck = await file(fed)
        await retried(fed, stuck.request_id, attempts=1)
        moving = await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=OTHER, form_json=example_form()
        )
        await delivered(fed, moving.request_id)
        assert (await fed[UNIT].exchange.get_request(stuck.request_id)).state is (
            RequestState.SUBMITTED
        )
        [backlog] = (await fed[UNIT].exchange.node_status()).peers
        assert backlog.peer == AUTHORITY
        assert (
            len((await fed[OTHER].exchange.list_requests(direction=None, limit=10)).requests) == 1
        )
