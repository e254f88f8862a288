# SPDX-License-Identifier: Apache-2.0
"""Evidence return between real nodes: manifest, sealed chunks, resumption, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from nacl.public import Box, PublicKey

from node.crypto.envelope import seal_envelope
from node.forms.registry import get_message_type, schemas_dir
from node.gen.comity.v1 import evidence_pb2, evidence_pb2_grpc
from node.ids import AgencyId, ExchangeId, new_exchange_id, new_message_id
from node.model.envelope import EnvelopeHeader, SealedEnvelope
from node.model.lifecycle import WrongRequestTypeError
from node.model.request import RequestState, RequestView
from node.services.evidence import build_manifest
from node.services.evidence_upload import CHUNK_SIZE, EvidenceFile
from node.timeutil import now_ms
from tests.integration.harness import Federation
from tests.integration.test_exchange import deliver_raw, request_bytes

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
# Evidence hands data over: a production order, never a preservation request (Art. 29).
FORM = (schemas_dir() / "examples" / "production.example.json").read_bytes()
PRESERVATION_FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


def body(kind: str, **fields: object) -> bytes:
    return json.dumps({"form_version": f"{kind}.v1", **fields}).encode()


async def accepted_request(
    fed: Federation, request_type: str = "production", form: bytes = FORM
) -> str:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type=request_type, recipient=AUTHORITY, form_json=form
    )
    await fed.nodes[AUTHORITY].exchange.send_message(
        request_id=view.request_id,
        kind="decision",
        body_json=body("decision", outcome="accepted", reason="Conditions met."),
    )
    return view.request_id


def files(tmp_path: Path) -> list[tuple[Path, str]]:
    """Two files to return, with their media types."""
    big = tmp_path / "posts.jsonl"
    big.write_bytes(os.urandom(CHUNK_SIZE * 3 + 1234))  # four chunks
    small = tmp_path / "subscriber.csv"
    small.write_bytes(b"account,registered\\nchirper:orbit_watch_77,2026-02-27\\n")
    return [(big, "application/jsonl"), (small, "text/csv")]


async def send(
    fed: Federation,
    request_id: str,
    sent: list[tuple[Path, str]],
    *,
    note: str | None = None,
    agency: str = AUTHORITY,
    piece: int = 100_000,
) -> RequestView:
    """Stream ``sent`` to ``agency``'s evidence service in pieces, as Local.UploadEvidence
    does (pieces that do not fall on chunk boundaries)."""

    async def data() -> AsyncIterator[tuple[int, bytes]]:
        for number, (path, _) in enumerate(sent):
            content = path.read_bytes()
            for start in range(0, len(content), piece):
                yield number, content[start : start + piece]

    return await fed.nodes[agency].evidence.upload(
        request_id=request_id,
        files=[EvidenceFile(name=path.name, media_type=media) for path, media in sent],
        note=note,
        data=data(),
    )


async def wait_complete(fed: Federation, request_id: str) -> None:
    for _ in range(100):
        [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
        if entry.complete:
            return
        await asyncio.sleep(0.1)
    pytest.fail("the evidence did not arrive")


async def read_back(fed: Federation, request_id: str, evidence_id: str, item: int) -> bytes:
    return b"".join(
        [d async for d in fed.nodes[UNIT].evidence.read_file(request_id, evidence_id, item)]
    )


async def test_evidence_arrives_verified_and_both_ends_agree(
    fed: Federation, tmp_path: Path
) -> None:
    request_id = await accepted_request(fed)
    sent = files(tmp_path)
    view = await send(fed, request_id, sent, note="Posts and subscriber records.")
    assert view.state is RequestState.ACCEPTED  # evidence does not move the request
    await wait_complete(fed, request_id)
    [received] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    assert [i.name for i in received.items] == ["posts.jsonl", "subscriber.csv"]
    assert [i.chunks_total for i in received.items] == [4, 1]
    assert all(i.verified for i in received.items)
    for index, (path, _) in enumerate(sent):
        data = await read_back(fed, request_id, received.evidence_id, index)
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    # The sender learns that the receiver holds everything.
    for _ in range(50):
        [outbound] = await fed.nodes[AUTHORITY].evidence.list_sets(request_id)
        if outbound.complete:
            break
        await asyncio.sleep(0.1)
    assert outbound.complete
    unit_view = await fed.nodes[UNIT].exchange.get_request(request_id)
    assert [m.kind for m in unit_view.history][-1] == "evidence"


async def test_an_interrupted_upload_resumes_where_it_stopped(
    fed: Federation, tmp_path: Path
) -> None:
    request_id = await accepted_request(fed)
    authority = fed.nodes[AUTHORITY]
    # Stop the uploader, so the manifest arrives but the chunks wait.
    assert authority._uploading is not None
    authority._uploading.cancel()
    await asyncio.gather(authority._uploading, return_exceptions=True)
    await send(fed, request_id, files(tmp_path))
    [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    # Two chunks of the first file arrive, then the link "breaks".
    await push(fed, entry.evidence_id, [(0, 0), (0, 1)])
    [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    assert [i.chunks_here for i in entry.items] == [2, 0]
    # The uploader resumes from chunk 2: a resent chunk would be refused as a duplicate.
    assert await authority.evidence.upload_pending() == 1
    [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    assert entry.complete
    assert [i.chunks_here for i in entry.items] == [4, 1]


async def push(fed: Federation, evidence_id: str, places: list[tuple[int, int]]) -> None:
    """Send the authority's stored chunks at ``places`` (file, chunk) to the unit."""
    chunks = [await sealed_chunk(fed, evidence_id, item, index) for item, index in places]
    await upload(fed, chunks)


