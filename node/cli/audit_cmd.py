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
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.progress import Progress

from node.audit.note import Checkpoint, NoteError, NoteVerifier, open_note, verify_cosignatures
from node.audit.reconcile import Finding, reconcile
from node.audit.report import Deadline, build_report, report_csv, report_html
from node.audit.splitview import SplitViewError, check_one_history, ordered
from node.audit.verify import (
    AuditError,
    AuditResult,
    LogVerifier,
    WitnessTimes,
    open_checkpoint,
)
from node.cli import output
from node.config import NodeConfig, load_config
from node.errors import ConfigError, UnknownAgencyError
from node.federation.trusted import current_members, read_trusted
from node.forms.profiles import profiles
from node.gen.comity.v1 import audit_pb2, audit_pb2_grpc
from node.members import Member
from node.services.audit import MAX_LEAVES_PER_CALL, log_origin
from node.services.witness import witness_name
from node.timeutil import now_ms
from node.transport.peer_client import PeerClient
from node.transport.status import error_from_rpc

CALL_TIMEOUT_S = 30.0


def verify(args: argparse.Namespace, console: Console) -> int:
    config = load_config(args.config)
    member = trusted_member(config, args.agency)
    result = _verify_one(
        config, member, console, quiet=args.json, quorum=args.quorum, keep_leaves=False
    )
    if args.json:
        output.print_json(console, _result_dict(result))
    else:
        _print(console, result)
    return 0


def reconcile_logs(args: argparse.Namespace, console: Console) -> int:
    """Verify every named log (default: every member's), then match both ends of each
    exchange across them. Exit status 1 when anything does not reconcile."""
    config = load_config(args.config)
    agencies = args.agencies or [m.agency_id for m in trusted_members(config)]
    results = {
        agency: _verify_one(
            config, trusted_member(config, agency), console, quiet=args.json, quorum=args.quorum
        )
        for agency in agencies
    }
    findings = reconcile({agency: r.leaves for agency, r in results.items()})
    if args.json:
        output.print_json(
            console,
            {
                "logs": {a: _result_dict(r) for a, r in results.items()},
                "findings": [f.__dict__ for f in findings],
            },
        )
    else:
        for result in results.values():
            _print(console, result)
        _print_findings(console, findings)
    return 1 if findings else 0


def report(args: argparse.Namespace, console: Console) -> int:
    """Transparency statistics over verified logs, as JSON, CSV or a publishable HTML page."""
    if args.suppress_below < 1:
        raise ConfigError("--suppress-below must be at least 1")
    config = load_config(args.config)
    agencies = args.agencies or [m.agency_id for m in trusted_members(config)]
    logs = {
        agency: _verify_one(config, trusted_member(config, agency), console, quiet=True).leaves
        for agency in agencies
    }
    built = build_report(
        logs, suppress_below=args.suppress_below, deadlines=_deadlines(), now_ms=now_ms()
    )
    rendered = {
        "json": lambda: json.dumps(built, indent=2, ensure_ascii=False) + "\n",
        "csv": lambda: report_csv(built),
        "html": lambda: report_html(built),
    }[args.format]()
    if args.out is None:
        console.print(rendered, markup=False, highlight=False, end="")
    else:
        args.out.write_text(rendered, encoding="utf-8")
        console.print(f"Wrote the {args.format} report on {len(logs)} log(s) to {args.out}.")
    return 0


def _deadlines() -> dict[str, Deadline]:
    """Each legal basis's deadline, from the legal-basis profiles."""
    return {
        p.code: Deadline(hours=p.deadline.hours, until=p.deadline.until)
        for p in profiles()
        if p.deadline is not None
    }


def trusted_members(config: NodeConfig) -> list[Member]:
    """The members of the directory the auditor's node trusts, as they stand now."""
    now = now_ms()
    document = read_trusted(
        database_url=config.database_url, bootstrap=config.directory_file, now_ms=now
    )
    return current_members(document, now_ms=now)


