# SPDX-License-Identifier: Apache-2.0
"""Size limits that keep the package legible: no module over 600 lines, no function over 60.

The import rules (layers, protobuf at the edge, no cycles) are import-linter contracts in
pyproject.toml, checked by `make lint`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "node"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _source_files() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "gen" not in path.relative_to(PACKAGE).parts:
            yield path


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_the_package_has_source_files() -> None:
    assert len(list(_source_files())) > 50


def test_no_module_is_over_the_limit() -> None:
    too_long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _source_files()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_no_function_is_over_the_limit() -> None:
    too_long: dict[str, int] = {}
    for path in _source_files():
        for function in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            lines = (function.end_lineno or function.lineno) - function.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                too_long[f"{path.relative_to(PACKAGE)}:{function.name}"] = lines
    assert too_long == {}
