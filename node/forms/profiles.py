# SPDX-License-Identifier: Apache-2.0
"""Legal-basis profiles: what a request under each basis may carry, and how fast it is due.

The profiles are data (``schemas/profiles/legal-bases.v1.json``, checked against
``schemas/profiles/profiles.v1.json`` when read): the data categories a basis allows, the most
identifiers one request may carry, the deadline from receipt, preservation periods, the data
categories that need a judge, the refusal grounds that apply and the retention period.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from node.errors import ConfigError, FormValidationError
from node.forms.registry import schemas_dir

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, kw_only=True)
class Deadline:
    hours: int
    until: str
    """``decision`` or ``execution``: the step the request must reach in time."""
    source: str


@dataclass(frozen=True, kw_only=True)
class Profile:
    code: str
    title: str
    instrument: str
    article: str
    request_types: frozenset[str]
    data_categories: frozenset[str]
    max_indicators: int
    deadline: Deadline | None
    emergency_deadline_hours: int | None
    preservation_minimum_days: int | None
    preservation_extension_days: int | None
    judicial_authorisation_for: frozenset[str]
    refusal_grounds: frozenset[str]
    retention_days: int

    def deadline_ms(self, *, emergency: bool) -> int | None:
        """How long after receipt the request is due, if it has a deadline."""
        if emergency and self.emergency_deadline_hours is not None:
            return self.emergency_deadline_hours * HOUR_MS
        return self.deadline.hours * HOUR_MS if self.deadline else None


def _path() -> Path:
    return schemas_dir() / "profiles" / "legal-bases.v1.json"


@cache
def _load(path: Path) -> dict[str, Profile]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        schema = json.loads((path.parent / "profiles.v1.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the legal-basis profiles {path}") from e
    try:
        Draft202012Validator(schema).validate(document)
    except ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise ConfigError(f"{path}: {where}: {e.message}") from e
    profiles = [_profile(entry) for entry in document["profiles"]]
    return {p.code: p for p in profiles}


def _profile(entry: dict[str, Any]) -> Profile:
    deadline = entry["deadline"]
    preservation = entry["preservation"] or {}
    return Profile(
        code=entry["code"],
        title=entry["title"],
        instrument=entry["instrument"],
        article=entry["article"],
        request_types=frozenset(entry["request_types"]),
        data_categories=frozenset(entry["data_categories"]),
        max_indicators=entry["max_indicators"],
        deadline=Deadline(**deadline) if deadline else None,
        emergency_deadline_hours=entry["emergency_deadline_hours"],
        preservation_minimum_days=preservation.get("minimum_days"),
        preservation_extension_days=preservation.get("extension_days"),
        judicial_authorisation_for=frozenset(entry["judicial_authorisation_for"]),
        refusal_grounds=frozenset(entry["refusal_grounds"]),
        retention_days=entry["retention_days"],
    )


def profiles() -> tuple[Profile, ...]:
    """Every legal-basis profile.

    Raises:
        ConfigError: the profiles file is missing or breaks its schema.
    """
    return tuple(_load(_path()).values())


def profile_for(request_type: str, legal_basis: str) -> Profile:
    """The profile of ``legal_basis``, which must cover ``request_type``.

    Raises:
        FormValidationError: no such basis, or it does not cover this request type.
        ConfigError: the profiles file is unusable.
    """
    profile = _load(_path()).get(legal_basis)
    if profile is None or request_type not in profile.request_types:
        raise FormValidationError(
            f"$.legal_basis: the legal basis does not cover a {request_type} request"
        )
    return profile
