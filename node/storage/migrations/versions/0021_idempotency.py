# SPDX-License-Identifier: Apache-2.0
"""Idempotent filing: the key an outbound request was filed under, and what it asked.

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-05 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("idempotency_digest", sa.LargeBinary(length=32), nullable=True))
        batch.create_unique_constraint(op.f("uq_exchange_idempotency_key"), ["idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("exchange") as batch:
        batch.drop_constraint(op.f("uq_exchange_idempotency_key"), type_="unique")
        batch.drop_column("idempotency_digest")
        batch.drop_column("idempotency_key")
