# SPDX-License-Identifier: Apache-2.0
"""STIX 2.1 bundles of indicator sets, with the TLP 2.0 marking definitions.

Export writes one ``indicator`` per indicator, its STIX pattern over the matching cyber
observable (``url``, ``domain-name``, ``ipv4-addr``/``ipv6-addr``, ``email-addr``,
``user-account``, ``file`` hashes; phone numbers and campaign ids, which STIX has no
observable for, as ``x-comity-phone`` and ``x-comity-campaign``), the set's TLP 2.0 marking,
the owner as ``created_by_ref``, and the canonical type and value as ``x_comity_type`` and
``x_comity_value``. Import reads those back, or the pattern of a single comparison (or, for
accounts, the pair of them) as other tools write it, canonicalises every value, and refuses
an indicator marked with a stricter TLP than the set it goes into. Pure: no I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import stix2
from stix2.exceptions import STIXError

from node.errors import FormValidationError
from node.indicators.sets import Indicator, IndicatorError, IndicatorSet
from node.indicators.tlp import Tlp

IDENTITY_NAMESPACE = uuid.UUID("6c3e9b0c-6d7e-4b8a-9f3c-2a1d4e5f6a7b")
_STRICTNESS = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]
_TLP1 = {
    stix2.TLP_WHITE.id: Tlp.CLEAR,
    stix2.TLP_GREEN.id: Tlp.GREEN,
    stix2.TLP_AMBER.id: Tlp.AMBER,
    stix2.TLP_RED.id: Tlp.RED,
}
_MARKINGS = {t.marking_definition: t for t in Tlp} | _TLP1
_PATHS = {
    "url": "url:value",
    "domain": "domain-name:value",
    "email": "email-addr:value",
    "content_sha256": "file:hashes.'SHA-256'",
    "pdq": "file:hashes.PDQ",
    "phone": "x-comity-phone:value",
    "campaign_id": "x-comity-campaign:campaign_id",
}
_TYPES_BY_PATH = {path: kind for kind, path in _PATHS.items()} | {
    "ipv4-addr:value": "ip",
    "ipv6-addr:value": "ip",
    "file:hashes.SHA256": "content_sha256",
    "file:hashes.'PDQ'": "pdq",
}
_COMPARISON = r"([a-z0-9-]+:[A-Za-z0-9_.'-]+) = '((?:[^'\\]|\\.)*)'"
_ONE = re.compile(rf"\[{_COMPARISON}\]")
_ACCOUNT = re.compile(rf"\[{_COMPARISON} AND {_COMPARISON}\]")


def identity_id(agency: str) -> str:
    return f"identity--{uuid.uuid5(IDENTITY_NAMESPACE, agency)}"


def export_bundle(indicator_set: IndicatorSet) -> str:
    """The set as a serialised STIX 2.1 bundle."""
    owner = stix2.Identity(
        id=identity_id(indicator_set.owner),
        name=indicator_set.owner,
        identity_class="organization",
    )
    marking = [indicator_set.tlp.marking_definition]
    created = _timestamp(indicator_set.created_ms)
    objects: list[Any] = [owner]
    objects.extend(
        stix2.Indicator(
            pattern=pattern_of(indicator.type, indicator.value),
            pattern_type="stix",
            valid_from=_timestamp(indicator.first_seen_ms) or created,
            valid_until=_timestamp(indicator.expires_ms),
            confidence=indicator.confidence,
            created_by_ref=owner.id,
            object_marking_refs=marking,
            x_comity_type=indicator.type,
            x_comity_value=indicator.value,
            allow_custom=True,
        )
        for indicator in indicator_set.indicators
    )
    bundle = stix2.Bundle(*objects, allow_custom=True)
    return str(bundle.serialize(pretty=True))


def pattern_of(kind: str, value: str) -> str:
    """A STIX pattern matching one canonical indicator."""
    if kind == "platform_account":
        platform, _, rest = value.partition(":")
        if rest.startswith("id:"):
            field, name = "user_id", rest.removeprefix("id:")
        else:
            field, name = "account_login", rest
        return (
            f"[user-account:account_type = '{_quote(platform)}' AND "
            f"user-account:{field} = '{_quote(name)}']"
        )
    if kind == "ip":
        path = "ipv6-addr:value" if ":" in value else "ipv4-addr:value"
    else:
        path = _PATHS[kind]
    return f"[{path} = '{_quote(value)}']"


def import_bundle(text: str, *, into: Tlp) -> list[Indicator]:
    """The indicators of a STIX 2.1 bundle, canonical, for a set labelled ``into``.

    Raises:
        IndicatorError: not a STIX bundle, an indicator whose pattern Comity cannot read, a
            value that breaks its type's rules, or a marking stricter than ``into``; the
            message names the object, never the value.
    """
    try:
        bundle = stix2.parse(text, allow_custom=True)
    except (STIXError, ValueError, TypeError, KeyError) as e:
        # KeyError: stix2 reads an object's "type" before checking that it has one.
        raise IndicatorError(f"not a STIX 2.1 bundle: {type(e).__name__}") from e
    if getattr(bundle, "type", None) != "bundle":
        raise IndicatorError("not a STIX 2.1 bundle")
    return list(_indicators(bundle, into))


def _indicators(bundle: Any, into: Tlp) -> Iterator[Indicator]:
    for n, item in enumerate(bundle.get("objects", [])):
        if item.get("type") != "indicator":
            continue
        where = f"object {n} ({item.get('id')})"
        _check_marking(item, into, where)
        kind, value = _typed_value(item, where)
        try:
            yield Indicator.of(
                kind,
                value,
                confidence=item.get("confidence", 50),
                first_seen_ms=_ms(item.get("valid_from")),
                expires_ms=_ms(item.get("valid_until")),
            )
        except FormValidationError as e:
            raise IndicatorError(f"{where}: {e.message}") from e


def _check_marking(item: Any, into: Tlp, where: str) -> None:
    labels = [_MARKINGS[m] for m in item.get("object_marking_refs", []) if m in _MARKINGS]
    for label in labels:
        if _STRICTNESS.index(label) > _STRICTNESS.index(into):
            raise IndicatorError(f"{where} is marked {label.value}, stricter than the set's")


def _typed_value(item: Any, where: str) -> tuple[str, str]:
    kind, value = item.get("x_comity_type"), item.get("x_comity_value")
    if isinstance(kind, str) and isinstance(value, str):
        return kind, value
    pattern = str(item.get("pattern", ""))
    if match := _ONE.fullmatch(pattern):
        path, raw = match.groups()
        if path in _TYPES_BY_PATH:
            return _TYPES_BY_PATH[path], _unquote(raw)
    elif match := _ACCOUNT.fullmatch(pattern):
        fields = {match[1]: _unquote(match[2]), match[3]: _unquote(match[4])}
        platform = fields.get("user-account:account_type")
        if platform is not None and "user-account:user_id" in fields:
            return "platform_account", f"{platform}:id:{fields['user-account:user_id']}"
        if platform is not None and "user-account:account_login" in fields:
            return "platform_account", f"{platform}:{fields['user-account:account_login']}"
    raise IndicatorError(f"{where}: Comity reads patterns of one comparison on a known type")


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _timestamp(instant_ms: int | None) -> datetime | None:
    return None if instant_ms is None else datetime.fromtimestamp(instant_ms / 1000, tz=UTC)


def _ms(value: object) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None
