# SPDX-License-Identifier: Apache-2.0
"""Campaigns: the cases each links (indicator sets held here, or other agencies' cases known by
a private overlap count), and the known-benign values that never link cases.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign")),
    )
    op.create_table(
        "campaign_case",
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("shared", sa.Integer(), nullable=False),
        sa.Column("linked_at_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('set', 'agency')", name=op.f("ck_campaign_case_kind")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.campaign_id"],
            name=op.f("fk_campaign_case_campaign_id_campaign"),
        ),
        sa.PrimaryKeyConstraint("campaign_id", "kind", "ref", name=op.f("pk_campaign_case")),
    )
    op.create_table(
        "benign_value",
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(2048), nullable=False),
        sa.Column("added_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("type", "value", name=op.f("pk_benign_value")),
    )


def downgrade() -> None:
    op.drop_table("benign_value")
    op.drop_table("campaign_case")
    op.drop_table("campaign")
