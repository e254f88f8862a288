# SPDX-License-Identifier: Apache-2.0
"""Persistence: SQLModel tables, the engine factory, migrations and data access."""
