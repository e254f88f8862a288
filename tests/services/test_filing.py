# SPDX-License-Identifier: Apache-2.0
"""Filing a request: what is refused before anything is stored, what is sealed, what is
stored and logged on both sides."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from node.crypto.envelope import open_envelope
from node.errors import FormValidationError, OverloadedError, UnknownAgencyError
from node.forms.minimize import REMOVED, NotMinimalError
from node.ids import AgencyId
from node.model.request import Direction, RequestState
from tests.services.federation import (
    AUTHORITY,
    UNIT,
    Agency,
    Federation,
    Tuning,
    example_form,
    identity,
    in_memory_federation,
)

IDENTIFIERS_IN_NECESSITY = "Call +372 5555 0101 or write to orbit.watch@mail.example today."


def with_identifiers_in_free_text() -> bytes:
    form = json.loads(example_form())
    form["necessity"] = IDENTIFIERS_IN_NECESSITY
    return json.dumps(form).encode()


async def nothing_stored(agency: Agency) -> bool:
    requests = (await agency.exchange.list_requests(direction=None, limit=10)).requests
    return requests == () and await agency.leaves() == []


async def test_a_form_with_identifiers_in_free_text_is_refused_and_nothing_is_kept(
    fed: Federation,
) -> None:
    with pytest.raises(NotMinimalError) as caught:
        await fed[UNIT].exchange.file_request(
            request_type="preservation",
            recipient=AUTHORITY,
            form_json=with_identifiers_in_free_text(),
        )
    assert "$.necessity: contains" in caught.value.message
    assert "5555" not in caught.value.message
    assert await nothing_stored(fed[UNIT])
    assert await nothing_stored(fed[AUTHORITY])
    assert fed.network.calls == []


@pytest.mark.parametrize(
    ("recipient", "form", "error"),
    [
        ("zz-nobody", example_form(), UnknownAgencyError),
        (UNIT, example_form(), UnknownAgencyError),
        (AUTHORITY, b'{"form_version": "preservation.v1"}', FormValidationError),
    ],
    ids=["not a member", "own agency", "form failing its schema"],
)
async def test_bad_input_is_refused_before_anything_is_stored_or_sent(
    fed: Federation, recipient: AgencyId, form: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=recipient, form_json=form
        )
    assert await nothing_stored(fed[UNIT])
    assert fed.network.calls == []


async def test_the_preview_is_exactly_what_is_sealed_and_what_the_peer_registers(
    fed: Federation,
) -> None:
    form = with_identifiers_in_free_text()
    preview = fed[UNIT].exchange.preview_request(
        request_type="preservation", recipient=AUTHORITY, form_json=form, strip=True
    )
    assert (
        json.loads(preview.form_json)["necessity"] == f"Call {REMOVED} or write to {REMOVED} today."
    )
    assert preview.notes
    assert preview.legal_basis == "budapest-art29"
    assert fed.network.calls == []  # a preview sends nothing

    filed = await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=form, strip=True
    )
    [call] = fed.network.calls
    member = fed[AUTHORITY].directory.find(UNIT)
    assert member is not None
    opened = open_envelope(
        call.envelope,
        recipient_keys=identity(AUTHORITY).keys,
        sender_signing_keys=member.signing_keys,
        sender_encryption_key=member.encryption_key,
    )
    assert opened.payload == preview.form_json
    assert filed.form_json == preview.form_json
    received = await fed[AUTHORITY].exchange.get_request(filed.request_id)
    assert received.form_json == preview.form_json


async def test_a_filed_request_is_stored_delivered_and_logged_on_both_sides(
    fed: Federation,
) -> None:
    filed = await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form()
    )
    assert filed.state is RequestState.DELIVERED
    assert filed.receipt_verified
    assert filed.receipt is not None
    assert filed.delivery is not None
    assert filed.delivery.status == "delivered"
    [outbound] = (
        await fed[UNIT].exchange.list_requests(direction=Direction.OUTBOUND, limit=10)
    ).requests
    assert outbound.request_id == filed.request_id
    assert outbound.peer == AUTHORITY

    sent = await fed[UNIT].leaves()
    assert [leaf.public.event for leaf in sent] == ["request.sent", "receipt.received"]
    assert {leaf.public.exchange_id for leaf in sent} == {filed.request_id}
    assert sent[0].public.sender == UNIT
    assert sent[0].public.recipient == AUTHORITY
    assert sent[0].public.legal_basis == "budapest-art29"

    received = await fed[AUTHORITY].leaves()
    assert [leaf.public.event for leaf in received] == ["request.received", "receipt.sent"]
    # The receipt promises the leaf that logged the request at the receiver.
    assert filed.receipt.body.audit_leaf_index == 0
    assert sent[1].public.promised_leaf == 0


async def test_filing_answers_after_its_wait_with_the_delivery_pending(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    tuning = Tuning(file_wait_s=0.1)
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=agency_database_urls, tuning=tuning
    ) as fed:
        fed.network.conditions(AUTHORITY).unreachable = True
        filed = await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=example_form()
        )
        assert filed.state is RequestState.SUBMITTED
        assert filed.delivery is not None
        assert filed.delivery.status == "pending"
        assert await fed[UNIT].events() == ["request.sent"]


async def test_a_full_outbox_refuses_new_requests_and_stores_nothing(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    tuning = Tuning(file_wait_s=0.05, outbox_capacity=1)
    async with in_memory_federation(
        [UNIT, AUTHORITY], directory_dir=tmp_path, database_url=agency_database_urls, tuning=tuning
    ) as fed:
        fed.network.conditions(AUTHORITY).unreachable = True
        await fed[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=example_form()
        )
        with pytest.raises(OverloadedError):
            await fed[UNIT].exchange.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=example_form()
            )
        assert len((await fed[UNIT].exchange.list_requests(direction=None, limit=10)).requests) == 1
        status = await fed[UNIT].exchange.node_status()
        assert status.outbox_pending == 1
        [backlog] = status.peers
        assert backlog.peer == AUTHORITY
