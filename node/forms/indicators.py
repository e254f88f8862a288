# SPDX-License-Identifier: Apache-2.0
"""Canonical forms of indicators, so two agencies name the same thing the same way.

Pure functions, no I/O. Canonicalising a canonical value returns it unchanged. Errors name
the indicator type and the rule that was broken, never the value: indicators identify people.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import idna
import phonenumbers
from url_normalize import url_normalize

from node.errors import FormValidationError

PLATFORM_ACCOUNT = "platform_account"
URL = "url"
DOMAIN = "domain"
IP = "ip"
EMAIL = "email"
PHONE = "phone"
CONTENT_SHA256 = "content_sha256"
PDQ = "pdq"
CAMPAIGN_ID = "campaign_id"

MAX_URL_CHARS = 2048

_PLATFORM = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_HANDLE = re.compile(r"[a-z0-9._-]{1,64}")
# Stable ids keep their case: some platforms issue case-sensitive ids.
_STABLE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOCAL_PART = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_DNS_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_ACCOUNT_SHAPE = "platform_account must be 'platform:handle' or 'platform:id:stable-id'"


def _platform_account(value: str) -> str:
    """``platform:handle`` (lower-cased, no '@') or ``platform:id:stable-id``."""
    # NFKC first, so full-width and compatibility forms fold to the ASCII the rules allow.
    text = unicodedata.normalize("NFKC", value)
    platform, sep, rest = text.partition(":")
    platform = platform.strip().lower()
    if not sep:
        raise FormValidationError(_ACCOUNT_SHAPE)
    if not _PLATFORM.fullmatch(platform):
        raise FormValidationError(
            "platform_account platform must be 1-64 characters of a-z, 0-9, '.', '-'"
        )
    kind, id_sep, stable = rest.partition(":")
    if id_sep:
        return f"{platform}:id:{_stable_id(kind, stable)}"
    handle = rest.strip().removeprefix("@").strip().lower()
    if not _HANDLE.fullmatch(handle):
        raise FormValidationError(
            "platform_account handle must be 1-64 characters of a-z, 0-9, '.', '_', '-' "
            "after an optional leading '@'"
        )
    return f"{platform}:{handle}"


def _stable_id(kind: str, stable: str) -> str:
    if kind.strip().lower() != "id":
        raise FormValidationError(_ACCOUNT_SHAPE)
    stable = stable.strip()
    if not _STABLE_ID.fullmatch(stable):
        raise FormValidationError(
            "platform_account stable id must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', '-'"
        )
    return stable


def _url(value: str) -> str:
    """RFC 3986 normalisation; http(s) only, a real host, no credentials, no fragment."""
    text = value.strip()
    _check_url_input(text)
    try:
        parts = urlsplit(url_normalize(text) or "")
        port = parts.port
    except (ValueError, UnicodeError) as e:
        raise FormValidationError("url cannot be parsed as an http or https URL") from e
    if parts.scheme not in ("http", "https") or parts.username is not None:
        raise FormValidationError("url must be an http or https URL without credentials")
    netloc = _canonical_host(parts.hostname or "")
    if port == 0:
        raise FormValidationError("url port must be between 1 and 65535")
    if port is not None:
        netloc += f":{port}"
    canonical = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    if len(canonical) > MAX_URL_CHARS:
        raise FormValidationError(f"url is longer than {MAX_URL_CHARS} characters")
    return canonical


def _check_url_input(text: str) -> None:
    if len(text) > MAX_URL_CHARS:
        raise FormValidationError(f"url is longer than {MAX_URL_CHARS} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise FormValidationError("url must not contain control characters")
    try:
        raw = urlsplit(text)
    except ValueError as e:
        raise FormValidationError("url cannot be parsed as an http or https URL") from e
    # Checked before normalising: url_normalize would invent a scheme for "example.org/x"
    # and silently drop an empty "user@".
    if raw.scheme.lower() not in ("http", "https") or not raw.netloc:
        raise FormValidationError("url must start with http:// or https:// and name a host")
    if "@" in raw.netloc:
        raise FormValidationError("url must not carry credentials (user information)")


def _canonical_host(host: str) -> str:
    """The host as it goes into the URL: a lower-case IDNA name, or a compressed IP address."""
    address = _ip_address(host)
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address is not None:
        # Spelled out because str() of an IPv4-mapped address changed in Python 3.13, and
        # the canonical form must not depend on the interpreter version (RFC 5952 form).
        mapped = address.ipv4_mapped
        return f"[::ffff:{mapped}]" if mapped is not None else f"[{address.compressed}]"
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(map(_DNS_LABEL.fullmatch, labels))
        or labels[-1].isdigit()  # a numeric top-level label is a mistyped IPv4 address
    ):
        raise FormValidationError("url host must be a domain name with a dot, or an IP address")
    return host


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in host:  # IPv6 zone ids only mean something on the machine that wrote them
        raise FormValidationError("url host must not carry an IPv6 zone id")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _content_sha256(value: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256.fullmatch(digest):
        raise FormValidationError(
            "content_sha256 must be 64 hexadecimal characters, optionally prefixed 'sha256:'"
        )
    return digest


def _domain(value: str) -> str:
    """A lower-case IDNA (2008, UTS #46 mapped) domain name with at least one dot."""
    text = value.strip().rstrip(".")
    if not text or len(text) > 253:
        raise FormValidationError("domain must be 1-253 characters")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as e:
        raise FormValidationError("domain is not a valid internationalised domain name") from e
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(map(_DNS_LABEL.fullmatch, labels)) or labels[-1].isdigit():
        raise FormValidationError("domain must be a name with a dot, each label 1-63 characters")
    return ascii_name


def _ip(value: str) -> str:
    """An IPv4 or IPv6 address in its canonical text, or a network in CIDR (host bits
    cleared); a network of one address is that address."""
    text = value.strip()
    if "%" in text:
        raise FormValidationError("ip must not carry an IPv6 zone id")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise FormValidationError("ip must be an IPv4 or IPv6 address or CIDR network") from e
    if network.num_addresses == 1:
        return str(network.network_address)
    return network.with_prefixlen


def _email(value: str) -> str:
    """``local@domain``, lower-cased, the domain IDNA-encoded."""
    text = unicodedata.normalize("NFKC", value.strip()).lower()
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local) or local.startswith(".") or ".." in local:
        raise FormValidationError(
            "email must be local@domain with a local part of 1-64 plain characters"
        )
    try:
        return f"{local}@{_domain(domain)}"
    except FormValidationError as e:
        raise FormValidationError(f"email {e.message}") from e


