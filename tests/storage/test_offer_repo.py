# SPDX-License-Identifier: Apache-2.0
"""The indicator-set offer queue on SQLite and PostgreSQL: claims, versions owed, outcomes."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from node.ids import AgencyId
from node.indicators.sets import IndicatorSet
from node.indicators.tlp import Tlp
from node.storage import indicator_repo, leased, offer_repo
from node.storage.engine import transaction
from node.storage.tables import IndicatorOffer

SET_ID = "0b5e7c1a-1111-4111-8111-111111111111"
PEER = "bb-authority"


@pytest.fixture
def a_set(engine: Engine) -> str:
    held = IndicatorSet(
        set_id=SET_ID,
        owner=AgencyId("aa-unit"),
        version=1,
        tlp=Tlp.GREEN,
        recipients=(),
        clients={},
        created_ms=1,
    )
    with transaction(engine) as session:
        indicator_repo.save_set(
            session, held, document=b"{}", signature=b"\x00" * 64, received_from=None, now_ms=1
        )
    return SET_ID


def owe(engine: Engine, version: int, now_ms: int = 100) -> None:
    with transaction(engine) as session:
        offer_repo.owe(session, set_id=SET_ID, recipient=PEER, version=version, now_ms=now_ms)


def claim(engine: Engine, owner: str, now_ms: int) -> list[str]:
    with transaction(engine) as session:
        rows = leased.claim_due(
            session, IndicatorOffer, owner=owner, now_ms=now_ms, lease_ms=1000, limit=10
        )
        return [row.recipient for row in rows]


def offer(engine: Engine) -> IndicatorOffer:
    with transaction(engine) as session:
        [row] = offer_repo.offers_of(session, SET_ID)
        session.expunge(row)
        return row


def test_one_replica_holds_a_claim_until_its_lease_ends(engine: Engine, a_set: str) -> None:
    owe(engine, 1)
    assert claim(engine, "replica-a", now_ms=100) == [PEER]
    assert claim(engine, "replica-b", now_ms=200) == []
    assert claim(engine, "replica-b", now_ms=1101) == [PEER]
    assert offer(engine).claimed_by == "replica-b"


def test_a_newer_version_owed_meanwhile_outlives_the_older_attempt(
    engine: Engine, a_set: str
) -> None:
    owe(engine, 2)
    owe(engine, 3, now_ms=150)
    with transaction(engine) as session:
        # The attempt of version 2 ends after version 3 became owed: 3 stays owed, due now.
        offer_repo.schedule_retry(
            session, set_id=SET_ID, recipient=PEER, version=2, now_ms=160, delay_ms=9000, error="x"
        )
        offer_repo.mark_failed(
            session, set_id=SET_ID, recipient=PEER, version=2, now_ms=160, error="x"
        )
        offer_repo.mark_delivered(session, set_id=SET_ID, recipient=PEER, version=2, now_ms=170)
    waiting = offer(engine)
    assert (waiting.status, waiting.version, waiting.next_attempt_at_ms) == ("pending", 3, 170)
    with transaction(engine) as session:
        [share] = indicator_repo.shares_of(session, SET_ID)
        assert share.version == 2
        offer_repo.mark_delivered(session, set_id=SET_ID, recipient=PEER, version=3, now_ms=180)
    assert (offer(engine).status, offer(engine).version) == ("delivered", 3)
    owe(engine, 3, now_ms=190)  # already there: nothing owed again
    assert offer(engine).status == "delivered"
    assert claim(engine, "replica-a", now_ms=200) == []


def test_a_refusal_for_good_is_not_claimed_again(engine: Engine, a_set: str) -> None:
    owe(engine, 1)
    with transaction(engine) as session:
        offer_repo.mark_failed(
            session, set_id=SET_ID, recipient=PEER, version=1, now_ms=110, error="no [code]"
        )
    refused = offer(engine)
    assert (refused.status, refused.attempts, refused.last_error) == ("failed", 1, "no [code]")
    assert claim(engine, "replica-a", now_ms=10**12) == []
    owe(engine, 1, now_ms=120)  # shared again by hand: owed afresh
    assert claim(engine, "replica-a", now_ms=120) == [PEER]
