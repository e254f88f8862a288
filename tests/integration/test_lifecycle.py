# SPDX-License-Identifier: Apache-2.0
"""The request lifecycle between real nodes: every path moved by signed messages, both ends
agreeing on the state after each step; wrong parties, illegal moves and gaps handled."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from node.audit.leaf import Leaf
from node.audit.reconcile import reconcile
from node.audit.report import build_report
from node.crypto.envelope import seal_envelope
from node.forms.registry import get_message_type, schemas_dir
from node.ids import AgencyId, new_message_id
from node.model.envelope import EnvelopeHeader, SealedEnvelope
from node.model.lifecycle import IllegalTransitionError, NotYourMoveError
from node.model.request import RequestState, RequestView
from node.services.lifecycle import HoldLimits
from node.storage import audit_repo
from node.storage.engine import transaction
from node.timeutil import now_ms
from tests.integration.harness import Federation
from tests.integration.test_exchange import deliver_raw, request_bytes

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()

BODIES: dict[str, dict[str, Any]] = {
    "review": {},
    "clarification-request": {"questions": ["Which accounts were active in March?"]},
    "clarification-answer": {"answers": ["All three listed accounts."]},
    "accept": {"outcome": "accepted", "reason": "Art. 29 conditions met."},
    "refuse-speech": {
        "outcome": "refused",
        "grounds": ["protected_expression"],
        "reason": "The posts are political criticism, not threats.",
    },
    "preservation-confirmation": {"preserved_until": "2027-03-01T00:00:00Z"},
    "extension-request": {"additional_days": 30, "reason": "Production order in preparation."},
    "extension": {"preserved_until": "2027-03-31T00:00:00Z"},
    "execution": {"summary": "Accounts and posts preserved and exported."},
    "withdrawal": {"reason": "The case was closed domestically."},
    "closure": {},
}


def body(name: str) -> bytes:
    kind = name if name not in {"accept", "refuse-speech"} else "decision"
    return json.dumps({"form_version": f"{kind}.v1", **BODIES[name]}).encode()


def kind_of(name: str) -> str:
    return "decision" if name in {"accept", "refuse-speech"} else name


async def filed(fed: Federation) -> str:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM
    )
    assert view.state is RequestState.DELIVERED
    return view.request_id


async def send(fed: Federation, agency: str, request_id: str, name: str) -> RequestView:
    return await fed.nodes[agency].exchange.send_message(
        request_id=request_id, kind=kind_of(name), body_json=body(name)
    )


async def states(fed: Federation, request_id: str) -> tuple[RequestState, RequestState]:
    unit = await fed.nodes[UNIT].exchange.get_request(request_id)
    authority = await fed.nodes[AUTHORITY].exchange.get_request(request_id)
    return unit.state, authority.state


async def assert_agreed(fed: Federation, request_id: str, state: RequestState) -> None:
    assert await states(fed, request_id) == (state, state)


PRESERVATION_PATH = [
    (AUTHORITY, "review", RequestState.UNDER_REVIEW),
    (AUTHORITY, "clarification-request", RequestState.CLARIFICATION_REQUESTED),
    (UNIT, "clarification-answer", RequestState.UNDER_REVIEW),
    (AUTHORITY, "accept", RequestState.ACCEPTED),
    (AUTHORITY, "preservation-confirmation", RequestState.PRESERVED),
    (UNIT, "extension-request", RequestState.EXTENSION_REQUESTED),
    (AUTHORITY, "extension", RequestState.EXTENDED),
    (AUTHORITY, "execution", RequestState.EXECUTED),
    (UNIT, "closure", RequestState.CLOSED),
]


async def test_preservation_lifecycle_both_ends_agree_after_every_step(fed: Federation) -> None:
    request_id = await filed(fed)
    assert await states(fed, request_id) == (RequestState.DELIVERED, RequestState.REGISTERED)
    for agency, name, expected in PRESERVATION_PATH:
        view = await send(fed, agency, request_id, name)
        assert view.state is expected, name
        assert view.delivery is not None
        assert view.delivery.status == "delivered", name
        await assert_agreed(fed, request_id, expected)
    unit = await fed.nodes[UNIT].exchange.get_request(request_id)
    authority = await fed.nodes[AUTHORITY].exchange.get_request(request_id)
    assert unit.preserved_until_ms == authority.preserved_until_ms
    assert authority.preserved_until_ms is not None
    kinds = [m.kind for m in unit.history]
    assert kinds == ["request", *[kind_of(n) for _, n, _ in PRESERVATION_PATH]]
    assert all(m.state == "applied" for m in unit.history + authority.history)


async def test_refusal_on_the_speech_ground_is_public_in_both_logs(fed: Federation) -> None:
    request_id = await filed(fed)
    await send(fed, AUTHORITY, request_id, "review")
    await send(fed, AUTHORITY, request_id, "refuse-speech")
    await assert_agreed(fed, request_id, RequestState.REFUSED)
    for agency, event in ((AUTHORITY, "decision.sent"), (UNIT, "decision.received")):
        leaves = logged(fed, agency)
        decisions = [leaf.public for leaf in leaves if leaf.public.event == event]
        assert [d.refusal_ground for d in decisions] == ["protected_expression"]
        # The reason given is case content: never in the public leaf.
        assert b"political criticism" not in b"".join(leaf.to_bytes() for leaf in leaves)


async def test_withdrawal_ends_the_review(fed: Federation) -> None:
    request_id = await filed(fed)
    await send(fed, AUTHORITY, request_id, "review")
    await send(fed, UNIT, request_id, "withdrawal")
    await assert_agreed(fed, request_id, RequestState.WITHDRAWN)
    with pytest.raises(IllegalTransitionError, match="not allowed while the request is withdrawn"):
        await send(fed, AUTHORITY, request_id, "accept")
    await assert_agreed(fed, request_id, RequestState.WITHDRAWN)


async def test_a_party_cannot_make_the_other_partys_move(fed: Federation) -> None:
    request_id = await filed(fed)
    rows = fed.rows(UNIT)
    with pytest.raises(NotYourMoveError, match="only the requested party sends decision"):
        await send(fed, UNIT, request_id, "accept")
    with pytest.raises(NotYourMoveError, match="only the requester party sends withdrawal"):
        await send(fed, AUTHORITY, request_id, "withdrawal")
    assert fed.rows(UNIT) == rows
    await assert_agreed_registered(fed, request_id)


async def assert_agreed_registered(fed: Federation, request_id: str) -> None:
    assert await states(fed, request_id) == (RequestState.DELIVERED, RequestState.REGISTERED)


def forged(
    fed: Federation, *, signer: str, recipient: str, request_id: str, sequence: int, name: str
) -> SealedEnvelope:
    """A correctly signed lifecycle message from ``signer`` at position ``sequence``."""
    keys = fed.keys(signer)
    member = fed.nodes[signer].directory.find(recipient)
    assert member is not None
    created = now_ms()
    header = EnvelopeHeader(
        message_id=new_message_id(),
        exchange_id=request_id,  # type: ignore[arg-type]
        sequence=sequence,
        sender=AgencyId(signer),
        recipient=AgencyId(recipient),
        created_at_ms=created,
        expires_at_ms=created + 3_600_000,
        directory_version=fed.nodes[signer].directory.version,
        payload_type=get_message_type(kind_of(name)).payload_type,
        sender_encryption_key_id=keys.encryption_key_id,
        recipient_encryption_key_id=member.encryption_key_id,
    )
    return seal_envelope(
        header=header,
        payload=body(name),
        sender_keys=keys,
        recipient_encryption_key=member.encryption_key,
    )


async def refused(
    fed: Federation, envelope: SealedEnvelope, *, client: str, server: str
) -> grpc.aio.AioRpcError:
    rows = fed.rows(server)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(envelope), client=client, server=server)
    assert fed.rows(server) == rows
    return caught.value


def code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("comity-error")


async def test_a_decision_by_a_third_agency_is_refused(fed: Federation) -> None:
    request_id = await filed(fed)
    envelope = forged(
        fed, signer=OTHER, recipient=UNIT, request_id=request_id, sequence=1, name="accept"
    )
    error = await refused(fed, envelope, client=OTHER, server=UNIT)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert code(error) == "wrong_party"
    await assert_agreed_registered(fed, request_id)


async def test_an_illegal_transition_from_the_peer_is_refused(fed: Federation) -> None:
    request_id = await filed(fed)
    envelope = forged(
        fed, signer=AUTHORITY, recipient=UNIT, request_id=request_id, sequence=1, name="execution"
    )
    error = await refused(fed, envelope, client=AUTHORITY, server=UNIT)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert code(error) == "illegal_transition"
    assert "execution is not allowed while the request is delivered" in (error.details() or "")
    await assert_agreed_registered(fed, request_id)


async def test_a_message_for_an_unknown_exchange_is_retried_later(fed: Federation) -> None:
    envelope = forged(
        fed,
        signer=AUTHORITY,
        recipient=UNIT,
        request_id="5f0c6a3e-2f58-4c1e-9a7e-2d3b8f1c0a11",
        sequence=1,
        name="review",
    )
    error = await refused(fed, envelope, client=AUTHORITY, server=UNIT)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert code(error) == "exchange_not_ready"


async def test_gaps_are_held_and_other_exchanges_are_not_blocked(fed: Federation) -> None:
    held_id, free_id = await filed(fed), await filed(fed)
    # The authority's 2nd message of the first exchange arrives before its 1st.
    second = forged(
        fed, signer=AUTHORITY, recipient=UNIT, request_id=held_id, sequence=2, name="accept"
    )
    await deliver_raw(fed, request_bytes(second), client=AUTHORITY, server=UNIT)
    unit_view = await fed.nodes[UNIT].exchange.get_request(held_id)
    assert unit_view.state is RequestState.DELIVERED
    assert [m.state for m in unit_view.history if m.kind == "decision"] == ["held"]
    # Another exchange moves on meanwhile.
    other = forged(
        fed, signer=AUTHORITY, recipient=UNIT, request_id=free_id, sequence=1, name="review"
    )
    await deliver_raw(fed, request_bytes(other), client=AUTHORITY, server=UNIT)
    assert (await fed.nodes[UNIT].exchange.get_request(free_id)).state is RequestState.UNDER_REVIEW
    # The missing 1st message arrives: both are applied, in order.
    first = forged(
        fed, signer=AUTHORITY, recipient=UNIT, request_id=held_id, sequence=1, name="review"
    )
    await deliver_raw(fed, request_bytes(first), client=AUTHORITY, server=UNIT)
    unit_view = await fed.nodes[UNIT].exchange.get_request(held_id)
    assert unit_view.state is RequestState.ACCEPTED
    assert {m.kind: m.state for m in unit_view.history} == {
        "request": "applied",
        "review": "applied",
        "decision": "applied",
    }
    # A second message claiming a position already taken is a replay.
    again = forged(
        fed, signer=AUTHORITY, recipient=UNIT, request_id=held_id, sequence=2, name="accept"
    )
    error = await refused(fed, again, client=AUTHORITY, server=UNIT)
    assert code(error) == "replayed_message_id"


async def test_held_messages_are_bounded_by_gap_and_count(fed: Federation) -> None:
    """Issue 13 point 7: withdrawals numbered 3, 4, ... were all held for good; now a node
    holds at most 16 early messages per exchange, none more than 32 ahead of the next."""
    request_id = await filed(fed)
    limits = HoldLimits()

    def withdrawal(sequence: int) -> SealedEnvelope:
        return forged(
            fed,
            signer=UNIT,
            recipient=AUTHORITY,
            request_id=request_id,
            sequence=sequence,
            name="withdrawal",
        )

    too_far = await refused(fed, withdrawal(2 + limits.max_gap + 1), client=UNIT, server=AUTHORITY)
    assert (too_far.code(), code(too_far)) == (
        grpc.StatusCode.UNAVAILABLE,
        "sequence_gap_too_large",
    )
    for sequence in range(3, 3 + limits.per_exchange):
        await deliver_raw(fed, request_bytes(withdrawal(sequence)), client=UNIT, server=AUTHORITY)
    full = await refused(fed, withdrawal(3 + limits.per_exchange), client=UNIT, server=AUTHORITY)
    assert (full.code(), code(full)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "too_many_held")
    view = await fed.nodes[AUTHORITY].exchange.get_request(request_id)
    assert [m.state for m in view.history].count("held") == limits.per_exchange
    # The missing 2nd arrives: the 3rd applies after it, the rest are refused as moves the
    # lifecycle no longer allows, and the exchange has room again.
    await deliver_raw(fed, request_bytes(withdrawal(2)), client=UNIT, server=AUTHORITY)
    view = await fed.nodes[AUTHORITY].exchange.get_request(request_id)
    assert view.state is RequestState.WITHDRAWN
    assert "held" not in [m.state for m in view.history]


async def test_a_held_message_no_longer_allowed_is_kept_as_refused(fed: Federation) -> None:
    request_id = await filed(fed)
    # 2nd: a clarification request; but the 1st turns out to be a refusal.
    second = forged(
        fed,
        signer=AUTHORITY,
        recipient=UNIT,
        request_id=request_id,
        sequence=2,
        name="clarification-request",
    )
    await deliver_raw(fed, request_bytes(second), client=AUTHORITY, server=UNIT)
    first = forged(
        fed,
        signer=AUTHORITY,
        recipient=UNIT,
        request_id=request_id,
        sequence=1,
        name="refuse-speech",
    )
    await deliver_raw(fed, request_bytes(first), client=AUTHORITY, server=UNIT)
    view = await fed.nodes[UNIT].exchange.get_request(request_id)
    assert view.state is RequestState.REFUSED
    [late] = [m for m in view.history if m.kind == "clarification-request"]
    assert late.state == "refused"
    assert "not allowed while the request is refused" in (late.note or "")


def logged(fed: Federation, agency: str) -> list[Leaf]:
    with transaction(fed.nodes[agency].engine) as session:
        rows = audit_repo.audit_leaves(session, start=0, end=audit_repo.audit_size(session))
    return [Leaf.from_bytes(r.leaf) for r in rows]


async def test_every_lifecycle_message_reconciles_across_both_logs(fed: Federation) -> None:
    request_id = await filed(fed)
    for agency, name, _ in PRESERVATION_PATH:
        await send(fed, agency, request_id, name)
    logs: dict[str, list[Leaf]] = {agency: logged(fed, agency) for agency in (UNIT, AUTHORITY)}
    assert reconcile(logs) == []
    # A node that hides one of its decisions is caught.
    hidden = [leaf for leaf in logs[UNIT] if leaf.public.event != "execution.received"]
    [finding] = reconcile({UNIT: hidden, AUTHORITY: logs[AUTHORITY]})
    assert finding.kind == "hidden"
    assert "execution.sent" in finding.detail


async def test_the_report_counts_refusals_by_ground_once(fed: Federation) -> None:
    request_id = await filed(fed)
    await send(fed, AUTHORITY, request_id, "refuse-speech")
    logs: dict[str, list[Leaf]] = {agency: logged(fed, agency) for agency in (UNIT, AUTHORITY)}
    report = build_report(logs, suppress_below=1)
    assert report["refusals_by_ground"] == {"protected_expression": 1}


def example_form(kind: str) -> bytes:
    return (schemas_dir() / "examples" / f"{kind}.example.json").read_bytes()


Move = tuple[str, str, dict[str, Any]]
PATHS: dict[str, tuple[str, list[Move], RequestState]] = {
    "production: partial, executed, closed": (
        "production",
        [
            (AUTHORITY, "decision", {"outcome": "partially_accepted", "scope": "Posts only.",
                                     "grounds": ["data_not_held"], "reason": "No messages."}),
            (AUTHORITY, "execution", {"summary": "Posts produced."}),
            (UNIT, "closure", {}),
        ],
        RequestState.CLOSED,
    ),
    "subscriber information: refused, closed": (
        "subscriber-information",
        [
            (AUTHORITY, "review", {}),
            (AUTHORITY, "decision", {"outcome": "refused", "grounds": ["ne_bis_in_idem"],
                                     "reason": "Already tried."}),
            (AUTHORITY, "closure", {"reason": "Refused."}),
        ],
        RequestState.CLOSED,
    ),
    "emergency: accepted and executed": (
        "emergency-disclosure",
        [
            (AUTHORITY, "decision", {"outcome": "accepted", "reason": "Imminent threat."}),
            (AUTHORITY, "execution", {"summary": "Login addresses disclosed."}),
        ],
        RequestState.EXECUTED,
    ),
    "traffic disclosure: withdrawn while clarifying": (
        "traffic-disclosure",
        [
            (AUTHORITY, "clarification-request", {"questions": ["Which upload?"]}),
            (UNIT, "withdrawal", {"reason": "Identified the provider otherwise."}),
        ],
        RequestState.WITHDRAWN,
    ),
    "campaign alert: read and closed": (
        "campaign-alert",
        [(AUTHORITY, "review", {}), (AUTHORITY, "closure", {"reason": "Shared with our unit."})],
        RequestState.CLOSED,
    ),
}  # fmt: skip


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_request_type_walks_its_lifecycle_in_agreement(
    fed: Federation, path: str
) -> None:
    kind, moves, final = PATHS[path]
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type=kind, recipient=AUTHORITY, form_json=example_form(kind)
    )
    for agency, message, fields in moves:
        moved = await fed.nodes[agency].exchange.send_message(
            request_id=view.request_id,
            kind=message,
            body_json=json.dumps({"form_version": f"{message}.v1", **fields}).encode(),
        )
        await assert_agreed(fed, view.request_id, moved.state)
    await assert_agreed(fed, view.request_id, final)
