# SPDX-License-Identifier: Apache-2.0
"""Sighting reports: canonical bytes, their own signing context, strict parsing, and errors
that never carry the value or the note."""

from __future__ import annotations

import json

import pytest
from nacl.signing import SigningKey

from node.errors import FormValidationError
from node.indicators.sets import sign_set
from node.indicators.sightings import (
    MAX_NOTE_CHARS,
    Sighting,
    SightingError,
    SightingKind,
    SightingSignatureError,
    sign_sighting,
    verify_sighting,
)


def a_report(note: str | None = "seen in the replies") -> Sighting:
    return Sighting.new(
        set_id="set-1",
        owner="aa-cyber-unit",
        reporter="bb-central-authority",
        kind=SightingKind.SEEN,
        indicator=("phone", "+372 5123 4567"),
        note=note,
        at_ms=1_700_000_000_000,
    )


def test_a_report_round_trips_through_its_canonical_bytes() -> None:
    report = a_report()
    assert report.value == "+37251234567"
    assert Sighting.from_bytes(report.to_bytes()) == report
    assert a_report(None).note is None
    assert a_report("").note is None


def test_only_the_reporters_key_verifies_and_only_in_its_own_context() -> None:
    key = SigningKey.generate()
    public = [bytes(key.verify_key)]
    report = a_report()
    document = report.to_bytes()
    assert verify_sighting(document, sign_sighting(document, key), public) == report
    with pytest.raises(SightingSignatureError):
        verify_sighting(document, sign_sighting(document, SigningKey.generate()), public)
    # An indicator set's signature over the same bytes is no report signature.
    with pytest.raises(SightingSignatureError):
        verify_sighting(document, sign_set(document, key), public)
    flipped = document.replace(b'"seen"', b'"false_positive"')
    with pytest.raises(SightingSignatureError):
        verify_sighting(flipped, sign_sighting(document, key), public)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d | {"extra": 1}, "fields are exactly"),
        (lambda d: {k: v for k, v in d.items() if k != "note"}, "fields are exactly"),
        (lambda d: d | {"v": 2}, "unknown sighting report format"),
        (lambda d: d | {"kind": "maybe"}, "'seen' or 'false_positive'"),
        (lambda d: d | {"value": "+372 5123 4567"}, "not in canonical form"),
        (lambda d: d | {"note": "x" * (MAX_NOTE_CHARS + 1)}, f"1-{MAX_NOTE_CHARS} characters"),
        (lambda d: d | {"note": 5}, "note is a string"),
        (lambda d: d | {"at_ms": -1}, "at_ms is a non-negative integer"),
        (lambda d: d | {"reporter": ""}, "reporter is a string"),
    ],
)
def test_malformed_reports_are_refused_by_field(change: object, message: str) -> None:
    document = json.loads(a_report().to_bytes())
    assert callable(change)
    data = json.dumps(change(document), sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(SightingError, match=message) as caught:
        Sighting.from_bytes(data)
    assert "5123" not in caught.value.message
    assert "replies" not in caught.value.message


def test_non_canonical_json_is_refused() -> None:
    document = json.loads(a_report().to_bytes())
    with pytest.raises(SightingError, match="canonical form"):
        Sighting.from_bytes(json.dumps(document, indent=1).encode())
    with pytest.raises(SightingError, match="JSON object"):
        Sighting.from_bytes(b"\xff")


def test_kinds_parse_as_typed_on_the_command_line() -> None:
    assert SightingKind.parse("false-positive") is SightingKind.FALSE_POSITIVE
    assert SightingKind.parse("SEEN") is SightingKind.SEEN
    with pytest.raises(SightingError):
        SightingKind.parse("confirmed")


def test_a_bad_value_or_note_is_refused_without_echoing_it() -> None:
    with pytest.raises(FormValidationError) as caught:
        Sighting.new(
            set_id="s",
            owner="o",
            reporter="r",
            kind=SightingKind.SEEN,
            indicator=("phone", "0555 SECRETNUMBER"),
            note=None,
            at_ms=0,
        )
    assert "SECRETNUMBER" not in caught.value.message
    with pytest.raises(SightingError) as too_long:
        a_report("secret " * 100)
    assert "secret" not in too_long.value.message
