# SPDX-License-Identifier: Apache-2.0
"""Entry point of the ``comity`` command. Errors are caught once, here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from node.cli import audit_cmd, node_cmd, request_cmd
from node.errors import ComityError

Handler = Callable[[argparse.Namespace, Console], int]

DEFAULT_CONFIG = "comity.toml"


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("COMITY_CONFIG", DEFAULT_CONFIG)),
        help="node configuration file (default: $COMITY_CONFIG or ./comity.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="comity",
        description="Comity: signed, sealed cross-border legal assistance requests.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _node_commands(commands.add_parser("node", help="set up and run this agency's node"))
    _members_commands(commands.add_parser("members", help="the static federation members file"))
    _request_commands(commands.add_parser("request", help="file and read requests"))
    _audit_commands(commands.add_parser("audit", help="verify other nodes' audit logs"))
    demo = commands.add_parser("demo", help="run three agencies' nodes and walk a case through")
    demo.add_argument("--keep", action="store_true", help="keep the demo's directory")
    demo.set_defaults(handler=_run_demo)
    return parser


def _node_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="node_command", required=True, metavar="COMMAND")
    init = sub.add_parser("init", help="create keys, TLS material and a config for an agency")
    init.add_argument("--dir", type=Path, required=True, help="directory to create")
    init.add_argument("--agency-id", required=True, help="e.g. ua-cyberpolice")
    init.add_argument("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. UA")
    init.add_argument(
        "--role",
        action="append",
        required=True,
        help="requesting, central_authority, point_of_contact_24_7, secretariat or oversight "
        "(repeat for several)",
    )
    init.add_argument("--listen", default="127.0.0.1:7401", help="federation address to bind")
    init.add_argument("--endpoint", help="address peers dial (default: --listen)")
    init.add_argument("--database-url", help="default: sqlite:///comity.db in --dir")
    init.set_defaults(handler=node_cmd.init)
    serve = sub.add_parser("serve", help="run the node until SIGTERM")
    _add_config_option(serve)
    serve.set_defaults(handler=node_cmd.serve)
    status = sub.add_parser("status", help="pending deliveries per peer, and alerts")
    _add_config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=request_cmd.node_status)


def _members_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="members_command", required=True, metavar="COMMAND")
    build = sub.add_parser("build", help="merge agencies' member cards into a members file")
    build.add_argument("cards", nargs="+", type=Path, help="member.toml files from `node init`")
    build.add_argument("--out", type=Path, required=True, help="members file to write")
    build.add_argument("--version", type=int, default=1, help="membership version (default 1)")
    build.set_defaults(handler=node_cmd.build_members)


def _request_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="request_command", required=True, metavar="COMMAND")
    file_ = sub.add_parser("file", help="file a request to another agency")
    file_.add_argument("request_type", help="request type, e.g. preservation")
    file_.add_argument("--to", required=True, dest="recipient", help="recipient agency id")
    file_.add_argument("--form", required=True, type=Path, help="the form, a JSON file")
    file_.set_defaults(handler=request_cmd.file_request)
    list_ = sub.add_parser("list", help="list requests, newest first")
    list_.add_argument("--direction", choices=("outbound", "inbound"))
    list_.add_argument("--limit", type=int, default=50)
    list_.set_defaults(handler=request_cmd.list_requests)
    show = sub.add_parser("show", help="one request with its form and signed receipt")
    show.add_argument("request_id")
    show.add_argument("--form", action="store_true", help="also print the form as stored")
    show.set_defaults(handler=request_cmd.show_request)
    for command in (file_, list_, show):
        _add_config_option(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _audit_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = sub.add_parser("verify", help="verify a node's log: signature, leaves, consistency")
    verify.add_argument("agency", help="agency id of the node to audit (may be this node)")
    verify.add_argument(
        "--quorum",
        type=int,
        default=0,
        help="witness cosignatures the checkpoint must carry (default 0)",
    )
    _add_config_option(verify)
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(handler=audit_cmd.verify)
    rec = sub.add_parser(
        "reconcile", help="verify several logs and match both ends of every exchange"
    )
    rec.add_argument("agencies", nargs="*", help="agency ids (default: every member)")
    rec.add_argument(
        "--quorum",
        type=int,
        default=0,
        help="witness cosignatures each checkpoint must carry (default 0)",
    )
    _add_config_option(rec)
    rec.add_argument("--json", action="store_true", help="machine-readable output")
    rec.set_defaults(handler=audit_cmd.reconcile_logs)
    rep = sub.add_parser("report", help="transparency statistics from verified logs")
    rep.add_argument("agencies", nargs="*", help="agency ids (default: every member)")
    rep.add_argument("--format", choices=("json", "csv", "html"), default="json")
    rep.add_argument("--out", type=Path, help="file to write (default: standard output)")
    rep.add_argument(
        "--suppress-below",
        type=int,
        default=5,
        help="publish counts below this as '<N' (default 5)",
    )
    _add_config_option(rep)
    rep.set_defaults(handler=audit_cmd.report)


def _run_demo(args: argparse.Namespace, console: Console) -> int:
    from node.cli import demo

    return demo.run(console, keep=args.keep)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args, console)
    except ComityError as e:
        errors.print(Text.assemble(("error: ", "bold red"), e.diagnostics()))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
