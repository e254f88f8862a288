# SPDX-License-Identifier: Apache-2.0
"""Validating a request form against its schema and returning its canonical bytes.

Every problem is reported at once, as "<JSON path>: <rule>". The rule is built from the
schema keyword that failed, never from the offending value, because form values are case
content and personal data, and these messages travel to peers and into logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from node.errors import ConfigError, FormValidationError
from node.forms.indicators import INDICATOR_TYPES, canonicalize_indicator
from node.forms.registry import FormType

MAX_FORM_BYTES = 256 * 1024
MAX_LISTED_PROBLEMS = 50
MAX_INTEGER_DIGITS = 20

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Object keys come from the sender; one is named in a message only if it looks like a field.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time")
def _is_rfc3339_instant(value: object) -> bool:
    """RFC 3339 date-times with an explicit offset: date-only values shift across zones."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    try:
        _instant(value)
    except ValueError:
        return False
    return True


def _instant(value: str) -> datetime:
    # Python 3.11 reads "Z" as UTC; upper() also accepts RFC 3339's lower-case "t" and "z".
    return datetime.fromisoformat(value.upper())


def _ecma_pattern(
    _unused_validator: Validator, pattern: str, instance: object, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """``pattern`` with ECMA-262 semantics for a final ``$``.

    Python's ``$`` also matches before a trailing newline, so "V-2026-1\\n" would pass
    ``^...$``; in JSON Schema (ECMA-262) ``$`` is the end of the string.
    """
    if not isinstance(instance, str):
        return
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if not re.search(pattern, instance):
        yield ValidationError("does not match the pattern")


# jsonschema's extend() is untyped; the result is a Draft 2020-12 validator class.
_FormValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)


@cache
def _validator(schema_path: Path) -> Validator:
    try:
        schema = json.loads(schema_path.read_bytes())
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as e:
        raise ConfigError(f"form schema {schema_path} is missing or not a valid schema") from e
    validator: Validator = _FormValidator(schema, format_checker=_FORMATS)
    return validator


# --- parsing ---------------------------------------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as parsed, before duplicate keys are checked with their paths known."""


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_FORM_BYTES:
        raise FormValidationError(f"$: form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormValidationError(f"$: form is not valid UTF-8 (byte {e.start})") from e
    try:
        value = _objects(
            json.loads(
                text, object_pairs_hook=_Pairs, parse_constant=_no_constant, parse_int=_integer
            )
        )
    except json.JSONDecodeError as e:
        raise FormValidationError(f"$: form is not JSON (line {e.lineno}, column {e.colno})") from e
    except RecursionError as e:
        raise FormValidationError("$: form is nested too deeply") from e
    if not isinstance(value, dict):
        raise FormValidationError("$: form must be a JSON object")
    return value


def _integer(text: str) -> int:
    # Python refuses to convert more than 4,300 digits (CVE-2020-10735) with a bare
    # ValueError; no form field needs more than a few digits.
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise FormValidationError(
            f"$: form contains an integer of more than {MAX_INTEGER_DIGITS} digits"
        )
    return int(text)


def _no_constant(name: str) -> None:
    raise FormValidationError(f"$: form contains {name}, which is not JSON")


def _objects(value: Any, path: str = "$") -> Any:
    """Turn parsed pairs into dicts, refusing a key that appears twice in one object."""
    if isinstance(value, _Pairs):
        result: dict[str, Any] = {}
        for key, item in value:
            _check_encodable(key, path)
            if key in result:
                raise FormValidationError(f"{path}: duplicate key {_key_name(key)}")
            result[key] = _objects(item, _child(path, key))
        return result
    if isinstance(value, list):
        return [_objects(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str):
        _check_encodable(value, path)
    return value


def _check_encodable(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        # A "\ud800" escape parses to a lone surrogate, which has no UTF-8 form.
        raise FormValidationError(f"{path}: contains an unpaired UTF-16 surrogate escape") from e


def _key_name(key: str) -> str:
    return f"'{key}'" if _FIELD_NAME.fullmatch(key) else "(name not shown)"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _FIELD_NAME.fullmatch(key) else f"{path}.?"


# --- schema errors ---------------------------------------------------------------------------


def _path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path = f"{path}[{part}]" if isinstance(part, int) else _child(path, str(part))
    return path


def _list(values: object) -> str:
    items = values if isinstance(values, list) else [values]
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in items)


_REASONS = {
    "type": "must be of type {values}",
    "enum": "must be one of the allowed values: {values}",
    "const": "must be {values}",
    "pattern": "does not match the pattern {arg}",
    "minLength": "is shorter than {arg} characters",
    "maxLength": "is longer than {arg} characters",
    "minItems": "must have at least {arg} item(s)",
    "maxItems": "must have at most {arg} item(s)",
    "uniqueItems": "must not contain duplicate items",
}


def _simple_reason(keyword: str, arg: object) -> str:
    """The rule behind one keyword; ``arg`` is the schema's value, never the instance."""
    if keyword == "format" and arg == "date-time":
        return "must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T00:00:00Z"
    if keyword == "format":
        return f"must be a valid {arg}"
    template = _REASONS.get(keyword, "breaks the schema rule '{keyword}'")
    return template.format(arg=arg, values=_list(arg), keyword=keyword)


def _reasons(error: ValidationError) -> list[str]:
    keyword, arg = str(error.validator), error.validator_value
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        # Names from the schema's list, not from the error text (which quotes the instance).
        names = arg if isinstance(arg, list) else []
        return [f"is required: {name}" for name in names if name not in instance]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        return [f"additional property {_key_name(k)} is not allowed" for k in extra]
    if keyword == "type" and arg == "object":
        return ["must be a JSON object"]
    return [_simple_reason(keyword, arg)]


def _schema_problems(form_type: FormType, form: dict[str, Any]) -> list[str]:
    validator = _validator(form_type.schema_path)
    errors = sorted(
        validator.iter_errors(form),
        key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator)),
    )
    problems = (f"{_path(e)}: {reason}" for e in errors for reason in _reasons(e))
    return list(dict.fromkeys(problems))


