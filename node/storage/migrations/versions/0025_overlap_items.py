# SPDX-License-Identifier: Apache-2.0
"""Overlap checks record how many points they carried, for the per-peer daily item budget.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Checks recorded before this revision carried an unknown number of points: they count as
    # none, so the budget starts with this revision (a day later every check in it is counted).
    with op.batch_alter_table("overlap_check") as batch:
        batch.add_column(sa.Column("items", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("overlap_check") as batch:
        batch.drop_column("items")
