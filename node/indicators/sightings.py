# SPDX-License-Identifier: Apache-2.0
"""Sightings and false-positive reports: what a recipient tells a set's owner about one
indicator of it.

A report is canonical JSON (sorted keys, no insignificant whitespace, version tag ``v``)
naming its id, the set and its owner, the reporting agency, the indicator (type and canonical
value), the kind (``seen`` or ``false_positive``), an optional short note and when it was
made. The reporter signs ``"comity/indicator-sighting/v1\\n" || document`` with its message
signing key: a context of its own, so a report's signature can never pass for a set's or an
envelope's. The note is case content: errors name fields and rules, never the note or the
value. Pure: no I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from node.errors import ComityError, ErrorKind, FormValidationError
from node.forms.indicators import canonicalize_indicator

SIGHTING_FORMAT = 1
SIGNING_CONTEXT = b"comity/indicator-sighting/v1\n"
MAX_NOTE_CHARS = 280
MAX_DOCUMENT_BYTES = 8 * 1024
_FIELDS = frozenset(
    {"v", "sighting_id", "set_id", "owner", "reporter", "type", "value", "kind", "note", "at_ms"}
)


class SightingError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_sighting"


class SightingSignatureError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_sighting_signature"


class SightingKind(Enum):
    SEEN = "seen"
    FALSE_POSITIVE = "false_positive"

    @classmethod
    def parse(cls, text: str) -> SightingKind:
        """``seen``, ``false_positive`` or ``false-positive``.

        Raises:
            SightingError: another word.
        """
        for kind in cls:
            if kind.value == text.strip().lower().replace("-", "_"):
                return kind
        raise SightingError("a report is 'seen' or 'false_positive'")


@dataclass(frozen=True, kw_only=True)
class Sighting:
    sighting_id: str
    set_id: str
    owner: str
    reporter: str
    type: str
    value: str
    """Canonical form (node.forms.indicators)."""
    kind: SightingKind
    note: str | None = None
    at_ms: int

    def __post_init__(self) -> None:
        if self.note is not None and not 0 < len(self.note) <= MAX_NOTE_CHARS:
            raise SightingError(f"note is 1-{MAX_NOTE_CHARS} characters")

    @classmethod
    def new(
        cls,
        *,
        set_id: str,
        owner: str,
        reporter: str,
        kind: SightingKind,
        indicator: tuple[str, str],
        note: str | None,
        at_ms: int,
    ) -> Sighting:
        """A report with a fresh id about ``indicator`` (type, value as entered).

        Raises:
            FormValidationError: the value breaks its type's rules.
            SightingError: the note is empty or too long.
        """
        kind_name, value = indicator
        return cls(
            sighting_id=str(uuid.uuid4()),
            set_id=set_id,
            owner=owner,
            reporter=reporter,
            type=kind_name,
            value=canonicalize_indicator(kind_name, value),
            kind=kind,
            note=note or None,
            at_ms=at_ms,
        )

    def to_bytes(self) -> bytes:
        document = {
            "v": SIGHTING_FORMAT,
            "sighting_id": self.sighting_id,
            "set_id": self.set_id,
            "owner": self.owner,
            "reporter": self.reporter,
            "type": self.type,
            "value": self.value,
            "kind": self.kind.value,
            "note": self.note,
            "at_ms": self.at_ms,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Sighting:
        """Parse and check a report as received.

        Raises:
            SightingError: not a canonical version-1 report; the message names the field.
        """
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SightingError("a sighting report is at most 8 KiB")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise SightingError("a sighting report is a JSON object") from e
        parsed = _parse(document)
        if parsed.to_bytes() != data:
            raise SightingError("the sighting report is not in canonical form")
        return parsed


def _parse(document: object) -> Sighting:
    if not isinstance(document, dict) or set(document) != _FIELDS:
        raise SightingError(f"a report's fields are exactly: {', '.join(sorted(_FIELDS))}")
    if document["v"] != SIGHTING_FORMAT:
        raise SightingError("unknown sighting report format")
    kind, value = _text(document, "type", 32), _text(document, "value", 2048)
    try:
        canonical = canonicalize_indicator(kind, value)
    except FormValidationError as e:
        raise SightingError(f"value: {e.message}") from e
    if canonical != value:
        raise SightingError(f"value: the {kind} value is not in canonical form")
    at_ms = document["at_ms"]
    if not isinstance(at_ms, int) or isinstance(at_ms, bool) or at_ms < 0:
        raise SightingError("at_ms is a non-negative integer")
    note = document["note"]
    if note is not None and not isinstance(note, str):
        raise SightingError("note is a string or null")
    return Sighting(
        sighting_id=_text(document, "sighting_id", 64),
        set_id=_text(document, "set_id", 128),
        owner=_text(document, "owner", 64),
        reporter=_text(document, "reporter", 64),
        type=kind,
        value=value,
        kind=SightingKind.parse(_text(document, "kind", 32)),
        note=note,
        at_ms=at_ms,
    )


def _text(document: Mapping[str, object], name: str, longest: int) -> str:
    value = document[name]
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        raise SightingError(f"{name} is a string of 1-{longest} characters")
    return value


def sign_sighting(document: bytes, key: SigningKey) -> bytes:
    return bytes(key.sign(SIGNING_CONTEXT + document).signature)


def verify_sighting(document: bytes, signature: bytes, reporter_keys: Sequence[bytes]) -> Sighting:
    """The report, once one of its reporter's active signing keys verifies the signature.

    Raises:
        SightingSignatureError: no listed key of the reporter signed it.
        SightingError: the document is not a valid report.
    """
    for key in reporter_keys:
        try:
            VerifyKey(key).verify(SIGNING_CONTEXT + document, signature)
        except (BadSignatureError, ValueError):
            continue
        return Sighting.from_bytes(document)
    raise SightingSignatureError("the sighting report is not signed by its reporter's listed key")


class SightingRefusedError(ComityError):
    """The report may not be taken: its reporter was never given the set, or this node is
    not the set's owner."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "sighting_refused"


class NotInSetError(ComityError):
    """The report names no indicator of the set. The same answer whatever else the node
    holds, so a report cannot be used to probe for values."""

    kind = ErrorKind.NOT_FOUND
    code = "indicator_not_in_set"
