# SPDX-License-Identifier: Apache-2.0
"""``comity audit verify / reconcile / report / compare``: check other nodes' logs the way a
secretariat would.

Uses this node's mutual-TLS identity and members file to reach the audited node; the checks
and the accepted checkpoints (kept beside the configuration, in ``audit-state/``) are the
auditor's (``node.audit.auditor``). This module parses, reaches and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console
from rich.progress import Progress

from node.audit.auditor import Auditor, CheckpointStore, LogKeys, log_keys
from node.audit.reconcile import Finding, reconcile
from node.audit.report import Deadline, build_report, report_csv, report_html
from node.audit.splitview import SplitViewError
from node.audit.verify import AuditResult
from node.cli import output
from node.config import NodeConfig, load_config
from node.errors import ConfigError, UnknownAgencyError
from node.federation.trusted import current_members, read_trusted
from node.forms.profiles import profiles
from node.members import Member
from node.timeutil import now_ms
from node.transport.audit_source import GrpcLogSource, audit_source


def verify(args: argparse.Namespace, console: Console) -> int:
    config = load_config(args.config)
    result = _verify_one(
        config, args.agency, console, quiet=args.json, quorum=args.quorum, keep_leaves=False
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
        agency: _verify_one(config, agency, console, quiet=args.json, quorum=args.quorum)
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
    logs = {agency: _verify_one(config, agency, console, quiet=True).leaves for agency in agencies}
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


def trusted_keys(config: NodeConfig, agency: str) -> tuple[Member, LogKeys]:
    """The member and the keys its log is checked with, from the trusted directory."""
    member = trusted_member(config, agency)
    return member, log_keys(member, trusted_members(config))


def auditor(config: NodeConfig) -> Auditor:
    """The auditor whose accepted checkpoints live beside the configuration."""
    return Auditor(CheckpointStore(config.config_path.parent / "audit-state"))


@asynccontextmanager
async def source(config: NodeConfig, member: Member) -> AsyncIterator[GrpcLogSource]:
    """The member's log over its Audit service, reached with this node's mutual-TLS identity."""
    async with audit_source(
        member,
        certificate=config.tls_certificate.read_bytes(),
        private_key=config.tls_private_key.read_bytes(),
    ) as log:
        yield log


def _verify_one(
    config: NodeConfig,
    agency: str,
    console: Console,
    *,
    quiet: bool,
    quorum: int = 0,
    keep_leaves: bool = True,
) -> AuditResult:
    """Audit one node's log, check its witness quorum, and remember its checkpoint as the
    accepted one; a progress bar on a terminal."""
    member, keys = trusted_keys(config, agency)

    async def run() -> AuditResult:
        with Progress(
            console=console, transient=True, disable=quiet or not console.is_terminal
        ) as progress:
            task = progress.add_task(f"leaves of {agency}", total=None)
            async with source(config, member) as log:
                return await auditor(config).verify(
                    log,
                    keys,
                    quorum=quorum,
                    keep_leaves=keep_leaves,
                    progress=lambda done: progress.update(task, completed=done),
                )

    return asyncio.run(run())


def _print_findings(console: Console, findings: list[Finding]) -> None:
    if not findings:
        console.print("[green]Every exchange reconciles across the logs.[/green]")
        return
    console.print(f"[bold red]{len(findings)} finding(s):[/bold red]")
    for f in findings:
        console.print(f"  {f.kind} at {f.node}, exchange {f.exchange_id}: {f.detail}")


def compare(args: argparse.Namespace, console: Console) -> int:
    """Compare the checkpoint this auditor accepted for a log with another auditor's: two
    checkpoints that are not one history are a split view (exit status 1), and both signed
    notes are kept beside the accepted one as evidence."""
    config = load_config(args.config)
    member, keys = trusted_keys(config, args.agency)
    try:
        other_note = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the other auditor's checkpoint {args.file}: {e}") from e
    checks = auditor(config)

    async def run() -> tuple[int, int]:
        async with source(config, member) as log:
            old, new = await checks.compare(log, keys, other_note)
            return old.size, new.size

    try:
        old_size, new_size = asyncio.run(run())
    except SplitViewError:
        evidence = checks.store.split_view_path(member.agency_id)
        console.print(f"Both signed checkpoints are kept in {evidence}.")
        raise
    console.print(
        f"[green]One history[/green]: {member.agency_id}'s checkpoints of {old_size} and "
        f"{new_size} leaves are consistent."
    )
    return 0


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
