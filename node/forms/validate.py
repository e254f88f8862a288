# SPDX-License-Identifier: Apache-2.0
"""Validating a request form against its schema and returning its canonical bytes.

Error messages list every problem as "<JSON path>: <rule>" and never quote the offending
value, because form values are case content and personal data.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from node.errors import FormValidationError
from node.forms.indicators import canonicalize_indicator
from node.forms.registry import FormType

MAX_FORM_BYTES = 256 * 1024


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_instant(value: object) -> bool:
    """RFC 3339 instants with an explicit offset (date-only values shift across zones)."""
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value).tzinfo is not None


@cache
def _validator(schema_path: str) -> Draft202012Validator:
    with open(schema_path, encoding="utf-8") as f:  # noqa: PTH123 (cache key is a str)
        schema = json.load(f)
    return Draft202012Validator(schema, format_checker=_FORMATS)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FormValidationError(f"form has the key {key!r} twice")
        result[key] = value
    return result


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_FORM_BYTES:
        raise FormValidationError(f"form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    except UnicodeDecodeError as e:
        raise FormValidationError("form is not UTF-8") from e
    except json.JSONDecodeError as e:
        raise FormValidationError(f"form is not JSON (line {e.lineno}, column {e.colno})") from e
    if not isinstance(value, dict):
        raise FormValidationError("form must be a JSON object")
    return value


def _path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _reason(error: ValidationError) -> str:
    """The rule an error broke, in words, without the instance value."""
    keyword, arg = error.validator, error.validator_value
    if keyword == "required":
        # One error per missing field; its name comes from the schema, not from the form.
        missing = error.message.split("'")[1] if "'" in error.message else "a field"
        return f"is missing the required field {missing}"
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        return f"has field(s) not allowed here: {', '.join(extra)}"
    reasons = {
        "type": f"must be of type {arg}",
        "enum": "must be one of the allowed values",
        "const": "must be exactly the required value",
        "pattern": "does not match the required pattern",
        "format": f"must be a valid {arg}",
        "minLength": f"is shorter than {arg} characters",
        "maxLength": f"is longer than {arg} characters",
        "minItems": f"must have at least {arg} item(s)",
        "maxItems": f"must have at most {arg} item(s)",
        "uniqueItems": "must not repeat items",
    }
    return reasons.get(str(keyword), f"breaks the schema rule {keyword!r}")


def _check_schema(form_type: FormType, form: dict[str, Any]) -> None:
    validator = _validator(str(form_type.schema_path))
    errors = sorted(validator.iter_errors(form), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = "; ".join(dict.fromkeys(f"{_path(e)} {_reason(e)}" for e in errors))
        raise FormValidationError(f"{form_type.name} form is invalid: {problems}")


def _canonical_indicators(form: dict[str, Any]) -> None:
    data = form.get("data_to_preserve")
    if not isinstance(data, dict) or not isinstance(data.get("indicators"), list):
        return
    seen: set[tuple[str, str]] = set()
    canonical = []
    for index, item in enumerate(data["indicators"]):
        try:
            value = canonicalize_indicator(item["type"], item["value"])
        except FormValidationError as e:
            raise FormValidationError(f"$.data_to_preserve.indicators[{index}]: {e.message}") from e
        if (item["type"], value) not in seen:
            seen.add((item["type"], value))
            canonical.append({"type": item["type"], "value": value})
    data["indicators"] = canonical


def validate_form(form_type: FormType, raw: bytes) -> bytes:
    """Validate ``raw`` against the type's schema; return canonical JSON bytes.

    Indicators are canonicalised and exact duplicates dropped; the result has sorted keys
    and no insignificant whitespace, so equal forms have equal bytes.

    Raises:
        FormValidationError: every problem found, each with its JSON path.
    """
    form = _parse(raw)
    _check_schema(form_type, form)
    _canonical_indicators(form)
    return json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def form_strings(canonical: bytes) -> list[str]:
    """Every string value in a form (privacy tests search telemetry and logs for them)."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(canonical))
    return found
