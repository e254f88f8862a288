# SPDX-License-Identifier: Apache-2.0
"""``comity node …``: set up and run this agency's node."""

from __future__ import annotations

import argparse
import asyncio
import base64

from rich.console import Console

from node.cli import output
from node.config import init_node, load_config
from node.crypto.keys import key_id
from node.crypto.keys import retire_key as retire_key_file
from node.crypto.keys import rotate_key as rotate_key_files
from node.errors import ConfigError
from node.federation.document import SignedDirectory, format_instant
from node.federation.trusted import read_trusted
from node.ids import parse_key_id
from node.logs import configure_logging
from node.runtime import serve_until_signalled
from node.timeutil import now_ms


def init(args: argparse.Namespace, console: Console) -> int:
    config = init_node(
        directory=args.dir,
        agency_id=args.agency_id,
        country=args.country,
        roles=args.role,
        listen=args.listen,
        endpoint=args.endpoint,
        database_url=args.database_url,
        admin_roles=args.admin_role or ("admin",),
    )
    console.print(f"Created node [bold]{config.agency_id}[/bold] in {args.dir}")
    console.print(
        f"  first user:    admin ({', '.join(config.bootstrap_roles)}), your login "
        f"{config.bootstrap_os_user}; add officers with `comity users add`"
    )
    console.print(f"  configuration: {config.config_path}")
    console.print(
        f"  member card:   {args.dir / 'member.toml'} (give it to the federation secretariat)"
    )
    console.print(f"  then save the signed federation directory as {config.directory_file}")
    console.print(f"  start it with: comity node serve --config {config.config_path}")
    return 0


def serve(args: argparse.Namespace, _console: Console) -> int:
    config = load_config(args.config)
    configure_logging(
        level=config.log_level, log_format=config.log_format, agency_id=config.agency_id
    )
    asyncio.run(serve_until_signalled(config))
    return 0


def rotate_key(args: argparse.Namespace, console: Console) -> int:
    """Make a new signing or encryption key; the node switches to it once the directory lists
    it, and keeps the old one."""
    config = load_config(args.config)
    public = rotate_key_files(config.keys_dir, args.purpose)
    encoded = base64.b64encode(public).decode("ascii")
    if args.json:
        output.print_json(console, {"key_id": key_id(public), "public_key": encoded})
        return 0
    console.print(f"New {args.purpose} key {key_id(public)} in {config.keys_dir}: {encoded}")
    console.print(
        "The node keeps using the old key until the secretariat publishes a directory "
        "listing the new one:"
    )
    console.print(
        f"  comity federation rotate-key DIRECTORY {config.agency_id} --purpose {args.purpose} "
        f"--public-key {encoded}"
    )
    return 0


def retire_key(args: argparse.Namespace, console: Console) -> int:
    """Stop loading an old signing or encryption key once its overlap has ended.

    Refused while the directory the node trusts still lists the key as valid: until then
    peers may still sign for it or seal to it. Takes effect when the node next loads its
    keys (at start).
    """
    kid = parse_key_id(args.key_id, field="KEY_ID")  # it becomes part of a file name
    config = load_config(args.config)
    now = now_ms()
    document = read_trusted(
        database_url=config.database_url, bootstrap=config.directory_file, now_ms=now
    )
    _refuse_while_listed(document, config.agency_id, kid, now)
    retired = retire_key_file(config.keys_dir, kid)
    console.print(
        f"Retired key {kid}: moved to {retired}; the node no longer loads it. "
        "Destroy that file when your retention policy allows."
    )
    return 0


def _refuse_while_listed(document: SignedDirectory, agency: str, kid: str, now: int) -> None:
    entry = next((m for m in document.body.members if m.agency_id == agency), None)
    listed = entry.key(kid) if entry is not None else None
    if listed is None:
        return
    ends = [t for t in (listed.valid_until_ms, listed.revoked_at_ms) if t is not None]
    if not ends or min(ends) > now:
        until = f"until {format_instant(min(ends))}" if ends else "without an end"
        raise ConfigError(
            f"key {kid} is valid {until} in directory version {document.version}; "
            "retire it once its overlap has ended"
        )
