# SPDX-License-Identifier: Apache-2.0
"""``comity evidence …``: returning evidence, following its transfer, fetching and checking it."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import mimetypes
import os
import stat
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, UploadFile
from node.config import load_config
from node.errors import ComityError, ConfigError
from node.gen.comity.v1 import local_pb2
from node.timeutil import format_ms


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(load_config(args.config).local_socket)


def send(args: argparse.Namespace, console: Console) -> int:
    """The requested party returns files: FILE or FILE:MEDIA/TYPE, opened here, with the
    rights of whoever runs the command, and streamed to the node (which never opens them)."""
    with contextlib.ExitStack() as stack:
        files = [_file(spec, stack) for spec in args.files]
        with _client(args) as client:
            detail = client.upload_evidence(request_id=args.request_id, files=files, note=args.note)
    console.print(
        f"Evidence manifest sent on request [bold]{detail.summary.request_id}[/bold] "
        f"({len(files)} file(s)); the files follow in sealed chunks. "
        "`comity evidence list ID` shows their progress."
    )
    return 0


def _file(spec: str, stack: contextlib.ExitStack) -> UploadFile:
    path, _, media_type = spec.partition(":")
    try:
        stream = stack.enter_context(Path(path).open("rb"))  # noqa: SIM115 (the stack closes it)
    except OSError as e:
        raise ConfigError(f"cannot read evidence file {path}: {e.strerror}") from e
    if stat.S_ISDIR(os.fstat(stream.fileno()).st_mode):
        raise ConfigError(f"{path} is a directory, not a file")
    name = Path(path).name
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return UploadFile(name=name, media_type=media_type or guessed, stream=stream)


def list_sets(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        sets = list(client.list_evidence(args.request_id).sets)
    listed = [_set_dict(s) for s in sets]
    if args.json:
        output.print_json(console, listed)
        return 0
    if not listed:
        console.print("No evidence in this request.")
    for entry in listed:
        state = "complete" if entry["complete"] else "in transfer"
        console.print(
            f"Evidence [bold]{entry['evidence_id']}[/bold] ({entry['direction']}, "
            f"{entry['created_at']}): {state}"
        )
        table = Table("#", "file", "type", "bytes", "SHA-256", "chunks", "verified")
        for item in entry["items"]:
            table.add_row(
                str(item["index"]),
                item["name"],
                item["media_type"],
                str(item["size"]),
                item["sha256"][:16] + "…",
                f"{item['chunks_here']}/{item['chunks_total']}",
                "yes" if item["verified"] else "no",
            )
        console.print(table)
    return 0


def _set_dict(entry: local_pb2.EvidenceSet) -> dict[str, Any]:
    return {
        "evidence_id": entry.evidence_id,
        "direction": "inbound" if entry.direction == local_pb2.DIRECTION_INBOUND else "outbound",
        "created_at": format_ms(entry.created_at_ms),
        "complete": entry.complete,
        "note": entry.note or None,
        "items": [
            {
                "index": i.index,
                "name": i.name,
                "media_type": i.media_type,
                "size": i.size,
                "sha256": i.sha256,
                "chunks_total": i.chunks_total,
                "chunks_here": i.chunks_here,
                "verified": i.verified,
            }
            for i in entry.items
        ],
    }


def fetch(args: argparse.Namespace, console: Console) -> int:
    """Write one received file, checking its digest against the manifest once more."""
    if args.out.exists():
        raise ConfigError(f"{args.out} exists already; refusing to overwrite it")
    partial = args.out.with_name(args.out.name + ".part")
    digest = hashlib.sha256()
    with _client(args) as client, partial.open("wb") as out:
        for data in client.fetch_evidence(
            request_id=args.request_id, evidence_id=args.evidence_id, item=args.item
        ):
            digest.update(data)
            out.write(data)
    partial.replace(args.out)
    console.print(
        f"Wrote {args.out} (SHA-256 {digest.hexdigest()}), verified against the manifest."
    )
    return 0


def verify(args: argparse.Namespace, console: Console) -> int:
    """Re-check every stored file of a request against its signed manifest."""
    with _client(args) as client:
        sets = list(client.list_evidence(args.request_id).sets)
        results = [
            _verify_item(client, args.request_id, entry, item)
            for entry in sets
            for item in entry.items
        ]
    if args.json:
        output.print_json(console, results)
    else:
        for r in results:
            mark = "[green]ok[/green]  " if r["ok"] else "[bold red]FAIL[/bold red]"
            console.print(f"{mark} {r['evidence_id']} #{r['item']} {r['name']}: {r['detail']}")
    return 0 if all(r["ok"] for r in results) else 1


def _verify_item(
    client: LocalClient, request_id: str, entry: local_pb2.EvidenceSet, item: local_pb2.EvidenceItem
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "evidence_id": entry.evidence_id,
        "item": item.index,
        "name": item.name,
    }
    if not item.verified:
        return result | {
            "ok": False,
            "detail": f"{item.chunks_here}/{item.chunks_total} chunks here",
        }
    digest = hashlib.sha256()
    try:
        for data in client.fetch_evidence(
            request_id=request_id, evidence_id=entry.evidence_id, item=item.index
        ):
            digest.update(data)
    except ComityError as e:
        return result | {"ok": False, "detail": e.message}
    ok = digest.hexdigest() == item.sha256
    return result | {"ok": ok, "detail": "matches the manifest" if ok else "digest differs"}
