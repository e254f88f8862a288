# SPDX-License-Identifier: Apache-2.0
"""Validating preservation forms: the example passes; refusals name the path, never the value."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from node.errors import ConfigError, FormValidationError
from node.forms.registry import get_form_type, schemas_dir
from node.forms.validate import MAX_FORM_BYTES, MAX_LISTED_PROBLEMS, form_strings, validate_form

PRESERVATION = get_form_type("preservation")
EXAMPLE = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
SECRET = "ZqxjSecret"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def example() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(EXAMPLE)
    return value


def encode(form: object) -> bytes:
    # ASCII escapes, so a test can smuggle in a lone surrogate as "\ud800".
    return json.dumps(form).encode()


def mutated(change: Callable[[dict[str, Any]], object]) -> bytes:
    form = example()
    change(form)
    return encode(form)


def setting(*path: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(form: dict[str, Any]) -> None:
        target: Any = form
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def indicators(*items: tuple[str, str]) -> Callable[[dict[str, Any]], None]:
    value = [{"type": kind, "value": v} for kind, v in items]
    return setting("data_to_preserve", "indicators", value=value)


def refusal(raw: bytes) -> str:
    with pytest.raises(FormValidationError) as caught:
        validate_form(PRESERVATION, raw)
    assert caught.value.code == "form_invalid"
    return caught.value.message


# --- valid forms -----------------------------------------------------------------------------


def test_example_is_valid_and_comes_back_canonical() -> None:
    canonical = validate_form(PRESERVATION, EXAMPLE)
    form = json.loads(canonical)
    assert (
        canonical
        == json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert form["data_to_preserve"]["indicators"] == [
        {"type": "platform_account", "value": "chirper:orbit_watch_77"},
        {"type": "platform_account", "value": "chirper:quiet.lantern"},
        {"type": "platform_account", "value": "chirper:id:1893345012"},
        {"type": "url", "value": "https://chirper.example.net/orbit_watch_77/status/5550101"},
        {"type": "url", "value": "https://paste.example.org/p/Zx81kQ"},
        {"type": "content_sha256", "value": SHA},
    ]


def test_validating_canonical_bytes_changes_nothing() -> None:
    canonical = validate_form(PRESERVATION, EXAMPLE)
    assert validate_form(PRESERVATION, canonical) == canonical


def test_equal_forms_give_equal_bytes_whatever_their_layout() -> None:
    form = example()
    reordered = dict(reversed(list(form.items())))
    pretty = json.dumps(reordered, indent=4, ensure_ascii=True).encode()
    assert validate_form(PRESERVATION, pretty) == validate_form(PRESERVATION, EXAMPLE)


def test_optional_fields_may_be_left_out() -> None:
    form = example()
    del form["victim_pseudonyms"]
    del form["data_to_preserve"]["period"]
    del form["custodian"]["location_country"]
    assert json.loads(validate_form(PRESERVATION, encode(form)))["custodian"] == {
        "provider": example()["custodian"]["provider"]
    }


def test_indicators_that_are_equal_once_canonical_collapse_to_one() -> None:
    raw = mutated(
        indicators(
            ("platform_account", "Chirper:@Orbit_Watch_77"),
            ("content_sha256", SHA),
            ("platform_account", "chirper:orbit_watch_77"),
            ("content_sha256", "sha256:" + SHA.upper()),
        )
    )
    form = json.loads(validate_form(PRESERVATION, raw))
    assert form["data_to_preserve"]["indicators"] == [
        {"type": "platform_account", "value": "chirper:orbit_watch_77"},
        {"type": "content_sha256", "value": SHA},
    ]


def test_a_handle_and_a_stable_id_with_the_same_text_are_both_kept() -> None:
    raw = mutated(indicators(("platform_account", "x:abc"), ("platform_account", "x:id:abc")))
    form = json.loads(validate_form(PRESERVATION, raw))
    assert len(form["data_to_preserve"]["indicators"]) == 2


def test_an_instant_with_an_offset_is_accepted() -> None:
    raw = mutated(
        setting(
            "data_to_preserve",
            "period",
            value={"from": "2026-03-01t00:00:00.123456789z", "to": "2026-03-01T03:00:00+02:00"},
        )
    )
    validate_form(PRESERVATION, raw)


# --- refusals ----------------------------------------------------------------------------------

REFUSALS: dict[str, tuple[bytes, str]] = {
    "missing top-level field": (mutated(lambda f: f.pop("necessity")), "$: is required: necessity"),
    "missing nested field": (
        mutated(lambda f: f["offence"].pop("summary_of_facts")),
        "$.offence: is required: summary_of_facts",
    ),
    "wrong enum": (
        mutated(setting("legal_basis", value=SECRET)),
        "$.legal_basis: must be one of the allowed values",
    ),
    "wrong enum in an array": (
        mutated(setting("data_to_preserve", "data_categories", 1, value=SECRET)),
        "$.data_to_preserve.data_categories[1]: must be one of the allowed values",
    ),
    "extra property": (
        mutated(setting("victim_name", value=SECRET)),
        "$: additional property 'victim_name' is not allowed",
    ),
    "extra property whose name is not a field name": (
        mutated(setting("conduct", f"{SECRET} lives here", value="x")),
        "$.conduct: additional property (name not shown) is not allowed",
    ),
    "real name instead of a pseudonym": (
        mutated(setting("victim_pseudonyms", value=[f"{SECRET} Doe"])),
        "$.victim_pseudonyms[0]: does not match the pattern",
    ),
    "pseudonym with a trailing newline": (
        mutated(setting("victim_pseudonyms", value=["V-2026-0142\n"])),
        "$.victim_pseudonyms[0]: does not match the pattern",
    ),
    "lower-case country": (
        mutated(setting("requesting_authority", "country", value="ee")),
        "$.requesting_authority.country: does not match the pattern",
    ),
    "bad language tag": (
        mutated(setting("language", value=f"{SECRET} english")),
        "$.language: does not match the pattern",
    ),
    "wrong type": (
        mutated(setting("necessity", value=[SECRET])),
        '$.necessity: must be of type "string"',
    ),
    "attestation withheld": (
        mutated(setting("attestation", "does_not_target_protected_expression", value=False)),
        "$.attestation.does_not_target_protected_expression: must be true",
    ),
    "no follow-up request intended": (
        mutated(setting("follow_up_request_intended", value=False)),
        "$.follow_up_request_intended: must be true",
    ),
    "no data category": (
        mutated(setting("data_to_preserve", "data_categories", value=[])),
        "$.data_to_preserve.data_categories: must have at least 1 item(s)",
    ),
    "repeated data category": (
        mutated(setting("data_to_preserve", "data_categories", value=["content", "content"])),
        "$.data_to_preserve.data_categories: must not contain duplicate items",
    ),
    "too many indicators": (
        mutated(indicators(*[("content_sha256", f"{i:064x}") for i in range(201)])),
        "$.data_to_preserve.indicators: must have at most 200 item(s)",
    ),
    "date without time zone": (
        mutated(setting("data_to_preserve", "period", "from", value="2026-03-01T00:00:00")),
        "$.data_to_preserve.period.from: must be an RFC 3339 date-time",
    ),
    "date only": (
        mutated(setting("data_to_preserve", "period", "to", value="2026-03-01")),
        "$.data_to_preserve.period.to: must be an RFC 3339 date-time",
    ),
    "impossible date": (
        mutated(setting("data_to_preserve", "period", "to", value="2026-02-30T00:00:00Z")),
        "$.data_to_preserve.period.to: must be an RFC 3339 date-time",
    ),
    "period backwards": (
        mutated(
            setting(
                "data_to_preserve",
                "period",
                value={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
            )
        ),
        "$.data_to_preserve.period: 'from' must not be later than 'to'",
    ),
    "too long": (
        mutated(setting("offence", "summary_of_facts", value=SECRET * 401)),
        "$.offence.summary_of_facts: is longer than 4000 characters",
    ),
    "case reference too long": (
        mutated(setting("case_reference", value=SECRET * 7)),
        "$.case_reference: is longer than 64 characters",
    ),
    "bad platform account": (
        mutated(indicators(("platform_account", f"x:{SECRET} with spaces"))),
        "$.data_to_preserve.indicators[0].value: platform_account handle",
    ),
    "bad url": (
        mutated(indicators(("content_sha256", SHA), ("url", f"ftp://{SECRET}.example/"))),
        "$.data_to_preserve.indicators[1].value: url must start with http",
    ),
    "url with credentials": (
        mutated(indicators(("url", f"https://{SECRET}:hunter2@example.org/"))),
        "$.data_to_preserve.indicators[0].value: url must not carry credentials",
    ),
    "bad content hash": (
        mutated(indicators(("content_sha256", SECRET))),
        "$.data_to_preserve.indicators[0].value: content_sha256 must be 64 hexadecimal",
    ),
    "unknown indicator type": (
        mutated(indicators(("phone", SECRET))),
        "$.data_to_preserve.indicators[0].type: must be one of the allowed values",
    ),
    "not json": (f"{{{SECRET}".encode(), "$: form is not JSON (line 1, column 2)"),
    "NaN": (f'{{"{SECRET}": NaN}}'.encode(), "$: form contains NaN"),
    "not an object": (encode([SECRET]), "$: form must be a JSON object"),
    "duplicate key": (
        f'{{"case_reference": "{SECRET}", "case_reference": "b"}}'.encode(),
        "$: duplicate key 'case_reference'",
    ),
    "nested duplicate key": (
        EXAMPLE.replace(b'"unit":', f'"name": "{SECRET}", "unit":'.encode()),
        "$.requesting_authority: duplicate key 'name'",
    ),
    "not utf-8": (f'{{"x": "{SECRET}\xff"}}'.encode("latin-1"), "$: form is not valid UTF-8"),
    "lone surrogate": (
        mutated(setting("necessity", value=f"{SECRET} and then some \ud800")),
        "$.necessity: contains an unpaired UTF-16 surrogate escape",
    ),
    "nested too deeply": (b"[" * 100_000 + SECRET.encode(), "$: form is nested too deeply"),
    "too large": (
        mutated(setting("necessity", value=SECRET * (MAX_FORM_BYTES // len(SECRET)))),
        "$: form is larger than 256 KiB",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_name_the_path_and_rule_but_never_the_value(case: str) -> None:
    raw, expected = REFUSALS[case]
    message = refusal(raw)
    assert message.startswith("preservation form is invalid: ")
    assert expected in message
    assert SECRET.lower() not in message.lower()
    assert "hunter2" not in message


def test_every_problem_is_reported_at_once() -> None:
    form = example()
    del form["necessity"]
    form["legal_basis"] = SECRET
    form["data_to_preserve"]["indicators"][0]["value"] = f"x:{SECRET} y"
    form["data_to_preserve"]["indicators"][3]["value"] = f"gopher://{SECRET}.example/"
    message = refusal(encode(form))
    assert "$: is required: necessity" in message
    assert "$.legal_basis: must be one of the allowed values" in message
    assert "$.data_to_preserve.indicators[0].value:" in message
    assert "$.data_to_preserve.indicators[3].value:" in message
    assert SECRET.lower() not in message.lower()


def test_a_flood_of_problems_is_summarised() -> None:
    bad = [("content_sha256", f"{SECRET}{i}") for i in range(120)]
    message = refusal(mutated(indicators(*bad)))
    assert message.count("content_sha256 must be 64 hexadecimal") == MAX_LISTED_PROBLEMS
    assert "and 70 more problem(s)" in message


def test_a_missing_schema_file_is_a_config_error(tmp_path: Path) -> None:
    broken = replace(PRESERVATION, schema_path=tmp_path / "absent.json")
    with pytest.raises(ConfigError, match=r"absent\.json"):
        validate_form(broken, EXAMPLE)


def test_an_invalid_schema_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"type": 12}')
    with pytest.raises(ConfigError, match=r"broken\.json"):
        validate_form(replace(PRESERVATION, schema_path=path), EXAMPLE)


# --- form_strings ------------------------------------------------------------------------------


def test_form_strings_lists_every_string_value_and_no_key() -> None:
    canonical = validate_form(PRESERVATION, EXAMPLE)
    values = form_strings(canonical)
    assert "EE-CYB-2026-0417" in values
    assert "chirper:orbit_watch_77" in values
    assert "V-2026-0142" in values
    assert "Penal Code § 120 (threat)" in values
    assert "case_reference" not in values
    assert "summary_of_facts" not in values
    assert set(values) == set(_all_strings(json.loads(canonical)))


def test_form_strings_in_document_order() -> None:
    assert form_strings(b'{"a":"1","b":["2",{"c":"3"}],"d":4,"e":true,"f":"5"}') == [
        "1",
        "2",
        "3",
        "5",
    ]


def _all_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return []


def test_an_integer_of_thousands_of_digits_is_refused_not_a_crash() -> None:
    """Issue 13 point 10 (tests/fuzz/corpus/form/crash-5000-digit-integer): Python's
    4,300-digit limit on int() escaped as a bare ValueError."""
    raw = EXAMPLE.replace(b'"follow_up_request_intended": true', b'"x": 1' + b"0" * 4999)
    with pytest.raises(FormValidationError, match="integer of more than 20 digits"):
        validate_form(PRESERVATION, raw)
