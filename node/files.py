# SPDX-License-Identifier: Apache-2.0
"""Files that hold secrets: created readable by their owner only, never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from node.errors import ConfigError


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``.

    Raises:
        ConfigError: the file exists already or cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(f"refusing to overwrite the existing file {path}") from e
    except OSError as e:
        raise ConfigError(f"cannot create {path}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as out:
        out.write(data)
