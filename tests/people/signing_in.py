# SPDX-License-Identifier: Apache-2.0
"""Helpers of the sign-in tests: a node with OIDC configured, the Credentials service on its
socket, and users made ready to sign in through the real CLI."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pyotp
import pytest

from node.config import NodeConfig
from node.gen.comity.v1 import local_credentials_pb2 as pb
from node.gen.comity.v1 import local_credentials_pb2_grpc, local_people_pb2, local_people_pb2_grpc
from node.ids import AgencyId
from node.model.oidc import OidcConfig
from node.model.people import Role
from node.transport.status import ERROR_TRAILER
from tests.people.conftest import Cli
from tests.people.oidc_provider import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI

UNIT = AgencyId("aa-cyber-unit")
PASSWORD = "correct horse battery staple"


def with_oidc(config: NodeConfig, issuer: str) -> NodeConfig:
    secret_file = config.config_path.parent / "oidc-client-secret"
    secret_file.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    return replace(
        config,
        oidc=OidcConfig(
            issuer=issuer,
            client_id=CLIENT_ID,
            client_secret_file=secret_file,
            redirect_uri=REDIRECT_URI,
            roles_claim="groups",
            role_map={
                "cyber-investigators": frozenset({Role.INVESTIGATOR}),
                "cyber-reviewers": frozenset({Role.REVIEWER, Role.SUPERVISOR}),
            },
        ),
    )


@dataclass
class Refusal:
    status: grpc.StatusCode
    code: str
    message: str


@dataclass
class Socket:
    """The node's local socket, called without any sign-in unless a session is given."""

    path: Path

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"unix:{self.path}")

    async def sign_in(self, name: str, password: str, code: str) -> pb.Session:
        async with self.channel() as channel:
            stub = local_credentials_pb2_grpc.CredentialsStub(channel)
            request = pb.SignInRequest(name=name, password=password, totp_code=code)
            answer: pb.Session = await stub.SignIn(request)
            return answer

    async def refusal_of_sign_in(self, name: str, password: str, code: str) -> Refusal:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await self.sign_in(name, password, code)
        return refusal(raised.value)

    async def whoami(self, session: str) -> local_people_pb2.User:
        async with self.channel() as channel:
            stub = local_people_pb2_grpc.PeopleStub(channel)
            metadata = (("authorization", f"Bearer {session}"),)
            user: local_people_pb2.User = await stub.WhoAmI(
                local_people_pb2.WhoAmIRequest(), metadata=metadata
            )
            return user

    async def credentials(
        self,
    ) -> tuple[grpc.aio.Channel, local_credentials_pb2_grpc.CredentialsAsyncStub]:
        channel = self.channel()
        return channel, local_credentials_pb2_grpc.CredentialsStub(channel)


def refusal(error: grpc.aio.AioRpcError) -> Refusal:
    trailer = dict(error.trailing_metadata() or ()).get(ERROR_TRAILER, "")
    return Refusal(error.code(), str(trailer), error.details() or "")


async def add_user(cli: Cli, name: str, *roles: str) -> None:
    role_args = [arg for role in roles for arg in ("--role", role)]
    added = await cli(UNIT, "users", "add", name, "--unit", "Cyber Unit", *role_args)
    assert added.code == 0, added.err


async def set_password(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, password: str, token: str | None = None
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    done = await cli(UNIT, "credentials", "set-password", name, "--password-stdin", token=token)
    return done.code, done.err


async def ready_user(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, name: str, *roles: str
) -> pyotp.TOTP:
    """A user with a password and a second factor: its authenticator."""
    await add_user(cli, name, *roles)
    code, err = await set_password(cli, monkeypatch, name, PASSWORD)
    assert code == 0, err
    enrolled = await cli(UNIT, "credentials", "enrol-totp", name, "--json")
    assert enrolled.code == 0, enrolled.err
    totp = pyotp.parse_uri(json.loads(enrolled.out)["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    return totp
