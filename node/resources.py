# SPDX-License-Identifier: Apache-2.0
"""What the node knows of its installation: its version, and where the files it ships beside
its code (the ``schemas/`` folder) are.

In the source tree ``schemas/`` sits beside ``node/`` (other agencies' implementations read it
there); a built wheel carries a copy inside the package as ``node/schemas`` (``setup.py`` puts
it there), so an installed node needs no setting to find it.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from node.errors import ConfigError

SCHEMAS_ENV = "COMITY_SCHEMAS_DIR"
_PACKAGE = Path(__file__).resolve().parent
INSTALLED_SCHEMAS = _PACKAGE / "schemas"
SOURCE_SCHEMAS = _PACKAGE.parent / "schemas"


def schemas_dir() -> Path:
    """The directory holding the schemas: ``$COMITY_SCHEMAS_DIR`` when set, else the copy
    installed with the package, else the ``schemas/`` folder of the source tree. Read on every
    call, so a changed environment takes effect without a restart.

    Raises:
        ConfigError: the directory does not exist.
    """
    configured = os.environ.get(SCHEMAS_ENV)
    if configured:
        path = Path(configured)
    elif INSTALLED_SCHEMAS.is_dir():
        path = INSTALLED_SCHEMAS
    else:
        path = SOURCE_SCHEMAS
    if not path.is_dir():
        raise ConfigError(f"schemas directory {path} does not exist; set {SCHEMAS_ENV}")
    return path


def installed_version() -> str:
    """The version of the installed distribution (its package metadata, as pip shows it)."""
    try:
        return importlib.metadata.version("comity")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"