def _phone(value: str) -> str:
    """E.164: '+', country code and number, as libphonenumber validates it."""
    text = value.strip()
    if not text.startswith("+"):
        raise FormValidationError("phone must be in international form, starting with '+'")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as e:
        raise FormValidationError("phone cannot be parsed as an international number") from e
    if not phonenumbers.is_valid_number(number):
        raise FormValidationError("phone is not a valid number for its country code")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _pdq(value: str) -> str:
    digest = value.strip().lower().removeprefix("pdq:")
    if not _SHA256.fullmatch(digest):
        raise FormValidationError("pdq must be a 256-bit PDQ hash in 64 hexadecimal characters")
    return digest


def _campaign_id(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip().removeprefix("campaign--")))
    except ValueError as e:
        raise FormValidationError("campaign_id must be a UUID") from e


_CANONICALIZERS: dict[str, Callable[[str], str]] = {
    PLATFORM_ACCOUNT: _platform_account,
    URL: _url,
    DOMAIN: _domain,
    IP: _ip,
    EMAIL: _email,
    PHONE: _phone,
    CONTENT_SHA256: _content_sha256,
    PDQ: _pdq,
    CAMPAIGN_ID: _campaign_id,
}

INDICATOR_TYPES: tuple[str, ...] = tuple(_CANONICALIZERS)


def canonicalize_indicator(kind: str, value: str) -> str:
    """The canonical form of ``value`` as an indicator of type ``kind``.

    Args:
        kind: one of :data:`INDICATOR_TYPES`.
        value: the indicator as entered.

    Raises:
        FormValidationError: an unknown type, or a value that breaks the type's rules. The
            message names the type and the rule, never the value.
    """
    canonicalize = _CANONICALIZERS.get(kind)
    if canonicalize is None:
        raise FormValidationError(
            f"unknown indicator type; known types: {', '.join(INDICATOR_TYPES)}"
        )
    return canonicalize(value)
