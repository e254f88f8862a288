# SPDX-License-Identifier: Apache-2.0
"""Every full tile of 256 audit leaves: its leaf hashes and root, so proofs read one row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_tile",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_audit_tile")),
    )


def downgrade() -> None:
    op.drop_table("audit_tile")
