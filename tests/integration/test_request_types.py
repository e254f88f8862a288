# SPDX-License-Identifier: Apache-2.0
"""Every request type through real nodes; minimization on both ends; deadlines and overdue."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from node.forms.minimize import NotMinimalError
from node.forms.registry import form_types, get_form_type, schemas_dir
from node.ids import AgencyId
from node.model.request import RequestState
from node.timeutil import now_ms
from tests.integration.harness import Federation
from tests.integration.test_exchange import deliver_raw, forge, request_bytes

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
HOUR_MS = 3600 * 1000


def example(kind: str) -> dict[str, Any]:
    path = schemas_dir() / "examples" / f"{kind}.example.json"
    value: dict[str, Any] = json.loads(path.read_text())
    return value


@pytest.mark.parametrize("kind", [t.name for t in form_types()])
async def test_every_request_type_is_registered_with_the_same_deadline(
    fed: Federation, kind: str
) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type=kind, recipient=AUTHORITY, form_json=json.dumps(example(kind)).encode()
    )
    assert view.state is RequestState.DELIVERED
    received = await fed.nodes[AUTHORITY].exchange.get_request(view.request_id)
    assert received.state is RequestState.REGISTERED
    assert received.request_type == kind
    assert view.due_at_ms == received.due_at_ms
    if kind == "campaign-alert":
        assert received.due_at_ms is None
    else:
        assert received.due_at_ms is not None
        assert received.due_at_ms > now_ms()


async def test_emergency_is_due_in_hours_and_shows_as_overdue(fed: Federation) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="emergency-disclosure",
        recipient=AUTHORITY,
        form_json=json.dumps(example("emergency-disclosure")).encode(),
    )
    received = await fed.nodes[AUTHORITY].exchange.get_request(view.request_id)
    assert received.due_at_ms is not None
    assert received.due_at_ms - received.created_at_ms == 8 * HOUR_MS
    assert await fed.nodes[AUTHORITY].exchange.overdue_requests() == []
    # Nine hours later, both ends see it overdue.
    for agency in (UNIT, AUTHORITY):
        exchange = fed.nodes[agency].exchange
        exchange.party.clock = lambda: now_ms() + 9 * HOUR_MS
        [late] = await exchange.overdue_requests()
        assert late.request_id == view.request_id
        assert late.overdue


async def test_a_decision_meets_a_decision_deadline(fed: Federation) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation",
        recipient=AUTHORITY,
        form_json=json.dumps(example("preservation")).encode(),
    )
    decision = {"form_version": "decision.v1", "outcome": "accepted", "reason": "Conditions met."}
    await fed.nodes[AUTHORITY].exchange.send_message(
        request_id=view.request_id, kind="decision", body_json=json.dumps(decision).encode()
    )
    exchange = fed.nodes[AUTHORITY].exchange
    exchange.party.clock = lambda: now_ms() + 100 * HOUR_MS
    assert await exchange.overdue_requests() == []


async def test_non_minimal_request_is_refused_before_anything_is_stored(
    fed: Federation,
) -> None:
    form = example("preservation")
    form["necessity"] = "The suspect can be reached at orbit.watch@mail.example today."
    rows = fed.rows(UNIT)
    with pytest.raises(NotMinimalError, match=r"\$\.necessity: contains an e-mail address"):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=json.dumps(form).encode()
        )
    assert fed.rows(UNIT) == rows
    preview = fed.nodes[UNIT].exchange.preview_request(
        request_type="preservation",
        recipient=AUTHORITY,
        form_json=json.dumps(form).encode(),
        strip=True,
    )
    assert preview.notes == ("$.necessity: an e-mail address removed",)
    assert b"orbit.watch" not in preview.form_json
    filed = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation",
        recipient=AUTHORITY,
        form_json=json.dumps(form).encode(),
        strip=True,
    )
    received = await fed.nodes[AUTHORITY].exchange.get_request(filed.request_id)
    assert received.form_json == preview.form_json


async def test_the_receiver_refuses_a_request_that_is_not_minimal(fed: Federation) -> None:
    form = example("production")
    form["issuing_authority"]["type"] = (
        "prosecutor"  # content data needs a judge under the EU Regulation
    )
    payload = json.dumps(form, sort_keys=True, separators=(",", ":")).encode()
    envelope = forge(
        fed,
        signer=UNIT,
        recipient=AUTHORITY,
        payload=payload,
        payload_type=get_form_type("production").payload_type,
    )
    rows = fed.rows(AUTHORITY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(envelope), client=UNIT, server=AUTHORITY)
    error = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(error.trailing_metadata() or ()).get("comity-error") == "not_minimal"
    assert "needs a judge or a court" in (error.details() or "")
    assert fed.rows(AUTHORITY) == rows


async def test_the_legal_basis_limits_what_a_decision_and_a_preservation_say(
    fed: Federation,
) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation",
        recipient=AUTHORITY,
        form_json=json.dumps(example("preservation")).encode(),
    )
    exchange = fed.nodes[AUTHORITY].exchange
    bad_ground = {
        "form_version": "decision.v1",
        "outcome": "refused",
        "grounds": ["immunity_or_privilege"],
        "reason": "Not under this basis.",
    }
    with pytest.raises(Exception, match=r"grounds\[0\]: this ground does not apply"):
        await exchange.send_message(
            request_id=view.request_id, kind="decision", body_json=json.dumps(bad_ground).encode()
        )
    accept = {"form_version": "decision.v1", "outcome": "accepted", "reason": "Conditions met."}
    await exchange.send_message(
        request_id=view.request_id, kind="decision", body_json=json.dumps(accept).encode()
    )
    too_short = {
        "form_version": "preservation-confirmation.v1",
        "preserved_until": "2026-12-01T00:00:00Z",
    }
    with pytest.raises(Exception, match="preserves for at least 60 days"):
        await exchange.send_message(
            request_id=view.request_id,
            kind="preservation-confirmation",
            body_json=json.dumps(too_short).encode(),
        )
