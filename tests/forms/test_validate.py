# SPDX-License-Identifier: Apache-2.0
"""The preservation form: valid example, every kind of refusal, no value in any error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from node.errors import FormValidationError, UnknownRequestTypeError
from node.forms.registry import (
    form_type_for_payload,
    form_types,
    get_form_type,
    schemas_dir,
)
from node.forms.validate import MAX_FORM_BYTES, form_strings, validate_form

PRESERVATION = get_form_type("preservation")
EXAMPLE = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
SECRET = "Sensitive-Value-4711"


def example() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(EXAMPLE)
    return value


def test_example_is_valid_and_canonical() -> None:
    canonical = validate_form(PRESERVATION, EXAMPLE)
    assert validate_form(PRESERVATION, canonical) == canonical
    indicators = json.loads(canonical)["data_to_preserve"]["indicators"]
    assert {"type": "platform_account", "value": "chirper:orbit_watch_77"} in indicators
    assert all(not i["value"].startswith("sha256:") for i in indicators)


def test_duplicate_indicators_collapse_after_canonicalisation() -> None:
    form = example()
    form["data_to_preserve"]["indicators"] = [
        {"type": "platform_account", "value": "Chirper:@Orbit_Watch_77"},
        {"type": "platform_account", "value": "chirper:orbit_watch_77"},
    ]
    canonical = json.loads(validate_form(PRESERVATION, json.dumps(form).encode()))
    assert len(canonical["data_to_preserve"]["indicators"]) == 1


def mutate(change: Callable[[dict[str, Any]], None]) -> bytes:
    form = example()
    change(form)
    return json.dumps(form).encode()


def _set(path: list[str], value: object = None) -> Callable[[dict[str, Any]], None]:
    def change(form: dict[str, Any]) -> None:
        target = form
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


CASES: dict[str, tuple[bytes, str]] = {
    "missing field": (mutate(lambda f: f.pop("necessity")), "necessity"),
    "wrong enum": (mutate(_set(["legal_basis"], SECRET)), "$.legal_basis"),
    "extra property": (mutate(_set(["victim_name"], SECRET)), "victim_name"),
    "real name instead of pseudonym": (
        mutate(_set(["victim_pseudonyms"], [SECRET])),
        "$.victim_pseudonyms[0]",
    ),
    "attestation missing": (
        mutate(_set(["attestation", "does_not_target_protected_expression"], value=False)),
        "does_not_target_protected_expression",
    ),
    "no follow-up intended": (
        mutate(_set(["follow_up_request_intended"], value=False)),
        "follow_up",
    ),
    "bad date": (mutate(_set(["data_to_preserve", "period", "from"], SECRET)), "date-time"),
    "too long": (mutate(_set(["offence", "summary_of_facts"], SECRET * 300)), "4000"),
    "bad handle": (
        mutate(
            _set(
                ["data_to_preserve", "indicators"],
                [{"type": "platform_account", "value": f"x:{SECRET} with spaces"}],
            )
        ),
        "indicators[0]",
    ),
    "bad url": (
        mutate(
            _set(
                ["data_to_preserve", "indicators"],
                [{"type": "url", "value": f"ftp://{SECRET}.example/"}],
            )
        ),
        "http",
    ),
    "bad hash": (
        mutate(
            _set(["data_to_preserve", "indicators"], [{"type": "content_sha256", "value": SECRET}])
        ),
        "64 hexadecimal",
    ),
    "not json": (f"{{{SECRET}".encode(), "not JSON"),
    "not an object": (json.dumps([SECRET]).encode(), "JSON object"),
    "duplicate key": (b'{"case_reference": "a", "case_reference": "b"}', "twice"),
    "not utf-8": (b'{"x": "\xff"}', "UTF-8"),
    "too large": (b" " * (MAX_FORM_BYTES + 1), "larger than"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refusals_name_the_problem_but_never_the_value(case: str) -> None:
    raw, named = CASES[case]
    with pytest.raises(FormValidationError) as caught:
        validate_form(PRESERVATION, raw)
    assert named in caught.value.message
    assert SECRET not in caught.value.message
    assert SECRET.lower() not in caught.value.message


def test_schema_files_are_valid_and_documented() -> None:
    for form_type in form_types():
        schema = json.loads(form_type.schema_path.read_text())
        Draft202012Validator.check_schema(schema)
        undocumented = [p for p in _properties(schema) if "description" not in p[1]]
        assert undocumented == []


def _properties(schema: dict[str, Any], path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, sub in schema.get("properties", {}).items():
        found.append((f"{path}.{name}", sub))
        found += _properties(sub, f"{path}.{name}")
        if isinstance(sub.get("items"), dict):
            found += _properties(sub["items"], f"{path}.{name}[]")
    return found


def test_registry_lookups() -> None:
    assert form_type_for_payload(PRESERVATION.payload_type) is PRESERVATION
    with pytest.raises(UnknownRequestTypeError, match="preservation"):
        get_form_type("production")
    with pytest.raises(UnknownRequestTypeError):
        form_type_for_payload("text/plain")


def test_form_strings_finds_nested_values() -> None:
    values = form_strings(validate_form(PRESERVATION, EXAMPLE))
    assert "EE-CYB-2026-0417" in values
    assert "chirper:orbit_watch_77" in values
