# SPDX-License-Identifier: Apache-2.0
"""Canonical forms of indicators: tables, refusals that never repeat the value, idempotence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import FormValidationError
from node.forms.indicators import INDICATOR_TYPES, MAX_URL_CHARS, canonicalize_indicator

SECRET = "ZqxjSecret"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

CANONICAL = {
    "handle with @ and capitals": ("platform_account", "X:@Some_Handle", "x:some_handle"),
    "surrounding whitespace": ("platform_account", " chirper : @ x.y-z ", "chirper:x.y-z"),
    "platform is lower-cased": (
        "platform_account",
        "Chirper.Example:handle",
        "chirper.example:handle",
    ),
    "stable id keeps its case": ("platform_account", "Chirper:ID: AbC123 ", "chirper:id:AbC123"),
    "full-width folds by NFKC": (
        "platform_account",
        "\uff43\uff48\uff49\uff52\uff50\uff45\uff52:\uff20\uff28\uff41\uff4e\uff44\uff4c\uff45",
        "chirper:handle",
    ),
    "default port, dot segments, fragment": (
        "url",
        "HTTPS://Example.ORG:443/a/../b#frag",
        "https://example.org/b",
    ),
    "empty path becomes /": ("url", "http://example.org", "http://example.org/"),
    "IDNA host": ("url", "http://b\u00fccher.example/p", "http://xn--bcher-kva.example/p"),
    "other ports are kept": (
        "url",
        "https://example.org:8443/x?q=1",
        "https://example.org:8443/x?q=1",
    ),
    "trailing dot of the host": ("url", "https://Example.org./", "https://example.org/"),
    "unreserved escapes decoded": (
        "url",
        "https://example.org/%7Euser/%41",
        "https://example.org/~user/A",
    ),
    "escapes upper-cased": (
        "url",
        "https://example.org/%e2%82%ac",
        "https://example.org/%E2%82%AC",
    ),
    "non-ASCII path encoded": (
        "url",
        "https://example.org/\u20ac",
        "https://example.org/%E2%82%AC",
    ),
    "IPv4 host, default port": ("url", "http://192.0.2.7:80/x", "http://192.0.2.7/x"),
    "IPv6 host compressed": ("url", "http://[2001:DB8:0:0::1]:8080/", "http://[2001:db8::1]:8080/"),
    "IPv4-mapped IPv6": ("url", "http://[::FFFF:192.0.2.7]/", "http://[::ffff:192.0.2.7]/"),
    "uppercase sha256": ("content_sha256", SHA.upper(), SHA),
    "sha256: prefix": ("content_sha256", "SHA256:" + SHA.upper(), SHA),
    "sha256 whitespace": ("content_sha256", f"  {SHA}\n", SHA),
    "domain lower-cased, trailing dot": ("domain", " Paste.Example.ORG. ", "paste.example.org"),
    "IDNA domain": ("domain", "B\u00fccher.Example", "xn--bcher-kva.example"),
    "IPv4 address": ("ip", " 192.0.2.7 ", "192.0.2.7"),
    "IPv6 compressed": ("ip", "2001:DB8:0:0::1", "2001:db8::1"),
    "network host bits cleared": ("ip", "192.0.2.77/24", "192.0.2.0/24"),
    "network of one address": ("ip", "2001:db8::1/128", "2001:db8::1"),
    "email lower-cased": ("email", " Someone.Else@Example.ORG ", "someone.else@example.org"),
    "email IDNA domain": ("email", "a@b\u00fccher.example", "a@xn--bcher-kva.example"),
    "phone to E.164": ("phone", "+372 5123 4567", "+37251234567"),
    "phone with punctuation": ("phone", "+44 (20) 7946-0958", "+442079460958"),
    "pdq upper-case with prefix": ("pdq", "PDQ:" + SHA.upper(), SHA),
    "campaign id": (
        "campaign_id",
        "campaign--6F1B1E2A-3C4D-4E5F-8A9B-0C1D2E3F4A5B",
        "6f1b1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    ),
}


@pytest.mark.parametrize("case", list(CANONICAL))
def test_canonical_forms(case: str) -> None:
    kind, value, expected = CANONICAL[case]
    assert canonicalize_indicator(kind, value) == expected
    assert canonicalize_indicator(kind, expected) == expected


REFUSED = {
    "account without platform": ("platform_account", f"{SECRET}", "platform:handle"),
    "account with empty handle": ("platform_account", "chirper:", "handle"),
    "account with a space": ("platform_account", f"chirper:{SECRET} x", "handle"),
    "account with a bad platform": ("platform_account", f"chi rper{SECRET}:x", "platform"),
    "account with a fediverse address": (
        "platform_account",
        f"chirper:@{SECRET}@a.example",
        "handle",
    ),
    "account with an unknown sub-kind": (
        "platform_account",
        f"chirper:uid:{SECRET}",
        "platform:id",
    ),
    "account with a bad stable id": ("platform_account", f"chirper:id:{SECRET}/1", "stable id"),
    "handle too long": ("platform_account", "chirper:" + SECRET * 7, "1-64"),
    "ftp url": ("url", f"ftp://{SECRET}.example/", "http"),
    "javascript url": ("url", f"javascript:alert('{SECRET}')", "http"),
    "url without scheme": ("url", f"{SECRET}.example.org/x", "http"),
    "url with credentials": ("url", f"https://{SECRET}:pw@example.org/", "credentials"),
    "url with empty user": ("url", f"https://@{SECRET}.example.org/", "credentials"),
    "url without host": ("url", f"http:///{SECRET}", "host"),
    "url host with a space": ("url", f"https://{SECRET} x.example/", "host"),
    "url host without a dot": ("url", f"https://{SECRET}/", "domain name"),
    "url host like a bad IPv4": ("url", f"https://01.2.3.4/{SECRET}", "domain name"),
    "url with a bad port": ("url", f"https://example.org:99999/{SECRET}", "parsed"),
    "url with port 0": ("url", f"https://example.org:0/{SECRET}", "port"),
    "url with a zone id": ("url", f"http://[fe80::1%25{SECRET}]/", "zone"),
    "url with a control character": ("url", f"https://example.org/{SECRET}\x00", "control"),
    "url too long": ("url", f"https://example.org/{SECRET}" + "a" * MAX_URL_CHARS, "2048"),
    "url too long once encoded": ("url", "https://example.org/" + "\u20ac" * 700, "2048"),
    "short sha256": ("content_sha256", SECRET, "64 hexadecimal"),
    "sha256 with non-hex": ("content_sha256", SHA[:-10] + SECRET, "64 hexadecimal"),
    "sha256 with other prefix": ("content_sha256", "md5:" + SHA, "64 hexadecimal"),
    "domain without a dot": ("domain", SECRET, "with a dot"),
    "domain with a space": ("domain", f"{SECRET} x.example", "domain"),
    "ip that is not one": ("ip", f"10.0.0.{SECRET}", "IPv4 or IPv6"),
    "ip with a zone id": ("ip", f"fe80::1%{SECRET}", "zone"),
    "email without @": ("email", f"{SECRET}.example.org", "local@domain"),
    "email with a bad domain": ("email", f"x@{SECRET}", "with a dot"),
    "phone without +": ("phone", f"0555{SECRET}", "international form"),
    "phone not a number": ("phone", f"+{SECRET}", "parsed"),
    "phone invalid for its country": ("phone", "+1 555 0100 99", "not a valid number"),
    "pdq too short": ("pdq", SECRET, "64 hexadecimal"),
    "campaign id not a uuid": ("campaign_id", SECRET, "UUID"),
    "unknown type": ("telex", f"+372555{SECRET}", "known types"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refusals_name_the_rule_but_not_the_value(case: str) -> None:
    kind, value, rule = REFUSED[case]
    with pytest.raises(FormValidationError) as caught:
        canonicalize_indicator(kind, value)
    message = caught.value.message
    assert rule in message
    assert SECRET.lower() not in message.lower()
    assert kind in message or kind not in INDICATOR_TYPES


PLATFORMS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.-]{0,20}", fullmatch=True)
HANDLES = st.from_regex(r"@?[A-Za-z0-9._-]{1,64}", fullmatch=True)
SPACE = st.sampled_from(["", " ", "\t", "  "])


@given(PLATFORMS, HANDLES, SPACE, SPACE)
def test_platform_handles_canonicalise_idempotently(
    platform: str, handle: str, before: str, after: str
) -> None:
    once = canonicalize_indicator("platform_account", f"{before}{platform}:{handle}{after}")
    assert once == f"{platform.lower()}:{handle.removeprefix('@').lower()}"
    assert canonicalize_indicator("platform_account", once) == once


@given(PLATFORMS, st.from_regex(r"[A-Za-z0-9._-]{1,128}", fullmatch=True))
def test_platform_ids_canonicalise_idempotently(platform: str, stable: str) -> None:
    once = canonicalize_indicator("platform_account", f"{platform}:id:{stable}")
    assert once == f"{platform.lower()}:id:{stable}"
    assert canonicalize_indicator("platform_account", once) == once


@given(st.binary(min_size=32, max_size=32), st.booleans(), st.booleans())
def test_sha256_canonicalises_idempotently(digest: bytes, upper: bool, prefix: bool) -> None:
    text = digest.hex().upper() if upper else digest.hex()
    once = canonicalize_indicator("content_sha256", f"sha256:{text}" if prefix else text)
    assert once == digest.hex()
    assert canonicalize_indicator("content_sha256", once) == once


URL_PARTS = st.text(alphabet="aZ09-._~%/?=&+:@!$'()*,; \u00e9\u20ac", max_size=30)


@given(
    st.sampled_from(["http", "HTTPS", "hTtP"]),
    st.lists(st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True), min_size=2, max_size=4),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    URL_PARTS,
    URL_PARTS,
)
def test_urls_canonicalise_idempotently(
    scheme: str, labels: list[str], port: str, path: str, query: str
) -> None:
    if labels[-1].isdigit():
        labels[-1] += "x"
    url = f"{scheme}://{'.'.join(labels)}{port}/{path.replace('?', '')}?{query}#fragment"
    once = canonicalize_indicator("url", url)
    assert "#" not in once
    assert once.startswith(("http://", "https://"))
    assert canonicalize_indicator("url", once) == once


@given(st.sampled_from(INDICATOR_TYPES), st.text(max_size=80), st.text(max_size=80))
def test_any_text_is_refused_cleanly_or_canonicalised_idempotently(
    kind: str, before: str, after: str
) -> None:
    value = f"{before}{SECRET}{after}"
    try:
        once = canonicalize_indicator(kind, value)
    except FormValidationError as e:
        message = e.message
    else:
        assert canonicalize_indicator(kind, once) == once
        return
    assert SECRET.lower() not in message.lower()
