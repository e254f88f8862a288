# SPDX-License-Identifier: Apache-2.0
"""Indicator sets (own and received, signed, with their TLP labels), their indicators, which
agencies each set was shared with, and the overlap checks peers asked for (rate limits).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_set",
        sa.Column("set_id", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("tlp", sa.String(32), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("received_from", sa.String(64), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", name=op.f("pk_indicator_set")),
    )
    op.create_table(
        "indicator",
        sa.Column("set_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(2048), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["set_id"], ["indicator_set.set_id"], name=op.f("fk_indicator_set_id_indicator_set")
        ),
        sa.PrimaryKeyConstraint("set_id", "type", "value", name=op.f("pk_indicator")),
    )
    op.create_index("ix_indicator_type_value", "indicator", ["type", "value"])
    op.create_table(
        "indicator_share",
        sa.Column("set_id", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("shared_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["indicator_set.set_id"],
            name=op.f("fk_indicator_share_set_id_indicator_set"),
        ),
        sa.PrimaryKeyConstraint("set_id", "recipient", name=op.f("pk_indicator_share")),
    )

    op.create_table(
        "overlap_check",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("requester", sa.String(64), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlap_check")),
    )
    op.create_index(op.f("ix_overlap_check_requester"), "overlap_check", ["requester"])


def downgrade() -> None:
    op.drop_index(op.f("ix_overlap_check_requester"), table_name="overlap_check")
    op.drop_table("overlap_check")
    op.drop_table("indicator_share")
    op.drop_index("ix_indicator_type_value", table_name="indicator")
    op.drop_table("indicator")
    op.drop_table("indicator_set")