def trusted_member(config: NodeConfig, agency: str) -> Member:
    member = next((m for m in trusted_members(config) if m.agency_id == agency), None)
    if member is None:
        raise UnknownAgencyError(f"{agency} is not a federation member with active keys")
    return member


@dataclass(frozen=True)
class _Expectations:
    """What this auditor holds about one log before fetching it."""

    verifier: NoteVerifier
    witnesses: dict[str, bytes]
    previous: Checkpoint | None
    previous_times: dict[str, int]


def _verify_one(
    config: NodeConfig,
    member: Member,
    console: Console,
    *,
    quiet: bool,
    quorum: int = 0,
    keep_leaves: bool = True,
) -> AuditResult:
    """Audit one node's log, check its witness quorum, and remember its checkpoint as the
    accepted one."""
    verifier = NoteVerifier.for_key(log_origin(member.agency_id), member.checkpoint_key)
    witnesses = {
        witness_name(m.agency_id): m.witness_key
        for m in trusted_members(config)
        if m.agency_id != member.agency_id
    }
    state = _state_file(config, member.agency_id)
    previous, previous_times = _previous(state, verifier, witnesses)
    expected = _Expectations(verifier, witnesses, previous, previous_times)
    result, note = asyncio.run(
        _audit(config, member, expected, console=console, quiet=quiet, keep_leaves=keep_leaves)
    )
    if len(result.witnesses) < quorum:
        raise AuditError(
            f"checkpoint of {member.agency_id} is cosigned by {len(result.witnesses)} "
            f"witness(es), the policy asks for {quorum}"
        )
    state.parent.mkdir(mode=0o700, exist_ok=True)
    state.write_text(note, encoding="utf-8")
    return result


def _print_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print("[green]Every exchange reconciles across the logs.[/green]")
        return
    console.print(f"[bold red]{len(findings)} finding(s):[/bold red]")
    for f in findings:
        console.print(f"  {f.kind} at {f.node}, exchange {f.exchange_id}: {f.detail}")


async def _audit(
    config: NodeConfig,
    member: Member,
    expected: _Expectations,
    *,
    console: Console,
    quiet: bool,
    keep_leaves: bool,
) -> tuple[AuditResult, str]:
    """Fetch the checkpoint, then stream the leaves through the checks page by page."""
    async with audit_stub(config, member) as stub:
        note = (await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest())).note
        checkpoint = open_checkpoint(note, expected.verifier)
        times = _cosignature_times(note, expected.witnesses)
        previous = expected.previous
        # The earliest time a witness saw the old size, the latest it cosigned the new one:
        # the bounds an honest node always meets.
        witness_times = WitnessTimes(
            previous_size=previous.size if previous else 0,
            previous_seen_s=min(expected.previous_times.values(), default=None),
            cosigned_s=max(times.values(), default=None),
        )
        log = LogVerifier(checkpoint, witness_times=witness_times, keep_leaves=keep_leaves)
        await _stream_leaves(stub, member, log, console, quiet)
        proof: list[bytes] = []
        if previous is not None and 0 < previous.size <= checkpoint.size:
            proof = await _consistency(stub, previous.size, checkpoint.size)
        result = log.finish(previous=previous, consistency=proof)
        result.witnesses = sorted(times)
        return result, note


@asynccontextmanager
async def audit_stub(
    config: NodeConfig, member: Member
) -> AsyncIterator[audit_pb2_grpc.AuditAsyncStub]:
    """The member's Audit service, reached with this node's mutual-TLS identity; an RPC
    error inside becomes the ComityError it stands for."""
    peers = PeerClient(
        certificate=config.tls_certificate.read_bytes(),
        private_key=config.tls_private_key.read_bytes(),
        timeout_s=CALL_TIMEOUT_S,
    )
    try:
        yield audit_pb2_grpc.AuditStub(peers.channel(member))
    except grpc.aio.AioRpcError as e:
        raise error_from_rpc(e, peer=member.agency_id) from e
    finally:
        await peers.close()


async def _consistency(
    stub: audit_pb2_grpc.AuditAsyncStub, old_size: int, new_size: int
) -> list[bytes]:
    request = audit_pb2.GetConsistencyProofRequest(old_size=old_size, new_size=new_size)
    return list((await stub.GetConsistencyProof(request)).hashes)


