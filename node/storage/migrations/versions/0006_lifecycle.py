# SPDX-License-Identifier: Apache-2.0
"""Lifecycle messages: held and refused messages, message bodies, preservation end.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="applied")
        )
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("note", sa.String(length=1000), nullable=True))
    with op.batch_alter_table("exchange") as batch:
        batch.add_column(sa.Column("preserved_until_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange") as batch:
        batch.drop_column("preserved_until_ms")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("note")
        batch.drop_column("body")
        batch.drop_column("state")
