# SPDX-License-Identifier: Apache-2.0
"""Instants as integer milliseconds since the Unix epoch, UTC."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def format_ms(instant_ms: int) -> str:
    """ISO 8601 in UTC, to the second, for people."""
    return datetime.fromtimestamp(instant_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
