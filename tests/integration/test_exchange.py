# SPDX-License-Identifier: Apache-2.0
"""Two and three real nodes exchanging over mutual TLS, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from node import wire
from node.crypto.envelope import seal_envelope
from node.errors import FormValidationError, UnknownAgencyError
from node.forms.registry import get_form_type, schemas_dir
from node.gen.comity.v1 import federation_pb2
from node.ids import AgencyId, new_exchange_id, new_message_id
from node.model.envelope import EnvelopeHeader, SealedEnvelope
from node.model.request import RequestState
from node.timeutil import now_ms
from tests.integration.harness import Federation

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
DELIVER = "/comity.v1.Federation/Deliver"


@pytest.fixture
def example_form() -> bytes:
    return (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


def forge(
    fed: Federation, *, signer: str, recipient: str, payload: bytes, **header: Any
) -> SealedEnvelope:
    """A correctly signed and sealed envelope from ``signer`` with header overrides."""
    directory = fed.nodes[signer].directory
    member = directory.find(recipient)
    assert member is not None
    keys = fed.keys(signer)
    created = now_ms()
    fields: dict[str, Any] = {
        "message_id": new_message_id(),
        "exchange_id": new_exchange_id(),
        "sequence": 1,
        "sender": AgencyId(signer),
        "recipient": AgencyId(recipient),
        "created_at_ms": created,
        "expires_at_ms": created + 3_600_000,
        "directory_version": directory.version,
        "payload_type": get_form_type("preservation").payload_type,
        "sender_encryption_key_id": keys.encryption_key_id,
        "recipient_encryption_key_id": member.encryption_key_id,
    }
    fields.update(header)
    return seal_envelope(
        header=EnvelopeHeader(**fields),
        payload=payload,
        sender_keys=keys,
        recipient_encryption_key=member.encryption_key,
    )


async def deliver_raw(
    fed: Federation, data: bytes, *, client: str | None, server: str
) -> federation_pb2.DeliverResponse:
    async with fed.channel(client=client, server=server) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(DELIVER)
        reply = await call(data, timeout=10)
        return federation_pb2.DeliverResponse.FromString(reply)


def request_bytes(envelope: SealedEnvelope) -> bytes:
    return federation_pb2.DeliverRequest(
        envelope=wire.envelope_to_proto(envelope)
    ).SerializeToString()


def canonical(form: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(form)
    return value


async def test_preservation_request_is_registered_and_receipt_verified(
    fed: Federation, example_form: bytes
) -> None:
    filed = await fed.nodes[UNIT].exchange.file_request(
        request_type="preservation", recipient=AUTHORITY, form_json=example_form
    )
    assert filed.state is RequestState.DELIVERED
    assert filed.receipt_verified
    assert filed.receipt is not None
    received = await fed.nodes[AUTHORITY].exchange.get_request(filed.request_id)
    assert received.state is RequestState.REGISTERED
    assert received.peer == UNIT
    assert received.form_json == filed.form_json
    assert received.receipt == filed.receipt
    assert fed.rows(OTHER)["exchange"] == 0


async def test_repeated_delivery_returns_the_original_receipt(
    fed: Federation, example_form: bytes
) -> None:
    envelope = forge(fed, signer=UNIT, recipient=AUTHORITY, payload=example_form)
    first = await deliver_raw(fed, request_bytes(envelope), client=UNIT, server=AUTHORITY)
    rows = fed.rows(AUTHORITY)
    second = await deliver_raw(fed, request_bytes(envelope), client=UNIT, server=AUTHORITY)
    assert second.receipt == first.receipt
    assert fed.rows(AUTHORITY) == rows


async def test_same_message_id_with_other_content_is_refused(
    fed: Federation, example_form: bytes
) -> None:
    envelope = forge(fed, signer=UNIT, recipient=AUTHORITY, payload=example_form)
    await deliver_raw(fed, request_bytes(envelope), client=UNIT, server=AUTHORITY)
    rows = fed.rows(AUTHORITY)
    other = forge(
        fed,
        signer=UNIT,
        recipient=AUTHORITY,
        payload=example_form,
        message_id=envelope.header.message_id,
    )
    await expect_refusal(
        fed, request_bytes(other), grpc.StatusCode.ALREADY_EXISTS, "replayed_message_id"
    )
    assert fed.rows(AUTHORITY) == rows


async def expect_refusal(
    fed: Federation,
    data: bytes,
    status: grpc.StatusCode,
    code: str,
    *,
    client: str | None = UNIT,
) -> grpc.aio.AioRpcError:
    rows = fed.rows(AUTHORITY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, data, client=client, server=AUTHORITY)
    error = caught.value
    assert error.code() == status, error.details()
    trailers = dict(error.trailing_metadata() or ())
    assert trailers.get("comity-error") == code, error.details()
    assert fed.rows(AUTHORITY) == rows
    return error


def flip_signature(envelope: SealedEnvelope) -> SealedEnvelope:
    signature = envelope.signatures[0]
    bad = bytes([signature.signature[0] ^ 1]) + signature.signature[1:]
    return replace(envelope, signatures=(replace(signature, signature=bad),))


def twice(envelope: SealedEnvelope) -> SealedEnvelope:
    return replace(envelope, signatures=envelope.signatures * 2)


BAD_INPUTS: dict[str, tuple[Callable[[Federation, bytes], bytes], grpc.StatusCode, str, str]] = {
    "malformed bytes": (
        lambda fed, form: b"\xff\x00 definitely not protobuf",
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
        "not a valid protobuf",
    ),
    "empty request": (
        lambda fed, form: b"",
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
        "no envelope",
    ),
    "for another recipient": (
        lambda fed, form: request_bytes(forge(fed, signer=UNIT, recipient=OTHER, payload=form)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "misaddressed",
        OTHER,
    ),
    "an unknown sender, not the TLS client": (
        lambda fed, form: request_bytes(
            forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form, sender=AgencyId("zz-nobody"))
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "peer_not_sender",
        "zz-nobody",
    ),
    "bad signature": (
        lambda fed, form: request_bytes(
            flip_signature(forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form))
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "bad_signature",
        "signature",
    ),
    "unsigned": (
        lambda fed, form: request_bytes(
            replace(forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form), signatures=())
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "bad_signature",
        "no signature",
    ),
    "one signature listed twice": (
        lambda fed, form: request_bytes(
            twice(forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
        "twice",
    ),
    "directory version 0": (
        lambda fed, form: request_bytes(
            forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form, directory_version=0)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "malformed",
        "directory_version",
    ),
    "form failing its schema": (
        lambda fed, form: request_bytes(
            forge(fed, signer=UNIT, recipient=AUTHORITY, payload=b'{"form_version": "x"}')
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "form_invalid",
        "",
    ),
    "unknown payload type": (
        lambda fed, form: request_bytes(
            forge(fed, signer=UNIT, recipient=AUTHORITY, payload=form, payload_type="text/plain")
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown_request_type",
        "text/plain",
    ),
    "expired": (
        lambda fed, form: request_bytes(
            forge(
                fed,
                signer=UNIT,
                recipient=AUTHORITY,
                payload=form,
                created_at_ms=now_ms() - 7_200_000,
                expires_at_ms=now_ms() - 3_600_000,
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "not_fresh",
        "expired",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_is_refused_with_its_status_and_changes_nothing(
    fed: Federation, example_form: bytes, case: str
) -> None:
    build, status, code, named = BAD_INPUTS[case]
    error = await expect_refusal(fed, build(fed, example_form), status, code)
    assert named in (error.details() or "")


async def test_tls_client_other_than_the_sender_is_refused(
    fed: Federation, example_form: bytes
) -> None:
    envelope = forge(fed, signer=UNIT, recipient=AUTHORITY, payload=example_form)
    await expect_refusal(
        fed,
        request_bytes(envelope),
        grpc.StatusCode.PERMISSION_DENIED,
        "peer_not_sender",
        client=OTHER,
    )


async def test_client_without_certificate_fails_the_handshake(
    fed: Federation, example_form: bytes
) -> None:
    rows = fed.rows(AUTHORITY)
    envelope = forge(fed, signer=UNIT, recipient=AUTHORITY, payload=example_form)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(envelope), client=None, server=AUTHORITY)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert fed.rows(AUTHORITY) == rows


async def test_client_certificate_not_in_the_membership_fails_the_handshake(
    fed: Federation, example_form: bytes, tmp_path: Path
) -> None:
    from node.tls import generate_tls_identity

    cert, key = generate_tls_identity(AgencyId(UNIT))  # right name, unknown certificate
    credentials = grpc.ssl_channel_credentials(
        root_certificates=fed.configs[AUTHORITY].tls_certificate.read_bytes(),
        private_key=key,
        certificate_chain=cert,
    )
    envelope = forge(fed, signer=UNIT, recipient=AUTHORITY, payload=example_form)
    rows = fed.rows(AUTHORITY)
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{fed.nodes[AUTHORITY].federation_port}",
        credentials,
        options=(("grpc.ssl_target_name_override", AUTHORITY),),
    ) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(DELIVER)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_bytes(envelope), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert fed.rows(AUTHORITY) == rows


async def test_invalid_form_is_refused_before_anything_is_stored_or_sent(
    fed: Federation, example_form: bytes
) -> None:
    form = canonical(example_form)
    del form["necessity"]
    with pytest.raises(FormValidationError, match="necessity"):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=json.dumps(form).encode()
        )
    assert fed.rows(UNIT)["exchange"] == 0
    assert fed.rows(AUTHORITY)["exchange"] == 0


async def test_unknown_recipient_is_refused(fed: Federation, example_form: bytes) -> None:
    with pytest.raises(UnknownAgencyError):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AgencyId("zz-nobody"), form_json=example_form
        )


async def test_health_is_served_on_both_ports_and_reflection_on_the_local_socket_only(
    fed: Federation,
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async def services(channel: grpc.aio.Channel) -> list[str]:
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        return [s.name async for reply in stream for s in reply.list_services_response.service]

    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="comity.v1.Federation"), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await services(channel)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    async with grpc.aio.insecure_channel(f"unix:{fed.configs[AUTHORITY].local_socket}") as local:
        names = await services(local)
    assert "comity.v1.Local" in names
    assert "grpc.health.v1.Health" in names
