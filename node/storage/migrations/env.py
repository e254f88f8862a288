# SPDX-License-Identifier: Apache-2.0
"""Alembic environment: runs on the connection node.storage.engine hands it."""

from __future__ import annotations

from alembic import context

from node.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through node.storage.engine.upgrade()")
context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    render_as_batch=True,  # SQLite can alter tables only by rebuilding them
)
with context.begin_transaction():
    context.run_migrations()
