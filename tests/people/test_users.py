# SPDX-License-Identifier: Apache-2.0
"""Users, roles and service tokens through the real local socket of a running node."""

from __future__ import annotations

import getpass
import json

import grpc
import pytest

from node.gen.comity.v1 import local_pb2, local_pb2_grpc, local_people_pb2, local_people_pb2_grpc
from node.ids import AgencyId
from node.transport.status import ERROR_TRAILER
from tests.integration.harness import Federation
from tests.people.conftest import Cli

UNIT = AgencyId("aa-cyber-unit")


async def _new_token(cli: Cli, user: str, *roles: str) -> str:
    role_args = [arg for role in roles for arg in ("--role", role)]
    added = await cli(UNIT, "users", "add", user, "--unit", "Cyber Unit", *role_args, "--json")
    assert added.code == 0, added.err
    made = await cli(UNIT, "tokens", "create", "--user", user, "--label", "tests", "--json")
    assert made.code == 0, made.err
    secret: str = json.loads(made.out)["secret"]
    return secret


async def test_the_initialising_login_is_the_first_admin(cli: Cli) -> None:
    me = await cli(UNIT, "whoami", "--json")
    assert me.code == 0, me.err
    shown = json.loads(me.out)
    assert shown["name"] == "admin"
    assert shown["os_user"] == getpass.getuser()
    assert shown["signed_in_via"] == "os-user"
    assert "admin" in shown["roles"]


async def test_a_token_acts_as_its_user_until_revoked(cli: Cli) -> None:
    token = await _new_token(cli, "kadri", "investigator")
    me = await cli(UNIT, "whoami", "--json", token=token)
    assert me.code == 0, me.err
    assert json.loads(me.out) | {"created_at": None} == {
        "name": "kadri",
        "unit": "Cyber Unit",
        "roles": ["investigator"],
        "os_user": None,
        "enabled": True,
        "created_at": None,
        "signed_in_via": "token",
    }
    listed = await cli(UNIT, "tokens", "list", "--json")
    (entry,) = json.loads(listed.out)
    assert token not in listed.out  # never shown again
    assert (await cli(UNIT, "tokens", "revoke", entry["token_id"])).code == 0

    refused = await cli(UNIT, "whoami", token=token)
    assert refused.code == 1
    assert "[token_revoked]" in refused.err


async def test_a_role_without_the_permission_is_refused_and_nothing_changes(cli: Cli) -> None:
    token = await _new_token(cli, "kadri", "investigator")
    refused = await cli(UNIT, "users", "add", "mallory", "--unit", "X", "--role", "admin",
                        token=token)  # fmt: skip
    assert refused.code == 1
    assert "[access_denied]" in refused.err
    assert "users.admin" in refused.err
    listed = await cli(UNIT, "users", "list", "--json")
    assert [u["name"] for u in json.loads(listed.out)] == ["admin", "kadri"]

    status = await cli(UNIT, "node", "status", token=token)
    assert status.code == 1
    assert "[access_denied]" in status.err


async def test_disabled_users_and_their_tokens_are_refused(cli: Cli) -> None:
    token = await _new_token(cli, "mart", "supervisor")
    assert (await cli(UNIT, "users", "disable", "mart")).code == 0
    refused = await cli(UNIT, "whoami", token=token)
    assert "[user_disabled]" in refused.err
    assert (await cli(UNIT, "users", "enable", "mart")).code == 0
    assert (await cli(UNIT, "whoami", token=token)).code == 0


async def test_roles_are_granted_and_revoked_but_the_last_admin_stays(cli: Cli) -> None:
    await _new_token(cli, "ines", "auditor")
    granted = await cli(UNIT, "users", "grant", "ines", "--role", "oversight", "--json")
    assert json.loads(granted.out)["roles"] == ["auditor", "oversight"]
    revoked = await cli(UNIT, "users", "revoke", "ines", "--role", "auditor", "--json")
    assert json.loads(revoked.out)["roles"] == ["oversight"]

    last = await cli(UNIT, "users", "revoke", "admin", "--role", "admin")
    assert last.code == 1
    assert "[last_admin]" in last.err
    assert (await cli(UNIT, "users", "disable", "admin")).code == 1


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("users", "add", "Bad Name", "--unit", "U", "--role", "admin"), "bad_user"),
        (("users", "add", "admin", "--unit", "U", "--role", "admin"), "user_exists"),
        (("users", "show", "nobody-here"), "not_found"),
        (("tokens", "create", "--user", "admin", "--label", "x", "--days", "999"), "bad_user"),
        (("tokens", "revoke", "0000000000000000"), "not_found"),
    ],
)
async def test_bad_input_names_what_was_wrong(cli: Cli, args: tuple[str, ...], code: str) -> None:
    outcome = await cli(UNIT, *args)
    assert outcome.code == 1
    assert f"[{code}]" in outcome.err


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ((), "not_signed_in"),
        ((("comity-login-ticket", "forged"),), "not_signed_in"),
        ((("authorization", "Bearer ctk_0123456789abcdef_guess"),), "bad_token"),
        ((("authorization", "Bearer something-else"),), "bad_token"),
    ],
)
async def test_calls_without_a_valid_sign_in_are_unauthenticated(
    fed: Federation, metadata: tuple[tuple[str, str], ...], code: str
) -> None:
    socket = fed.configs[UNIT].local_socket
    async with grpc.aio.insecure_channel(f"unix:{socket}") as channel:
        for call in (
            local_people_pb2_grpc.PeopleStub(channel).WhoAmI(
                local_people_pb2.WhoAmIRequest(), metadata=metadata
            ),
            local_pb2_grpc.LocalStub(channel).ListRequests(
                local_pb2.ListRequestsRequest(), metadata=metadata
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            trailers = dict(refused.value.trailing_metadata() or ())
            assert trailers[ERROR_TRAILER] == code
