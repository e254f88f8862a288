# SPDX-License-Identifier: Apache-2.0
"""Who the federation port serves, between real nodes (security review, issue 13).

Every Comity call is admitted by the exact certificate the directory lists (point 3), again on
every call and with connections closed after a maximum age (point 9), a bounded number of
calls per member (point 8); an envelope's header cannot make a node fetch a directory before
its sender is authenticated, and evidence progress is told only to the exchange's party
(point 11).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.federation import ceremony
from node.federation.document import SignedDirectory, parse_directory
from node.forms.registry import schemas_dir
from node.gen.comity.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    evidence_pb2,
    evidence_pb2_grpc,
)
from node.ids import AgencyId
from node.timeutil import now_ms
from tests.integration.harness import (
    Federation,
    make_configs,
    root_keys,
    running_federation,
)
from tests.integration.test_evidence import accepted_request, files, wait_complete
from tests.integration.test_exchange import forge, request_bytes

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = b'{"form_version": "preservation.v1"}'
PRESERVATION = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()
GET_DIRECTORY = "comity.v1.Directory/GetDirectory"


def tls_identity(
    common_name: str, *, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate naming ``common_name``: a CA of its own as member certificates were made
    before the review, or, with ``issuer``, one that issuer signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def channel_as(fed: Federation, certificate: bytes, key: bytes, *, server: str) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=fed.configs[server].tls_certificate.read_bytes(),
        private_key=key,
        certificate_chain=certificate,
    )
    return grpc.aio.secure_channel(
        f"127.0.0.1:{fed.nodes[server].federation_port}",
        credentials,
        options=(("grpc.ssl_target_name_override", server),),
    )


def signed(fed: Federation, document: SignedDirectory) -> SignedDirectory:
    for key in root_keys(fed.configs[UNIT])[:2]:
        document = ceremony.sign(document, key)
    return document


def listing(fed: Federation, agency: str, certificate: bytes) -> SignedDirectory:
    """The next directory version with ``certificate`` listed for ``agency`` as it is, as an
    old directory may still list it (the ceremony no longer lists such certificates)."""
    current = fed.nodes[UNIT].directory.document
    draft = json.loads(ceremony.renew(current, now_ms=now_ms(), valid_days=365).to_json())
    for member in draft["signed"]["members"]:
        if member["agency_id"] == agency:
            member["tls_certificate"] = certificate.decode("ascii")
    return signed(fed, parse_directory(json.dumps(draft).encode()))


async def refusal(call: Any) -> tuple[grpc.StatusCode, str | None]:
    """The status and ``comity-error`` code a call ends with (OK, None when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as e:
        trailers = dict(e.trailing_metadata() or ())
        code = trailers.get("comity-error")
        return e.code(), code if isinstance(code, str) else None
    return grpc.StatusCode.OK, None


def get_directory(channel: grpc.aio.Channel) -> Any:
    stub = directory_pb2_grpc.DirectoryStub(channel)
    return stub.GetDirectory(directory_pb2.GetDirectoryRequest(), timeout=5)


def get_leaves(channel: grpc.aio.Channel) -> Any:
    stub = audit_pb2_grpc.AuditStub(channel)
    return stub.GetLeaves(audit_pb2.GetLeavesRequest(start=0, end=1), timeout=5)


DENIED = (grpc.StatusCode.PERMISSION_DENIED, "peer_not_member")
SERVED = (grpc.StatusCode.OK, None)


# --- point 3: a member's key cannot mint certificates the federation accepts -------------------


async def test_a_certificate_minted_with_a_listed_ca_key_is_refused_on_every_service(
    fed: Federation,
) -> None:
    # An old directory lists the unit with a certificate that is a CA, as all were once.
    old_style = tls_identity(UNIT)
    assert await fed.nodes[AUTHORITY].directory.install(
        listing(fed, UNIT, pem(old_style[0])).to_json()
    )
    outsider = tls_identity("outsider-contractor", issuer=old_style)
    async with channel_as(fed, pem(outsider[0]), key_pem(outsider[1]), server=AUTHORITY) as channel:
        assert await refusal(get_directory(channel)) == DENIED
        assert await refusal(get_leaves(channel)) == DENIED
    # The listed certificate itself, exactly, is still served.
    async with channel_as(
        fed, pem(old_style[0]), key_pem(old_style[1]), server=AUTHORITY
    ) as channel:
        assert await refusal(get_directory(channel)) == SERVED


async def test_a_certificate_signed_with_a_members_node_key_fails_the_handshake(
    fed: Federation,
) -> None:
    certificate, key = fed.tls(UNIT)
    issuer = (
        x509.load_pem_x509_certificate(certificate),
        serialization.load_pem_private_key(key, password=None),
    )
    assert isinstance(issuer[1], ec.EllipticCurvePrivateKey)
    outsider = tls_identity("outsider-contractor", issuer=(issuer[0], issuer[1]))
    async with channel_as(fed, pem(outsider[0]), key_pem(outsider[1]), server=AUTHORITY) as channel:
        status, _ = await refusal(get_leaves(channel))
    assert status == grpc.StatusCode.UNAVAILABLE


# --- point 9: a removed member loses its open connections ---------------------------------------


@pytest.fixture
def short_lived(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, Any]:
    """The authority closes every federation connection after about three seconds."""
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(
        configs[AUTHORITY], max_connection_age_s=3.0, max_connection_age_grace_s=0.5
    )
    return configs


async def test_a_removed_member_is_refused_at_once_and_disconnected_soon(
    short_lived: dict[str, Any],
) -> None:
    async with (
        running_federation(short_lived) as fed,
        fed.channel(client=UNIT, server=AUTHORITY) as channel,
    ):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=PRESERVATION
        )
        assert await refusal(get_leaves(channel)) == SERVED
        removed = ceremony.remove_member(
            fed.nodes[AUTHORITY].directory.document, UNIT, now_ms=now_ms()
        )
        assert await fed.nodes[AUTHORITY].directory.install(signed(fed, removed).to_json())
        # The very next call on the connection the unit already had open is refused ...
        assert await refusal(get_leaves(channel)) == DENIED
        # ... and once the connection's age is over, the unit cannot open another.
        await asyncio.sleep(3 * 1.1 + 0.5 + 0.5)
        status, _ = await refusal(get_leaves(channel))
        assert status == grpc.StatusCode.UNAVAILABLE


