# SPDX-License-Identifier: Apache-2.0
"""Minimization: a request carries only what its type and legal basis need.

Run on a validated, canonical form before it is signed, and again by the receiver on what it
opened. The schema already refuses fields outside the allow-list and victims named other than
by case pseudonym; this adds the rules that depend on the legal-basis profile (data
categories, number of identifiers, judicial authorisation) and finds identifiers smuggled into
free text. Free-text identifiers can be stripped (replaced by a marker) on request; everything
else is refused, each problem naming its field. Messages never quote form values. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.errors import ComityError, ErrorKind
from node.forms.profiles import Profile, profile_for
from node.forms.validate import indicator_list

REMOVED = "[identifier removed]"
JUDICIAL = frozenset({"judge", "court"})

# Free-text fields a form may have, as paths into the form.
FREE_TEXT = (
    ("offence", "summary_of_facts"),
    ("data_to_preserve", "description"),
    ("data_to_preserve", "relationship_to_offence"),
    ("data_requested", "description"),
    ("data_requested", "relationship_to_offence"),
    ("necessity",),
    ("conduct", "description"),
    ("emergency", "justification"),
    ("alert", "summary"),
)

# What identifiers look like in running text. Deliberately narrow: legal provisions ("§ 157-3"),
# dates and case pseudonyms ("V-2026-0142") must pass.
_IDENTIFIERS = (
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")),
    ("a web address", re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)),
    (
        "an IP address",
        re.compile(
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){4,7}\b", re.IGNORECASE
        ),
    ),
    ("a telephone number", re.compile(r"(?<![\w-])\+?\d[\d ().-]{7,}\d(?![\w-])")),
    ("an account handle", re.compile(r"(?<![\w@])@[A-Za-z0-9_][A-Za-z0-9_.]{1,30}")),
)
_MIN_PHONE_DIGITS = 9


class NotMinimalError(ComityError):
    """A request carrying more than its type and legal basis need."""

    kind = ErrorKind.PRECONDITION
    code = "not_minimal"


@dataclass(frozen=True, kw_only=True)
class Minimized:
    form_json: bytes
    """The form as it will be signed (canonical)."""
    profile: Profile
    notes: tuple[str, ...]
    """What was stripped, by field."""


def minimize(request_type: str, form_json: bytes, *, strip: bool = False) -> Minimized:
    """Check a validated canonical form against its profile; strip free-text identifiers if
    ``strip``.

    Raises:
        FormValidationError: the legal basis does not cover the request type.
        NotMinimalError: every problem found, each as "<JSON path>: <rule>".
    """
    form: dict[str, Any] = json.loads(form_json)
    profile = profile_for(request_type, str(form.get("legal_basis")))
    problems = _category_problems(form, profile) + _indicator_problems(form, profile)
    problems += _judicial_problems(form, profile)
    notes: list[str] = []
    for path, label in _free_text_identifiers(form):
        if strip:
            notes.append(f"{path}: {label} removed")
        else:
            problems.append(
                f"{path}: contains {label}; put identifiers in the indicators, or strip them"
            )
    if problems:
        raise NotMinimalError(
            f"{request_type} request is not minimal under {profile.code}: " + "; ".join(problems)
        )
    if notes:
        _strip_identifiers(form)
        form_json = json.dumps(
            form, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return Minimized(form_json=form_json, profile=profile, notes=tuple(dict.fromkeys(notes)))


def _data(form: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for holder in ("data_to_preserve", "data_requested"):
        data = form.get(holder)
        if isinstance(data, dict):
            return holder, data
    return None


def _category_problems(form: dict[str, Any], profile: Profile) -> list[str]:
    found = _data(form)
    if found is None:
        return []
    holder, data = found
    allowed = ", ".join(sorted(profile.data_categories)) or "none"
    return [
        f"$.{holder}.data_categories[{i}]: this category is beyond what {profile.code} allows "
        f"({allowed})"
        for i, category in enumerate(data.get("data_categories", []))
        if category not in profile.data_categories
    ]


def _indicator_problems(form: dict[str, Any], profile: Profile) -> list[str]:
    found = indicator_list(form)
    if found is None or len(found[1]) <= profile.max_indicators:
        return []
    limit = profile.max_indicators
    return [f"{found[0]}: {len(found[1])} identifiers; {profile.code} allows at most {limit}"]


def _judicial_problems(form: dict[str, Any], profile: Profile) -> list[str]:
    found = _data(form)
    if found is None or not profile.judicial_authorisation_for:
        return []
    needing = profile.judicial_authorisation_for & set(found[1].get("data_categories", []))
    authority = form.get("issuing_authority")
    kind = authority.get("type") if isinstance(authority, dict) else None
    if not needing or kind in JUDICIAL:
        return []
    categories = ", ".join(sorted(needing))
    return [
        (
            f"$.issuing_authority.type: {categories} data under {profile.code} needs a judge "
            "or a court as issuing authority"
        )
    ]


def _free_text_identifiers(form: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path in FREE_TEXT:
        text = _get(form, path)
        if not isinstance(text, str):
            continue
        for label, pattern in _IDENTIFIERS:
            if any(_counts(label, m.group()) for m in pattern.finditer(text)):
                found.append(("$." + ".".join(path), label))
    return found


def _counts(label: str, match: str) -> bool:
    if label == "a telephone number":
        return sum(c.isdigit() for c in match) >= _MIN_PHONE_DIGITS
    return True


def _strip_identifiers(form: dict[str, Any]) -> None:
    for path in FREE_TEXT:
        text = _get(form, path)
        if not isinstance(text, str):
            continue
        for label, pattern in _IDENTIFIERS:
            text = pattern.sub(_replacer(label), text)
        _set(form, path, text)


def _replacer(label: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return REMOVED if _counts(label, match.group()) else match.group()

    return replace


def _get(form: dict[str, Any], path: tuple[str, ...]) -> object:
    value: object = form
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _set(form: dict[str, Any], path: tuple[str, ...], text: str) -> None:
    target: Any = form
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = text
