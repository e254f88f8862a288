# SPDX-License-Identifier: Apache-2.0
"""People: users, their roles, service tokens, and the unit that filed each outbound case.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comity_user",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("unit", sa.String(length=127), nullable=False),
        sa.Column("os_user", sa.String(length=64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_comity_user")),
        sa.UniqueConstraint("os_user", name=op.f("uq_comity_user_os_user")),
    )
    op.create_table(
        "user_role",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["comity_user.name"], name=op.f("fk_user_role_name_comity_user")
        ),
        sa.PrimaryKeyConstraint("name", "role", name=op.f("pk_user_role")),
    )
    op.create_table(
        "api_token",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("label", sa.String(length=127), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["name"], ["comity_user.name"], name=op.f("fk_api_token_name_comity_user")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_api_token")),
    )
    op.create_index(op.f("ix_api_token_name"), "api_token", ["name"])
    op.create_table(
        "case_unit",
        sa.Column("exchange_id", sa.String(length=36), nullable=False),
        sa.Column("unit", sa.String(length=127), nullable=False),
        sa.Column("filed_by", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchange.id"], name=op.f("fk_case_unit_exchange_id_exchange")
        ),
        sa.PrimaryKeyConstraint("exchange_id", name=op.f("pk_case_unit")),
    )
    op.create_index(op.f("ix_case_unit_unit"), "case_unit", ["unit"])


def downgrade() -> None:
    op.drop_table("case_unit")
    op.drop_table("api_token")
    op.drop_table("user_role")
    op.drop_table("comity_user")
