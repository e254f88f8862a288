# SPDX-License-Identifier: Apache-2.0
"""The registry of request types and where their schemas are found."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from node.errors import ConfigError, UnknownRequestTypeError
from node.forms.registry import (
    SCHEMAS_ENV,
    FormType,
    alert_type,
    form_type_for_payload,
    form_types,
    get_form_type,
    schemas_dir,
    traits_of,
)
from node.model.request_type import RequestTypeTraits

PRESERVATION_PAYLOAD = "application/vnd.comity.request.preservation.v1+json"
REPO_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_preservation_is_registered_with_its_payload_type_and_schema() -> None:
    preservation = get_form_type("preservation")
    assert preservation.payload_type == PRESERVATION_PAYLOAD
    assert preservation.schema_path == schemas_dir() / "requests" / "preservation.v1.json"
    assert preservation.schema_path.is_file()
    assert "Art. 29" in preservation.title


def test_form_types_have_unique_names_and_payload_types() -> None:
    types = form_types()
    assert [t.name for t in types] == [
        "preservation",
        "traffic-disclosure",
        "subscriber-information",
        "production",
        "emergency-disclosure",
        "campaign-alert",
    ]
    assert len({t.payload_type for t in types}) == len(types)
    assert all(isinstance(t, FormType) for t in types)


def test_lookup_by_payload_type_finds_the_same_type() -> None:
    assert form_type_for_payload(PRESERVATION_PAYLOAD) == get_form_type("preservation")


def test_unknown_request_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownRequestTypeError) as caught:
        get_form_type("search-warrant")
    assert "'search-warrant'" in caught.value.message
    assert "preservation" in caught.value.message
    assert caught.value.code == "unknown_request_type"


def test_unknown_request_type_does_not_repeat_arbitrary_text() -> None:
    with pytest.raises(UnknownRequestTypeError) as caught:
        get_form_type("Jane Doe, 12 Main Street")
    assert "Jane" not in caught.value.message
    assert "preservation" in caught.value.message


def test_unknown_payload_type_is_named_only_when_it_looks_like_a_media_type() -> None:
    with pytest.raises(UnknownRequestTypeError, match="text/plain"):
        form_type_for_payload("text/plain")
    with pytest.raises(UnknownRequestTypeError) as caught:
        form_type_for_payload("Jane Doe lives at 12 Main Street")
    assert "Jane" not in caught.value.message
    assert PRESERVATION_PAYLOAD in caught.value.message


def test_schemas_dir_defaults_to_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCHEMAS_ENV, raising=False)
    assert schemas_dir() == REPO_SCHEMAS


def test_schemas_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The registry of request types is data in the schemas directory too.
    shutil.copytree(REPO_SCHEMAS / "registry", tmp_path / "registry")
    monkeypatch.setenv(SCHEMAS_ENV, str(tmp_path))
    assert schemas_dir() == tmp_path
    assert get_form_type("preservation").schema_path == tmp_path / "requests/preservation.v1.json"


def test_missing_schemas_dir_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SCHEMAS_ENV, str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=SCHEMAS_ENV):
        schemas_dir()
    with pytest.raises(ConfigError):
        get_form_type("preservation")


def test_traits_come_from_the_registry_file() -> None:
    assert traits_of("preservation").preservation_only
    assert traits_of("emergency-disclosure").emergency
    assert traits_of("campaign-alert").alert
    assert alert_type() == "campaign-alert"
    production = traits_of("production")
    assert production == RequestTypeTraits(
        name="production",
        sent_by=frozenset({"requesting", "central_authority", "point_of_contact_24_7"}),
    )


def test_traits_of_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownRequestTypeError, match="known types: preservation"):
        traits_of("search-warrant")


def registry_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: Any) -> None:
    shutil.copytree(REPO_SCHEMAS / "registry", tmp_path / "registry")
    (tmp_path / "registry" / "request-types.v1.json").write_text(json.dumps(document))
    monkeypatch.setenv(SCHEMAS_ENV, str(tmp_path))


def test_a_new_request_type_is_one_entry_in_the_registry_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = json.loads((REPO_SCHEMAS / "registry" / "request-types.v1.json").read_text())
    document["request_types"].append(
        {
            "name": "search",
            "title": "Search and seizure",
            "traits": ["emergency"],
            "sent_by": ["central_authority"],
        }
    )
    registry_in(tmp_path, monkeypatch, document)
    search = get_form_type("search")
    assert search.payload_type == "application/vnd.comity.request.search.v1+json"
    assert search.schema_path == tmp_path / "requests" / "search.v1.json"
    assert traits_of("search").emergency
    assert traits_of("search").sent_by == {"central_authority"}


def entry(name: str, traits: list[str], *, sent_by: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": "A",
        "traits": traits,
        "sent_by": ["requesting"] if sent_by is None else sent_by,
    }


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([entry("a", ["alert"])] * 2, "listed twice"),
        ([entry("a", [])], "exactly one request type"),
        ([entry("a", ["secret"])], "traits/0"),
        ([entry("A b", ["alert"])], "name"),
        ([entry("a", ["alert"], sent_by=["judge"])], "sent_by/0"),
        ([entry("a", ["alert"], sent_by=[])], "sent_by"),
        ([{"name": "a", "title": "A", "traits": ["alert"]}], "'sent_by' is a required"),
    ],
)
def test_a_broken_registry_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entries: list[Any], problem: str
) -> None:
    document = {"registry_version": "request-types.v1", "request_types": entries}
    registry_in(tmp_path, monkeypatch, document)
    with pytest.raises(ConfigError, match=problem):
        form_types()
