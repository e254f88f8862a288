# SPDX-License-Identifier: Apache-2.0
"""Canonical forms of indicators, so two agencies name the same thing the same way.

Errors name the indicator type and the rule broken, never the value: indicators identify
people.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from url_normalize import url_normalize

from node.errors import FormValidationError

MAX_URL_CHARS = 2048
_PLATFORM = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_HANDLE = re.compile(r"[a-z0-9._-]{1,64}")
_STABLE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*|[0-9a-f:.]+")


def _platform_account(value: str) -> str:
    """``platform:handle`` or ``platform:id:stable-id``; handles lower-cased without '@'."""
    text = unicodedata.normalize("NFKC", value).strip()
    platform, sep, rest = text.partition(":")
    platform = platform.strip().lower()
    if not sep or not _PLATFORM.fullmatch(platform):
        raise FormValidationError(
            "platform_account must be 'platform:handle' or 'platform:id:stable-id'"
        )
    rest = rest.strip()
    if rest.startswith("id:"):
        stable = rest[3:].strip()
        if not _STABLE_ID.fullmatch(stable):
            raise FormValidationError("platform_account stable id has invalid characters")
        return f"{platform}:id:{stable}"
    handle = rest.removeprefix("@").lower()
    if not _HANDLE.fullmatch(handle):
        raise FormValidationError(
            "platform_account handle must be 1-64 characters of a-z, 0-9, '.', '_', '-'"
        )
    return f"{platform}:{handle}"


def _url(value: str) -> str:
    """RFC 3986 normalisation, http(s) only, no credentials, no fragment."""
    text = value.strip()
    if any(c.isspace() for c in text):
        raise FormValidationError("url must not contain whitespace")
    if len(text) > MAX_URL_CHARS:
        raise FormValidationError(f"url is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url_normalize(text) or "")
    except (ValueError, UnicodeError) as e:
        raise FormValidationError("url cannot be parsed") from e
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch(parts.hostname or ""):
        raise FormValidationError("url must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise FormValidationError("url must not carry credentials")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def _content_sha256(value: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256.fullmatch(digest):
        raise FormValidationError("content_sha256 must be 64 hexadecimal characters")
    return digest


_CANONICALIZERS: dict[str, Callable[[str], str]] = {
    "platform_account": _platform_account,
    "url": _url,
    "content_sha256": _content_sha256,
}

INDICATOR_TYPES = tuple(_CANONICALIZERS)


def canonicalize_indicator(kind: str, value: str) -> str:
    """The canonical form of ``value`` as an indicator of type ``kind``.

    Raises:
        FormValidationError: unknown type, or a value that breaks the type's rules.
    """
    canonicalize = _CANONICALIZERS.get(kind)
    if canonicalize is None:
        raise FormValidationError(f"unknown indicator type {kind!r}")
    return canonicalize(value)
