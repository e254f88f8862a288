# SPDX-License-Identifier: Apache-2.0
"""The lifecycle both parties agree on, moved by signed messages between their services:
file, register, review, accept, preserve, close; wrong parties and illegal moves refused;
messages that arrive out of order applied in their sender's order."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.audit.leaf import Leaf
from node.audit.reconcile import reconcile
from node.forms.registry import get_message_type
from node.model.lifecycle import IllegalTransitionError, NotYourMoveError
from node.model.request import RequestState, RequestView
from node.services.lifecycle import HoldLimits
from node.storage import outbox_repo
from node.storage.engine import transaction
from tests.services.federation import (
    AUTHORITY,
    UNIT,
    Federation,
    Tuning,
    eventually,
    example_form,
    in_memory_federation,
)

BODIES: dict[str, dict[str, Any]] = {
    "review": {},
    "decision": {"outcome": "accepted", "reason": "Art. 29 conditions met."},
    "preservation-confirmation": {"preserved_until": "2027-03-01T00:00:00Z"},
    "closure": {},
}

PATH = [
    (AUTHORITY, "review", RequestState.UNDER_REVIEW),
    (AUTHORITY, "decision", RequestState.ACCEPTED),
    (AUTHORITY, "preservation-confirmation", RequestState.PRESERVED),
    (UNIT, "closure", RequestState.CLOSED),
]


def body(kind: str) -> bytes:
    return json.dumps({"form_version": f"{kind}.v1", **BODIES[kind]}).encode()


async def file(fed: Federation) -> str:
    view = await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form()
    )
    return view.request_id


async def send(fed: Federation, agency: str, request_id: str, kind: str) -> RequestView:
    return await fed[agency].exchange.send_message(
        request_id=request_id, kind=kind, body_json=body(kind)
    )


async def states(fed: Federation, request_id: str) -> tuple[RequestState, RequestState]:
    unit = await fed[UNIT].exchange.get_request(request_id)
    authority = await fed[AUTHORITY].exchange.get_request(request_id)
    return unit.state, authority.state


async def test_both_parties_agree_after_every_step_from_filing_to_closure(
    fed: Federation,
) -> None:
    request_id = await file(fed)
    assert await states(fed, request_id) == (RequestState.DELIVERED, RequestState.REGISTERED)
    for agency, kind, expected in PATH:
        view = await send(fed, agency, request_id, kind)
        assert view.state is expected, kind
        assert view.delivery is not None
        assert view.delivery.status == "delivered", kind
        assert await states(fed, request_id) == (expected, expected), kind
    unit = await fed[UNIT].exchange.get_request(request_id)
    authority = await fed[AUTHORITY].exchange.get_request(request_id)
    assert unit.preserved_until_ms is not None
    assert unit.preserved_until_ms == authority.preserved_until_ms
    assert [m.kind for m in unit.history] == ["request", *[kind for _, kind, _ in PATH]]
    assert all(m.state == "applied" for m in unit.history + authority.history)


async def test_both_audit_logs_record_every_step_and_reconcile(fed: Federation) -> None:
    request_id = await file(fed)
    for agency, kind, _ in PATH:
        await send(fed, agency, request_id, kind)
    logs: dict[str, list[Leaf]] = {a: await fed[a].leaves() for a in (UNIT, AUTHORITY)}
    assert reconcile(logs) == []
    assert [leaf.public.event for leaf in logs[AUTHORITY]] == [
        "request.received",
        "receipt.sent",
        "review.sent",
        "decision.sent",
        "preservation-confirmation.sent",
        "closure.received",
    ]


async def test_a_party_cannot_make_the_other_partys_move(fed: Federation) -> None:
    request_id = await file(fed)
    with pytest.raises(NotYourMoveError):
        await send(fed, UNIT, request_id, "review")
    assert await states(fed, request_id) == (RequestState.DELIVERED, RequestState.REGISTERED)
    assert len(fed.network.calls) == 1  # the request only


async def test_a_move_the_state_does_not_allow_is_refused_and_not_sent(fed: Federation) -> None:
    request_id = await file(fed)
    await send(fed, AUTHORITY, request_id, "review")
    with pytest.raises(IllegalTransitionError):
        await send(fed, AUTHORITY, request_id, "preservation-confirmation")
    assert await states(fed, request_id) == (RequestState.UNDER_REVIEW,) * 2
    assert len(fed.network.calls) == 2


async def test_messages_that_overtake_an_earlier_one_are_held_until_it_arrives(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    async with in_memory_federation(
        [UNIT, AUTHORITY],
        directory_dir=tmp_path,
        database_url=agency_database_urls,
        tuning=Tuning(file_wait_s=0.05),
    ) as fed:
        request_id = await file(fed)
        review = get_message_type("review").payload_type
        fed.network.conditions(UNIT).unreachable_for = lambda h: h.payload_type == review
        for _, kind, _ in PATH[:3]:
            await send(fed, AUTHORITY, request_id, kind)

        async def held() -> bool:
            unit = await fed[UNIT].exchange.get_request(request_id)
            return [(m.kind, m.state) for m in unit.history] == [
                ("request", "applied"),
                ("decision", "held"),
                ("preservation-confirmation", "held"),
            ]

        await eventually(held, what="the requester holding the messages after the gap")
        assert await states(fed, request_id) == (RequestState.DELIVERED, RequestState.PRESERVED)
        fed.network.heal()

        async def agreed() -> bool:
            return await states(fed, request_id) == (RequestState.PRESERVED,) * 2

        await eventually(agreed, what="the requester applying the held messages")
        unit = await fed[UNIT].exchange.get_request(request_id)
        assert {m.kind for m in unit.history} == {"request", *[k for _, k, _ in PATH[:3]]}
        assert all(m.state == "applied" for m in unit.history)


async def test_a_peer_with_as_many_held_messages_as_allowed_waits_for_its_gaps_to_fill(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    """Held messages are bounded per peer: the next early one is refused as too_many_held
    (nothing stored), its sender retries it, and it arrives once the gaps have filled."""
    async with in_memory_federation(
        [UNIT, AUTHORITY],
        directory_dir=tmp_path,
        database_url=agency_database_urls,
        tuning=Tuning(file_wait_s=0.05, hold_limits=HoldLimits(per_peer=1)),
    ) as fed:
        first, second = await file(fed), await file(fed)
        review = get_message_type("review").payload_type
        fed.network.conditions(UNIT).unreachable_for = lambda h: h.payload_type == review
        for request_id in (first, second):
            for _, kind, _ in PATH[:2]:
                await send(fed, AUTHORITY, request_id, kind)

        decision = get_message_type("decision").payload_type

        async def refused_as_too_many_held() -> bool:
            sent = (c.envelope.header for c in fed.network.calls)
            ids = [
                h.message_id for h in sent if (h.exchange_id, h.payload_type) == (second, decision)
            ]
            with transaction(fed[AUTHORITY].database.engine) as session:
                row = outbox_repo.get_outbox(session, ids[0]) if ids else None
                return row is not None and "(too_many_held)" in (row.last_error or "")

        await eventually(refused_as_too_many_held, what="the second decision being refused")
        views = [await fed[UNIT].exchange.get_request(r) for r in (first, second)]
        assert [m.state for v in views for m in v.history].count("held") == 1
        fed.network.heal()

        async def agreed() -> bool:
            both = [await states(fed, r) for r in (first, second)]
            return both == [(RequestState.ACCEPTED,) * 2] * 2

        await eventually(agreed, what="both exchanges catching up once the reviews arrive")
