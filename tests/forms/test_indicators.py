# SPDX-License-Identifier: Apache-2.0
"""Canonical forms of indicators."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import FormValidationError
from node.forms.indicators import canonicalize_indicator

CANONICAL = [
    ("platform_account", "Chirper:@Some_Handle", "chirper:some_handle"),
    ("platform_account", " chirper : @x.y-z ", "chirper:x.y-z"),
    ("platform_account", "Chirper:id:AbC123", "chirper:id:AbC123"),
    ("platform_account", "ｃｈｉｒｐｅｒ:ｈａｎｄｌｅ", "chirper:handle"),  # noqa: RUF001 (NFKC folds it)
    ("url", "HTTPS://Example.ORG:443/a/../b#frag", "https://example.org/b"),
    ("url", "http://example.org", "http://example.org/"),
    ("url", "http://bücher.example/p", "http://xn--bcher-kva.example/p"),
    ("url", "https://example.org:8443/x?q=1", "https://example.org:8443/x?q=1"),
    ("content_sha256", "sha256:" + "AB" * 32, "ab" * 32),
]


@pytest.mark.parametrize(("kind", "value", "expected"), CANONICAL)
def test_canonical_forms(kind: str, value: str, expected: str) -> None:
    assert canonicalize_indicator(kind, value) == expected
    assert canonicalize_indicator(kind, expected) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("platform_account", "no-platform"),
        ("platform_account", "chirper:"),
        ("platform_account", "chirper:has space"),
        ("url", "ftp://example.org/"),
        ("url", "https://user:pw@example.org/"),
        ("url", "not a url"),
        ("url", "https://example.org/" + "a" * 2100),
        ("content_sha256", "abc"),
        ("phone", "+3725551234"),
    ],
)
def test_refused_values(kind: str, value: str) -> None:
    with pytest.raises(FormValidationError):
        canonicalize_indicator(kind, value)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    st.from_regex(r"@?[A-Za-z0-9._-]{1,30}", fullmatch=True),
)
def test_platform_account_canonicalisation_is_idempotent(platform: str, handle: str) -> None:
    once = canonicalize_indicator("platform_account", f"{platform}:{handle}")
    assert canonicalize_indicator("platform_account", once) == once


@given(st.binary(min_size=32, max_size=32))
def test_sha256_canonicalisation_is_idempotent(digest: bytes) -> None:
    once = canonicalize_indicator("content_sha256", digest.hex().upper())
    assert once == digest.hex()
    assert canonicalize_indicator("content_sha256", once) == once
