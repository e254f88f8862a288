# SPDX-License-Identifier: Apache-2.0
"""Sign-in: passwords and TOTP seeds, failed attempts, console sessions, OIDC logins.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_credential",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_sealed", sa.String(length=255), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"], ["comity_user.name"], name=op.f("fk_user_credential_name_comity_user")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_user_credential")),
    )
    op.create_table(
        "sign_in_attempt",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sign_in_attempt")),
    )
    op.create_table(
        "user_session",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.String(length=255), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["name"], ["comity_user.name"], name=op.f("fk_user_session_name_comity_user")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_user_session")),
    )
    op.create_index(op.f("ix_user_session_name"), "user_session", ["name"])
    op.create_table(
        "oidc_login",
        sa.Column("state_sha256", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("state_sha256", name=op.f("pk_oidc_login")),
    )


def downgrade() -> None:
    op.drop_table("oidc_login")
    op.drop_table("user_session")
    op.drop_table("sign_in_attempt")
    op.drop_table("user_credential")
