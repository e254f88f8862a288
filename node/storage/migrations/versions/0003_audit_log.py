# SPDX-License-Identifier: Apache-2.0
"""Audit log: leaves, openings and the head.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:48:02.419717
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The one head row; appenders increment its size under a row lock.
    op.execute("INSERT INTO audit_head (id, size) VALUES (1, 0)")
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("note", sa.String(length=4096), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoint")),
    )
    op.create_table(
        "audit_leaf",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_leaf")),
    )
    op.create_table(
        "audit_opening",
        sa.Column("leaf_idx", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=4096), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["leaf_idx"], ["audit_leaf.idx"], name=op.f("fk_audit_opening_leaf_idx_audit_leaf")
        ),
        sa.PrimaryKeyConstraint("leaf_idx", "name", name=op.f("pk_audit_opening")),
    )


def downgrade() -> None:
    op.drop_table("audit_opening")
    op.drop_table("audit_leaf")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_head")
