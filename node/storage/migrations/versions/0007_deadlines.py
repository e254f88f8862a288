# SPDX-License-Identifier: Apache-2.0
"""Deadlines: when each request is due under its legal-basis profile.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange") as batch:
        batch.add_column(sa.Column("due_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange") as batch:
        batch.drop_column("due_at_ms")
