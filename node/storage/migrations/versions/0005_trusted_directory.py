# SPDX-License-Identifier: Apache-2.0
"""The federation directory versions a node trusts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 06:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_directory",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("accepted_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_trusted_directory")),
    )


def downgrade() -> None:
    op.drop_table("trusted_directory")