# --- rules beyond the schema -----------------------------------------------------------------


# Where forms carry their indicators: inside the data asked for, or at the top (alerts).
INDICATOR_HOLDERS = ("data_to_preserve", "data_requested", None)


def indicator_list(form: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """The form's indicator list and its JSON path, if it has one."""
    for holder in INDICATOR_HOLDERS:
        container = form.get(holder) if holder else form
        items = container.get("indicators") if isinstance(container, dict) else None
        if isinstance(items, list):
            return (f"$.{holder}.indicators" if holder else "$.indicators"), items
    return None


def _indicator_problems(form: dict[str, Any]) -> list[str]:
    problems = []
    found = indicator_list(form)
    path = found[0] if found else ""
    for index, item in _indicator_items(form):
        try:
            canonicalize_indicator(item["type"], item["value"])
        except FormValidationError as e:
            problems.append(f"{path}[{index}].value: {e.message}")
    return problems


def _indicator_items(form: dict[str, Any]) -> Iterator[tuple[int, dict[str, str]]]:
    """Indicators well-formed enough to canonicalise (the schema reports the others)."""
    found = indicator_list(form)
    for index, item in enumerate(found[1] if found else []):
        if (
            isinstance(item, dict)
            and item.get("type") in INDICATOR_TYPES
            and isinstance(item.get("value"), str)
        ):
            yield index, item


def _period_problems(form: dict[str, Any]) -> list[str]:
    holder = next((h for h in ("data_to_preserve", "data_requested") if h in form), None)
    data = form.get(holder) if holder else None
    period = data.get("period") if isinstance(data, dict) else None
    if not isinstance(period, dict):
        return []
    start, end = period.get("from"), period.get("to")
    if not (_is_instant(start) and _is_instant(end)):
        return []  # the schema's format check reports these
    if _instant(str(start)) > _instant(str(end)):
        return [f"$.{holder}.period: 'from' must not be later than 'to'"]
    return []


def _is_instant(value: object) -> bool:
    return isinstance(value, str) and _is_rfc3339_instant(value)


def _raise_if_any(form_type: FormType, problems: list[str]) -> None:
    if not problems:
        return
    listed = problems[:MAX_LISTED_PROBLEMS]
    more = len(problems) - len(listed)
    suffix = f"; and {more} more problem(s)" if more else ""
    raise FormValidationError(f"{form_type.name} form is invalid: {'; '.join(listed)}{suffix}")


# --- canonical output ------------------------------------------------------------------------


def _canonicalize_indicators(form: dict[str, Any]) -> None:
    """Replace each indicator by its canonical form; drop the repeats that this reveals."""
    seen: set[tuple[str, str]] = set()
    canonical: list[dict[str, str]] = []
    for _, item in _indicator_items(form):
        key = (item["type"], canonicalize_indicator(item["type"], item["value"]))
        if key not in seen:
            seen.add(key)
            canonical.append({"type": key[0], "value": key[1]})
    found = indicator_list(form)
    if found is not None:
        found[1][:] = canonical


def _canonical_bytes(form: dict[str, Any]) -> bytes:
    # Cannot fail: parsing refused every string without a UTF-8 form.
    text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def validate_form(form_type: FormType, raw: bytes) -> bytes:
    """Validate ``raw`` against the type's schema and return the form's canonical bytes.

    Indicators are canonicalised and exact repeats after canonicalisation dropped. The result
    has sorted keys and no insignificant whitespace, so equal forms have equal bytes, and
    validating the result again returns it unchanged.

    Args:
        form_type: the request type whose schema applies.
        raw: the form as UTF-8 JSON, at most :data:`MAX_FORM_BYTES`.

    Raises:
        FormValidationError: every problem found, each as "<JSON path>: <rule>"; never
            quoting a value from the form.
        ConfigError: the type's schema file is missing or not a valid schema.
    """
    try:
        form = _parse(raw)
    except FormValidationError as e:
        raise FormValidationError(f"{form_type.name} form is invalid: {e.message}") from e
    problems = _schema_problems(form_type, form)
    problems += _indicator_problems(form)
    problems += _period_problems(form)
    _raise_if_any(form_type, problems)
    _canonicalize_indicators(form)
    return _canonical_bytes(form)


def form_strings(canonical: bytes) -> list[str]:
    """Every string value in a form, in document order (not object keys).

    Privacy tests search telemetry and logs for these.
    """
    found: list[str] = []
    stack: list[Any] = [json.loads(canonical)]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend(reversed(value))
    return found
