# SPDX-License-Identifier: Apache-2.0
"""Indicator sets: canonical bytes, owner signatures, and refusals that name the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from nacl.signing import SigningKey

from node.indicators.sets import (
    Indicator,
    IndicatorError,
    IndicatorSet,
    IndicatorSignatureError,
    sign_set,
    verify_set,
)
from node.indicators.tlp import Tlp

SECRET = "zqxjsecret"
KEY = SigningKey.generate()


def a_set(**changes: Any) -> IndicatorSet:
    fields: dict[str, Any] = {
        "set_id": "5d0c1f1e-0f1e-4b7a-9c3d-2e1f0a9b8c7d",
        "owner": "aa-unit",
        "version": 3,
        "tlp": Tlp.AMBER,
        "recipients": ("bb-authority",),
        "clients": {"bb-authority": ("cc-authority",)},
        "indicators": (
            Indicator.of("platform_account", "Chirper:@Orbit_Watch_77", confidence=80),
            Indicator.of("phone", "+372 5123 4567", first_seen_ms=1, last_seen_ms=2),
        ),
        "created_ms": 1_764_000_000_000,
    }
    return IndicatorSet(**{**fields, **changes})


def test_a_set_round_trips_through_its_canonical_bytes() -> None:
    data = a_set().to_bytes()
    assert IndicatorSet.from_bytes(data) == a_set()
    assert json.loads(data)["indicators"][0]["value"] == "chirper:orbit_watch_77"


def test_the_owners_signature_verifies_and_a_stranger_does_not() -> None:
    data = a_set().to_bytes()
    signature = sign_set(data, KEY)
    assert verify_set(data, signature, [bytes(KEY.verify_key)]) == a_set()
    stranger = bytes(SigningKey.generate().verify_key)
    with pytest.raises(IndicatorSignatureError):
        verify_set(data, signature, [stranger])
    with pytest.raises(IndicatorSignatureError):
        verify_set(a_set(version=4).to_bytes(), signature, [bytes(KEY.verify_key)])


Edit = Callable[[dict[str, Any]], None]


def _set(key: str, value: object) -> Edit:
    return lambda document: document.__setitem__(key, value)


def _indicator(key: str, value: object) -> Edit:
    return lambda document: document["indicators"][0].__setitem__(key, value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("extra", 1), "fields must be exactly"),
        (lambda d: d.pop("tlp"), "fields must be exactly"),
        (_set("v", 2), "unknown indicator set format"),
        (_set("tlp", "TLP:WHITE"), "tlp: unknown TLP label"),
        (_set("recipients", []), "names at least one recipient"),
        (_set("recipients", ["bb", "bb"]), "names an agency twice"),
        (_set("version", -1), "version is a non-negative integer"),
        (_set("clients", []), "clients maps"),
        (_set("revoked", "no"), "revoked is true or false"),
        (_indicator("value", f"chirper:@{SECRET}"), r"indicators\[0\]: .*not in canonical form"),
        (_indicator("value", f"{SECRET} x"), r"indicators\[0\]: platform_account"),
        (_indicator("type", "telex"), r"indicators\[0\]: unknown indicator type"),
        (_indicator("confidence", 101), r"indicators\[0\]: confidence"),
        (_indicator("confidence", value=True), r"indicators\[0\]: confidence"),
        (_indicator("expires_ms", "soon"), r"indicators\[0\]\.expires_ms"),
        (lambda d: d["indicators"][0].pop("confidence"), r"indicators\[0\] must have exactly"),
    ],
)
def test_a_bad_set_names_the_field_not_the_value(edit: Edit, message: str) -> None:
    document = json.loads(a_set().to_bytes())
    edit(document)
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(IndicatorError, match=message) as caught:
        IndicatorSet.from_bytes(data)
    assert SECRET not in caught.value.message


def test_non_canonical_json_is_refused() -> None:
    document = json.loads(a_set().to_bytes())
    with pytest.raises(IndicatorError, match="canonical form"):
        IndicatorSet.from_bytes(json.dumps(document, indent=1).encode())


def test_a_revoked_set_needs_no_recipients_nor_indicators() -> None:
    tombstone = a_set(revoked=True, recipients=(), indicators=(), clients={}, version=4)
    assert IndicatorSet.from_bytes(tombstone.to_bytes()).revoked


@pytest.mark.parametrize("tlp", [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER])
def test_pdq_hashes_travel_only_to_named_agencies_and_no_further(tlp: Tlp) -> None:
    pdq = Indicator.of("pdq", "f" * 64)
    with pytest.raises(IndicatorError, match="pdq hashes travel only under"):
        a_set(tlp=tlp, indicators=(pdq,))
    for strict in (Tlp.AMBER_STRICT, Tlp.RED):
        assert a_set(tlp=strict, indicators=(pdq,), clients={}).indicators == (pdq,)
