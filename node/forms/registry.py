# SPDX-License-Identifier: Apache-2.0
"""The request types this node knows, and where their schemas live.

The request types are data: ``schemas/registry/request-types.v1.json`` lists each one with its
title and its traits (checked against ``schemas/registry/registry.v1.json`` when first read, then
kept per schemas directory). Adding a request type means adding it there, with its form schema
in ``requests/``, its example and a legal-basis profile that covers it; no code lists type
names. The lifecycle message kinds are fixed by the lifecycle table and stay in code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from node import resources
from node.errors import ConfigError, UnknownRequestTypeError
from node.model.request_type import RequestTypeTraits, Trait

SCHEMAS_ENV = resources.SCHEMAS_ENV
REGISTRY_FILE = "registry/request-types.v1.json"
_REGISTRY_SCHEMA_FILE = "registry/registry.v1.json"

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


@dataclass(frozen=True)
class _Registry:
    definitions: tuple[_Definition, ...]
    traits: Mapping[str, RequestTypeTraits]
    alert_type: str


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
    """The directory holding the schemas (:func:`node.resources.schemas_dir`).

    Raises:
        ConfigError: the directory does not exist.
    """
    return resources.schemas_dir()


def form_types() -> tuple[FormType, ...]:
    """Every request type this node knows, with schema paths under :func:`schemas_dir`.

    Raises:
        ConfigError: the schemas directory does not exist, or its registry is unusable.
    """
    directory = schemas_dir()
    return _types(directory, _registry(directory).definitions, is_message=False)


def message_types() -> tuple[FormType, ...]:
    """Every lifecycle message kind, with schema paths under :func:`schemas_dir`.

    Raises:
        ConfigError: the schemas directory does not exist.
    """
    return _types(schemas_dir(), _MESSAGE_DEFINITIONS, is_message=True)


def _types(
    directory: Path, definitions: tuple[_Definition, ...], *, is_message: bool
) -> tuple[FormType, ...]:
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
    raise _unknown_request_type(name, [f.name for f in known])


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


def traits_of(request_type: str) -> RequestTypeTraits:
    """What the lifecycle and the deadlines need to know about ``request_type``.

    Raises:
        UnknownRequestTypeError: no such request type.
        ConfigError: the schemas directory does not exist, or its registry is unusable.
    """
    known = _registry(schemas_dir()).traits
    traits = known.get(request_type)
    if traits is None:
        raise _unknown_request_type(request_type, list(known))
    return traits


def _unknown_request_type(name: str, known: list[str]) -> UnknownRequestTypeError:
    shown = f" {name!r}" if _SAFE_NAME.fullmatch(name) else ""
    return UnknownRequestTypeError(f"unknown request type{shown}; known types: {', '.join(known)}")


def alert_type() -> str:
    """The request type campaign alerts are filed as: the one with the ``alert`` trait.

    Raises:
        ConfigError: the schemas directory does not exist, or its registry is unusable.
    """
    return _registry(schemas_dir()).alert_type


@cache
def _registry(directory: Path) -> _Registry:
    """The registry file under ``directory``, checked; read once per directory."""
    path = directory / REGISTRY_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        schema = json.loads((directory / _REGISTRY_SCHEMA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the request-type registry {path}") from e
    try:
        Draft202012Validator(schema).validate(document)
    except ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise ConfigError(f"{path}: {where}: {e.message}") from e
    return _registry_from(path, document["request_types"])


def _registry_from(path: Path, entries: list[dict[str, Any]]) -> _Registry:
    names = [str(entry["name"]) for entry in entries]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: a request type is listed twice")
    traits = {
        str(entry["name"]): RequestTypeTraits.of(
            str(entry["name"]),
            frozenset(Trait(t) for t in entry["traits"]),
            sent_by=(str(role) for role in entry["sent_by"]),
        )
        for entry in entries
    }
    alerts = [name for name, t in traits.items() if t.alert]
    if len(alerts) != 1:
        raise ConfigError(f"{path}: exactly one request type must have the alert trait")
    definitions = tuple(
        _Definition(
            name=name,
            payload_type=f"application/vnd.comity.request.{name}.v1+json",
            title=str(entry["title"]),
            schema_file=f"requests/{name}.v1.json",
        )
        for name, entry in zip(names, entries, strict=True)
    )
    return _Registry(definitions=definitions, traits=traits, alert_type=alerts[0])
