# SPDX-License-Identifier: Apache-2.0
"""Audit leaves indexed by exchange, so one request's records can be proven and erased.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_leaf") as batch:
        batch.add_column(sa.Column("exchange_id", sa.String(64), nullable=True))
        batch.create_index("ix_audit_leaf_exchange_id", ["exchange_id"])


def downgrade() -> None:
    with op.batch_alter_table("audit_leaf") as batch:
        batch.drop_index("ix_audit_leaf_exchange_id")
        batch.drop_column("exchange_id")
