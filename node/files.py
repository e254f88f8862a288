# SPDX-License-Identifier: Apache-2.0
"""Files that hold secrets: created readable by their owner only, written durably, and
replaced only atomically."""

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
        out.flush()
        os.fsync(out.fileno())
    _sync_directory(path.parent)


def replace_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with a new mode-0600 file holding ``data``, atomically.

    A crash or a full disk leaves either the old file or the new one at ``path``, never
    neither: the data goes to a temporary file in the same directory first, reaches the disk,
    and is then renamed over ``path``.

    Raises:
        ConfigError: the temporary file cannot be written or renamed.
    """
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)  # left by a crash before the rename
    write_private_file(temporary, data)
    try:
        temporary.replace(path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot replace {path}: {e.strerror}") from e
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    # The new name is durable only once the directory entry is on disk too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
