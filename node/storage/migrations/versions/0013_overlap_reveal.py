# SPDX-License-Identifier: Apache-2.0
"""Consented reveals of overlap matches: the signed requests this node sent and received, and
their state (asked, revealed; pending, consented, refused, used).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overlap_reveal",
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("responder", sa.String(64), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("shared", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "direction IN ('outbound', 'inbound')", name=op.f("ck_overlap_reveal_direction")
        ),
        sa.CheckConstraint(
            "state IN ('asked', 'revealed', 'pending', 'consented', 'refused', 'used')",
            name=op.f("ck_overlap_reveal_state"),
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_overlap_reveal")),
    )
    op.create_index(op.f("ix_overlap_reveal_requester"), "overlap_reveal", ["requester"])


def downgrade() -> None:
    op.drop_index(op.f("ix_overlap_reveal_requester"), table_name="overlap_reveal")
    op.drop_table("overlap_reveal")
