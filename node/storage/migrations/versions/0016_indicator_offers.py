# SPDX-License-Identifier: Apache-2.0
"""Indicator set versions owed to agencies: the durable outbox of shares and tombstones.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 03:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_offer",
        sa.Column("set_id", sa.String(length=128), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claim_expires_at_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_indicator_offer_status"),
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["indicator_set.set_id"],
            name=op.f("fk_indicator_offer_set_id_indicator_set"),
        ),
        sa.PrimaryKeyConstraint("set_id", "recipient", name=op.f("pk_indicator_offer")),
    )
    op.create_index("ix_indicator_offer_due", "indicator_offer", ["status", "next_attempt_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_indicator_offer_due", table_name="indicator_offer")
    op.drop_table("indicator_offer")
