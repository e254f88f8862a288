# SPDX-License-Identifier: Apache-2.0
"""A request to reveal *which* indicators two agencies share: canonical, signed, bounded.

An overlap check tells the asker only how many of its own indicators the other agency also
holds (node/indicators/psi.py). To learn which, the asker ("requester") signs a reveal request
to the other agency ("responder"): canonical JSON naming both, the asker's own sets the reveal
covers (none named: all its live sets), how many items it will send, a reason for the person
who decides (case context: stored at both ends for that decision, never logged), a random
request id, and when it was made and stops being valid. The requester signs
``"comity/overlap-reveal/v1\\n" || document`` with its message signing key; the responder
verifies that signature with the keys the directory lists for the TLS client *before* it
parses the document.

Why the item count is part of what is signed and consented to: in reveal mode the requester
learns, for every item it sends, whether the responder holds it. Nothing stops it from sending
guesses instead of its own indicators (every phone number of a prefix), so the person who
consents must see how many guesses they allow, the responder must refuse any other number of
points, and no request may name more than ``MAX_REVEAL_ITEMS``. Each consent answers one
reveal, until the request expires (at most ``MAX_LIFETIME_MS`` after it was made), and each
reveal counts against the same per-peer daily limit as overlap checks. Errors name the field
and the rule, never the reason's text. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from node.errors import ComityError, ErrorKind
from node.ids import AgencyId

REQUEST_FORMAT = 1
SIGNING_CONTEXT = b"comity/overlap-reveal/v1\n"
MAX_REVEAL_ITEMS = 10_000
MAX_SET_IDS = 64
MAX_SET_ID_CHARS = 128
MAX_AGENCY_CHARS = 64
MAX_REASON_CHARS = 1000
MAX_LIFETIME_MS = 7 * 24 * 3600 * 1000
MAX_DOCUMENT_BYTES = 64 * 1024
_FIELDS = {"v", "request_id", "requester", "responder", "set_ids", "items", "reason"} | {
    "created_ms",
    "expires_ms",
}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RevealRequestError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_reveal_request"


class RevealSignatureError(ComityError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "bad_reveal_signature"


@dataclass(frozen=True, kw_only=True)
class RevealRequest:
    request_id: str
    requester: AgencyId
    responder: AgencyId
    set_ids: tuple[str, ...]
    """The requester's own sets the reveal covers, sorted; empty: all its live sets."""
    items: int
    """How many points the requester will send: exactly this many, no more, no fewer."""
    reason: str
    created_ms: int
    expires_ms: int

    def __post_init__(self) -> None:
        _check_id(self.request_id)
        for name, agency in (("requester", self.requester), ("responder", self.responder)):
            _check_text(agency, name, MAX_AGENCY_CHARS)
        if self.requester == self.responder:
            raise RevealRequestError("requester and responder must be different agencies")
        _check_set_ids(self.set_ids)
        _check_count(self.items)
        _check_text(self.reason, "reason", MAX_REASON_CHARS, multiline=True)
        _check_times(self.created_ms, self.expires_ms)

    @classmethod
    def new(
        cls,
        *,
        requester: AgencyId,
        responder: AgencyId,
        set_ids: Iterable[str],
        items: int,
        reason: str,
        now_ms: int,
        valid_ms: int,
    ) -> RevealRequest:
        """A request with a fresh random id, valid for ``valid_ms`` from ``now_ms``.

        Raises:
            RevealRequestError: a field breaks its rule.
        """
        return cls(
            request_id=str(uuid.uuid4()),
            requester=requester,
            responder=responder,
            set_ids=tuple(sorted(set(set_ids))),
            items=items,
            reason=reason.strip(),
            created_ms=now_ms,
            expires_ms=now_ms + valid_ms,
        )

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {
            "v": REQUEST_FORMAT,
            "request_id": self.request_id,
            "requester": self.requester,
            "responder": self.responder,
            "set_ids": list(self.set_ids),
            "items": self.items,
            "reason": self.reason,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RevealRequest:
        """Parse a request in canonical form.

        Raises:
            RevealRequestError: not a version-1 request in canonical form, or a bad field.
        """
        if len(data) > MAX_DOCUMENT_BYTES:
            raise RevealRequestError(f"a reveal request is at most {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise RevealRequestError("a reveal request is a JSON object") from e
        if not isinstance(document, dict) or set(document) != _FIELDS:
            raise RevealRequestError(f"a reveal request has exactly the fields {sorted(_FIELDS)}")
        if document["v"] != REQUEST_FORMAT:
            raise RevealRequestError(f"unknown reveal request format {document['v']!r}")
        request = cls(
            request_id=_typed(document["request_id"], str, "request_id"),
            requester=AgencyId(_typed(document["requester"], str, "requester")),
            responder=AgencyId(_typed(document["responder"], str, "responder")),
            set_ids=tuple(
                _typed(s, str, "set_ids") for s in _typed(document["set_ids"], list, "set_ids")
            ),
            items=_integer(document["items"], "items"),
            reason=_typed(document["reason"], str, "reason"),
            created_ms=_integer(document["created_ms"], "created_ms"),
            expires_ms=_integer(document["expires_ms"], "expires_ms"),
        )
        if request.to_bytes() != data:
            raise RevealRequestError("the reveal request is not in canonical form")
        return request


def sign_request(request: RevealRequest, key: SigningKey) -> tuple[bytes, bytes]:
    """The request's canonical bytes and the requester's signature over them."""
    document = request.to_bytes()
    return document, bytes(key.sign(SIGNING_CONTEXT + document).signature)


def verify_request(
    document: bytes, signature: bytes, requester_keys: Sequence[bytes]
) -> RevealRequest:
    """The request, once one of the requester's listed signing keys verifies the signature.

    The signature is checked before the document is parsed.

    Raises:
        RevealSignatureError: no key in ``requester_keys`` signed these bytes.
        RevealRequestError: the document is not a valid request.
    """
    for key in requester_keys:
        try:
            VerifyKey(key).verify(SIGNING_CONTEXT + document, signature)
        except (BadSignatureError, ValueError):
            continue
        return RevealRequest.from_bytes(document)
    raise RevealSignatureError("the reveal request is not signed by the requester's listed key")


def matched_positions(doubled: Sequence[bytes], theirs_doubled: Iterable[bytes]) -> list[int]:
    """Positions of the requester's items whose doubly blinded point the responder's set also
    yields: ``doubled`` is in the order the requester sent its points."""
    theirs = set(theirs_doubled)
    return [n for n, point in enumerate(doubled) if point in theirs]


def _typed(value: object, kind: type[Any], where: str) -> Any:
    if not isinstance(value, kind):
        raise RevealRequestError(f"{where} must be a {kind.__name__}")
    return value


def _integer(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RevealRequestError(f"{where} must be an integer")
    return value


def _check_id(request_id: str) -> None:
    if not _UUID.fullmatch(request_id):
        raise RevealRequestError("request_id must be a lower-case random (version 4) UUID")


def _check_text(text: str, where: str, limit: int, *, multiline: bool = False) -> None:
    if not text.strip():
        raise RevealRequestError(f"{where} must not be empty")
    if len(text) > limit:
        raise RevealRequestError(f"{where} is at most {limit} characters")
    if _CONTROL.search(text) or (not multiline and ("\n" in text or "\t" in text)):
        raise RevealRequestError(f"{where} must not hold control characters")


def _check_set_ids(set_ids: tuple[str, ...]) -> None:
    if len(set_ids) > MAX_SET_IDS:
        raise RevealRequestError(f"a reveal request names at most {MAX_SET_IDS} sets")
    if list(set_ids) != sorted(set(set_ids)):
        raise RevealRequestError("set_ids must be sorted and without duplicates")
    for set_id in set_ids:
        _check_text(set_id, "a set id", MAX_SET_ID_CHARS)


def _check_count(items: int) -> None:
    if not 1 <= items <= MAX_REVEAL_ITEMS:
        raise RevealRequestError(f"items must be between 1 and {MAX_REVEAL_ITEMS}")


def _check_times(created_ms: int, expires_ms: int) -> None:
    if created_ms < 0:
        raise RevealRequestError("created_ms must not be negative")
    if not created_ms < expires_ms <= created_ms + MAX_LIFETIME_MS:
        raise RevealRequestError("expires_ms must be after created_ms and at most 7 days after it")
