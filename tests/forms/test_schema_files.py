# SPDX-License-Identifier: Apache-2.0
"""The schema files themselves: valid 2020-12 schemas, closed, documented, with valid examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from node.forms.minimize import minimize
from node.forms.registry import FormType, form_types, schemas_dir
from node.forms.validate import indicator_list, validate_form

TYPES = {t.name: t for t in form_types()}


def load(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def subschemas(schema: dict[str, Any], path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema nested in ``schema`` (properties and array items), with a readable path."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from subschemas(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from subschemas(schema["items"], f"{path}[]")


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, sub in subschemas(schema):
        for name, prop in sub.get("properties", {}).items():
            yield f"{path}.{name}", prop


@pytest.fixture(params=list(TYPES))
def form_type(request: pytest.FixtureRequest) -> FormType:
    return TYPES[request.param]


def test_every_schema_file_is_registered() -> None:
    on_disk = {p.resolve() for p in (schemas_dir() / "requests").glob("*.json")}
    assert on_disk == {t.schema_path.resolve() for t in form_types()}


def test_schema_is_a_valid_draft_2020_12_schema(form_type: FormType) -> None:
    schema = load(form_type.schema_path)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_schema_id_names_its_file(form_type: FormType) -> None:
    schema = load(form_type.schema_path)
    relative = form_type.schema_path.relative_to(schemas_dir()).as_posix()
    assert schema["$id"] == f"https://comity.example/schemas/{relative}"


def test_schema_id_carries_the_version_of_its_form(form_type: FormType) -> None:
    schema = load(form_type.schema_path)
    version = schema["properties"]["form_version"]["const"]
    assert schema["$id"].endswith(f"/{version}.json")
    assert version.removeprefix(f"{form_type.name}.") in form_type.payload_type


def test_every_property_has_a_title_and_a_description(form_type: FormType) -> None:
    schema = load(form_type.schema_path)
    found = list(properties(schema))
    assert len(found) > 20
    undocumented = [
        path for path, prop in found if not (prop.get("title") and prop.get("description"))
    ]
    assert undocumented == []


def test_every_object_is_closed(form_type: FormType) -> None:
    schema = load(form_type.schema_path)
    objects = [(path, s) for path, s in subschemas(schema) if "properties" in s]
    assert len(objects) > 5
    open_objects = [path for path, s in objects if s.get("additionalProperties") is not False]
    assert open_objects == []


def test_every_required_field_is_defined(form_type: FormType) -> None:
    for path, sub in subschemas(load(form_type.schema_path)):
        missing = set(sub.get("required", [])) - set(sub.get("properties", {}))
        assert not missing, path


def test_preservation_requires_all_but_the_optional_fields() -> None:
    schema = load(TYPES["preservation"].schema_path)
    top = set(schema["properties"]) - set(schema["required"])
    assert top == {"victim_pseudonyms", "campaign"}
    assert schema["properties"]["data_to_preserve"]["required"] == [
        "description",
        "data_categories",
        "indicators",
        "relationship_to_offence",
    ]
    assert schema["properties"]["custodian"]["required"] == ["provider"]


def test_example_validates(form_type: FormType) -> None:
    example = schemas_dir() / "examples" / f"{form_type.name}.example.json"
    Draft202012Validator(load(form_type.schema_path)).validate(load(example))
    validate_form(form_type, example.read_bytes())


def test_example_names_no_real_victim(form_type: FormType) -> None:
    example = load(schemas_dir() / "examples" / f"{form_type.name}.example.json")
    assert example.get("victim_pseudonyms", ["V-2026-0142"]) == ["V-2026-0142"]
    found = indicator_list(example)
    assert found is not None
    indicator_hosts = [i["value"] for i in found[1] if i["type"] == "url"]
    assert all(".example." in url.lower() for url in indicator_hosts)


def test_example_is_minimal_for_its_legal_basis(form_type: FormType) -> None:
    example = schemas_dir() / "examples" / f"{form_type.name}.example.json"
    canonical = validate_form(form_type, example.read_bytes())
    minimized = minimize(form_type.name, canonical)
    assert minimized.form_json == canonical
    assert minimized.notes == ()


def test_readme_explains_every_field(form_type: FormType) -> None:
    readme = (schemas_dir() / "README.md").read_text(encoding="utf-8")
    names = {path.rsplit(".", 1)[-1] for path, _ in properties(load(form_type.schema_path))}
    unexplained = sorted(n for n in names if f"`{n}`" not in readme)
    assert unexplained == []
