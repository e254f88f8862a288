# SPDX-License-Identifier: Apache-2.0
"""The request types this node knows, and where their schemas live.

Pure lookups: the only I/O is checking that the schemas directory exists.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from node.errors import ConfigError, UnknownRequestTypeError

SCHEMAS_ENV = "COMITY_SCHEMAS_DIR"

# Names and payload types come from users and peers; they are repeated in an error only when
# they look like what they claim to be, so an error can never carry arbitrary text.
_SAFE_NAME = re.compile(r"[a-z0-9._-]{1,64}")
_SAFE_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,63}/[A-Za-z0-9!#$&^_.+-]{1,64}")


@dataclass(frozen=True, kw_only=True)
class FormType:
    """One request type: its name for people, its payload type on the wire, its schema."""

    name: str
    payload_type: str
    title: str
    schema_path: Path


@dataclass(frozen=True, kw_only=True)
class _Definition:
    name: str
    payload_type: str
    title: str
    schema_file: str


_DEFINITIONS = (
    _Definition(
        name="preservation",
        payload_type="application/vnd.comity.request.preservation.v1+json",
        title="Expedited preservation of stored computer data (Budapest Convention Art. 29)",
        schema_file="requests/preservation.v1.json",
    ),
)


def schemas_dir() -> Path:
    """The directory holding the form schemas.

    ``$COMITY_SCHEMAS_DIR`` when set, else the ``schemas/`` folder of the source tree.
    Read on every call, so a changed environment takes effect without a restart.

    Raises:
        ConfigError: the directory does not exist.
    """
    configured = os.environ.get(SCHEMAS_ENV)
    path = Path(configured) if configured else Path(__file__).resolve().parents[2] / "schemas"
    if not path.is_dir():
        raise ConfigError(f"schemas directory {path} does not exist; set {SCHEMAS_ENV}")
    return path


def form_types() -> tuple[FormType, ...]:
    """Every request type this node knows, with schema paths under :func:`schemas_dir`.

    Raises:
        ConfigError: the schemas directory does not exist.
    """
    directory = schemas_dir()
    return tuple(
        FormType(
            name=d.name,
            payload_type=d.payload_type,
            title=d.title,
            schema_path=directory / d.schema_file,
        )
        for d in _DEFINITIONS
    )


def get_form_type(name: str) -> FormType:
    """The request type called ``name``.

    Raises:
        UnknownRequestTypeError: no such request type (the message lists the known ones).
        ConfigError: the schemas directory does not exist.
    """
    known = form_types()
    for form_type in known:
        if form_type.name == name:
            return form_type
    shown = f" {name!r}" if _SAFE_NAME.fullmatch(name) else ""
    names = ", ".join(f.name for f in known)
    raise UnknownRequestTypeError(f"unknown request type{shown}; known types: {names}")


def form_type_for_payload(payload_type: str) -> FormType:
    """The request type whose wire ``payload_type`` is ``payload_type``.

    Raises:
        UnknownRequestTypeError: no request type has that payload type.
        ConfigError: the schemas directory does not exist.
    """
    known = form_types()
    for form_type in known:
        if form_type.payload_type == payload_type:
            return form_type
    shown = f" {payload_type}" if _SAFE_MEDIA_TYPE.fullmatch(payload_type) else ""
    payload_types = ", ".join(f.payload_type for f in known)
    raise UnknownRequestTypeError(f"unknown payload_type{shown}; known: {payload_types}")
