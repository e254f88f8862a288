# SPDX-License-Identifier: Apache-2.0
"""Sharing groups: their members and key epochs, the indicator sets published into each, and
every member's log of blinded tags (entries numbered by their publisher, tombstones included).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _group_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["group_id"],
        ["sharing_group.group_id"],
        name=op.f(f"fk_{table}_group_id_sharing_group"),
    )


def upgrade() -> None:
    op.create_table(
        "sharing_group",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_sharing_group")),
    )
    op.create_table(
        "sharing_group_member",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        _group_fk("sharing_group_member"),
        sa.PrimaryKeyConstraint("group_id", "agency", name=op.f("pk_sharing_group_member")),
    )
    op.create_table(
        "sharing_group_key",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("stored_at_ms", sa.BigInteger(), nullable=False),
        _group_fk("sharing_group_key"),
        sa.PrimaryKeyConstraint("group_id", "epoch", name=op.f("pk_sharing_group_key")),
    )
    op.create_table(
        "group_publication",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("set_id", sa.String(128), nullable=False),
        sa.Column("published_at_ms", sa.BigInteger(), nullable=False),
        _group_fk("group_publication"),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["indicator_set.set_id"],
            name=op.f("fk_group_publication_set_id_indicator_set"),
        ),
        sa.PrimaryKeyConstraint("group_id", "set_id", name=op.f("pk_group_publication")),
    )
    op.create_table(
        "group_tag",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("publisher", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("tag", sa.LargeBinary(16), nullable=False),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        _group_fk("group_tag"),
        sa.PrimaryKeyConstraint("group_id", "publisher", "seq", name=op.f("pk_group_tag")),
    )
    op.create_index("ix_group_tag_tag", "group_tag", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_group_tag_tag", table_name="group_tag")
    op.drop_table("group_tag")
    op.drop_table("group_publication")
    op.drop_table("sharing_group_key")
    op.drop_table("sharing_group_member")
    op.drop_table("sharing_group")