# --- point 11: authenticate the sender before its header counts ---------------------------------


async def test_a_header_naming_another_sender_makes_no_catch_up(fed: Federation) -> None:
    def fetches() -> int:
        return sum(1 for s in fed.spans.get_finished_spans() if s.name == GET_DIRECTORY)

    before = fetches()
    envelope = forge(
        fed, signer=UNIT, recipient=AUTHORITY, payload=FORM, sender=OTHER, directory_version=9
    )
    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/comity.v1.Federation/Deliver"
        )
        outcome = await refusal(call(request_bytes(envelope), timeout=10))
    assert outcome == (grpc.StatusCode.PERMISSION_DENIED, "peer_not_sender")
    assert fetches() == before  # no node was asked for a directory


async def test_evidence_progress_is_told_only_to_the_party_returning_it(
    fed: Federation, tmp_path: Path
) -> None:
    request_id = await accepted_request(fed)
    await fed.nodes[AUTHORITY].evidence.send(
        request_id=request_id, files=files(tmp_path), note="Posts."
    )
    await wait_complete(fed, request_id)
    [received] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    question = evidence_pb2.EvidenceStatusRequest(evidence_id=received.evidence_id)
    async with fed.channel(client=AUTHORITY, server=UNIT) as channel:
        progress = await evidence_pb2_grpc.EvidenceStub(channel).Status(question, timeout=5)
    assert progress.complete
    async with fed.channel(client=OTHER, server=UNIT) as channel:
        status, code = await refusal(
            evidence_pb2_grpc.EvidenceStub(channel).Status(question, timeout=5)
        )
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "not_found")


# --- point 8: one member cannot take every call slot ---------------------------------------------


@pytest.fixture
def capped(tmp_path: Path, node_database_urls: Callable[[str], str]) -> dict[str, Any]:
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], max_calls_per_peer=2)
    return configs


async def test_idle_streams_of_one_member_leave_room_for_the_others(
    capped: dict[str, Any],
) -> None:
    never = asyncio.Event()

    async def nothing() -> AsyncIterator[evidence_pb2.EvidenceChunk]:
        await never.wait()
        yield evidence_pb2.EvidenceChunk()

    async with (
        running_federation(capped) as fed,
        fed.channel(client=UNIT, server=AUTHORITY) as unit,
        fed.channel(client=OTHER, server=AUTHORITY) as other,
    ):
        idle = [evidence_pb2_grpc.EvidenceStub(unit).Upload(nothing()) for _ in range(2)]
        await asyncio.sleep(0.5)  # both streams are open at the authority
        assert await refusal(get_directory(unit)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "peer_call_limit",
        )
        assert await refusal(get_directory(other)) == SERVED
        health = health_pb2_grpc.HealthStub(unit).Check(
            health_pb2.HealthCheckRequest(service="comity.v1.Federation"), timeout=5
        )
        assert (await health).status == health_pb2.HealthCheckResponse.SERVING
        for call in idle:
            call.cancel()
        await asyncio.sleep(0.5)
        assert await refusal(get_directory(unit)) == SERVED
