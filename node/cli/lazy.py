# SPDX-License-Identifier: Apache-2.0
"""A command module that is imported only when one of its commands runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class LazyModule:
    """Stands for a module: ``LazyModule("node.cli.audit_cmd").verify`` is a callable that
    imports the module on its first call and calls its ``verify``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            function = getattr(importlib.import_module(self._name), attribute)
            return function(*args, **kwargs)

        call.__name__ = attribute
        return call
