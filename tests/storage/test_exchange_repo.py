# SPDX-License-Identifier: Apache-2.0
"""Exchange and message queries round trip on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from node.errors import NotFoundError
from node.storage import exchange_repo
from node.storage.engine import transaction
from node.storage.tables import MAX_ERROR_CHARS

EXCHANGE = "5f0c7d4e-aaaa-4aaa-8aaa-aaaaaaaaaaaa"


def seed(engine: Engine, exchange_id: str = EXCHANGE, created: int = 10) -> None:
    with transaction(engine) as session:
        exchange_repo.insert_exchange(
            session,
            exchange_id=exchange_id,
            request_type="preservation",
            direction="inbound",
            peer="aa-unit",
            state="registered",
            form_json=b'{"a":1}',
            now_ms=created,
        )
        session.flush()
        exchange_repo.insert_message(
            session,
            message_id=exchange_id.replace("5f0c", "6f0c"),
            exchange_id=exchange_id,
            direction="inbound",
            sequence=1,
            sender="aa-unit",
            recipient="bb-authority",
            payload_type="application/x",
            envelope=b"\x00" * 100,
            envelope_digest=b"\x01" * 32,
            created_at_ms=created,
            now_ms=created,
        )


def test_exchange_and_message_round_trip(engine: Engine) -> None:
    seed(engine)
    with transaction(engine) as session:
        row = exchange_repo.get_exchange(session, EXCHANGE)
        assert row is not None
        assert row.form_json == b'{"a":1}'
        [message] = exchange_repo.messages_for_exchange(session, EXCHANGE)
        assert message.envelope_digest == b"\x01" * 32
        assert message.receipt is None
        exchange_repo.set_message_receipt(
            session, message_id=message.message_id, receipt=b"r", verified=True
        )
        exchange_repo.set_exchange_state(
            session, exchange_id=EXCHANGE, state="closed", now_ms=20, last_error="x" * 5000
        )
    with transaction(engine) as session:
        stored = exchange_repo.get_message(session, EXCHANGE.replace("5f0c", "6f0c"))
        assert stored is not None
        assert stored.receipt == b"r"
        assert stored.receipt_verified
        row = exchange_repo.get_exchange(session, EXCHANGE)
        assert row is not None
        assert row.state == "closed"
        assert row.last_error is not None
        assert len(row.last_error) == MAX_ERROR_CHARS


def test_list_is_newest_first_and_filtered(engine: Engine) -> None:
    seed(engine, EXCHANGE, created=10)
    seed(engine, EXCHANGE.replace("aaaa-4aaa", "bbbb-4bbb"), created=20)
    with transaction(engine) as session:
        rows = exchange_repo.list_exchanges(session, direction=None, limit=10)
        assert [r.created_at_ms for r in rows] == [20, 10]
        assert exchange_repo.list_exchanges(session, direction="outbound", limit=10) == []
        assert len(exchange_repo.list_exchanges(session, direction="inbound", limit=1)) == 1


def test_position_in_exchange_is_unique(engine: Engine) -> None:
    seed(engine)
    with pytest.raises(IntegrityError), transaction(engine) as session:
        exchange_repo.insert_message(
            session,
            message_id="7f0c7d4e-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
            exchange_id=EXCHANGE,
            direction="inbound",
            sequence=1,
            sender="aa-unit",
            recipient="bb-authority",
            payload_type="application/x",
            envelope=b"",
            envelope_digest=b"\x02" * 32,
            created_at_ms=1,
            now_ms=1,
        )


def test_missing_rows_are_not_found(engine: Engine) -> None:
    with transaction(engine) as session:
        with pytest.raises(NotFoundError):
            exchange_repo.set_exchange_state(session, exchange_id=EXCHANGE, state="x", now_ms=1)
        with pytest.raises(NotFoundError):
            exchange_repo.set_message_receipt(
                session, message_id=EXCHANGE, receipt=b"", verified=False
            )
