# SPDX-License-Identifier: Apache-2.0
"""``comity audit verify AGENCY``: check another node's log the way a secretariat would.

Uses this node's mutual-TLS identity and members file to reach the audited node, verifies its
signed checkpoint with the checkpoint key the members file lists, streams every leaf and
recomputes the root, and checks that the log extends the checkpoint accepted last time (kept
beside the configuration, in ``audit-state/``).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
from rich.console import Console
from rich.progress import Progress

from node.audit.note import Checkpoint, NoteVerifier, open_note
from node.audit.verify import AuditResult, open_checkpoint, verify_log
from node.cli import output
from node.config import NodeConfig, load_config
from node.errors import ConfigError, UnknownAgencyError
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.members import Member, StaticDirectory
from node.services.audit import MAX_LEAVES_PER_CALL, log_origin
from node.transport.peer_client import PeerClient
from node.transport.status import error_from_rpc

CALL_TIMEOUT_S = 30.0


def verify(args: argparse.Namespace, console: Console) -> int:
    config = load_config(args.config)
    member = StaticDirectory.from_file(config.members_file).find(args.agency)
    if member is None:
        raise UnknownAgencyError(f"{args.agency} is not a federation member")
    verifier = NoteVerifier.for_key(log_origin(member.agency_id), member.checkpoint_key)
    state = _state_file(config, member.agency_id)
    previous = _previous(state, verifier)
    result, note = asyncio.run(
        _audit(
            config, member, verifier=verifier, previous=previous, console=console, quiet=args.json
        )
    )
    state.parent.mkdir(mode=0o700, exist_ok=True)
    state.write_text(note, encoding="utf-8")
    if args.json:
        output.print_json(console, _result_dict(result))
    else:
        _print(console, result)
    return 0


async def _audit(
    config: NodeConfig,
    member: Member,
    *,
    verifier: NoteVerifier,
    previous: Checkpoint | None,
    console: Console,
    quiet: bool,
) -> tuple[AuditResult, str]:
    peers = PeerClient(
        certificate=config.tls_certificate.read_bytes(),
        private_key=config.tls_private_key.read_bytes(),
        timeout_s=CALL_TIMEOUT_S,
    )
    try:
        stub = audit_pb2_grpc.AuditStub(peers.channel(member))
        note = (await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest())).note
        checkpoint = open_checkpoint(note, verifier)
        leaves = await _leaves(stub, member, checkpoint.size, console, quiet)
        proof: list[bytes] = []
        if previous is not None and 0 < previous.size <= checkpoint.size:
            request = audit_pb2.GetConsistencyProofRequest(
                old_size=previous.size, new_size=checkpoint.size
            )
            proof = list((await stub.GetConsistencyProof(request)).hashes)
        return verify_log(checkpoint, leaves, previous=previous, consistency=proof), note
    except grpc.aio.AioRpcError as e:
        raise error_from_rpc(e, peer=member.agency_id) from e
    finally:
        await peers.close()


async def _leaves(
    stub: audit_pb2_grpc.AuditAsyncStub, member: Member, size: int, console: Console, quiet: bool
) -> list[bytes]:
    leaves: list[bytes] = []
    with Progress(console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task(f"leaves of {member.agency_id}", total=size)
        while len(leaves) < size:
            end = min(size, len(leaves) + MAX_LEAVES_PER_CALL)
            request = audit_pb2.GetLeavesRequest(start=len(leaves), end=end)
            page = await stub.GetLeaves(request)
            if not page.leaves:
                break  # verify_log names the shortfall
            leaves.extend(page.leaves)
            progress.update(task, completed=len(leaves))
    return leaves


def _state_file(config: NodeConfig, agency: str) -> Path:
    return config.config_path.parent / "audit-state" / f"{agency}.checkpoint"


def _previous(state: Path, verifier: NoteVerifier) -> Checkpoint | None:
    if not state.exists():
        return None
    try:
        text, _ = open_note(state.read_text(encoding="utf-8"), [verifier])
        return Checkpoint.parse(text)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the accepted checkpoint {state}: {e}") from e


def _result_dict(result: AuditResult) -> dict[str, object]:
    return {
        "origin": result.origin,
        "size": result.size,
        "root": result.root.hex(),
        "events": dict(result.events),
        "consistent_with": result.consistent_with,
        "verified": True,
    }


def _print(console: Console, result: AuditResult) -> None:
    console.print(
        f"[green]Log {result.origin} verified[/green]: {result.size} leaves, root "
        f"{result.root.hex()}"
    )
    console.print("  checkpoint signed by the node's listed checkpoint key; leaves recomputed")
    if result.consistent_with is None:
        console.print("  first audit of this log: its checkpoint is now the accepted one")
    else:
        console.print(
            f"  consistent with the checkpoint accepted before (size {result.consistent_with})"
        )
    for event, count in sorted(result.events.items()):
        console.print(f"  {event}: {count}")
