# SPDX-License-Identifier: Apache-2.0
"""Evidence reaches the node as bytes its caller streams, never as a path the node opens: the
node's own files stay out of reach, a set past its limit is refused while it streams, and the
header is checked before any data is taken."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import grpc
import pytest

from node.cli.local_client import LocalClient, LocalNodeError, UploadFile
from node.crypto.keys import SIGNING_FILE
from node.errors import ErrorKind
from node.gen.comity.v1 import local_pb2, local_pb2_grpc
from node.services.evidence_upload import MAX_EVIDENCE_BYTES
from tests.integration.harness import Federation
from tests.integration.test_cli import comity
from tests.integration.test_evidence import AUTHORITY, UNIT, accepted_request, wait_complete

MiB = 1024 * 1024


def local_channel(fed: Federation, agency: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        f"unix:{fed.configs[agency].local_socket}",
        options=(("grpc.max_send_message_length", 64 * MiB),),
    )


def error_code(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get("comity-error")


def header(request_id: str, *names: str) -> local_pb2.EvidenceUpload:
    return local_pb2.EvidenceUpload(
        header=local_pb2.EvidenceUploadHeader(
            request_id=request_id,
            files=[local_pb2.EvidenceUploadFile(name=n, media_type="text/plain") for n in names],
        )
    )


def data(file: int, content: bytes) -> local_pb2.EvidenceUpload:
    return local_pb2.EvidenceUpload(data=local_pb2.EvidenceUploadData(file=file, data=content))


async def test_the_node_reads_no_evidence_from_a_path_it_is_given(fed: Federation) -> None:
    request_id = await accepted_request(fed)
    key = fed.configs[AUTHORITY].keys_dir / SIGNING_FILE
    assert key.is_file()  # the node could read it; it must not
    rows = fed.rows(AUTHORITY)
    async with local_channel(fed, AUTHORITY) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await local_pb2_grpc.LocalStub(channel).SendEvidence(
                local_pb2.SendEvidenceRequest(
                    request_id=request_id,
                    files=[local_pb2.EvidenceFile(path=str(key), media_type="text/plain")],
                )
            )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(caught.value) == "evidence_path_refused"
    assert fed.rows(AUTHORITY) == rows
    assert await fed.nodes[AUTHORITY].evidence.list_sets(request_id) == []
    assert await fed.nodes[UNIT].evidence.list_sets(request_id) == []


async def test_the_cli_streams_the_files_it_opened(
    fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = await accepted_request(fed)
    posts = tmp_path / "posts.jsonl"
    posts.write_bytes(os.urandom(700_000))  # three chunks
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    code, out, err = await comity(
        capsys, fed, AUTHORITY, "evidence", "send", request_id, str(posts), f"{empty}:text/csv",
        "--note", "Posts.",
    )  # fmt: skip
    assert code == 0, err
    assert "Evidence manifest sent" in out
    await wait_complete(fed, request_id)
    [received] = await fed.nodes[UNIT].evidence.list_sets(request_id)
    assert [(i.name, i.media_type, i.size) for i in received.items] == [
        ("posts.jsonl", "application/octet-stream", 700_000),
        ("empty.csv", "text/csv", 0),
    ]
    got = b"".join(
        [d async for d in fed.nodes[UNIT].evidence.read_file(request_id, received.evidence_id, 0)]
    )
    assert hashlib.sha256(got).digest() == hashlib.sha256(posts.read_bytes()).digest()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class EndlessFifo:
    """A file without end, as a FIFO someone keeps writing to: counts what was read from it,
    and the process's peak resident memory meanwhile."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.baseline = self.peak = rss_bytes()
        self._piece = os.urandom(256 * 1024)

    def read(self, size: int = -1) -> bytes:
        self.read_bytes += len(self._piece[:size])
        self.peak = max(self.peak, rss_bytes())
        return self._piece[:size]


async def test_a_set_past_its_limit_is_refused_while_it_streams(fed: Federation) -> None:
    request_id = await accepted_request(fed)
    rows = fed.rows(AUTHORITY)
    fifo = EndlessFifo()
    with (
        LocalClient(fed.configs[AUTHORITY].local_socket) as client,
        pytest.raises(LocalNodeError) as caught,
    ):
        await asyncio.to_thread(
            client.upload_evidence,
            request_id=request_id,
            files=[UploadFile(name="dump.bin", media_type="text/plain", stream=fifo)],
            note=None,
        )
    assert (caught.value.kind, caught.value.code) == (ErrorKind.OVERLOADED, "evidence_too_large")
    # Refused once past the limit, not after reading all there was ...
    assert MAX_EVIDENCE_BYTES < fifo.read_bytes < MAX_EVIDENCE_BYTES + 64 * MiB
    # ... and never held in memory: the node (this process) grew by far less than the set.
    assert fifo.peak - fifo.baseline < 128 * MiB
    assert fed.rows(AUTHORITY) == rows
    assert await fed.nodes[AUTHORITY].evidence.list_sets(request_id) == []


async def test_the_header_is_checked_before_any_data_is_taken(fed: Federation) -> None:
    request_id = await accepted_request(fed)
    rows = fed.rows(AUTHORITY)
    cases = [
        ([header(request_id, "../../keys/signing.key"), data(0, b"x")], "form_invalid"),
        ([header(request_id, "a.txt"), data(1, b"x")], "evidence_upload_order"),
        ([header(request_id, "a.txt", "b.txt"), data(1, b"x"), data(0, b"y")],
         "evidence_upload_order"),
        ([data(0, b"x")], "evidence_upload_order"),
        ([header(request_id, "a.txt"), header(request_id, "a.txt")], "evidence_upload_order"),
        ([header("3b0c3c9e-8d0e-4c36-9d7c-3f0a1d2e4b5c", "a.txt")], "not_found"),
    ]  # fmt: skip
    async with local_channel(fed, AUTHORITY) as channel:
        stub = local_pb2_grpc.LocalStub(channel)
        for messages, expected in cases:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.UploadEvidence(iter(messages), timeout=30)
            assert error_code(caught.value) == expected
    assert fed.rows(AUTHORITY) == rows
    # A request that takes no evidence (it is the unit's own) is refused before the data.
    async with local_channel(fed, UNIT) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await local_pb2_grpc.LocalStub(channel).UploadEvidence(
                iter([header(request_id, "a.txt"), data(0, b"x")]), timeout=30
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
