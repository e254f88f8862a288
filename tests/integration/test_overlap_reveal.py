# SPDX-License-Identifier: Apache-2.0
"""Consented reveals between real nodes over mutual TLS: a node learns nothing beyond the count
(and, after consent, the agreed matches); every refusal stores and reveals nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from nacl.signing import SigningKey
from sqlalchemy import select

from node.cli.main import main
from node.errors import PeerRejectedError, UnknownAgencyError
from node.gen.comity.v1 import indicators_pb2, indicators_pb2_grpc
from node.ids import AgencyId
from node.indicators.psi import blind_each, item_bytes, new_secret
from node.indicators.reveal import RevealRequest, RevealRequestError, sign_request
from node.indicators.sets import Indicator
from node.services.overlap_reveal import MAX_WAITING_PER_PEER, RevealStateError
from node.storage.engine import transaction
from node.storage.tables import OverlapReveal, metadata
from node.timeutil import now_ms
from node.tls import generate_tls_identity
from node.transport.status import ERROR_TRAILER
from tests.integration.harness import (
    Federation,
    answered_checks,
    make_configs,
    running_federation,
)

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
REASON = "Case 2026/117 doxxing campaign: confirm shared accounts before a joint request"
UNIT_ITEMS = [("platform_account", f"chirper:user{i:03d}") for i in range(12)] + [
    ("phone", f"+3725100{i:04d}") for i in range(8)
]
AUTHORITY_ITEMS = [("platform_account", f"chirper:user{i:03d}") for i in range(9, 30)] + [
    ("phone", f"+3725100{i:04d}") for i in range(6, 20)
]
SHARED = sorted(set(UNIT_ITEMS) & set(AUTHORITY_ITEMS))
UNIT_ONLY = sorted(set(UNIT_ITEMS) - set(AUTHORITY_ITEMS))
AUTHORITY_ONLY = sorted(set(AUTHORITY_ITEMS) - set(UNIT_ITEMS))


@pytest.fixture
async def limited(
    tmp_path: Path, node_database_urls: Callable[[str], str]
) -> AsyncIterator[Federation]:
    """The central authority answers each peer one overlap check or reveal a day."""
    configs = make_configs(tmp_path, node_database_urls)
    configs[AUTHORITY] = replace(configs[AUTHORITY], overlap_checks_per_day=1)
    async with running_federation(configs) as federation:
        yield federation


async def own_set(fed: Federation, agency: str, items: list[tuple[str, str]]) -> str:
    service = fed.nodes[agency].indicators
    created = await service.create(tlp="green", recipients=[], clients={})
    set_id = created.indicator_set.set_id
    await service.add(set_id, [Indicator.of(kind, value) for kind, value in items])
    return set_id


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def config(fed: Federation, agency: str) -> tuple[str, str]:
    return "--config", str(fed.configs[agency].config_path)


def reveal_rows(fed: Federation, agency: str) -> list[OverlapReveal]:
    with transaction(fed.nodes[agency].engine) as session:
        return list(session.scalars(select(OverlapReveal)))


def stored_text(fed: Federation, agency: str) -> str:
    """Every row of every table of the node's database, as text."""
    parts: list[str] = []
    with transaction(fed.nodes[agency].engine) as session:
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)):
                parts.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(parts)


async def ask(fed: Federation, set_ids: list[str] | None = None, **kw: int) -> str:
    view = await fed.nodes[UNIT].reveal.ask(AUTHORITY, REASON, set_ids or [], **kw)
    return view.request.request_id


async def points_for(fed: Federation, count: int) -> list[bytes]:
    return blind_each([item_bytes("phone", f"+1555{n:07d}") for n in range(count)], new_secret())


async def reveal_directly(fed: Federation, sender: str, request_id: str, count: int) -> None:
    """The peer call alone, as a node that skips its own checks would make it."""
    member = fed.nodes[sender].directory.find(AUTHORITY)
    assert member is not None
    points = await points_for(fed, count)
    await fed.nodes[sender].peers.reveal_overlap(member, request_id, points)


