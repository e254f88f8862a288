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
    is_message: bool = False
    """A lifecycle message within an exchange, not a request that opens one."""


@dataclass(frozen=True, kw_only=True)
class _Definition:
    name: str
    payload_type: str
    title: str
    schema_file: str


_REQUEST_TITLES = {
    "preservation": "Expedited preservation of stored computer data (Budapest Art. 29; EU "
    "European Preservation Order)",
    "traffic-disclosure": "Expedited disclosure of preserved traffic data (Budapest Art. 30)",
    "subscriber-information": "Subscriber information (Second Additional Protocol Art. 8; EU "
    "European Production Order)",
    "production": "Production of stored data (Budapest Art. 31; Second Additional Protocol "
    "Art. 8; EU European Production Order)",
    "emergency-disclosure": "Emergency disclosure or emergency assistance (Second Additional "
    "Protocol Arts. 9-10; EU emergency European Production Order)",
    "campaign-alert": "Campaign alert: spontaneous information (Budapest Art. 26)",
}
_DEFINITIONS = tuple(
    _Definition(
        name=name,
        payload_type=f"application/vnd.comity.request.{name}.v1+json",
        title=title,
        schema_file=f"requests/{name}.v1.json",
    )
    for name, title in _REQUEST_TITLES.items()
)

# The messages that move a request through its lifecycle once it is registered
# (node.model.lifecycle says who may send which, and when).
_MESSAGE_TITLES = {
    "review": "Review started",
    "clarification-request": "Clarification requested",
    "clarification-answer": "Clarification supplied",
    "decision": "Decision: accepted, partially accepted or refused",
    "preservation-confirmation": "Data preserved until a date",
    "extension-request": "Extension of the preservation requested",
    "extension": "Preservation extended",
    "execution": "Request executed",
    "evidence": "Evidence manifest: the files returned, with their SHA-256 digests",
    "withdrawal": "Request withdrawn",
    "closure": "Exchange closed",
}
_MESSAGE_DEFINITIONS = tuple(
    _Definition(
        name=kind,
        payload_type=f"application/vnd.comity.message.{kind}.v1+json",
        title=title,
        schema_file=f"messages/{kind}.v1.json",
    )
    for kind, title in _MESSAGE_TITLES.items()
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
    return _types(_DEFINITIONS, is_message=False)


def message_types() -> tuple[FormType, ...]:
    """Every lifecycle message kind, with schema paths under :func:`schemas_dir`.

    Raises:
        ConfigError: the schemas directory does not exist.
    """
    return _types(_MESSAGE_DEFINITIONS, is_message=True)


def _types(definitions: tuple[_Definition, ...], *, is_message: bool) -> tuple[FormType, ...]:
    directory = schemas_dir()
    return tuple(
        FormType(
            name=d.name,
            payload_type=d.payload_type,
            title=d.title,
            schema_path=directory / d.schema_file,
            is_message=is_message,
        )
        for d in definitions
    )


def get_message_type(kind: str) -> FormType:
    """The lifecycle message kind called ``kind``.

    Raises:
        UnknownRequestTypeError: no such message kind (the message lists the known ones).
    """
    known = message_types()
    for message_type in known:
        if message_type.name == kind:
            return message_type
    shown = f" {kind!r}" if _SAFE_NAME.fullmatch(kind) else ""
    names = ", ".join(m.name for m in known)
    raise UnknownRequestTypeError(f"unknown message kind{shown}; known kinds: {names}")


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
    """The request type or message kind whose wire ``payload_type`` is ``payload_type``.

    Raises:
        UnknownRequestTypeError: nothing has that payload type.
        ConfigError: the schemas directory does not exist.
    """
    known = form_types() + message_types()
    for form_type in known:
        if form_type.payload_type == payload_type:
            return form_type
    shown = f" {payload_type}" if _SAFE_MEDIA_TYPE.fullmatch(payload_type) else ""
    payload_types = ", ".join(f.payload_type for f in known)
    raise UnknownRequestTypeError(f"unknown payload_type{shown}; known: {payload_types}")
