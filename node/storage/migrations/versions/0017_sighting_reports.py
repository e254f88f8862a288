# SPDX-License-Identifier: Apache-2.0
"""Sighting reports this node owes set owners: the durable outbox of reports.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 04:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sighting_report",
        sa.Column("sighting_id", sa.String(length=64), nullable=False),
        sa.Column("set_id", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("made_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claim_expires_at_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_sighting_report_status"),
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["indicator_set.set_id"],
            name=op.f("fk_sighting_report_set_id_indicator_set"),
        ),
        sa.PrimaryKeyConstraint("sighting_id", name=op.f("pk_sighting_report")),
    )
    op.create_index(op.f("ix_sighting_report_set_id"), "sighting_report", ["set_id"])
    op.create_index("ix_sighting_report_due", "sighting_report", ["status", "next_attempt_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_sighting_report_due", table_name="sighting_report")
    op.drop_index(op.f("ix_sighting_report_set_id"), table_name="sighting_report")
    op.drop_table("sighting_report")
