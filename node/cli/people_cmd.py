# SPDX-License-Identifier: Apache-2.0
"""``comity users``, ``comity tokens`` and ``comity whoami``: the node's people (and
``comity access-log``, what they did: :mod:`node.cli.access_log_cmd`).

Every command runs as the user the caller signs in as (see ``node.cli.local_client.sign_in``):
managing users and tokens needs the admin role.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from node.cli import access_log_cmd, credentials_cmd, output
from node.cli.local_client import LocalClient, local_socket
from node.gen.comity.v1 import local_people_pb2 as pb
from node.model.people import Role
from node.timeutil import format_ms

AddConfig = Callable[[argparse.ArgumentParser], None]
ROLE_NAMES = [role.value for role in Role]


def register(commands: Any, add_config: AddConfig) -> None:
    """Add ``users``, ``tokens``, ``whoami``, ``access-log`` and ``credentials`` to the
    top-level parser's subparsers."""
    _users(commands.add_parser("users", help="people of this node: units and roles"), add_config)
    _tokens(
        commands.add_parser("tokens", help="service tokens for case-management systems"),
        add_config,
    )
    whoami = commands.add_parser("whoami", help="the user this command runs as, and its roles")
    whoami.set_defaults(handler=whoami_command)
    _finish(whoami, add_config)
    access_log_cmd.register(commands, add_config)
    credentials_cmd.register(commands, add_config)


def _users(parser: argparse.ArgumentParser, add_config: AddConfig) -> None:
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="a new user, with a unit and at least one role")
    add.add_argument("name", help="lower-case user name, e.g. kadri.tamm")
    add.add_argument("--unit", required=True, help="the user's unit, e.g. 'Cybercrime Unit'")
    add.add_argument("--role", action="append", required=True, choices=ROLE_NAMES)
    add.add_argument("--os-user", default="", help="the login on this machine mapped to it")
    add.set_defaults(handler=add_user)
    list_ = sub.add_parser("list", help="every user")
    list_.set_defaults(handler=list_users)
    show = sub.add_parser("show", help="one user")
    show.add_argument("name")
    show.set_defaults(handler=show_user)
    commands = [add, list_, show]
    for verb, enabled in (("disable", False), ("enable", True)):
        command = sub.add_parser(verb, help=f"{verb} a user (its tokens stop working too)")
        command.add_argument("name")
        command.set_defaults(handler=set_enabled, enabled=enabled)
        commands.append(command)
    for verb in ("grant", "revoke"):
        command = sub.add_parser(verb, help=f"{verb} roles")
        command.add_argument("name")
        command.add_argument("--role", action="append", required=True, choices=ROLE_NAMES)
        command.set_defaults(handler=change_roles, verb=verb)
        commands.append(command)
    for command in commands:
        _finish(command, add_config)


def _tokens(parser: argparse.ArgumentParser, add_config: AddConfig) -> None:
    sub = parser.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="a token for a user; its secret is shown once")
    create.add_argument("--user", required=True, help="the user the token acts as")
    create.add_argument("--label", required=True, help="what holds it, e.g. 'case system'")
    create.add_argument("--days", type=int, default=90, help="lifetime (1-366, default 90)")
    create.set_defaults(handler=create_token)
    list_ = sub.add_parser("list", help="tokens, without their secrets")
    list_.add_argument("--user", default="", help="only this user's")
    list_.set_defaults(handler=list_tokens)
    revoke = sub.add_parser("revoke", help="stop a token from working, at once")
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=revoke_token)
    for command in (create, list_, revoke):
        _finish(command, add_config)


def _finish(command: argparse.ArgumentParser, add_config: AddConfig) -> None:
    add_config(command)
    command.add_argument("--json", action="store_true", help="machine-readable output")


def _client(args: argparse.Namespace) -> LocalClient:
    return LocalClient(local_socket(args.config))


