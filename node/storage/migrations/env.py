# SPDX-License-Identifier: Apache-2.0
"""Alembic environment: runs on the connection node.storage.engine hands it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from node.faults import kill_point
from node.storage.schema import metadata


def _after_step(
    ctx: MigrationContext,  # noqa: ARG001 - Alembic passes these by name
    step: MigrationInfo,  # noqa: ARG001
    heads: Collection[Any],  # noqa: ARG001
    run_args: Mapping[str, Any],  # noqa: ARG001
) -> None:
    # A crash test dies here: one migration applied and stamped, its transaction still open.
    kill_point("migrate.after_step")


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through node.storage.engine.upgrade()")
context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    render_as_batch=True,  # SQLite can alter tables only by rebuilding them
    on_version_apply=_after_step,
)
with context.begin_transaction():
    context.run_migrations()
