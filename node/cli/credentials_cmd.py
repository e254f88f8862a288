# SPDX-License-Identifier: Apache-2.0
"""``comity credentials``: console passwords, TOTP second factors, and lifting lockouts.

An admin sets anyone's initial password and enrols anyone's second factor; a user may do
both for themself. Passwords are read from the terminal (twice, not echoed) or, with
``--password-stdin``, from the first line of standard input; never from the command line,
where other logins could read them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from node.cli import output
from node.cli.local_client import LocalClient, local_socket
from node.errors import ComityError, ErrorKind
from node.gen.comity.v1 import local_credentials_pb2 as pb
from node.gen.comity.v1 import local_credentials_pb2_grpc

AddConfig = Callable[[argparse.ArgumentParser], None]


class PasswordEntryError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "password_entry"


def register(commands: Any, add_config: AddConfig) -> None:
    """Add ``credentials`` to the top-level parser's subparsers."""
    parser = commands.add_parser(
        "credentials", help="console sign-in: passwords, TOTP second factors, lockouts"
    )
    sub = parser.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")
    password = sub.add_parser("set-password", help="set a user's console password")
    password.add_argument("name", help="the user (yourself, or anyone for an admin)")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    password.set_defaults(handler=set_password)
    totp = sub.add_parser(
        "enrol-totp", help="a new TOTP second factor; its otpauth:// URI is shown once"
    )
    totp.add_argument("name")
    totp.set_defaults(handler=enrol_totp)
    unlock = sub.add_parser("unlock", help="lift a lockout after failed sign-ins (admin)")
    unlock.add_argument("name")
    unlock.set_defaults(handler=unlock_user)
    for command in (password, totp, unlock):
        add_config(command)
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    with LocalClient(local_socket(args.config)) as client:
        stub = local_credentials_pb2_grpc.CredentialsStub(client.channel)
        return client.call(getattr(stub, method), request)


def set_password(args: argparse.Namespace, console: Console) -> int:
    password = _read_password(from_stdin=args.password_stdin)
    _call(args, "SetPassword", pb.SetPasswordRequest(name=args.name, password=password))
    if args.json:
        output.print_json(console, {"name": args.name, "password_set": True})
    else:
        console.print(f"The console password of {args.name} is set.")
    return 0


def enrol_totp(args: argparse.Namespace, console: Console) -> int:
    enrolment = _call(args, "EnrolTotp", pb.EnrolTotpRequest(name=args.name))
    if args.json:
        output.print_json(console, {"name": args.name, "otpauth_uri": enrolment.otpauth_uri})
        return 0
    console.print(
        f"A new second factor for {args.name}. Add this to an authenticator app now (it is "
        "shown only once, and replaces any earlier one):"
    )
    console.print(enrolment.otpauth_uri, markup=False, highlight=False)
    return 0


def unlock_user(args: argparse.Namespace, console: Console) -> int:
    answer = _call(args, "Unlock", pb.UnlockRequest(name=args.name))
    if args.json:
        output.print_json(console, {"name": args.name, "was_locked": answer.was_locked})
    elif answer.was_locked:
        console.print(f"Failed sign-ins of {args.name} are forgotten; it may sign in again.")
    else:
        console.print(f"{args.name} had no failed sign-ins to forget.")
    return 0


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise PasswordEntryError(
            "no terminal to read the password from: use --password-stdin to give it on "
            "standard input"
        )
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise PasswordEntryError("the two passwords differ; nothing was changed")
    if not password:
        raise PasswordEntryError("no password was given")
    return password
