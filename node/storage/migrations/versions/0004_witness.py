# SPDX-License-Identifier: Apache-2.0
"""Witness state and the cosignatures a node collects.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 03:01:16.103351
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_cosignature",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sa.String(length=256), nullable=False),
        sa.Column("line", sa.String(length=1024), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness", name=op.f("pk_audit_cosignature")),
    )
    op.create_table(
        "witness_state",
        sa.Column("origin", sa.String(length=256), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_witness_state")),
    )


def downgrade() -> None:
    op.drop_table("witness_state")
    op.drop_table("audit_cosignature")
