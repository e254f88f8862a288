# SPDX-License-Identifier: Apache-2.0
"""The registry of request types and where their schemas are found."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.errors import ConfigError, UnknownRequestTypeError
from node.forms.registry import (
    SCHEMAS_ENV,
    FormType,
    form_type_for_payload,
    form_types,
    get_form_type,
    schemas_dir,
)

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
