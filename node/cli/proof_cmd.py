# SPDX-License-Identifier: Apache-2.0
"""``comity audit prove / open / check-proof / erase-expired``: openings released by role.

``prove`` runs on the agency's own node (for the agency itself or a court); ``open`` is how an
oversight body or the secretariat fetches a bundle from another node over mutual TLS;
``check-proof`` verifies a bundle offline against the checkpoint key the federation directory
lists. Every release is logged by the node that makes it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from rich.console import Console

from node.audit.note import NoteVerifier
from node.audit.proof import ProofBundle, ProvenRecord, verify_bundle
from node.cli import output
from node.cli.audit_cmd import audit_stub, trusted_member, trusted_members
from node.cli.local_client import LocalClient
from node.config import NodeConfig, load_config
from node.errors import ConfigError
from node.gen.comity.v1 import audit_pb2
from node.members import Member
from node.services.audit import log_origin
from node.services.witness import witness_name

ORIGIN_PREFIX, ORIGIN_SUFFIX = "comity/", "/audit/v1"


def prove(args: argparse.Namespace, console: Console) -> int:
    """Bundles from this node's own log, released to the agency itself or a court."""
    config = load_config(args.config)
    with LocalClient(config.local_socket) as client:
        answer = client.prove_record(
            target=args.target,
            role=args.role,
            reason=args.reason,
            order=args.order,
            recipient=args.recipient,
        )
    _write(console, config.agency_id, answer, args.out)
    return 0


def open_remote(args: argparse.Namespace, console: Console) -> int:
    """Bundles from another node's log, as this agency's role (oversight or secretariat)
    entitles it to."""
    config = load_config(args.config)
    member = trusted_member(config, args.agency)
    answer = asyncio.run(_fetch(config, member, args.target, args.reason))
    _write(console, member.agency_id, answer, args.out)
    return 0


async def _fetch(
    config: NodeConfig, member: Member, target: str, reason: str
) -> audit_pb2.ProofBundles:
    async with audit_stub(config, member) as stub:
        request = audit_pb2.GetProofBundlesRequest(target=target, reason=reason)
        return await stub.GetProofBundles(request)


def _write(console: Console, agency: str, answer: audit_pb2.ProofBundles, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for bundle in answer.bundles:
        path = out / f"{agency}-{bundle.index}.tlog-proof"
        path.write_text(bundle.text, encoding="utf-8")
        console.print(f"Wrote {path}")
    console.print(
        f"{len(answer.bundles)} bundle(s); the release is logged in {agency}'s audit log. "
        "Check one with `comity audit check-proof FILE`."
    )


def check_proof(args: argparse.Namespace, console: Console) -> int:
    """Verify a bundle offline: the checkpoint key and witnesses come from the directory this
    node trusts. Exit status 0 only if it proves the record."""
    config = load_config(args.config)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the proof bundle {args.file}: {e}") from e
    bundle = ProofBundle.parse(text)
    agency = _agency_of(bundle)
    member = trusted_member(config, agency)
    verifier = NoteVerifier.for_key(log_origin(agency), member.checkpoint_key)
    witnesses = {
        witness_name(m.agency_id): m.witness_key
        for m in trusted_members(config)
        if m.agency_id != agency
    }
    record = verify_bundle(bundle, verifier, witnesses=witnesses, quorum=args.quorum)
    if args.json:
        output.print_json(console, _record_dict(record))
    else:
        _print(console, record)
    return 0


def _agency_of(bundle: ProofBundle) -> str:
    """The agency whose log the bundle's checkpoint names (verified right after)."""
    origin = bundle.checkpoint.split("\n", 1)[0]
    agency = origin.removeprefix(ORIGIN_PREFIX).removesuffix(ORIGIN_SUFFIX)
    if origin != log_origin(agency):
        raise ConfigError(f"the bundle's checkpoint is not a Comity audit log's ({origin!r})")
    return agency


def _record_dict(record: ProvenRecord) -> dict[str, object]:
    return {
        "origin": record.origin,
        "index": record.index,
        "size": record.size,
        "public": record.public.__dict__,
        "opened": record.opened,
        "witnesses": record.witnesses,
        "verified": True,
    }


def _print(console: Console, record: ProvenRecord) -> None:
    p = record.public
    console.print(
        f"[green]Record {record.index} of {record.origin} proven[/green] in its checkpoint of "
        f"{record.size} leaves"
    )
    witnesses = ", ".join(sorted(record.witnesses)) or "none"
    console.print(f"  cosigned by {len(record.witnesses)} witness(es): {witnesses}")
    console.print(
        f"  {p.event}: {p.request_type} under {p.legal_basis}, {p.sender} -> {p.recipient}, "
        f"exchange {p.exchange_id}, hour {p.hour}"
    )
    if p.refusal_ground:
        console.print(f"  refusal ground: {p.refusal_ground}")
    if not record.opened:
        console.print("  no opening released: public fields only")
    for name, value in sorted(record.opened.items()):
        console.print(f"  {name}: {value}", markup=False, highlight=False)


def erase_expired(args: argparse.Namespace, console: Console) -> int:
    """Erase now the openings whose retention has ended (the node also does it hourly)."""
    with LocalClient(load_config(args.config).local_socket) as client:
        summary = client.erase_expired()
    console.print(
        f"Erased the openings of {summary.leaves} leaf(s) in {summary.exchanges} exchange(s); "
        "each exchange's erasure is logged as data.erased."
    )
    return 0
