# SPDX-License-Identifier: Apache-2.0
"""The static members file: every rule, each refusal naming the member and field."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from node.crypto.keys import AgencyKeys
from node.errors import ConfigError
from node.ids import AgencyId
from node.members import StaticDirectory, build_members_file, member_card
from node.tls import certificate_fingerprint, generate_tls_identity


def card(agency: str = "aa-unit", country: str = "EE") -> str:
    certificate, _ = generate_tls_identity(AgencyId(agency))
    return member_card(
        agency_id=agency,
        country=country,
        roles=["requesting"],
        endpoint="127.0.0.1:7401",
        keys=AgencyKeys.generate(),
        tls_certificate=certificate,
    )


def test_members_file_round_trip() -> None:
    text = build_members_file([card("aa-unit"), card("bb-authority", "PT")], version=3)
    directory = StaticDirectory.from_toml(text, source="m")
    assert directory.version == 3
    member = directory.find("bb-authority")
    assert member is not None
    assert member.country == "PT"
    assert member.tls_fingerprint == certificate_fingerprint(member.tls_certificate)
    assert directory.find("zz-nobody") is None
    assert directory.trust_roots().count(b"BEGIN CERTIFICATE") == 2


def edited(change: str, value: Any) -> str:
    document = tomllib.loads(build_members_file([card()]))
    if change == "version":
        document["version"] = value
    else:
        document["member"][0][change] = value
    return tomli_w.dumps(document)


CASES = [
    ("version", 0, "version must be a positive integer"),
    ("agency_id", "Bad Agency", "agency id must be"),
    ("country", "Estonia", "country must be an ISO"),
    ("roles", ["emperor"], "unknown role"),
    ("roles", [], "roles must be a non-empty list"),
    ("endpoint", "no port", "endpoint must be host:port"),
    ("signing_key", "AAAA", "signing_key must decode to 32 bytes"),
    ("encryption_key", "!!", "encryption_key is not valid base64"),
    ("tls_certificate", "not pem", "tls_certificate: not a PEM"),
    ("colour", "red", "unknown key(s) ['colour']"),
]


@pytest.mark.parametrize(("field", "value", "match"), CASES)
def test_invalid_member_is_refused_with_its_field(field: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StaticDirectory.from_toml(edited(field, value), source="members.toml")
    assert match in caught.value.message
    assert "members.toml" in caught.value.message


def test_certificate_of_another_agency_is_refused() -> None:
    other, _ = generate_tls_identity(AgencyId("zz-other"))
    with pytest.raises(ConfigError, match="not issued to aa-unit"):
        StaticDirectory.from_toml(edited("tls_certificate", other.decode()), source="m")


def test_duplicate_agency_is_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        build_members_file([card("aa-unit"), card("aa-unit")])


def test_duplicate_key_is_refused() -> None:
    document = tomllib.loads(build_members_file([card("aa-unit"), card("bb-unit")]))
    document["member"][1]["signing_key"] = document["member"][0]["signing_key"]
    with pytest.raises(ConfigError, match="used twice"):
        StaticDirectory.from_toml(tomli_w.dumps(document), source="m")


def test_empty_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one"):
        StaticDirectory.from_toml("version = 1\n", source="m")
    with pytest.raises(ConfigError, match="cannot read"):
        StaticDirectory.from_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        StaticDirectory.from_toml("version = = 1", source="m")


def test_example_members_file_parses() -> None:
    path = Path(__file__).parents[2] / "ops" / "examples" / "members.toml"
    directory = StaticDirectory.from_file(path)
    assert len(directory.members()) >= 1
