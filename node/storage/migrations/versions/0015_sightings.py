# SPDX-License-Identifier: Apache-2.0
"""Sightings and false-positive reports an indicator set's owner received from the agencies
holding the set: one row per signed report, deduplicated by its id.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "indicator_sighting",
        sa.Column("sighting_id", sa.String(64), nullable=False),
        sa.Column("set_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(2048), nullable=False),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("note", sa.String(280), nullable=True),
        sa.Column("reported_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["indicator_set.set_id"],
            name=op.f("fk_indicator_sighting_set_id_indicator_set"),
        ),
        sa.PrimaryKeyConstraint("sighting_id", name=op.f("pk_indicator_sighting")),
    )
    op.create_index(op.f("ix_indicator_sighting_set_id"), "indicator_sighting", ["set_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_indicator_sighting_set_id"), table_name="indicator_sighting")
    op.drop_table("indicator_sighting")