def compare(args: argparse.Namespace, console: Console) -> int:
    """Compare the checkpoint this auditor accepted for a log with another auditor's: two
    checkpoints that are not one history are a split view (exit status 1), and both signed
    notes are kept beside the accepted one as evidence."""
    config = load_config(args.config)
    member = trusted_member(config, args.agency)
    verifier = NoteVerifier.for_key(log_origin(member.agency_id), member.checkpoint_key)
    state = _state_file(config, member.agency_id)
    mine, _ = _previous(state, verifier, {})
    if mine is None:
        raise ConfigError(
            f"no checkpoint of {member.agency_id} accepted yet: run "
            f"`comity audit verify {member.agency_id}` first"
        )
    try:
        other_note = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the other auditor's checkpoint {args.file}: {e}") from e
    theirs = open_checkpoint(other_note, verifier)
    old, new = ordered(mine, theirs)
    proof: list[bytes] = []
    if 0 < old.size < new.size:
        proof = asyncio.run(_fetch_consistency(config, member, old.size, new.size))
    try:
        check_one_history(mine, theirs, proof)
    except SplitViewError:
        evidence = state.with_suffix(".split-view")
        evidence.write_text(state.read_text(encoding="utf-8") + "\n" + other_note, "utf-8")
        console.print(f"Both signed checkpoints are kept in {evidence}.")
        raise
    console.print(
        f"[green]One history[/green]: {member.agency_id}'s checkpoints of {old.size} and "
        f"{new.size} leaves are consistent."
    )
    return 0


async def _fetch_consistency(
    config: NodeConfig, member: Member, old_size: int, new_size: int
) -> list[bytes]:
    async with audit_stub(config, member) as stub:
        return await _consistency(stub, old_size, new_size)


async def _stream_leaves(
    stub: audit_pb2_grpc.AuditAsyncStub,
    member: Member,
    log: LogVerifier,
    console: Console,
    quiet: bool,
) -> None:
    size = log.checkpoint.size
    with Progress(
        console=console, transient=True, disable=quiet or not console.is_terminal
    ) as progress:
        task = progress.add_task(f"leaves of {member.agency_id}", total=size)
        while log.size < size:
            end = min(size, log.size + MAX_LEAVES_PER_CALL)
            page = await stub.GetLeaves(audit_pb2.GetLeavesRequest(start=log.size, end=end))
            if not page.leaves:
                break  # finish() names the shortfall
            for data in page.leaves[: end - log.size]:
                log.add(data)
            progress.update(task, completed=log.size)


def _state_file(config: NodeConfig, agency: str) -> Path:
    return config.config_path.parent / "audit-state" / f"{agency}.checkpoint"


def _previous(
    state: Path, verifier: NoteVerifier, witnesses: Mapping[str, bytes]
) -> tuple[Checkpoint | None, dict[str, int]]:
    """The checkpoint accepted last time, and when each witness cosigned it."""
    if not state.exists():
        return None, {}
    try:
        note = state.read_text(encoding="utf-8")
        text, _ = open_note(note, [verifier])
        return Checkpoint.parse(text), _cosignature_times(note, witnesses)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the accepted checkpoint {state}: {e}") from e


def _cosignature_times(note: str, witnesses: Mapping[str, bytes]) -> dict[str, int]:
    try:
        return verify_cosignatures(note, witnesses)
    except NoteError as e:
        raise AuditError(f"a witness cosignature is bad: {e.message}") from e


def _result_dict(result: AuditResult) -> dict[str, object]:
    return {
        "origin": result.origin,
        "size": result.size,
        "root": result.root.hex(),
        "events": dict(result.events),
        "consistent_with": result.consistent_with,
        "witnesses": result.witnesses,
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
    witnesses = ", ".join(result.witnesses) or "none"
    console.print(f"  cosigned by {len(result.witnesses)} witness(es): {witnesses}")
    for event, count in sorted(result.events.items()):
        console.print(f"  {event}: {count}")