def whoami_command(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        user = client.call(client.people.WhoAmI, pb.WhoAmIRequest())
    _show_user(args, console, user)
    return 0


def add_user(args: argparse.Namespace, console: Console) -> int:
    request = pb.AddUserRequest(
        name=args.name, unit=args.unit, roles=args.role, os_user=args.os_user
    )
    with _client(args) as client:
        user = client.call(client.people.AddUser, request)
    _show_user(args, console, user)
    return 0


def list_users(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        users = client.call(client.people.ListUsers, pb.ListUsersRequest()).users
    if args.json:
        output.print_json(console, [user_dict(u) for u in users])
        return 0
    table = Table("user", "unit", "roles", "login", "enabled")
    for u in users:
        table.add_row(u.name, u.unit, ", ".join(u.roles), u.os_user or "-", _yes(u.enabled))
    console.print(table)
    return 0


def show_user(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        user = client.call(client.people.GetUser, pb.GetUserRequest(name=args.name))
    _show_user(args, console, user)
    return 0


def set_enabled(args: argparse.Namespace, console: Console) -> int:
    request = pb.SetUserEnabledRequest(name=args.name, enabled=args.enabled)
    with _client(args) as client:
        user = client.call(client.people.SetUserEnabled, request)
    _show_user(args, console, user)
    return 0


def change_roles(args: argparse.Namespace, console: Console) -> int:
    roles = {"grant": args.role} if args.verb == "grant" else {"revoke": args.role}
    with _client(args) as client:
        user = client.call(
            client.people.ChangeRoles, pb.ChangeRolesRequest(name=args.name, **roles)
        )
    _show_user(args, console, user)
    return 0


def create_token(args: argparse.Namespace, console: Console) -> int:
    request = pb.CreateTokenRequest(name=args.user, label=args.label, days=max(args.days, 0))
    with _client(args) as client:
        made = client.call(client.people.CreateToken, request)
    if args.json:
        output.print_json(console, {**token_dict(made.token), "secret": made.secret})
        return 0
    console.print(
        f"Token {made.token.token_id} for {made.token.name}, valid until "
        f"{format_ms(made.token.expires_at_ms)}. Its secret, shown only now:"
    )
    console.print(made.secret, markup=False, highlight=False)
    return 0


def list_tokens(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        tokens = client.call(client.people.ListTokens, pb.ListTokensRequest(name=args.user)).tokens
    if args.json:
        output.print_json(console, [token_dict(t) for t in tokens])
        return 0
    table = Table("token", "user", "label", "expires", "revoked")
    for t in tokens:
        revoked = format_ms(t.revoked_at_ms) if t.revoked_at_ms else "-"
        table.add_row(t.token_id, t.name, t.label, format_ms(t.expires_at_ms), revoked)
    console.print(table)
    return 0


def revoke_token(args: argparse.Namespace, console: Console) -> int:
    with _client(args) as client:
        token = client.call(
            client.people.RevokeToken, pb.RevokeTokenRequest(token_id=args.token_id)
        )
    if args.json:
        output.print_json(console, token_dict(token))
    else:
        console.print(f"Token {token.token_id} of {token.name} is revoked.")
    return 0


def user_dict(user: pb.User) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "name": user.name,
        "unit": user.unit,
        "roles": list(user.roles),
        "os_user": user.os_user or None,
        "enabled": user.enabled,
        "created_at": format_ms(user.created_at_ms),
    }
    if user.signed_in_via:
        shown["signed_in_via"] = user.signed_in_via
    return shown


def token_dict(token: pb.Token) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "user": token.name,
        "label": token.label,
        "created_at": format_ms(token.created_at_ms),
        "expires_at": format_ms(token.expires_at_ms),
        "revoked_at": format_ms(token.revoked_at_ms) if token.revoked_at_ms else None,
    }


def _show_user(args: argparse.Namespace, console: Console, user: pb.User) -> None:
    if args.json:
        output.print_json(console, user_dict(user))
        return
    via = f" (signed in via {user.signed_in_via})" if user.signed_in_via else ""
    console.print(f"[bold]{user.name}[/bold]{via}, {user.unit}")
    console.print(f"  roles: {', '.join(user.roles)}")
    console.print(f"  login: {user.os_user or '-'}, enabled: {_yes(user.enabled)}")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
