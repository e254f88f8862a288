# SPDX-License-Identifier: Apache-2.0
"""STIX 2.1 bundles: accepted by the official validator, read back, markings respected."""

from __future__ import annotations

import json

import pytest
from stix2validator import ValidationOptions, validate_string

from node.ids import AgencyId
from node.indicators.sets import PERCEPTUAL_LABELS, Indicator, IndicatorError, IndicatorSet
from node.indicators.stix import export_bundle, import_bundle, pattern_of
from node.indicators.tlp import Tlp

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EVERY_TYPE = [
    Indicator.of("platform_account", "Chirper:@Orbit_Watch_77", confidence=80),
    Indicator.of("platform_account", "chirper:id:1893345012"),
    Indicator.of("url", "https://paste.example.org/raw/p/Zx81kQ"),
    Indicator.of("domain", "paste.example.org"),
    Indicator.of("ip", "192.0.2.0/24"),
    Indicator.of("ip", "2001:db8::1"),
    Indicator.of("email", "someone@example.org"),
    Indicator.of("phone", "+372 5123 4567", first_seen_ms=1_764_000_000_000),
    Indicator.of("content_sha256", SHA, expires_ms=1_800_000_000_000),
    Indicator.of("pdq", SHA),
    Indicator.of("campaign_id", "6f1b1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"),
    Indicator.of("url", "https://example.org/it's"),
]


def a_set(tlp: Tlp) -> IndicatorSet:
    """Every type; PDQ hashes only where the label lets them travel."""
    indicators = [i for i in EVERY_TYPE if i.type != "pdq" or tlp in PERCEPTUAL_LABELS]
    return IndicatorSet(
        set_id="5d0c1f1e-0f1e-4b7a-9c3d-2e1f0a9b8c7d",
        owner=AgencyId("aa-unit"),
        version=2,
        tlp=tlp,
        recipients=(AgencyId("bb-authority"),),
        indicators=tuple(indicators),
        created_ms=1_764_000_000_000,
    )


@pytest.mark.parametrize("tlp", list(Tlp))
def test_exported_bundles_pass_the_official_validator(tlp: Tlp) -> None:
    text = export_bundle(a_set(tlp))
    result = validate_string(text, ValidationOptions(version="2.1"))
    assert result.is_valid
    markings = {
        ref for item in json.loads(text)["objects"] for ref in item.get("object_marking_refs", [])
    }
    assert markings == {tlp.marking_definition}


def test_a_bundle_reads_back_to_the_same_indicators() -> None:
    text = export_bundle(a_set(Tlp.AMBER_STRICT))
    back = import_bundle(text, into=Tlp.AMBER_STRICT)
    assert [(i.type, i.value, i.confidence) for i in back] == [
        (i.type, i.value, i.confidence) for i in EVERY_TYPE
    ]
    assert back[8].expires_ms == EVERY_TYPE[8].expires_ms


def test_patterns_alone_are_read_as_other_tools_write_them() -> None:
    text = export_bundle(a_set(Tlp.RED))
    document = json.loads(text)
    for item in document["objects"]:
        item.pop("x_comity_type", None)
        item.pop("x_comity_value", None)
    back = import_bundle(json.dumps(document), into=Tlp.RED)
    assert [(i.type, i.value) for i in back] == [(i.type, i.value) for i in EVERY_TYPE]


def test_an_indicator_marked_stricter_than_the_set_is_refused() -> None:
    text = export_bundle(a_set(Tlp.RED))
    with pytest.raises(IndicatorError, match="marked TLP:RED, stricter than the set's"):
        import_bundle(text, into=Tlp.AMBER_STRICT)
    assert len(import_bundle(text, into=Tlp.RED)) == len(EVERY_TYPE)


def _bundle(pattern: str) -> str:
    return json.dumps(
        {
            "type": "bundle",
            "id": "bundle--0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
            "objects": [
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": "indicator--1b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                    "created": "2026-11-24T00:00:00.000Z",
                    "modified": "2026-11-24T00:00:00.000Z",
                    "pattern": pattern,
                    "pattern_type": "stix",
                    "valid_from": "2026-11-24T00:00:00Z",
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a STIX 2.1 bundle"),
        ('{"type": "indicator"}', "not a STIX 2.1 bundle"),
        (_bundle("[url:value = 'a' OR url:value = 'b']"), "one comparison on a known type"),
        (_bundle("[mutex:name = 'SECRETVALUE']"), "one comparison on a known type"),
        (_bundle("[x-comity-phone:value = '0555SECRETVALUE']"), "phone must be in international"),
    ],
)
def test_what_comity_cannot_read_is_refused_without_the_value(text: str, message: str) -> None:
    with pytest.raises(IndicatorError, match=message) as caught:
        import_bundle(text, into=Tlp.CLEAR)
    assert "SECRETVALUE" not in caught.value.message


def test_quotes_in_values_are_escaped_in_patterns() -> None:
    assert pattern_of("url", "https://example.org/it's") == (
        "[url:value = 'https://example.org/it\\'s']"
    )


def test_an_object_without_a_type_is_refused() -> None:
    """Found by fuzzing (tests/fuzz/corpus/stix/crash-object-without-type): stix2 reads the
    type of every object before checking that it has one."""
    document = json.loads(export_bundle(a_set(Tlp.RED)))
    del document["objects"][1]["type"]
    with pytest.raises(IndicatorError, match=r"not a STIX 2\.1 bundle"):
        import_bundle(json.dumps(document), into=Tlp.RED)
