# SPDX-License-Identifier: Apache-2.0
"""Sign-in through an OpenID Connect provider: a real provider over HTTP on loopback, a
running node, and the browser's part played with real redirects."""

from __future__ import annotations

import asyncio
import http.client
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from joserfc.jwk import RSAKey

from node.gen.comity.v1 import local_credentials_pb2 as pb
from tests.integration.harness import Federation, make_configs, running_federation
from tests.people.conftest import Cli
from tests.people.oidc_provider import CLIENT_SECRET, Provider, running_provider
from tests.people.signing_in import (
    PASSWORD,
    UNIT,
    Refusal,
    Socket,
    add_user,
    ready_user,
    refusal,
    with_oidc,
)


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as provider:
        yield provider


@pytest.fixture
async def fed(
    tmp_path: Path, node_database_urls: Callable[[str], str], provider: Provider
) -> AsyncIterator[Federation]:
    configs = make_configs(tmp_path, node_database_urls)
    configs = {UNIT: with_oidc(configs[UNIT], provider.issuer)}
    async with running_federation(configs) as federation:
        yield federation


@pytest.fixture
def socket(fed: Federation) -> Socket:
    return Socket(fed.configs[UNIT].local_socket)


async def _start(socket: Socket) -> pb.OidcStart:
    channel, stub = await socket.credentials()
    async with channel:
        started: pb.OidcStart = await stub.StartOidcSignIn(pb.StartOidcSignInRequest())
        return started


def _browser(url: str) -> dict[str, str]:
    """What the provider sends the browser back to the console with. (The browser is no part
    of the node: http.client, which logs nothing, keeps its requests out of the node's logs.)"""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        assert answer.status == 302
        location = answer.getheader("Location") or ""
    finally:
        connection.close()
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def _finish(socket: Socket, code: str, state: str) -> pb.Session:
    channel, stub = await socket.credentials()
    async with channel:
        session: pb.Session = await stub.SignInOidc(pb.SignInOidcRequest(code=code, state=state))
        return session


async def _sign_in(socket: Socket) -> pb.Session:
    started = await _start(socket)
    back = await asyncio.to_thread(_browser, started.authorization_url)
    assert back["state"] == started.state
    return await _finish(socket, back["code"], back["state"])


async def _refused(socket: Socket) -> Refusal:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _sign_in(socket)
    return refusal(raised.value)


async def test_the_provider_vouches_and_its_groups_become_the_session_roles(
    cli: Cli, socket: Socket, provider: Provider
) -> None:
    await add_user(cli, "kadri", "investigator")
    provider.claims = {"preferred_username": "kadri", "groups": ["cyber-reviewers", "other"]}
    started = await _start(socket)
    query = parse_qs(urlsplit(started.authorization_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"][0]
    assert query["state"] == [started.state]

    session = await _sign_in(socket)
    me = await socket.whoami(session.token)
    assert (me.name, me.signed_in_via) == ("kadri", "session")
    assert sorted(me.roles) == ["reviewer", "supervisor"]  # the provider's word, mapped


async def test_a_state_is_good_once(cli: Cli, socket: Socket, provider: Provider) -> None:
    await add_user(cli, "kadri", "investigator")
    provider.claims = {"preferred_username": "kadri", "groups": ["cyber-investigators"]}
    started = await _start(socket)
    back = await asyncio.to_thread(_browser, started.authorization_url)
    await _finish(socket, back["code"], back["state"])
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _finish(socket, back["code"], back["state"])
    assert refusal(raised.value).code == "oidc_bad_state"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _finish(socket, back["code"], "a-state-never-handed-out")
    assert refusal(raised.value).code == "oidc_bad_state"


@pytest.mark.parametrize(
    ("spoil", "code"),
    [
        pytest.param(lambda p: setattr(p, "audience", "another-client"), "oidc_bad_id_token",
                     id="wrong-audience"),
        pytest.param(lambda p: setattr(p, "signing_key", RSAKey.generate_key(2048, {"kid": "k1"})),
                     "oidc_bad_id_token", id="bad-signature"),
        pytest.param(lambda p: setattr(p, "issued_ago_s", 3600), "oidc_bad_id_token",
                     id="expired"),
        pytest.param(lambda p: p.claims.update(preferred_username="stranger"),
                     "oidc_unknown_user", id="unknown-user"),
        pytest.param(lambda p: p.claims.update(groups=["canteen"]), "oidc_no_role",
                     id="no-mapped-role"),
    ],
)  # fmt: skip
async def test_bad_tokens_and_unknown_people_are_refused_with_their_code(
    cli: Cli,
    socket: Socket,
    provider: Provider,
    spoil: Callable[[Provider], None],
    code: str,
) -> None:
    await add_user(cli, "kadri", "investigator")
    provider.claims = {"preferred_username": "kadri", "groups": ["cyber-investigators"]}
    spoil(provider)
    refused = await _refused(socket)
    assert refused.code == code
    assert refused.status in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


async def test_no_secret_reaches_a_log_line_or_a_span(
    *,
    cli: Cli,
    socket: Socket,
    provider: Provider,
    fed: Federation,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    totp = await ready_user(cli, monkeypatch, "kadri", "investigator")
    seed = totp.secret
    password_session = await socket.sign_in("kadri", PASSWORD, totp.now())
    wrong = await socket.refusal_of_sign_in("kadri", PASSWORD + "x", totp.now())
    assert wrong.code == "bad_password"
    provider.claims = {"preferred_username": "kadri", "groups": ["cyber-investigators"]}
    started = await _start(socket)
    back = await asyncio.to_thread(_browser, started.authorization_url)
    oidc_session = await _finish(socket, back["code"], back["state"])
    await socket.whoami(oidc_session.token)

    secrets = {
        "password": PASSWORD,
        "totp seed": seed,
        "password session": password_session.token.rpartition("_")[2],
        "oidc session": oidc_session.token.rpartition("_")[2],
        "client secret": CLIENT_SECRET,
        "id token signature": provider.id_tokens[-1].rpartition(".")[2],
        "authorization code": back["code"],
        "state": started.state,
    }
    logged = caplog.text
    spans = fed.spans.get_finished_spans()
    assert spans
    traced = repr([(s.name, dict(s.attributes or {}), [e.attributes for e in s.events])
                   for s in spans])  # fmt: skip
    assert "SignIn" in traced
    leaked = [what for what, value in secrets.items() if value in logged or value in traced]
    assert leaked == []
