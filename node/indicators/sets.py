# SPDX-License-Identifier: Apache-2.0
"""Indicator sets: canonical, versioned, signed by the agency that owns them.

A set is canonical JSON (sorted keys, no insignificant whitespace, version tag ``v``) holding
its owner, a version that grows with every change, its TLP 2.0 label, the agencies it names
(and, under AMBER, the clients each of them may pass it to) and its indicators, every value in
canonical form. The owner signs ``"comity/indicator-set/v1\\n" || document`` with its message
signing key, so the set keeps its provenance however many hands it passes through. A revoked
set is a tombstone: a newer version with no indicators. Errors name the field and the rule,
never an indicator's value. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from node.errors import ComityError, ErrorKind, FormValidationError
from node.forms.indicators import canonicalize_indicator
from node.ids import AgencyId
from node.indicators.tlp import NAMED, Tlp, TlpError, check_share

PERCEPTUAL_LABELS = (Tlp.AMBER_STRICT, Tlp.RED)
SET_FORMAT = 1
SIGNING_CONTEXT = b"comity/indicator-set/v1\n"
MAX_INDICATORS = 100_000
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
_FIELDS = {"v", "set_id", "owner", "version", "tlp", "recipients", "clients", "revoked"} | {
    "created_ms",
    "indicators",
}
_INDICATOR_FIELDS = {"type", "value", "confidence", "first_seen_ms", "last_seen_ms", "expires_ms"}


class IndicatorError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_indicator_set"


class IndicatorSignatureError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_indicator_signature"


@dataclass(frozen=True, kw_only=True)
class Indicator:
    type: str
    value: str
    """Canonical form (node.forms.indicators)."""
    confidence: int = 50
    """0-100, the owner's confidence that the indicator belongs to the abuse."""
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    expires_ms: int | None = None

    def __post_init__(self) -> None:
        confidence = self.confidence
        if not isinstance(confidence, int) or isinstance(confidence, bool):
            raise IndicatorError(f"{self.type}: confidence is an integer from 0 to 100")
        if not 0 <= confidence <= 100:
            raise IndicatorError(f"{self.type}: confidence is an integer from 0 to 100")
        for name in ("first_seen_ms", "last_seen_ms", "expires_ms"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise IndicatorError(f"{self.type}: {name} is a non-negative integer")

    @classmethod
    def of(cls, kind: str, value: str, **details: Any) -> Indicator:
        """An indicator from a value as entered, canonicalised.

        Raises:
            FormValidationError: the type is unknown or the value breaks its rules.
        """
        return cls(type=kind, value=canonicalize_indicator(kind, value), **details)


@dataclass(frozen=True, kw_only=True)
class IndicatorSet:
    set_id: str
    owner: AgencyId
    version: int
    tlp: Tlp
    recipients: tuple[AgencyId, ...] = ()
    clients: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    indicators: tuple[Indicator, ...] = ()
    revoked: bool = False
    created_ms: int = 0

    def __post_init__(self) -> None:
        # Perceptual hashes can be partly inverted into the image (of a doxxing or intimate
        # photo): they travel only to named agencies, no further.
        if self.tlp not in PERCEPTUAL_LABELS and any(i.type == "pdq" for i in self.indicators):
            raise IndicatorError("pdq hashes travel only under TLP:AMBER+STRICT or TLP:RED")

    def to_bytes(self) -> bytes:
        document = {
            "v": SET_FORMAT,
            "set_id": self.set_id,
            "owner": self.owner,
            "version": self.version,
            "tlp": self.tlp.value,
            "recipients": sorted(self.recipients),
            "clients": {k: sorted(v) for k, v in sorted(self.clients.items())},
            "revoked": self.revoked,
            "created_ms": self.created_ms,
            "indicators": [_indicator_dict(i) for i in self.indicators],
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> IndicatorSet:
        """Parse and check a set as received.

        Raises:
            IndicatorError: not a canonical version-1 set; the message names the field.
        """
        if len(data) > MAX_DOCUMENT_BYTES:
            raise IndicatorError("an indicator set is at most 32 MiB")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise IndicatorError("an indicator set is a JSON object") from e
        parsed = _parse(document)
        if parsed.to_bytes() != data:
            raise IndicatorError("the indicator set is not in canonical form")
        return parsed

    def check_passing(
        self, *, sender: AgencyId, recipient: AgencyId, members: Collection[str]
    ) -> None:
        """May ``sender`` pass this set to ``recipient``, under its label?

        Raises:
            TlpEgressError: it may not; the message names the label and the rule.
        """
        check_share(
            self.tlp,
            owner=self.owner,
            recipients=self.recipients,
            clients=self.clients,
            sender=sender,
            recipient=recipient,
            members=members,
        )


def _indicator_dict(indicator: Indicator) -> dict[str, Any]:
    return {
        "type": indicator.type,
        "value": indicator.value,
        "confidence": indicator.confidence,
        "first_seen_ms": indicator.first_seen_ms,
        "last_seen_ms": indicator.last_seen_ms,
        "expires_ms": indicator.expires_ms,
    }


def _parse(document: object) -> IndicatorSet:
    if not isinstance(document, dict):
        raise IndicatorError("an indicator set is a JSON object")
    unknown = set(document) - _FIELDS
    if unknown or set(document) != _FIELDS:
        raise IndicatorError(f"the set's fields must be exactly: {', '.join(sorted(_FIELDS))}")
    if document["v"] != SET_FORMAT:
        raise IndicatorError(f"unknown indicator set format {document['v']!r}")
    try:
        tlp = Tlp.parse(_text(document, "tlp"))
    except TlpError as e:
        raise IndicatorError(f"tlp: {e.message}") from e
    recipients = _agencies(document["recipients"], "recipients")
    if tlp in NAMED and not recipients and not document["revoked"]:
        raise IndicatorError(f"recipients: {tlp.value} names at least one recipient agency")
    indicators = document["indicators"]
    if not isinstance(indicators, list) or len(indicators) > MAX_INDICATORS:
        raise IndicatorError(f"indicators must be a list of at most {MAX_INDICATORS}")
    return IndicatorSet(
        set_id=_text(document, "set_id"),
        owner=AgencyId(_text(document, "owner")),
        version=_count(document["version"], "version"),
        tlp=tlp,
        recipients=recipients,
        clients=_clients(document["clients"]),
        indicators=tuple(_indicator(item, n) for n, item in enumerate(indicators)),
        revoked=_flag(document["revoked"]),
        created_ms=_count(document["created_ms"], "created_ms"),
    )


def _indicator(item: object, n: int) -> Indicator:
    where = f"indicators[{n}]"
    if not isinstance(item, dict) or set(item) != _INDICATOR_FIELDS:
        raise IndicatorError(f"{where} must have exactly: {', '.join(sorted(_INDICATOR_FIELDS))}")
    kind, value = item["type"], item["value"]
    if not isinstance(kind, str) or not isinstance(value, str):
        raise IndicatorError(f"{where}: type and value are strings")
    try:
        canonical = canonicalize_indicator(kind, value)
    except FormValidationError as e:
        raise IndicatorError(f"{where}: {e.message}") from e
    if canonical != value:
        raise IndicatorError(f"{where}: the {kind} value is not in canonical form")
    confidence = item["confidence"]
    if (
        not isinstance(confidence, int)
        or isinstance(confidence, bool)
        or not 0 <= confidence <= 100
    ):
        raise IndicatorError(f"{where}: confidence is an integer from 0 to 100")
    return Indicator(
        type=kind,
        value=value,
        confidence=confidence,
        first_seen_ms=_optional_count(item["first_seen_ms"], f"{where}.first_seen_ms"),
        last_seen_ms=_optional_count(item["last_seen_ms"], f"{where}.last_seen_ms"),
        expires_ms=_optional_count(item["expires_ms"], f"{where}.expires_ms"),
    )


def _text(document: Mapping[str, object], name: str) -> str:
    value = document[name]
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise IndicatorError(f"{name} is a string of 1-128 characters")
    return value


def _agencies(value: object, where: str) -> tuple[AgencyId, ...]:
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise IndicatorError(f"{where} is a list of agency ids")
    if len(set(value)) != len(value):
        raise IndicatorError(f"{where} names an agency twice")
    return tuple(AgencyId(a) for a in value)


def _clients(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise IndicatorError("clients maps a recipient agency to the agencies it may pass to")
    return {str(k): _agencies(v, f"clients.{k}") for k, v in value.items()}


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise IndicatorError(f"{where} is a non-negative integer")
    return value


def _optional_count(value: object, where: str) -> int | None:
    return None if value is None else _count(value, where)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise IndicatorError("revoked is true or false")
    return value


def sign_set(document: bytes, key: SigningKey) -> bytes:
    return bytes(key.sign(SIGNING_CONTEXT + document).signature)


def verify_set(document: bytes, signature: bytes, owner_keys: Sequence[bytes]) -> IndicatorSet:
    """The set, once one of its owner's active signing keys verifies the signature.

    Raises:
        IndicatorSignatureError: no listed key of the owner signed it.
        IndicatorError: the document is not a valid set.
    """
    for key in owner_keys:
        try:
            VerifyKey(key).verify(SIGNING_CONTEXT + document, signature)
        except (BadSignatureError, ValueError):
            continue
        return IndicatorSet.from_bytes(document)
    raise IndicatorSignatureError("the indicator set is not signed by its owner's listed key")
