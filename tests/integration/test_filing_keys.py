# SPDX-License-Identifier: Apache-2.0
"""Idempotent filing between real nodes: a request filed under a key is filed once, however
often the call is repeated; the key with another request is refused. And paging of the list."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from node.errors import MalformedError
from node.forms.registry import schemas_dir
from node.gen.comity.v1 import local_pb2, local_pb2_grpc
from node.ids import AgencyId
from node.model.request import Direction
from node.services.exchange.idempotency import IdempotencyKeyReusedError
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
OTHER = AgencyId("cc-central-authority")
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


async def inbound(fed: Federation, agency: str) -> int:
    page = await fed.nodes[agency].exchange.list_requests(direction=Direction.INBOUND, limit=100)
    return len(page.requests)


async def test_a_filing_repeated_under_its_key_is_answered_not_filed_again(
    fed: Federation,
) -> None:
    unit = fed.nodes[UNIT].exchange
    first = await unit.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM, idempotency_key="case-7"
    )
    again = await unit.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM, idempotency_key="case-7"
    )
    assert again.request_id == first.request_id
    assert again.idempotency_key == "case-7"
    assert again.state.value == "delivered"
    assert await inbound(fed, AUTHORITY) == 1
    outbound = await unit.list_requests(direction=Direction.OUTBOUND, limit=100)
    assert [v.request_id for v in outbound.requests] == [first.request_id]
    # Without a key, or under another, the same form is another request.
    other = await unit.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM, idempotency_key="case-8"
    )
    assert other.request_id != first.request_id
    assert await inbound(fed, AUTHORITY) == 2


async def test_the_same_key_with_another_request_is_refused_and_nothing_is_filed(
    fed: Federation,
) -> None:
    unit = fed.nodes[UNIT].exchange
    await unit.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=FORM, idempotency_key="k-1"
    )
    rows = fed.rows(UNIT)
    changed = json.loads(FORM)
    changed["offence"]["summary_of_facts"] += " More facts."
    for recipient, form in ((OTHER, FORM), (AUTHORITY, json.dumps(changed).encode())):
        with pytest.raises(IdempotencyKeyReusedError, match="use a new key"):
            await unit.file_request(
                request_type="preservation",
                recipient=recipient,
                form_json=form,
                idempotency_key="k-1",
            )
    assert fed.rows(UNIT) == rows
    assert await inbound(fed, OTHER) == 0
    # Through the Local API: ALREADY_EXISTS with the stable code.
    async with grpc.aio.insecure_channel(f"unix:{fed.configs[UNIT].local_socket}") as channel:
        stub = local_pb2_grpc.LocalStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.FileRequest(
                local_pb2.FileRequestRequest(
                    request_type="preservation",
                    recipient=OTHER,
                    form_json=FORM,
                    idempotency_key="k-1",
                )
            )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert dict(caught.value.trailing_metadata() or ())["comity-error"] == "idempotency_key_reused"
    assert fed.rows(UNIT) == rows


async def test_concurrent_filings_under_one_key_file_one_request(fed: Federation) -> None:
    unit = fed.nodes[UNIT].exchange
    views = await asyncio.gather(
        *(
            unit.file_request(
                request_type="preservation",
                recipient=AUTHORITY,
                form_json=FORM,
                idempotency_key="burst",
            )
            for _ in range(4)
        )
    )
    assert len({v.request_id for v in views}) == 1
    assert fed.rows(UNIT)["exchange"] == 1
    for _ in range(50):  # the answers may come before the delivery
        if await inbound(fed, AUTHORITY) == 1:
            break
        await asyncio.sleep(0.1)
    assert await inbound(fed, AUTHORITY) == 1
    assert fed.rows(AUTHORITY)["message"] == 1


@pytest.mark.parametrize("key", ["with space", "x" * 129, "ключ", ""])
async def test_a_malformed_key_is_refused(fed: Federation, key: str) -> None:
    rows = fed.rows(UNIT)
    with pytest.raises(MalformedError, match="idempotency key"):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=FORM, idempotency_key=key
        )
    assert fed.rows(UNIT) == rows


async def test_requests_are_listed_page_after_page(fed: Federation) -> None:
    unit = fed.nodes[UNIT].exchange
    filed = [
        (
            await unit.file_request(
                request_type="preservation", recipient=AUTHORITY, form_json=FORM
            )
        ).request_id
        for _ in range(5)
    ]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await unit.list_requests(direction=None, limit=2, page_token=token)
        seen += [v.request_id for v in page.requests]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert sorted(seen) == sorted(filed)
    assert len(seen) == len(set(seen))
    whole = await unit.list_requests(direction=None, limit=5)
    assert [v.request_id for v in whole.requests] == seen  # same order as one page
    assert whole.next_page_token == ""
    with pytest.raises(MalformedError, match="page token"):
        await unit.list_requests(direction=None, limit=2, page_token="not a token")
