# SPDX-License-Identifier: Apache-2.0
"""Evidence returned in an exchange: manifests and chunks.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("evidence_id", sa.String(length=36), nullable=False),
        sa.Column("exchange_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchange.id"], name=op.f("fk_evidence_exchange_id_exchange")
        ),
        sa.PrimaryKeyConstraint("evidence_id", name=op.f("pk_evidence")),
    )
    op.create_index(op.f("ix_evidence_exchange_id"), "evidence", ["exchange_id"])
    op.create_table(
        "evidence_chunk",
        sa.Column("evidence_id", sa.String(length=36), autoincrement=False, nullable=False),
        sa.Column("item", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["evidence_id"],
            ["evidence.evidence_id"],
            name=op.f("fk_evidence_chunk_evidence_id_evidence"),
        ),
        sa.PrimaryKeyConstraint("evidence_id", "item", "idx", name=op.f("pk_evidence_chunk")),
    )


def downgrade() -> None:
    op.drop_table("evidence_chunk")
    op.drop_index(op.f("ix_evidence_exchange_id"), table_name="evidence")
    op.drop_table("evidence")
