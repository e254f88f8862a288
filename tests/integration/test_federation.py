# SPDX-License-Identifier: Apache-2.0
"""The signed directory between running nodes: distribution, rotation without downtime,
revocation across the federation, rollback refused after restart, impostor certificates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from nacl.signing import SigningKey

from node.crypto.envelope import seal_envelope
from node.crypto.keys import AgencyKeys, key_id, rotate_key
from node.errors import DirectoryError
from node.federation import ceremony
from node.federation.document import SignedDirectory
from node.forms.registry import get_form_type, schemas_dir
from node.ids import AgencyId, new_exchange_id, new_message_id
from node.model.envelope import EnvelopeHeader, SealedEnvelope
from node.model.request import RequestState
from node.timeutil import now_ms
from node.tls import generate_tls_identity
from tests.integration.harness import (
    Federation,
    current_directory,
    make_configs,
    root_keys,
    running_federation,
    set_endpoint,
)
from tests.integration.test_delivery import black_hole
from tests.integration.test_exchange import deliver_raw, request_bytes

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


@pytest.fixture
def configs(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, Any]:
    return make_configs(tmp_path, node_database_urls, secretariat=OTHER)


@pytest.fixture
async def fed(configs: dict[str, Any]) -> AsyncIterator[Federation]:
    async with running_federation(configs) as federation:
        yield federation


async def install(fed: Federation, agency: str, document: SignedDirectory) -> None:
    assert await fed.nodes[agency].directory.install(document.to_json())


def draft(fed: Federation) -> SignedDirectory:
    """An editable copy of the version the nodes trust now."""
    return fed.nodes[UNIT].directory.document


def signed(fed: Federation, document: SignedDirectory) -> SignedDirectory:
    """``document`` signed by two of the three root keys (the threshold)."""
    for key in root_keys(fed.configs[UNIT])[:2]:
        document = ceremony.sign(document, key)
    return document


def sealed_by(
    fed: Federation, keys: AgencyKeys, *, recipient: str, directory_version: int
) -> SealedEnvelope:
    """A preservation request from the unit, signed with ``keys.signing``."""
    member = fed.nodes[UNIT].directory.find(recipient)
    assert member is not None
    created = now_ms()
    header = EnvelopeHeader(
        message_id=new_message_id(),
        exchange_id=new_exchange_id(),
        sequence=1,
        sender=AgencyId(UNIT),
        recipient=AgencyId(recipient),
        created_at_ms=created,
        expires_at_ms=created + 3_600_000,
        directory_version=directory_version,
        payload_type=get_form_type("preservation").payload_type,
        sender_encryption_key_id=keys.encryption_key_id,
        recipient_encryption_key_id=member.encryption_key_id,
    )
    return seal_envelope(
        header=header,
        payload=FORM,
        sender_keys=keys,
        recipient_encryption_key=member.encryption_key,
    )


async def file(fed: Federation, recipient: AgencyId = AUTHORITY) -> Any:
    return await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=recipient, form_json=FORM
    )


async def test_secretariat_publishes_and_every_node_fetches_it(fed: Federation) -> None:
    newer = signed(fed, ceremony.renew(draft(fed), now_ms=now_ms(), valid_days=30))
    await install(fed, OTHER, newer)  # `comity federation publish` to the secretariat's node
    for agency in (UNIT, AUTHORITY):
        assert fed.nodes[agency].directory.version == 1
        await fed.nodes[agency].directory_sync.sync_once()
        assert fed.nodes[agency].directory.version == 2
    status = await fed.nodes[UNIT].exchange.node_status()
    assert status.directory_version == 2
    assert status.directory_expires_at_ms == newer.body.expires_ms


async def test_a_stale_node_catches_up_from_the_envelope_it_receives(fed: Federation) -> None:
    newer = signed(fed, ceremony.renew(draft(fed), now_ms=now_ms(), valid_days=30))
    await install(fed, UNIT, newer)
    filed = await file(fed)
    assert filed.state is RequestState.DELIVERED
    # The envelope named version 2; the receiver fetched it from the sender before checking.
    assert fed.nodes[AUTHORITY].directory.version == 2
    assert fed.nodes[OTHER].directory.version == 1


async def test_a_stale_sender_catches_up_from_the_answer(fed: Federation) -> None:
    newer = signed(fed, ceremony.renew(draft(fed), now_ms=now_ms(), valid_days=30))
    await install(fed, AUTHORITY, newer)
    await file(fed)  # version 1 is within the grace period: accepted, and the answer says 2
    for _ in range(50):
        if fed.nodes[UNIT].directory.version == 2:
            break
        await asyncio.sleep(0.1)
    assert fed.nodes[UNIT].directory.version == 2


async def test_signing_key_rotation_without_downtime(fed: Federation) -> None:
    unit = fed.configs[UNIT]
    old_keys = AgencyKeys.load(unit.keys_dir)
    old_kid = old_keys.signing_key_id
    in_flight = sealed_by(fed, old_keys, recipient=AUTHORITY, directory_version=1)

    new_public = rotate_key(unit.keys_dir, "signing")  # `comity node rotate-key`
    rotated = ceremony.rotate_key(
        draft(fed),
        UNIT,
        purpose="signing",
        new_key=new_public,
        overlap_ms=3_600_000,
        now_ms=now_ms(),
    )
    await install(fed, UNIT, signed(fed, rotated))

    # The unit signs with the new key at once; the authority catches up and accepts it.
    filed = await file(fed)
    assert filed.state is RequestState.DELIVERED
    stored = await fed.nodes[AUTHORITY].exchange.get_request(filed.request_id)
    assert stored.state is RequestState.REGISTERED
    assert fed.nodes[AUTHORITY].directory.version == 2
    unit_member = fed.nodes[AUTHORITY].directory.find(UNIT)
    assert unit_member is not None
    assert unit_member.signing_key_order == (key_id(new_public), old_kid)

    # An envelope signed with the old key before the switch is still accepted (overlap).
    answer = await deliver_raw(fed, request_bytes(in_flight), client=UNIT, server=AUTHORITY)
    assert answer.receipt.message_id == in_flight.header.message_id


async def test_revocation_takes_effect_across_the_federation(fed: Federation) -> None:
    unit_keys = AgencyKeys.load(fed.configs[UNIT].keys_dir)
    before = sealed_by(fed, unit_keys, recipient=AUTHORITY, directory_version=1)
    accepted = await deliver_raw(fed, request_bytes(before), client=UNIT, server=AUTHORITY)
    late = sealed_by(fed, unit_keys, recipient=AUTHORITY, directory_version=1)

    revoked = ceremony.revoke_key(
        draft(fed), UNIT, key=unit_keys.signing_key_id, at_ms=now_ms() - 1000, now_ms=now_ms()
    )
    await install(fed, OTHER, signed(fed, revoked))
    for agency in (UNIT, AUTHORITY):
        await fed.nodes[agency].directory_sync.sync_once()
        assert fed.nodes[agency].directory.version == 2

    rows = fed.rows(AUTHORITY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(late), client=UNIT, server=AUTHORITY)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(caught.value.trailing_metadata() or ()).get("comity-error") == "key_revoked"
    assert "revoked" in (caught.value.details() or "")
    assert fed.rows(AUTHORITY) == rows
    # What was accepted before the revocation stays accepted.
    kept = await fed.nodes[AUTHORITY].exchange.get_request(accepted.receipt.exchange_id)
    assert kept.state is RequestState.REGISTERED
    # The unit itself can no longer sign anything, and says why.
    with pytest.raises(Exception, match="none of this node's signing keys is active"):
        await file(fed)


async def test_in_flight_messages_to_a_removed_member_are_reported(
    configs: dict[str, Any],
) -> None:
    async with black_hole() as port:
        set_endpoint(configs, OTHER, f"127.0.0.1:{port}")
        configs[UNIT] = replace(configs[UNIT], delivery_timeout_s=0.3, file_wait_s=0.5)
        async with running_federation(configs) as fed:
            filed = await file(fed, recipient=OTHER)
            assert filed.state is RequestState.SUBMITTED
            removed = ceremony.remove_member(draft(fed), OTHER, now_ms=now_ms())
            await install(fed, UNIT, signed(fed, removed))
            for _ in range(100):
                view = await fed.nodes[UNIT].exchange.get_request(filed.request_id)
                if view.state is RequestState.DELIVERY_FAILED:
                    break
                await asyncio.sleep(0.1)
            assert view.state is RequestState.DELIVERY_FAILED
            assert "no longer a federation member" in (view.last_error or "")
            status = await fed.nodes[UNIT].exchange.node_status()
            assert status.outbox_failed == 1


async def test_rollback_is_refused_and_survives_a_restart(configs: dict[str, Any]) -> None:
    first = current_directory(configs[AUTHORITY])
    async with running_federation(configs) as fed:
        newer = signed(fed, ceremony.renew(first, now_ms=now_ms(), valid_days=30))
        await install(fed, AUTHORITY, newer)
        with pytest.raises(DirectoryError) as caught:
            await fed.nodes[AUTHORITY].directory.install(first.to_json())
        assert caught.value.rule == "rollback"
    # Restarted with the old file beside it, the node keeps the newer version it trusts.
    assert current_directory(configs[AUTHORITY]).version == 1
    async with running_federation({AUTHORITY: configs[AUTHORITY]}) as fed:
        assert fed.nodes[AUTHORITY].directory.version == 2


async def test_a_directory_below_threshold_is_refused_by_the_node(fed: Federation) -> None:
    renewed = ceremony.renew(draft(fed), now_ms=now_ms(), valid_days=30)
    once = ceremony.sign(renewed, root_keys(fed.configs[UNIT])[0])
    with pytest.raises(DirectoryError) as caught:
        await fed.nodes[UNIT].directory.install(once.to_json())
    assert caught.value.rule == "threshold"
    assert "1 of the 2 required" in caught.value.message
    assert fed.nodes[UNIT].directory.version == 1


async def test_impostor_certificate_is_refused_at_the_handshake(fed: Federation) -> None:
    impostor_cert, impostor_key = generate_tls_identity(AgencyId(UNIT))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=fed.configs[AUTHORITY].tls_certificate.read_bytes(),
        private_key=impostor_key,
        certificate_chain=impostor_cert,
    )
    port = fed.nodes[AUTHORITY].federation_port
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{port}", credentials, options=(("grpc.ssl_target_name_override", AUTHORITY),)
    ) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/comity.v1.Federation/Deliver"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_replaced_certificate_is_refused_once_the_directory_changes(
    fed: Federation,
) -> None:
    new_cert, _ = generate_tls_identity(AgencyId(UNIT))
    changed = ceremony.set_endpoint(draft(fed), UNIT, tls_certificate=new_cert, now_ms=now_ms())
    await install(fed, AUTHORITY, signed(fed, changed))
    unit_keys = AgencyKeys.load(fed.configs[UNIT].keys_dir)
    envelope = sealed_by(fed, unit_keys, recipient=AUTHORITY, directory_version=2)
    # The unit still presents its old certificate: a new connection fails the handshake.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(envelope), client=UNIT, server=AUTHORITY)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_an_expired_directory_stops_the_exchange_until_renewed(fed: Federation) -> None:
    # Seconds matter: the version below expires at the start of a second 2-3 s from now.
    short = signed(fed, ceremony.renew(draft(fed), now_ms=now_ms(), valid_days=3 / 86400))
    await install(fed, UNIT, short)
    await asyncio.sleep((short.body.expires_ms - now_ms()) / 1000 + 0.05)
    with pytest.raises(DirectoryError) as caught:
        await file(fed)
    assert caught.value.rule == "expired"
    assert fed.rows(UNIT)["exchange"] == 0
    # The secretariat's next version is still accepted: renewal ends the freeze.
    renewed = signed(fed, ceremony.renew(short, now_ms=now_ms(), valid_days=30))
    await install(fed, UNIT, renewed)
    assert (await file(fed)).state is RequestState.DELIVERED


async def test_encryption_key_rotation_without_downtime(fed: Federation) -> None:
    authority = fed.configs[AUTHORITY]
    sealed_to_old = sealed_by(
        fed, AgencyKeys.load(fed.configs[UNIT].keys_dir), recipient=AUTHORITY, directory_version=1
    )
    new_public = rotate_key(authority.keys_dir, "encryption")
    rotated = ceremony.rotate_key(
        draft(fed),
        AUTHORITY,
        purpose="encryption",
        new_key=new_public,
        overlap_ms=3_600_000,
        now_ms=now_ms(),
    )
    await install(fed, UNIT, signed(fed, rotated))
    # The unit seals to the new key; the authority catches up, reloads its keys, opens it.
    filed = await file(fed)
    assert filed.state is RequestState.DELIVERED
    assert fed.nodes[AUTHORITY].directory.version == 2
    # An envelope sealed to the old key before the switch still opens.
    answer = await deliver_raw(fed, request_bytes(sealed_to_old), client=UNIT, server=AUTHORITY)
    assert answer.receipt.message_id == sealed_to_old.header.message_id


async def test_root_rotation_is_followed_by_every_node(fed: Federation) -> None:
    old_roots = root_keys(fed.configs[UNIT])
    new_roots = [SigningKey.generate() for _ in range(3)]
    rotated = ceremony.set_roots(
        draft(fed),
        root_keys=[bytes(k.verify_key) for k in new_roots],
        threshold=2,
        now_ms=now_ms(),
    )
    # Only the new holders signed: the nodes still trust the old roots and refuse it.
    only_new = rotated
    for key in new_roots[:2]:
        only_new = ceremony.sign(only_new, key)
    with pytest.raises(DirectoryError) as caught:
        await fed.nodes[OTHER].directory.install(only_new.to_json())
    assert caught.value.rule == "threshold"
    # Old and new holders signed: accepted, and from then on only the new roots count.
    both = only_new
    for key in old_roots[:2]:
        both = ceremony.sign(both, key)
    await install(fed, OTHER, both)
    after = ceremony.renew(both, now_ms=now_ms(), valid_days=30)
    by_old = after
    for key in old_roots:
        by_old = ceremony.sign(by_old, key)
    with pytest.raises(DirectoryError) as caught:
        await fed.nodes[OTHER].directory.install(by_old.to_json())
    assert caught.value.rule == "threshold"
    by_new = after
    for key in new_roots[1:]:
        by_new = ceremony.sign(by_new, key)
    await install(fed, OTHER, by_new)
    # A node that missed the rotation walks through it, version by version.
    await fed.nodes[UNIT].directory_sync.sync_once()
    assert fed.nodes[UNIT].directory.version == 3