async def test_a_consented_reveal_gives_exactly_the_shared_items_once(
    fed: Federation, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await own_set(fed, UNIT, UNIT_ITEMS)
    await own_set(fed, AUTHORITY, AUTHORITY_ITEMS)
    # A set the authority merely received is someone else's case: it reveals nothing.
    received = await own_set(fed, THIRD, UNIT_ONLY[:3])
    await fed.nodes[THIRD].indicators.share(received, AUTHORITY)

    code, out, err = await cli(
        capsys, "overlap", "ask", "--with", AUTHORITY, "--reason", REASON, "--json",
        *config(fed, UNIT),
    )  # fmt: skip
    assert code == 0, err
    asked = json.loads(out)
    request_id = asked["request_id"]
    assert (asked["state"], asked["items"], asked["direction"]) == ("asked", 20, "outbound")

    # No consent yet: the authority refuses, and the request stays open.
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[UNIT].reveal.reveal(request_id)
    assert caught.value.peer_code == "reveal_denied"
    assert "not been consented" in caught.value.message

    code, out, err = await cli(capsys, "overlap", "requests", "--json", *config(fed, AUTHORITY))
    assert code == 0, err
    [pending] = json.loads(out)
    assert pending["request_id"] == request_id
    assert (pending["direction"], pending["state"], pending["requester"]) == (
        "inbound",
        "pending",
        UNIT,
    )
    assert (pending["items"], pending["reason"]) == (20, REASON)

    code, out, err = await cli(capsys, "overlap", "consent", request_id, *config(fed, AUTHORITY))
    assert code == 0, err
    assert "may run one reveal of 20" in out

    code, out, err = await cli(
        capsys, "overlap", "reveal", request_id, "--json", *config(fed, UNIT)
    )
    assert code == 0, err
    revealed = json.loads(out)
    assert revealed["matches"] == [{"type": t, "value": v} for t, v in SHARED]
    assert (revealed["mine"], revealed["theirs"], revealed["shared"]) == (20, 35, len(SHARED))
    # The authority logged the reveal as an answered check, with the request's reason.
    [(_, openings)] = answered_checks(fed, AUTHORITY).values()
    assert {(o.name, o.value) for o in openings} >= {("items", "20"), ("justification", REASON)}

    # Single use: again from the asker's node, and again straight at the authority.
    with pytest.raises(RevealStateError, match="revealed"):
        await fed.nodes[UNIT].reveal.reveal(request_id)
    with pytest.raises(PeerRejectedError) as caught:
        await reveal_directly(fed, UNIT, request_id, 20)
    assert caught.value.peer_code == "reveal_denied"
    assert "already used" in caught.value.message

    # A count, by contrast, comes back re-sorted: its order says nothing.
    authority = fed.nodes[UNIT].directory.find(AUTHORITY)
    assert authority is not None
    _, doubled, _ = await fed.nodes[UNIT].peers.count_overlap(
        authority, await points_for(fed, 20), REASON
    )
    assert doubled == sorted(doubled)

    # The asker keeps how many matched, not which; the authority not even how many.
    [mine] = reveal_rows(fed, UNIT)
    assert (mine.state, mine.shared) == ("revealed", len(SHARED))
    [theirs] = reveal_rows(fed, AUTHORITY)
    assert (theirs.state, theirs.shared) == ("used", None)
    authority_holds = stored_text(fed, AUTHORITY)
    # Values only the asker holds never reach the authority.
    assert all(value not in authority_holds for _, value in UNIT_ONLY[3:])
    # ... and the asker learns none of the authority's other values.
    assert all(value not in stored_text(fed, UNIT) for _, value in AUTHORITY_ONLY)
    logged = caplog.text + "".join(str(s.to_json()) for s in fed.spans.get_finished_spans())
    assert REASON not in logged
    assert all(value not in logged for _, value in UNIT_ITEMS + AUTHORITY_ITEMS)


async def test_a_refused_request_is_refused_and_stays_refused(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await own_set(fed, UNIT, UNIT_ITEMS)
    await own_set(fed, AUTHORITY, AUTHORITY_ITEMS)
    request_id = await ask(fed)
    code, out, err = await cli(capsys, "overlap", "refuse", request_id, *config(fed, AUTHORITY))
    assert code == 0, err
    assert "Refused" in out
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[UNIT].reveal.reveal(request_id)
    assert (caught.value.peer_code, caught.value.kind.value) == (
        "reveal_denied",
        "permission_denied",
    )
    assert "refused" in caught.value.message
    code, _, err = await cli(capsys, "overlap", "consent", request_id, *config(fed, AUTHORITY))
    assert code != 0
    assert "refused, not pending" in err
    assert [r.state for r in reveal_rows(fed, UNIT)] == ["asked"]


async def test_an_expired_request_can_neither_be_consented_to_nor_used(
    fed: Federation,
) -> None:
    await own_set(fed, UNIT, UNIT_ITEMS)
    await own_set(fed, AUTHORITY, AUTHORITY_ITEMS)
    authority = fed.nodes[AUTHORITY].reveal
    consented = await ask(fed, valid_ms=1500)
    await authority.decide(consented, consent=True)
    undecided = await ask(fed, valid_ms=1500)
    await asyncio.sleep(1.6)

    with pytest.raises(RevealStateError, match="expired"):
        await authority.decide(undecided, consent=True)
    with pytest.raises(RevealStateError, match="expired"):
        await fed.nodes[UNIT].reveal.reveal(consented)
    with pytest.raises(PeerRejectedError) as caught:
        await reveal_directly(fed, UNIT, consented, 20)
    assert "expired" in caught.value.message
    states = {v.request.request_id: v.state for v in await authority.list_requests()}
    assert states == {consented: "expired", undecided: "expired"}


async def test_only_the_requester_with_the_stated_count_and_its_daily_allowance_may_reveal(
    limited: Federation,
) -> None:
    fed = limited
    await own_set(fed, UNIT, UNIT_ITEMS)
    await own_set(fed, AUTHORITY, AUTHORITY_ITEMS)
    request_id = await ask(fed)
    await fed.nodes[AUTHORITY].reveal.decide(request_id, consent=True)

    # Another member cannot use the unit's consent, whatever id it quotes.
    with pytest.raises(PeerRejectedError) as caught:
        await reveal_directly(fed, THIRD, request_id, 20)
    assert caught.value.peer_code == "reveal_denied"
    # Guesses beyond the stated count are refused (so is any other count).
    for count in (21, 19):
        with pytest.raises(PeerRejectedError) as caught:
            await reveal_directly(fed, UNIT, request_id, count)
        assert caught.value.peer_code == "bad_reveal_request"
        assert "stated 20 points" in caught.value.message

    # The day's single allowance goes to a count; the reveal must wait, its consent unused.
    assert (await fed.nodes[UNIT].overlap.check(AUTHORITY, reason=REASON)).shared == len(SHARED)
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[UNIT].reveal.reveal(request_id)
    assert caught.value.peer_code == "overlap_limit"
    assert [r.state for r in reveal_rows(fed, AUTHORITY)] == ["consented"]
    assert [r.state for r in reveal_rows(fed, UNIT)] == ["asked"]


def sign_as(
    fed: Federation, key: SigningKey, *, requester: AgencyId = UNIT, responder: AgencyId = AUTHORITY
) -> indicators_pb2.SignedRevealRequest:
    request = RevealRequest.new(
        requester=requester,
        responder=responder,
        set_ids=[],
        items=5,
        reason=REASON,
        now_ms=now_ms(),
        valid_ms=3600_000,
    )
    document, signature = sign_request(request, key)
    return indicators_pb2.SignedRevealRequest(document=document, signature=signature)


async def refused(
    fed: Federation, client: str, message: indicators_pb2.SignedRevealRequest
) -> tuple[grpc.StatusCode, str]:
    async with fed.channel(client=client, server=AUTHORITY) as channel:
        stub = indicators_pb2_grpc.IndicatorsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AskReveal(message, timeout=5)
    trailer = dict(caught.value.trailing_metadata() or ()).get(ERROR_TRAILER, "")
    return caught.value.code(), str(trailer)


async def test_forged_misattributed_and_malformed_requests_store_nothing(
    fed: Federation,
) -> None:
    unit_key, third_key = fed.keys(UNIT).signing, fed.keys(THIRD).signing
    assert await refused(fed, UNIT, sign_as(fed, SigningKey.generate())) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "bad_reveal_signature",
    )
    # The third agency's genuine request, passed on over the unit's TLS connection.
    assert await refused(fed, UNIT, sign_as(fed, third_key, requester=THIRD)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "bad_reveal_signature",
    )
    # The unit signing in the third agency's name.
    assert await refused(fed, UNIT, sign_as(fed, unit_key, requester=THIRD)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "peer_not_sender",
    )
    assert await refused(fed, UNIT, sign_as(fed, unit_key, responder=THIRD)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "misaddressed",
    )
    garbled = indicators_pb2.SignedRevealRequest(
        document=b"{}", signature=bytes(unit_key.sign(b"comity/overlap-reveal/v1\n{}").signature)
    )
    assert await refused(fed, UNIT, garbled) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "bad_reveal_request",
    )
    stale = RevealRequest.new(
        requester=UNIT,
        responder=AUTHORITY,
        set_ids=[],
        items=5,
        reason=REASON,
        now_ms=now_ms() - 7200_000,
        valid_ms=3600_000,
    )
    document, signature = sign_request(stale, unit_key)
    old = indicators_pb2.SignedRevealRequest(document=document, signature=signature)
    assert await refused(fed, UNIT, old) == (grpc.StatusCode.FAILED_PRECONDITION, "not_fresh")
    assert reveal_rows(fed, AUTHORITY) == []


