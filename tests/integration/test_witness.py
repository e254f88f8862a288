# SPDX-License-Identifier: Apache-2.0
"""Witnesses cosign only consistent extensions; auditors can require a quorum of them."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from node.audit.names import log_origin
from node.audit.note import Checkpoint, sign_note, split_note
from node.cli.main import main
from node.forms.registry import schemas_dir
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.ids import AgencyId
from tests.integration.harness import Federation

UNIT, AUTHORITY, OTHER = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
FORM = (schemas_dir() / "examples" / "preservation.example.json").read_bytes()


async def file(fed: Federation, n: int) -> None:
    for _ in range(n):
        await fed.nodes[UNIT].exchange.file_request(
            request_type="preservation", recipient=AUTHORITY, form_json=FORM
        )


async def verify(
    fed: Federation, capsys: pytest.CaptureFixture[str], quorum: int
) -> tuple[int, str, str]:
    config = str(fed.configs[UNIT].config_path)
    argv = ["audit", "verify", AUTHORITY, "--quorum", str(quorum), "--json", "--config", config]
    code = await asyncio.to_thread(main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cosigned_checkpoint_meets_the_quorum(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await file(fed, 2)
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    code, out, err = await verify(fed, capsys, quorum=2)
    assert code == 0, err
    assert json.loads(out)["witnesses"] == [
        f"comity/{UNIT}/witness/v1",
        f"comity/{OTHER}/witness/v1",
    ]
    await file(fed, 1)  # the log grows: witnesses need a consistency proof this time
    assert await fed.nodes[AUTHORITY].collect_cosignatures() == 2
    code, out, err = await verify(fed, capsys, quorum=2)
    assert code == 0, err
    code, _, err = await verify(fed, capsys, quorum=3)
    assert code == 1
    assert "the policy asks for 3" in err


async def add_checkpoint(
    fed: Federation, note: str, old_size: int, proof: list[bytes] | None = None
) -> grpc.aio.AioRpcError | str:
    async with fed.channel(client=AUTHORITY, server=UNIT) as channel:
        try:
            reply = await audit_pb2_grpc.WitnessStub(channel).AddCheckpoint(
                audit_pb2.AddCheckpointRequest(
                    old_size=old_size, consistency_proof=proof or [], note=note
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError as e:
            return e
        return reply.line


async def test_witness_refuses_a_split_view(fed: Federation) -> None:
    await file(fed, 2)
    await fed.nodes[AUTHORITY].collect_cosignatures()
    honest = await fed.nodes[AUTHORITY].audit.signed_checkpoint()
    size = int(split_note(honest)[0].split("\n")[1])
    # The same log, same size, other root, signed with the log's real key: a split view.
    forged = sign_note(
        Checkpoint(origin=log_origin(AUTHORITY), size=size + 1, root=bytes(32)).text(),
        name=log_origin(AUTHORITY),
        key=fed.keys(AUTHORITY).checkpoint,
    )
    refused = await add_checkpoint(fed, forged, old_size=size)
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not consistent" in (refused.details() or "")

    stale = await add_checkpoint(fed, honest, old_size=0)
    assert isinstance(stale, grpc.aio.AioRpcError)
    assert f"holds size {size}" in (stale.details() or "")


async def test_witness_cosigns_only_member_logs(fed: Federation) -> None:
    note = sign_note(
        Checkpoint(origin="comity/zz-nobody/audit/v1", size=0, root=bytes(32)).text(),
        name="comity/zz-nobody/audit/v1",
        key=fed.keys(AUTHORITY).checkpoint,
    )
    refused = await add_checkpoint(fed, note, old_size=0)
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
