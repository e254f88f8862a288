# SPDX-License-Identifier: Apache-2.0
"""Every table of the node, gathered on one metadata: what migrations and checks compare to."""

from __future__ import annotations

from node.storage import approval_tables, credential_tables, people_tables, tables

metadata = tables.metadata
TABLE_MODULES = (tables, people_tables, approval_tables, credential_tables)
"""Imported for their side effect: each table class registers itself on ``metadata``."""