async def test_a_repeated_request_is_kept_once_and_a_reused_id_refused(fed: Federation) -> None:
    message = sign_as(fed, fed.keys(UNIT).signing)
    async with fed.channel(client=UNIT, server=AUTHORITY) as channel:
        stub = indicators_pb2_grpc.IndicatorsStub(channel)
        first = await stub.AskReveal(message, timeout=5)
        assert (await stub.AskReveal(message, timeout=5)).request_id == first.request_id
    other = RevealRequest.from_bytes(message.document)
    document, signature = sign_request(replace(other, items=6), fed.keys(UNIT).signing)
    reused = indicators_pb2.SignedRevealRequest(document=document, signature=signature)
    assert await refused(fed, UNIT, reused) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "replayed_message_id",
    )
    [kept] = reveal_rows(fed, AUTHORITY)
    assert (kept.request_id, kept.items, kept.state) == (first.request_id, 5, "pending")


async def test_a_non_member_cannot_even_connect(fed: Federation) -> None:
    certificate, key = generate_tls_identity(AgencyId(UNIT))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=fed.configs[AUTHORITY].tls_certificate.read_bytes(),
        private_key=key,
        certificate_chain=certificate,
    )
    target = f"127.0.0.1:{fed.nodes[AUTHORITY].federation_port}"
    options = (("grpc.ssl_target_name_override", AUTHORITY),)
    async with grpc.aio.secure_channel(target, credentials, options=options) as channel:
        stub = indicators_pb2_grpc.IndicatorsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AskReveal(sign_as(fed, fed.keys(UNIT).signing), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reveal_rows(fed, AUTHORITY) == []


async def test_bad_asks_are_refused_before_anything_is_sent_or_stored(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    unit = fed.nodes[UNIT].reveal
    with pytest.raises(RevealRequestError, match="no live indicators"):
        await unit.ask(AUTHORITY, REASON, [])
    mine = await own_set(fed, UNIT, UNIT_ITEMS)
    theirs = await own_set(fed, AUTHORITY, AUTHORITY_ITEMS)
    with pytest.raises(RevealRequestError, match="reason must not be empty"):
        await unit.ask(AUTHORITY, "  ", [mine])
    with pytest.raises(RevealRequestError, match=f"set {theirs} is not one of this agency"):
        await unit.ask(AUTHORITY, REASON, [theirs])
    with pytest.raises(UnknownAgencyError):
        await unit.ask(AgencyId("zz-nobody"), REASON, [])
    with pytest.raises(UnknownAgencyError):
        await unit.ask(UNIT, REASON, [])
    code, _, err = await cli(
        capsys, "overlap", "ask", "--with", AUTHORITY, "--reason", REASON,
        "--valid-hours", "200", *config(fed, UNIT),
    )  # fmt: skip
    assert code != 0
    assert "--valid-hours" in err
    code, _, err = await cli(capsys, "overlap", "reveal", "nope", *config(fed, UNIT))
    assert code != 0
    assert "unknown_reveal_request" in err
    assert reveal_rows(fed, UNIT) == reveal_rows(fed, AUTHORITY) == []

    # A request for only some sets states only their items.
    await own_set(fed, UNIT, [("platform_account", "chirper:extra")])
    view = await unit.ask(AUTHORITY, REASON, [mine])
    assert (view.request.items, view.request.set_ids) == (20, (mine,))


async def test_a_peer_can_keep_only_so_many_requests_waiting(fed: Federation) -> None:
    await own_set(fed, UNIT, UNIT_ITEMS)
    for _ in range(MAX_WAITING_PER_PEER):
        await ask(fed)
    with pytest.raises(PeerRejectedError) as caught:
        await ask(fed)
    assert caught.value.peer_code == "reveal_limit"
    # Deciding one makes room.
    first = reveal_rows(fed, AUTHORITY)[0].request_id
    await fed.nodes[AUTHORITY].reveal.decide(first, consent=False)
    await ask(fed)
    assert len(reveal_rows(fed, AUTHORITY)) == MAX_WAITING_PER_PEER + 1
