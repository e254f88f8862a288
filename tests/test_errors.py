# SPDX-License-Identifier: Apache-2.0
"""One error model: every error class, wherever it is declared, is a ComityError with a code
of its own, so the transport's one mapping and the command line's one handler cover it."""

from __future__ import annotations

import importlib
import pkgutil

import node
from node.errors import ComityError, ErrorKind


def every_error() -> list[type[ComityError]]:
    for module in pkgutil.walk_packages(node.__path__, "node."):
        if not module.name.startswith("node.gen"):
            importlib.import_module(module.name)
    found: list[type[ComityError]] = []
    pending = [ComityError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def carries_a_peers_code(error: type[ComityError]) -> bool:
    """An error that stands for one a peer or the local node reported sets the reported code
    per instance (node.cli.local_client.LocalNodeError)."""
    return "code" not in vars(error) and "__init__" in vars(error)


def test_every_error_has_a_code_and_kind_of_its_own() -> None:
    errors = [
        e for e in every_error() if e.__module__.startswith("node.") and not carries_a_peers_code(e)
    ]
    assert len(errors) > 60
    codes: dict[str, str] = {}
    for error in errors:
        assert error.__name__.endswith("Error"), error
        assert isinstance(error.kind, ErrorKind)
        name = f"{error.__module__}.{error.__qualname__}"
        assert error.code not in codes, f"{name} reuses {codes.get(error.code)}'s code"
        codes[error.code] = name
