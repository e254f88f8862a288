# SPDX-License-Identifier: Apache-2.0
"""The machine a benchmark ran on, for the line every benchmark prints first."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine() -> str:
    return (
        f"machine: {platform.machine()}, {cpu_model()}, {os.cpu_count() or 1} cores, "
        f"Python {platform.python_version()}"
    )