async def sealed_chunk(
    fed: Federation, evidence_id: str, item: int, index: int, data: bytes | None = None
) -> evidence_pb2.EvidenceChunk:
    authority = fed.nodes[AUTHORITY]
    if data is None:
        [data] = await authority.database.run(
            lambda: authority.evidence._batch(evidence_id, item, index)[:1]
        )
    unit = authority.directory.find(UNIT)
    assert unit is not None
    box = Box(fed.keys(AUTHORITY).encryption, PublicKey(unit.encryption_key))
    return evidence_pb2.EvidenceChunk(
        evidence_id=evidence_id, item=item, index=index, sealed=bytes(box.encrypt(data))
    )


async def upload(
    fed: Federation, chunks: list[evidence_pb2.EvidenceChunk], *, client: str = AUTHORITY
) -> evidence_pb2.EvidenceProgress:
    async def stream() -> AsyncIterator[evidence_pb2.EvidenceChunk]:
        for chunk in chunks:
            yield chunk

    async with fed.channel(client=client, server=UNIT) as channel:
        stub = evidence_pb2_grpc.EvidenceStub(channel)
        return await stub.Upload(stream(), timeout=10)


async def refused(
    fed: Federation, chunks: list[evidence_pb2.EvidenceChunk], *, client: str = AUTHORITY
) -> grpc.aio.AioRpcError:
    rows = fed.rows(UNIT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload(fed, chunks, client=client)
    assert fed.rows(UNIT) == rows
    return caught.value


def code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("comity-error")


async def test_bad_chunks_are_refused_each_with_its_own_status(
    fed: Federation, tmp_path: Path
) -> None:
    request_id = await accepted_request(fed)
    authority = fed.nodes[AUTHORITY]
    assert authority._uploading is not None
    authority._uploading.cancel()
    await asyncio.gather(authority._uploading, return_exceptions=True)
    await send(fed, request_id, files(tmp_path))
    [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    eid = entry.evidence_id

    out_of_order = await refused(fed, [await sealed_chunk(fed, eid, 0, 1)])
    assert (out_of_order.code(), code(out_of_order)) == (
        grpc.StatusCode.FAILED_PRECONDITION, "chunk_out_of_order",
    )  # fmt: skip
    tampered = await refused(fed, [await sealed_chunk(fed, eid, 0, 0, data=b"forged data")])
    assert (tampered.code(), code(tampered)) == (
        grpc.StatusCode.INVALID_ARGUMENT, "chunk_digest_mismatch",
    )  # fmt: skip
    garbled = await sealed_chunk(fed, eid, 0, 0)
    garbled.sealed = garbled.sealed[:-1] + bytes([garbled.sealed[-1] ^ 1])
    broken = await refused(fed, [garbled])
    assert (broken.code(), code(broken)) == (grpc.StatusCode.UNAUTHENTICATED, "seal_broken")
    impostor = await refused(
        fed, [await sealed_chunk(fed, eid, 0, 0)], client="cc-central-authority"
    )
    assert (impostor.code(), code(impostor)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "peer_not_sender",
    )
    unknown = await refused(fed, [await sealed_chunk(fed, eid, 7, 0, data=b"x")])
    assert code(unknown) == "chunk_digest_mismatch"

    await push(fed, eid, [(0, 0)])
    duplicate = await refused(fed, [await sealed_chunk(fed, eid, 0, 0)])
    assert (duplicate.code(), code(duplicate)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "chunk_duplicate",
    )
    [entry] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    assert [i.chunks_here for i in entry.items] == [1, 0]


async def test_evidence_only_from_the_requested_party_and_after_a_decision(
    fed: Federation, tmp_path: Path
) -> None:
    view = await fed.nodes[UNIT].exchange.file_request(
        request_type="production", recipient=AUTHORITY, form_json=FORM
    )
    with pytest.raises(Exception, match="evidence is not allowed while the request is registered"):
        await send(fed, view.request_id, files(tmp_path))
    with pytest.raises(Exception, match="only the requested party sends evidence"):
        await send(fed, view.request_id, files(tmp_path), agency=UNIT)
    assert await fed.nodes[UNIT].evidence.list_sets(view.request_id) == []


async def test_a_preservation_request_takes_no_evidence_at_either_end(
    fed: Federation, tmp_path: Path
) -> None:
    request_id = await accepted_request(fed, "preservation", PRESERVATION_FORM)
    # The requested party's node refuses to send it ...
    with pytest.raises(WrongRequestTypeError, match="only preserves data"):
        await send(fed, request_id, files(tmp_path))
    assert await fed.nodes[AUTHORITY].evidence.list_sets(request_id) == []
    # ... and the requester's node refuses one that arrives anyway, storing nothing.
    manifest, _ = build_manifest(str(new_exchange_id()), [("a.csv", "text/csv", b"x")], None)
    envelope = sealed_message(fed, request_id, sequence=2, kind="evidence", body=manifest)
    rows = fed.rows(UNIT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await deliver_raw(fed, request_bytes(envelope), client=AUTHORITY, server=UNIT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert code(caught.value) == "wrong_request_type"
    assert "only preserves data" in (caught.value.details() or "")
    assert fed.rows(UNIT) == rows
    assert await fed.nodes[UNIT].evidence.list_sets(request_id) == []
    unit = await fed.nodes[UNIT].exchange.get_request(request_id)
    assert unit.state is RequestState.ACCEPTED


def sealed_message(
    fed: Federation, request_id: str, *, sequence: int, kind: str, body: bytes
) -> SealedEnvelope:
    """A correctly signed lifecycle message from the authority to the unit."""
    keys = fed.keys(AUTHORITY)
    member = fed.nodes[AUTHORITY].directory.find(UNIT)
    assert member is not None
    created = now_ms()
    header = EnvelopeHeader(
        message_id=new_message_id(),
        exchange_id=ExchangeId(request_id),
        sequence=sequence,
        sender=AgencyId(AUTHORITY),
        recipient=AgencyId(UNIT),
        created_at_ms=created,
        expires_at_ms=created + 3_600_000,
        directory_version=fed.nodes[AUTHORITY].directory.version,
        payload_type=get_message_type(kind).payload_type,
        sender_encryption_key_id=keys.encryption_key_id,
        recipient_encryption_key_id=member.encryption_key_id,
    )
    return seal_envelope(
        header=header,
        payload=body,
        sender_keys=keys,
        recipient_encryption_key=member.encryption_key,
    )
