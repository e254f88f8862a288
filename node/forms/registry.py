# SPDX-License-Identifier: Apache-2.0
"""The request types this node knows, and where their schemas live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from node.errors import ConfigError, UnknownRequestTypeError

SCHEMAS_ENV = "COMITY_SCHEMAS_DIR"


@dataclass(frozen=True, kw_only=True)
class FormType:
    name: str
    payload_type: str
    title: str
    schema_file: str
    """Path of the JSON Schema relative to the schemas directory."""

    @property
    def schema_path(self) -> Path:
        return schemas_dir() / self.schema_file


_FORM_TYPES = (
    FormType(
        name="preservation",
        payload_type="application/vnd.comity.request.preservation.v1+json",
        title="Expedited preservation of stored computer data (Budapest Convention Art. 29)",
        schema_file="requests/preservation.v1.json",
    ),
)


@cache
def schemas_dir() -> Path:
    """``$COMITY_SCHEMAS_DIR``, or the ``schemas/`` folder of the source tree.

    Raises:
        ConfigError: the directory does not exist.
    """
    configured = os.environ.get(SCHEMAS_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "schemas"
    if not path.is_dir():
        raise ConfigError(f"schemas directory {path} does not exist; set {SCHEMAS_ENV}")
    return path


def form_types() -> tuple[FormType, ...]:
    return _FORM_TYPES


def get_form_type(name: str) -> FormType:
    """The form type called ``name``.

    Raises:
        UnknownRequestTypeError: no such request type.
    """
    for form_type in _FORM_TYPES:
        if form_type.name == name:
            return form_type
    known = ", ".join(f.name for f in _FORM_TYPES)
    raise UnknownRequestTypeError(f"unknown request type {name!r}; known types: {known}")


def form_type_for_payload(payload_type: str) -> FormType:
    """The form type whose payload type is ``payload_type``.

    Raises:
        UnknownRequestTypeError: no request type has that payload type.
    """
    for form_type in _FORM_TYPES:
        if form_type.payload_type == payload_type:
            return form_type
    raise UnknownRequestTypeError(f"unknown payload_type {payload_type}")
