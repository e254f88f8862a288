# SPDX-License-Identifier: Apache-2.0
"""Console sign-in with a password and a TOTP code, through the real local socket of a
running node: sessions, refusals, lockout, and the password policy."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest

from node.gen.comity.v1 import local_credentials_pb2 as pb
from tests.integration.harness import Federation, make_configs, running_federation
from tests.people.conftest import Cli
from tests.people.signing_in import (
    PASSWORD,
    UNIT,
    Socket,
    add_user,
    ready_user,
    refusal,
    set_password,
)


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    configs = make_configs(tmp_path, node_database_urls)
    async with running_federation({UNIT: configs[UNIT]}) as federation:
        yield federation


@pytest.fixture
def socket(fed: Federation) -> Socket:
    return Socket(fed.configs[UNIT].local_socket)


def _untimed(message: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", message)


def _code(totp: object, steps: int = 0) -> str:
    return totp.at(time.time() + 30 * steps)  # type: ignore[attr-defined, no-any-return]


async def test_a_password_and_a_one_time_code_open_a_session_until_signed_out(
    cli: Cli, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    totp = await ready_user(cli, monkeypatch, "kadri", "investigator")
    session = await socket.sign_in("kadri", PASSWORD, _code(totp))
    assert session.token.startswith("cses_")
    assert session.name == "kadri"
    assert session.idle_timeout_ms == 8 * 3_600_000
    me = await socket.whoami(session.token)
    assert (me.name, me.signed_in_via, list(me.roles)) == ("kadri", "session", ["investigator"])

    # The session acts as its user and no more: kadri is no admin.
    listed = await cli(UNIT, "users", "list", token=session.token)
    assert listed.code == 1
    assert "[access_denied]" in listed.err

    channel, stub = await socket.credentials()
    async with channel:
        await stub.SignOut(pb.SignOutRequest(token=session.token))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await socket.whoami(session.token)
    assert refusal(raised.value).code == "session_revoked"


async def test_refusals_name_their_cause_but_not_whether_the_user_exists(
    cli: Cli, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    totp = await ready_user(cli, monkeypatch, "kadri", "investigator")
    wrong = await socket.refusal_of_sign_in("kadri", "not the password at all", _code(totp))
    nobody = await socket.refusal_of_sign_in("nobody", PASSWORD, _code(totp))
    assert wrong == nobody
    assert wrong.status == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.code == "bad_password"
    assert "kadri" not in wrong.message

    bad_code = await socket.refusal_of_sign_in("kadri", PASSWORD, "000000")
    assert (bad_code.status, bad_code.code) == (grpc.StatusCode.UNAUTHENTICATED, "bad_totp")

    code = _code(totp)
    await socket.sign_in("kadri", PASSWORD, code)
    replayed = await socket.refusal_of_sign_in("kadri", PASSWORD, code)
    assert replayed.code == "bad_totp"

    await add_user(cli, "mart", "reviewer")
    assert (await set_password(cli, monkeypatch, "mart", PASSWORD))[0] == 0
    no_factor = await socket.refusal_of_sign_in("mart", PASSWORD, "123456")
    assert no_factor.code == "totp_not_enrolled"

    assert (await cli(UNIT, "users", "disable", "kadri")).code == 0
    disabled = await socket.refusal_of_sign_in("kadri", PASSWORD, _code(totp, 1))
    assert (disabled.status, disabled.code) == (grpc.StatusCode.UNAUTHENTICATED, "user_disabled")


async def test_five_failures_lock_the_name_until_an_admin_unlocks_it(
    cli: Cli, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    totp = await ready_user(cli, monkeypatch, "kadri", "investigator")
    for name in ("kadri", "nobody"):
        codes = [
            (await socket.refusal_of_sign_in(name, "wrong password!", "000000")).code
            for _ in range(6)
        ]
        assert codes == ["bad_password"] * 5 + ["sign_in_locked"]
    locked = await socket.refusal_of_sign_in("kadri", PASSWORD, _code(totp))
    unknown = await socket.refusal_of_sign_in("nobody", PASSWORD, _code(totp))
    assert locked.code == unknown.code == "sign_in_locked"
    # A locked user and a locked non-user alike (each until its own time).
    assert _untimed(locked.message) == _untimed(unknown.message)

    unlocked = await cli(UNIT, "credentials", "unlock", "kadri", "--json")
    assert unlocked.code == 0, unlocked.err
    assert '"was_locked": true' in unlocked.out
    session = await socket.sign_in("kadri", PASSWORD, _code(totp))
    assert session.name == "kadri"


async def test_guesses_sent_at_once_cannot_pass_the_limit(
    cli: Cli, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ready_user(cli, monkeypatch, "kadri", "investigator")

    async def guess(n: int) -> str:
        return (await socket.refusal_of_sign_in("kadri", f"guess number {n:04}", "000000")).code

    codes = await asyncio.gather(*(guess(n) for n in range(12)))
    assert codes.count("bad_password") == 5  # only five were ever checked
    assert codes.count("sign_in_locked") == 7


async def test_passwords_follow_the_policy_and_only_admins_set_others(
    cli: Cli, socket: Socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_user(cli, "kadri", "investigator")
    for weak in ("short pass", "my name is KADRI, ok?"):
        code, err = await set_password(cli, monkeypatch, "kadri", weak)
        assert code == 1
        assert "[weak_password]" in err
    made = await cli(UNIT, "tokens", "create", "--user", "kadri", "--label", "t", "--json")
    token = made.out.split('"secret": "')[1].split('"')[0]
    own = await set_password(cli, monkeypatch, "kadri", PASSWORD, token=token)
    assert own[0] == 0, own[1]
    other = await set_password(cli, monkeypatch, "admin", PASSWORD, token=token)
    assert other[0] == 1
    assert "[access_denied]" in other[1]
    enrol = await cli(UNIT, "credentials", "enrol-totp", "admin", token=token)
    assert "[access_denied]" in enrol.err
