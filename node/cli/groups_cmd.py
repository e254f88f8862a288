# SPDX-License-Identifier: Apache-2.0
"""``comity groups …``: sharing groups, where members match indicators by blinded tags."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.gen.comity.v1 import local_groups_pb2 as pb

SYNC_TIMEOUT_S = 600.0
"""A first sync copies every member's whole log."""

Handler = Callable[[argparse.Namespace, Console], int]


class GroupsClient(LocalClient):
    """The Local service's sharing-group calls."""

    def create_group(self, name: str, members: list[str]) -> pb.GroupView:
        return self.call(self._stub.CreateGroup, pb.CreateGroupRequest(name=name, members=members))

    def list_groups(self) -> pb.GroupList:
        return self.call(self._stub.ListGroups, pb.ListGroupsRequest())

    def rotate_group(self, group_id: str, remove: list[str], add: list[str]) -> pb.GroupView:
        request = pb.RotateGroupRequest(group_id=group_id, remove=remove, add=add)
        return self.call(self._stub.RotateGroup, request)

    def publish(self, group_id: str, set_id: str) -> pb.GroupView:
        request = pb.PublishToGroupRequest(group_id=group_id, set_id=set_id)
        return self.call(self._stub.PublishToGroup, request)

    def sync(self, group_id: str) -> pb.SyncGroupsResponse:
        request = pb.SyncGroupsRequest(group_id=group_id)
        return self.call(self._stub.SyncGroups, request, timeout_s=SYNC_TIMEOUT_S)

    def matches(self, group_id: str) -> pb.GroupMatchList:
        return self.call(self._stub.GroupMatches, pb.GroupMatchesRequest(group_id=group_id))


def add_commands(commands: Any, add_config_option: Callable[[Any], None]) -> None:
    """Register ``comity groups`` and its subcommands on the top-level parser."""
    parser = commands.add_parser("groups", help="sharing groups: match indicators by blinded tags")
    sub = parser.add_subparsers(dest="groups_command", required=True, metavar="COMMAND")

    def _command(name: str, help_: str, handler: Handler) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = sub.add_parser(name, help=help_)
        add_config_option(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=handler)
        return command

    create_ = _command("create", "a new group owned by this agency", create)
    create_.add_argument("name", help="a name for people (1-128 characters)")
    create_.add_argument(
        "--member", action="append", required=True, help="another member agency (repeat)"
    )
    _command("list", "the groups this node belongs to", list_groups)
    rotate_ = _command("rotate", "a new group key, leaving members out or adding some", rotate)
    rotate_.add_argument("group_id", metavar="GROUP")
    rotate_.add_argument("--remove", action="append", help="a member to leave out (repeat)")
    rotate_.add_argument("--add", action="append", help="an agency to add (repeat)")
    publish_ = _command("publish", "publish one of this agency's sets as tags", publish)
    publish_.add_argument("group_id", metavar="GROUP")
    publish_.add_argument("set_id", metavar="SET_ID")
    sync_ = _command("sync", "copy the other members' tag logs", sync)
    sync_.add_argument("group_id", metavar="GROUP", nargs="?", default="")
    matches_ = _command("matches", "our indicators other members also hold", matches)
    matches_.add_argument("group_id", metavar="GROUP")


def _client(args: argparse.Namespace) -> GroupsClient:
    return GroupsClient(local_socket(args.config))


def create(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.create_group(args.name, args.member)
    return _print_view(args, console, view, f"Created group [bold]{view.group_id}[/bold].")


def rotate(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.rotate_group(args.group_id, args.remove or [], args.add or [])
    return _print_view(args, console, view, f"Group {view.group_id} is at key epoch {view.epoch}.")


def publish(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        view = client.publish(args.group_id, args.set_id)
    message = f"Set {args.set_id} published into group {view.group_id} (log at {view.own_seq})."
    return _print_view(args, console, view, message)


def _print_view(args: argparse.Namespace, console: Console, view: pb.GroupView, done: str) -> int:
    if args.json:
        output.print_json(console, _view_dict(view))
        return 0
    console.print(done)
    console.print(f"Members: {', '.join(view.members)}; key epoch {view.epoch}.")
    if view.undelivered:
        console.print(
            f"[yellow]The key did not reach {', '.join(view.undelivered)}; "
            "run `comity groups rotate` again once they are reachable.[/yellow]"
        )
    return 0


def _view_dict(view: pb.GroupView) -> dict[str, Any]:
    return {
        "group_id": view.group_id,
        "name": view.name,
        "owner": view.owner,
        "members": list(view.members),
        "epoch": view.epoch,
        "published_sets": list(view.published_sets),
        "own_seq": view.own_seq,
        "undelivered": list(view.undelivered),
    }


def list_groups(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        groups = list(client.list_groups().groups)
    if args.json:
        output.print_json(console, [_view_dict(g) for g in groups])
        return 0
    if not groups:
        console.print("This node belongs to no sharing group.")
        return 0
    table = Table("name", "owner", "members", "epoch", "our sets", "our log")
    table.add_column("group", no_wrap=True)
    for g in groups:
        table.add_row(
            g.name,
            g.owner,
            ", ".join(g.members),
            str(g.epoch),
            str(len(g.published_sets)),
            str(g.own_seq),
            g.group_id,
        )
    console.print(table)
    return 0


def sync(args: argparse.Namespace, console: Console) -> int:
    """Copy the other members' logs; exits 1 when one of them could not be copied."""
    with _client(args) as client, console.status("copying the members' tag logs"):
        outcomes = list(client.sync(args.group_id).outcomes)
    if args.json:
        output.print_json(
            console,
            [
                {
                    "group_id": o.group_id,
                    "publisher": o.publisher,
                    "fetched": o.fetched,
                    "held_seq": o.held_seq,
                    "error_code": o.error_code or None,
                }
                for o in outcomes
            ],
        )
    else:
        for o in outcomes:
            where = f"{o.group_id} {o.publisher}: {o.fetched} new entries, held up to {o.held_seq}"
            console.print(where if not o.error_code else f"{where}; {o.error} [{o.error_code}]")
    return 1 if any(o.error_code for o in outcomes) else 0


def matches(args: argparse.Namespace, console: Console) -> int:
    """This agency's own indicators whose tags other members published too."""
    with _client(args) as client:
        found = client.matches(args.group_id)
    if args.json:
        output.print_json(
            console,
            [
                {"type": m.type, "value": m.value, "agencies": list(m.agencies)}
                for m in found.matches
            ],
        )
        return 0
    if not found.matches:
        console.print(f"No other member of group {found.group_id} holds one of our indicators.")
        return 0
    table = Table("type", "value", "also held by")
    for m in found.matches:
        table.add_row(m.type, m.value, ", ".join(m.agencies))
    console.print(table)
    return 0
