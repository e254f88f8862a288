# SPDX-License-Identifier: Apache-2.0
"""Parsing a directory: every ambiguity refused with the rule it breaks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import DirectoryError
from node.federation import ceremony
from node.federation.document import parse_directory
from tests.federation.build import NOW_MS, card, root_keys
from tests.fuzz.campaign import CORPUS

ROOTS = root_keys(3)


def document() -> dict[str, Any]:
    signed = ceremony.signed_directory(
        [card("aa-unit"), card("bb-authority", "PT")],
        root_keys=ROOTS,
        threshold=2,
        now_ms=NOW_MS,
    )
    return json.loads(signed.to_json())  # type: ignore[no-any-return]


def test_round_trip_keeps_content_and_signatures() -> None:
    data = json.dumps(document()).encode()
    parsed = parse_directory(data)
    assert parsed.version == 1
    assert [m.agency_id for m in parsed.body.members] == ["aa-unit", "bb-authority"]
    assert len(parsed.signatures) == 3
    again = parse_directory(parsed.to_json())
    assert again.signed_bytes() == parsed.signed_bytes()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _copy(source: str, target: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        value: Any = doc
        for part in source.split("."):
            value = value[int(part)] if part.isdigit() else value[part]
        _set(target, value)(doc)

    return change


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top-level field", _set("extra", 1), "unknown-field"),
    ("unknown field in signed", _set("signed.note", "x"), "unknown-field"),
    ("unknown member field", _set("signed.members.0.admin", "yes"), "unknown-field"),
    ("unknown key field", _set("signed.members.0.keys.0.trusted", "yes"), "unknown-field"),
    ("wrong type tag", _set("signed.type", "comity.directory.v2"), "malformed"),
    ("version zero", _set("signed.version", 0), "malformed"),
    ("version as text", _set("signed.version", "2"), "malformed"),
    ("threshold zero", _set("signed.roots.threshold", 0), "malformed"),
    ("threshold above keys", _set("signed.roots.threshold", 4), "bad-threshold"),
    ("root key twice", _copy("signed.roots.keys.0", "signed.roots.keys.1"), "duplicate-root-key"),
    ("member twice", _copy("signed.members.0", "signed.members.1"), "duplicate-member"),
    (
        "key shared by two members",
        _copy("signed.members.0.keys.0", "signed.members.1.keys.0"),
        "duplicate-member-key",
    ),
    ("signature twice", _copy("signatures.0", "signatures.1"), "duplicate-signature"),
    ("bad instant", _set("signed.expires", "tomorrow"), "malformed"),
    ("impossible date", _set("signed.expires", "2027-02-30T00:00:00Z"), "malformed"),
    ("expires before issued", _set("signed.expires", "2000-01-01T00:00:00Z"), "bad-validity"),
    (
        "key valid_until before valid_from",
        _set("signed.members.0.keys.0.valid_until", "2000-01-01T00:00:00Z"),
        "bad-validity",
    ),
    (
        "member without a witness key",
        lambda d: d["signed"]["members"][0]["keys"].__setitem__(
            3, {**d["signed"]["members"][0]["keys"][0], "public_key": "A" * 43 + "="}
        ),
        "missing-key",
    ),
    ("unknown role", _set("signed.members.0.roles", ["emperor"]), "malformed"),
    ("bad key encoding", _set("signed.roots.keys.0", "AAAA"), "malformed"),
    (
        "certificate of another agency",
        _copy("signed.members.1.tls_certificate", "signed.members.0.tls_certificate"),
        "malformed",
    ),
]


@pytest.mark.parametrize(("name", "change", "rule"), CASES, ids=[c[0] for c in CASES])
def test_parse_refuses(name: str, change: Callable[[dict[str, Any]], None], rule: str) -> None:
    del name
    doc = document()
    change(doc)
    with pytest.raises(DirectoryError) as caught:
        parse_directory(json.dumps(doc).encode())
    assert caught.value.rule == rule


def test_duplicate_json_key_is_refused() -> None:
    text = json.dumps(document())
    doubled = text.replace('"version": 1', '"version": 1, "version": 9', 1)
    with pytest.raises(DirectoryError) as caught:
        parse_directory(doubled.encode())
    assert caught.value.rule == "duplicate-json-key"


@pytest.mark.parametrize(
    "data", [b"", b"\xff\xfe", b"[]", b"null", b'{"signed": NaN}', b'{"signed": 1.5}']
)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(data)
    assert caught.value.rule == "malformed"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_bytes_never_crash(data: st.DataObject) -> None:
    raw = bytearray(json.dumps(document()).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    try:
        parsed = parse_directory(bytes(raw))
    except DirectoryError:
        return
    assert parsed.version >= 1


def test_an_integer_of_thousands_of_digits_is_malformed() -> None:
    """Found by fuzzing: tests/fuzz/corpus/directory/crash-5000-digit-integer."""
    data = json.dumps(document()).replace('"version": 1', '"version": 1' + "0" * 4999, 1)
    with pytest.raises(DirectoryError, match="more than 20 digits"):
        parse_directory(data.encode())


def test_a_certificate_whose_subject_does_not_parse_is_malformed() -> None:
    """Found by fuzzing: the certificate loads, its subject fails only when first read."""
    data = (CORPUS / "directory" / "crash-certificate-subject-does-not-parse").read_bytes()
    with pytest.raises(DirectoryError, match=r"certificate subject is not a valid X\.509 name"):
        parse_directory(data)
