# SPDX-License-Identifier: Apache-2.0
"""Approvals: actions a person asked for that wait for a supervisor (four-eyes).

Revision ID: 0023
Revises: 0018
Create Date: 2026-12-06 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("approval_id", sa.String(length=36), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=False),
        sa.Column("policy", sa.String(length=40), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.String(length=63), nullable=False),
        sa.Column("requester_unit", sa.String(length=127), nullable=False),
        sa.Column("requester_via", sa.String(length=16), nullable=False),
        sa.Column("requested_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=63), nullable=True),
        sa.Column("decided_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=1000), nullable=True),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("approval_id", name=op.f("pk_approval")),
    )
    op.create_index(op.f("ix_approval_requested_by"), "approval", ["requested_by"])
    op.create_index("ix_approval_status_requested", "approval", ["status", "requested_at_ms"])


def downgrade() -> None:
    op.drop_table("approval")
