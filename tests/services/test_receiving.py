# SPDX-License-Identifier: Apache-2.0
"""Receiving an envelope: each check of proto/README.md refuses what it should and stores
nothing; an accepted envelope gets a signed receipt, and a repeat gets the same one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from node.crypto.envelope import verify_receipt
from node.errors import (
    ComityError,
    DirectoryBehindError,
    FreshnessError,
    MisaddressedError,
    PeerIdentityError,
    ReplayError,
    SignatureError,
    SupersededDirectoryError,
    UnknownSenderError,
)
from node.ids import AgencyId
from node.model.envelope import SealedEnvelope, SignedReceipt
from node.model.request import Direction, RequestState
from tests.services.federation import (
    AUTHORITY,
    UNIT,
    Federation,
    Tuning,
    example_form,
    identity,
    in_memory_federation,
)

HOUR_MS = 3_600_000


async def receive(
    fed: Federation, envelope: SealedEnvelope, *, client: str = UNIT
) -> SignedReceipt:
    """Hand ``envelope`` to the authority as if ``client``'s node had called it."""
    return await fed[AUTHORITY].exchange.receive(
        envelope, peer_fingerprint=identity(client).tls_fingerprint
    )


def flip_signature(envelope: SealedEnvelope) -> SealedEnvelope:
    signature = envelope.signatures[0]
    bad = bytes([signature.signature[0] ^ 1]) + signature.signature[1:]
    return replace(envelope, signatures=(replace(signature, signature=bad),))


def request(fed: Federation, **header: object) -> SealedEnvelope:
    return fed.forge(signer=UNIT, recipient=AUTHORITY, payload=example_form(), **header)


@dataclass(frozen=True)
class Refusal:
    build: Callable[[Federation], SealedEnvelope]
    error: type[ComityError]
    named: str
    client: str = UNIT


REFUSALS = {
    "bad signature": Refusal(lambda fed: flip_signature(request(fed)), SignatureError, "signature"),
    "for another recipient": Refusal(
        lambda fed: fed.forge(signer=UNIT, recipient=UNIT, payload=example_form()),
        MisaddressedError,
        UNIT,
    ),
    "expired": Refusal(
        lambda fed: request(
            fed, created_at_ms=fed.clock() - 2 * HOUR_MS, expires_at_ms=fed.clock() - HOUR_MS
        ),
        FreshnessError,
        "expired",
    ),
    "made in the future": Refusal(
        lambda fed: request(
            fed, created_at_ms=fed.clock() + HOUR_MS, expires_at_ms=fed.clock() + 2 * HOUR_MS
        ),
        FreshnessError,
        "future",
    ),
    "unknown sender": Refusal(
        lambda fed: request(fed, sender=AgencyId("zz-nobody")), UnknownSenderError, "zz-nobody"
    ),
    "from another TLS client than the sender": Refusal(
        request, PeerIdentityError, UNIT, client=AUTHORITY
    ),
    "under a directory version nobody has": Refusal(
        lambda fed: request(fed, directory_version=7), DirectoryBehindError, "version 7"
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_refused_envelope_changes_nothing(fed: Federation, case: str) -> None:
    refusal = REFUSALS[case]
    with pytest.raises(refusal.error) as caught:
        await receive(fed, refusal.build(fed), client=refusal.client)
    assert refusal.named in caught.value.message
    assert (await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests == ()
    assert await fed[AUTHORITY].leaves() == []


async def test_the_receipt_is_signed_by_the_receiver_and_names_its_audit_leaf(
    fed: Federation,
) -> None:
    envelope = request(fed)
    receipt = await receive(fed, envelope)
    member = fed[UNIT].directory.find(AUTHORITY)
    assert member is not None
    [message] = (await fed[AUTHORITY].exchange.get_request(envelope.header.exchange_id)).history
    verify_receipt(
        receipt,
        receiver_signing_keys=member.signing_keys,
        message_id=envelope.header.message_id,
        exchange_id=envelope.header.exchange_id,
        sender=UNIT,
        receiver=AUTHORITY,
        envelope_digest=receipt.body.envelope_digest,
    )
    assert message.kind == "request"
    assert receipt.body.audit_leaf_index == 0
    leaves = await fed[AUTHORITY].leaves()
    assert [leaf.public.event for leaf in leaves] == ["request.received", "receipt.sent"]
    assert leaves[0].public.exchange_id == envelope.header.exchange_id
    view = await fed[AUTHORITY].exchange.get_request(envelope.header.exchange_id)
    assert view.state is RequestState.REGISTERED
    assert view.direction is Direction.INBOUND
    assert view.peer == UNIT
    assert view.receipt == receipt


async def test_a_repeated_delivery_gets_the_original_receipt_and_changes_nothing(
    fed: Federation,
) -> None:
    envelope = request(fed)
    first = await receive(fed, envelope)
    leaves = await fed[AUTHORITY].leaves()
    assert await receive(fed, envelope) == first
    assert await fed[AUTHORITY].leaves() == leaves
    assert (
        len((await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests) == 1
    )


async def test_a_message_id_reused_for_other_content_is_refused(fed: Federation) -> None:
    envelope = request(fed)
    await receive(fed, envelope)
    leaves = await fed[AUTHORITY].leaves()
    other = request(fed, message_id=envelope.header.message_id)
    with pytest.raises(ReplayError):
        await receive(fed, other)
    assert await fed[AUTHORITY].leaves() == leaves
    assert (
        len((await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests) == 1
    )


async def test_an_exchange_id_reused_by_a_new_message_is_refused(fed: Federation) -> None:
    envelope = request(fed)
    await receive(fed, envelope)
    with pytest.raises(ReplayError):
        await receive(fed, request(fed, exchange_id=envelope.header.exchange_id))
    assert (
        len((await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests) == 1
    )


async def test_an_older_directory_version_is_accepted_only_within_the_grace_period(
    tmp_path: Path, agency_database_urls: Callable[[str], str]
) -> None:
    grace_ms = HOUR_MS
    async with in_memory_federation(
        [UNIT, AUTHORITY],
        directory_dir=tmp_path,
        database_url=agency_database_urls,
        tuning=Tuning(directory_grace_ms=grace_ms),
    ) as fed:
        await fed.publish(AUTHORITY)
        assert (fed[UNIT].directory.version, fed[AUTHORITY].directory.version) == (1, 2)
        await receive(fed, request(fed))  # sealed just before its sender caught up
        fed.clock.advance(grace_ms + 1)
        with pytest.raises(SupersededDirectoryError):
            await receive(fed, request(fed))
        assert (
            len((await fed[AUTHORITY].exchange.list_requests(direction=None, limit=10)).requests)
            == 1
        )


async def test_a_receiver_behind_its_sender_catches_up_through_the_sender_first(
    fed: Federation,
) -> None:
    await fed.publish(UNIT)
    filed = await fed[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form()
    )
    assert filed.state is RequestState.DELIVERED
    assert fed[AUTHORITY].directory.version == 2
    assert fed[AUTHORITY].directory.document.signed_bytes() == fed.document.signed_bytes()
