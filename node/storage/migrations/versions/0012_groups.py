# SPDX-License-Identifier: Apache-2.0
"""Sharing groups: group keys, blinded tags and per-node sync cursors (placeholder until filled)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 03:00:00.000000
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
