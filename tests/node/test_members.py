# SPDX-License-Identifier: Apache-2.0
"""The member card an agency hands to the secretariat: every rule, each refusal naming its field."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import tomli_w

from node.crypto.keys import AgencyKeys
from node.errors import ConfigError
from node.ids import AgencyId
from node.members import member_card, read_member_card
from node.tls import generate_tls_identity
from tests.fuzz.campaign import CORPUS


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


def test_member_card_round_trip() -> None:
    parsed = read_member_card(card("bb-authority", "PT"))
    assert parsed.agency_id == "bb-authority"
    assert parsed.country == "PT"
    assert parsed.roles == {"requesting"}
    assert len(parsed.signing_key) == 32


def edited(change: str, value: Any) -> str:
    document = tomllib.loads(card())
    document["member"][0][change] = value
    return tomli_w.dumps(document)


CASES = [
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
def test_invalid_card_is_refused_with_its_field(field: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_member_card(edited(field, value), source="member.toml")
    assert match in caught.value.message
    assert "member.toml" in caught.value.message


def test_certificate_of_another_agency_is_refused() -> None:
    other, _ = generate_tls_identity(AgencyId("zz-other"))
    with pytest.raises(ConfigError, match="not issued to aa-unit"):
        read_member_card(edited("tls_certificate", other.decode()))


def test_card_must_hold_one_member() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        read_member_card("version = 1\n")
    with pytest.raises(ConfigError, match="exactly one"):
        read_member_card(card() + card())
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_member_card("version = = 1")


def test_a_number_of_thousands_of_digits_is_refused() -> None:
    """Found by fuzzing: tests/fuzz/corpus/member_card/crash-5000-digit-integer."""
    with pytest.raises(ConfigError, match="a number is too long"):
        read_member_card("[[member]]\nx = 1" + "0" * 4999)


def test_a_certificate_with_an_invalid_version_is_refused() -> None:
    """Found by fuzzing: cryptography's InvalidVersion is not a ValueError."""
    text = (CORPUS / "member_card" / "crash-invalid-x509-version").read_text()
    with pytest.raises(ConfigError, match=r"not a PEM X\.509 certificate"):
        read_member_card(text)


def test_a_certificate_whose_subject_breaks_x509_rules_is_refused() -> None:
    """Found by fuzzing: a bit-string attribute under another OID raised a bare TypeError."""
    text = (CORPUS / "member_card" / "crash-subject-attribute-type").read_text()
    with pytest.raises(ConfigError, match=r"certificate subject is not a valid X\.509 name"):
        read_member_card(text)


def test_a_certificate_whose_subject_alt_name_breaks_x509_rules_is_refused() -> None:
    """Found by fuzzing: a DNS name that is not IA5 text raised a bare ValueError when the
    extensions were first read, after the subject had been checked."""
    text = (CORPUS / "member_card" / "crash-subject-alt-name-does-not-parse").read_text()
    with pytest.raises(ConfigError, match=r"tls_certificate: does not parse as X\.509"):
        read_member_card(text)


def test_a_certificate_with_a_duplicate_extension_is_refused() -> None:
    """Found by fuzzing: cryptography's DuplicateExtension is not a ValueError either."""
    text = (CORPUS / "member_card" / "crash-duplicate-extension").read_text()
    with pytest.raises(ConfigError, match=r"tls_certificate: does not parse as X\.509"):
        read_member_card(text)
