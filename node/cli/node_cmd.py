# SPDX-License-Identifier: Apache-2.0
"""``comity node …`` and ``comity members …``: set up, run, and federate nodes."""

from __future__ import annotations

import argparse
import asyncio
import logging

from rich.console import Console

from node.config import init_node, load_config
from node.errors import ConfigError
from node.members import build_members_file
from node.runtime import serve_until_signalled


def init(args: argparse.Namespace, console: Console) -> int:
    config = init_node(
        directory=args.dir,
        agency_id=args.agency_id,
        country=args.country,
        roles=args.role,
        listen=args.listen,
        endpoint=args.endpoint,
        database_url=args.database_url,
    )
    console.print(f"Created node [bold]{config.agency_id}[/bold] in {args.dir}")
    console.print(f"  configuration: {config.config_path}")
    console.print(f"  member card:   {args.dir / 'member.toml'} (give it to the federation)")
    console.print(f"  start it with: comity node serve --config {config.config_path}")
    return 0


def serve(args: argparse.Namespace, _console: Console) -> int:
    config = load_config(args.config)
    logging.getLogger().setLevel(config.log_level)
    logging.getLogger().handlers[0].setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s [{config.agency_id}] %(name)s: %(message)s")
    )
    asyncio.run(serve_until_signalled(config))
    return 0


def build_members(args: argparse.Namespace, console: Console) -> int:
    cards = []
    for path in args.cards:
        try:
            cards.append(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read member card {path}: {e.strerror}") from e
    text = build_members_file(cards, version=args.version)
    args.out.write_text(text, encoding="utf-8")
    console.print(f"Wrote {args.out} with {len(cards)} members (version {args.version}).")
    return 0
