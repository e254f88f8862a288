# SPDX-License-Identifier: Apache-2.0
"""Reveal requests: canonical bytes, signatures checked before parsing, every field's rule, and
the reveal-mode arithmetic that tells the requester which of its own items are shared."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from nacl.signing import SigningKey

from node.ids import AgencyId
from node.indicators.psi import (
    blind_each,
    blind_items,
    item_bytes,
    new_secret,
    reblind,
    reblind_each,
)
from node.indicators.reveal import (
    MAX_LIFETIME_MS,
    MAX_REVEAL_ITEMS,
    SIGNING_CONTEXT,
    RevealRequest,
    RevealRequestError,
    RevealSignatureError,
    matched_positions,
    sign_request,
    verify_request,
)

NOW = 1_790_000_000_000
REASON = "Case 2026/117: doxxing of a journalist, accounts seen in both cases"


def request(**changes: Any) -> RevealRequest:
    made = RevealRequest.new(
        requester=AgencyId("aa-cyber-unit"),
        responder=AgencyId("bb-central-authority"),
        set_ids=["set-b", "set-a"],
        items=40,
        reason=REASON,
        now_ms=NOW,
        valid_ms=3600_000,
    )
    return replace(made, **changes) if changes else made


def test_a_signed_request_verifies_and_round_trips() -> None:
    key = SigningKey.generate()
    made = request()
    document, signature = sign_request(made, key)
    assert made.set_ids == ("set-a", "set-b")
    assert verify_request(document, signature, [bytes(key.verify_key)]) == made
    # Any of the requester's listed keys will do (a rotation's overlap).
    other = bytes(SigningKey.generate().verify_key)
    assert verify_request(document, signature, [other, bytes(key.verify_key)]) == made


def test_another_key_a_changed_byte_or_no_context_fails() -> None:
    key = SigningKey.generate()
    document, signature = sign_request(request(), key)
    listed = [bytes(key.verify_key)]
    with pytest.raises(RevealSignatureError):
        verify_request(document, signature, [bytes(SigningKey.generate().verify_key)])
    with pytest.raises(RevealSignatureError):
        verify_request(document.replace(b'"items":40', b'"items":41'), signature, listed)
    bare = bytes(key.sign(document).signature)
    with pytest.raises(RevealSignatureError):
        verify_request(document, bare, listed)
    with pytest.raises(RevealSignatureError):
        verify_request(document, signature, [])
    assert SIGNING_CONTEXT == b"comity/overlap-reveal/v1\n"


def test_the_signature_is_checked_before_the_document_is_parsed() -> None:
    key = SigningKey.generate()
    garbage = b"not json at all"
    with pytest.raises(RevealSignatureError):
        verify_request(garbage, bytes(64), [bytes(key.verify_key)])
    signed = bytes(key.sign(SIGNING_CONTEXT + garbage).signature)
    with pytest.raises(RevealRequestError, match="JSON object"):
        verify_request(garbage, signed, [bytes(key.verify_key)])


def _document(**changes: object) -> bytes:
    fields = json.loads(request().to_bytes())
    fields.update(changes)
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"request_id": "not-a-uuid"}, "request_id"),
        ({"request_id": "6F9619FF-8B86-4D01-B42D-00CF4FC964FF"}, "request_id"),
        ({"responder": "aa-cyber-unit"}, "different agencies"),
        ({"requester": ""}, "requester must not be empty"),
        ({"responder": "x" * 65}, "responder is at most 64"),
        ({"reason": "   "}, "reason must not be empty"),
        ({"reason": "r" * 1001}, "reason is at most 1000"),
        ({"reason": "bell\x07"}, "reason must not hold control"),
        ({"items": 0}, "items must be between"),
        ({"items": MAX_REVEAL_ITEMS + 1}, "items must be between"),
        ({"items": True}, "items must be an integer"),
        ({"items": "40"}, "items must be an integer"),
        ({"set_ids": ["b", "a"]}, "sorted"),
        ({"set_ids": ["a", "a"]}, "sorted"),
        ({"set_ids": [str(n).zfill(3) for n in range(65)]}, "at most 64 sets"),
        ({"set_ids": ["a\nb"]}, "control"),
        ({"set_ids": "set-a"}, "set_ids must be a list"),
        ({"set_ids": [7]}, "set_ids must be a str"),
        ({"expires_ms": NOW}, "after created_ms"),
        ({"expires_ms": NOW + MAX_LIFETIME_MS + 1}, "at most 7 days"),
        ({"created_ms": -1, "expires_ms": 10}, "negative"),
        ({"v": 2}, "format"),
        ({"extra": 1}, "exactly the fields"),
    ],
)
def test_bad_fields_are_refused_by_name(changes: dict[str, object], match: str) -> None:
    with pytest.raises(RevealRequestError, match=match) as caught:
        RevealRequest.from_bytes(_document(**changes))
    assert REASON not in caught.value.message


def test_missing_fields_and_other_encodings_are_refused() -> None:
    fields = json.loads(request().to_bytes())
    del fields["reason"]
    with pytest.raises(RevealRequestError, match="exactly the fields"):
        RevealRequest.from_bytes(json.dumps(fields).encode())
    with pytest.raises(RevealRequestError, match="canonical"):
        RevealRequest.from_bytes(json.dumps(json.loads(request().to_bytes()), indent=1).encode())
    with pytest.raises(RevealRequestError, match="JSON object"):
        RevealRequest.from_bytes(b"{")
    with pytest.raises(RevealRequestError, match="exactly the fields"):
        RevealRequest.from_bytes(b"[]")
    with pytest.raises(RevealRequestError, match="at most"):
        RevealRequest.from_bytes(b" " * (64 * 1024 + 1))


def test_a_reason_may_span_lines_and_any_script() -> None:
    made = request(reason="Дело 12\nteine rida: ühised kontod")
    assert RevealRequest.from_bytes(made.to_bytes()) == made


def test_reveal_mode_tells_the_requester_exactly_which_of_its_items_are_shared() -> None:
    mine = [item_bytes("phone", f"+3725100{n:04d}") for n in range(30)]
    theirs = [item_bytes("phone", f"+3725100{n:04d}") for n in range(20, 60)]
    a, b = new_secret(), new_secret()
    sent = blind_each(mine, a)
    doubled = reblind_each(sent, b)  # the responder, in the order sent
    their_points = blind_items(theirs, b)
    positions = matched_positions(doubled, reblind(their_points, a))
    assert [mine[n] for n in positions] == mine[20:30]
