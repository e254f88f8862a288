# SPDX-License-Identifier: Apache-2.0
"""``comity audit prove / open / check-proof / erase-expired``: openings released by role.

``prove`` runs on the agency's own node (for the agency itself or a court); ``open`` is how an
oversight body or the secretariat fetches a bundle from another node over mutual TLS;
``check-proof`` verifies a bundle offline against the checkpoint key the federation directory
lists and, by default, at least one witness cosignature. Every release is logged by the node
that makes it; ``prove`` and ``open`` write a bundle only once witnesses have cosigned a
checkpoint covering its record. The checks are the auditor's (``node.audit.auditor``); this
module parses, reaches and prints.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from node.audit import auditor
from node.audit.auditor import Patience, agency_of_bundle, cosigned_bundle
from node.audit.proof import ProofBundle, ProvenRecord
from node.cli import output
from node.cli.audit_cmd import source, trusted_keys
from node.cli.local_client import LocalClient, local_socket
from node.config import NodeConfig, load_config
from node.errors import ConfigError

WITNESS_S = 10.0


def prove(args: argparse.Namespace, console: Console) -> int:
    """Bundles from this node's own log, released to the agency itself or a court. A bundle
    is written only once a checkpoint covering its record carries the witness quorum."""
    config = load_config(args.config)
    with LocalClient(config.local_socket) as client:
        answer = client.prove_record(
            target=args.target,
            role=args.role,
            reason=args.reason,
            order=args.order,
            recipient=args.recipient,
        )
    released = [(bundle.index, bundle.text) for bundle in answer.bundles]
    bundles = asyncio.run(_cosigned(config, config.agency_id, released, args))
    _write(console, config.agency_id, bundles, args.out)
    return 0


async def _cosigned(
    config: NodeConfig,
    agency: str,
    released: Sequence[tuple[int, str]],
    args: argparse.Namespace,
) -> list[tuple[int, str]]:
    """The released bundles, each proven in a checkpoint of ``agency``'s log that
    ``args.quorum`` witnesses cosigned: when the release came before the witnesses did, the
    log's Audit service is asked again until they have (``args.wait`` seconds at most)."""
    member, keys = trusted_keys(config, agency)
    # Two of the node's cosigning rounds (one may have started just before the release), and
    # time for the witnesses to answer.
    wait_s = args.wait if args.wait is not None else 2 * config.cosign_interval_s + WITNESS_S
    patience = Patience(timeout_s=wait_s)
    async with source(config, member) as log:
        bundles = [
            await cosigned_bundle(
                ProofBundle.parse(text), log, keys, quorum=args.quorum, patience=patience
            )
            for _, text in released
        ]
    return [(bundle.index, bundle.text()) for bundle in bundles]


def open_remote(args: argparse.Namespace, console: Console) -> int:
    """Bundles from another node's log, as this agency's role (oversight or secretariat)
    entitles it to; written, like ``prove``'s, once the witness quorum cosigned them."""
    config = load_config(args.config)
    member, _ = trusted_keys(config, args.agency)

    async def fetch() -> list[tuple[int, str]]:
        async with source(config, member) as log:
            released = await log.proof_bundles(args.target, args.reason)
        return await _cosigned(config, member.agency_id, released, args)

    _write(console, member.agency_id, asyncio.run(fetch()), args.out)
    return 0


def _write(console: Console, agency: str, bundles: Sequence[tuple[int, str]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for index, text in bundles:
        path = out / f"{agency}-{index}.tlog-proof"
        path.write_text(text, encoding="utf-8")
        console.print(f"Wrote {path}")
    console.print(
        f"{len(bundles)} bundle(s); the release is logged in {agency}'s audit log. "
        "Check one with `comity audit check-proof FILE`."
    )


def check_proof(args: argparse.Namespace, console: Console) -> int:
    """Verify a bundle offline: the checkpoint key and witnesses come from the directory this
    node trusts, and by default at least one witness must have cosigned. Exit status 0 only if
    it proves the record."""
    config = load_config(args.config)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read the proof bundle {args.file}: {e}") from e
    bundle = ProofBundle.parse(text)
    _, keys = trusted_keys(config, agency_of_bundle(bundle))
    record = auditor.check_proof(bundle, keys, quorum=args.quorum)
    if args.json:
        output.print_json(console, _record_dict(record))
    else:
        _print(console, record)
    return 0


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
    with LocalClient(local_socket(args.config)) as client:
        summary = client.erase_expired()
    console.print(
        f"Erased the openings of {summary.leaves} leaf(s) in {summary.exchanges} exchange(s); "
        "each exchange's erasure is logged as data.erased."
    )
    return 0
