# SPDX-License-Identifier: Apache-2.0
"""Sightings and false positives between real nodes: a holder of a set reports to its owner,
the owner checks who sent it, its signature, the set and the indicator, stores each report
once, and shows the counts; every refusal stores nothing."""

from __future__ import annotations

import asyncio
import json
import logging

import grpc
import pytest
from nacl.signing import SigningKey
from sqlalchemy import func
from sqlmodel import select

from node.cli.main import main
from node.errors import PeerRejectedError
from node.gen.comity.v1 import indicators_pb2, indicators_pb2_grpc
from node.ids import AgencyId
from node.indicators.sets import Indicator
from node.indicators.sightings import NotInSetError, Sighting, SightingKind, sign_sighting
from node.members import Member
from node.storage.engine import transaction
from node.storage.tables import IndicatorSighting
from node.timeutil import now_ms
from tests.integration.harness import Federation

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
PHONE, ACCOUNT = "+372 5123 4567", "Chirper:@Orbit_Watch_77"
CANONICAL_PHONE, CANONICAL_ACCOUNT = "+37251234567", "chirper:orbit_watch_77"
NOTE = "Seen in the threads against victim V-12"


async def shared_set(fed: Federation, tlp: str = "TLP:AMBER+STRICT") -> str:
    """A set of the unit's with a phone and an account, shared with the authority."""
    service = fed.nodes[UNIT].indicators
    created = await service.create(tlp=tlp, recipients=[AUTHORITY], clients={})
    set_id = created.indicator_set.set_id
    await service.add(
        set_id, [Indicator.of("phone", PHONE), Indicator.of("platform_account", ACCOUNT)]
    )
    await service.share(set_id, AUTHORITY)
    return set_id


def stored(fed: Federation, agency: str) -> int:
    with transaction(fed.nodes[agency].engine) as session:
        return int(session.exec(select(func.count()).select_from(IndicatorSighting)).one())


def owner(fed: Federation) -> Member:
    member = fed.nodes[AUTHORITY].directory.find(UNIT)
    assert member is not None
    return member


def signed(
    fed: Federation,
    set_id: str,
    *,
    reporter: str = AUTHORITY,
    value: tuple[str, str] = ("phone", PHONE),
    key: SigningKey | None = None,
    owned_by: str = UNIT,
) -> tuple[bytes, bytes]:
    """A report as ``reporter``'s node would make it, signed with its key (or ``key``)."""
    report = Sighting.new(
        set_id=set_id,
        owner=owned_by,
        reporter=reporter,
        kind=SightingKind.SEEN,
        indicator=value,
        note=None,
        at_ms=now_ms(),
    )
    document = report.to_bytes()
    return document, sign_sighting(document, key or fed.keys(reporter).signing)


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_reports_reach_the_owner_who_sees_the_counts(
    fed: Federation,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    set_id = await shared_set(fed)
    unit = ("--config", str(fed.configs[UNIT].config_path))
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))
    report = ("indicators", "report", set_id)
    code, out, err = await cli(
        capsys, *report, "--type", "phone", "--value", PHONE, "--kind", "seen", "--note", NOTE,
        *authority,
    )  # fmt: skip
    assert code == 0, err
    assert f"sent to {UNIT}" in " ".join(out.split())
    code, _, err = await cli(
        capsys, *report, "--type", "platform_account", "--value", ACCOUNT,
        "--kind", "false-positive", *authority,
    )  # fmt: skip
    assert code == 0, err

    code, out, err = await cli(capsys, "indicators", "show", set_id, "--json", *unit)
    assert code == 0, err
    assert sorted(json.loads(out)["sightings"], key=lambda s: s["type"]) == [
        {"type": "phone", "value": CANONICAL_PHONE, "seen": {AUTHORITY: 1}, "false_positive": {}},
        {
            "type": "platform_account",
            "value": CANONICAL_ACCOUNT,
            "seen": {},
            "false_positive": {AUTHORITY: 1},
        },
    ]
    code, out, err = await cli(capsys, "indicators", "show", set_id, *unit)
    assert code == 0, err
    assert f"1 ({AUTHORITY} 1)" in out
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, "--json", *unit)
    assert code == 0, err
    listed = json.loads(out)
    assert [(s["reporter"], s["kind"], s["note"]) for s in listed] == [
        (AUTHORITY, "seen", NOTE),
        (AUTHORITY, "false_positive", None),
    ]
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, *unit)
    assert code == 0, err
    assert NOTE in out
    # The reporter lists its own reports, each delivered to the owner.
    code, out, err = await cli(capsys, "indicators", "sightings", set_id, "--json", *authority)
    assert code == 0, err
    made = json.loads(out)
    assert [(s["kind"], s["note"], s["delivery"]["state"], s["delivery"]["to"]) for s in made] == [
        ("seen", NOTE, "delivered", UNIT),
        ("false_positive", None, "delivered", UNIT),
    ]

    logged = "\n".join(record.getMessage() for record in caplog.records)
    traced = json.dumps([span.to_json() for span in fed.spans.get_finished_spans()])
    for secret in (NOTE, CANONICAL_PHONE, CANONICAL_ACCOUNT, PHONE):
        assert secret not in logged
        assert secret not in traced


async def test_a_resent_report_is_stored_once(fed: Federation) -> None:
    set_id = await shared_set(fed)
    document, signature = signed(fed, set_id)
    peers = fed.nodes[AUTHORITY].peers
    await peers.report_sighting(owner(fed), document, signature)
    await peers.report_sighting(owner(fed), document, signature)
    assert stored(fed, UNIT) == 1
    async with fed.channel(client=AUTHORITY, server=UNIT) as channel:
        ack = await indicators_pb2_grpc.IndicatorsStub(channel).ReportSighting(
            indicators_pb2.SignedSighting(document=document, signature=signature)
        )
    assert ack.duplicate
    assert stored(fed, UNIT) == 1


async def refused(fed: Federation, reporter: str, document: bytes, signature: bytes) -> str:
    peers = fed.nodes[reporter].peers
    with pytest.raises(PeerRejectedError) as caught:
        await peers.report_sighting(owner(fed), document, signature)
    return caught.value.peer_code


async def test_reports_from_agencies_never_given_the_set_are_refused(fed: Federation) -> None:
    set_id = await shared_set(fed)
    document, signature = signed(fed, set_id, reporter=THIRD)
    assert await refused(fed, THIRD, document, signature) == "sighting_refused"
    assert stored(fed, UNIT) == 0


async def test_a_value_not_in_the_set_is_refused_without_saying_more(fed: Federation) -> None:
    set_id = await shared_set(fed)
    other = await fed.nodes[UNIT].indicators.create(
        tlp="TLP:AMBER+STRICT", recipients=[AUTHORITY], clients={}
    )
    elsewhere = "+372 5999 0000"
    await fed.nodes[UNIT].indicators.add(
        other.indicator_set.set_id, [Indicator.of("phone", elsewhere)]
    )
    with pytest.raises(NotInSetError):
        await fed.nodes[AUTHORITY].sightings.report(
            set_id, indicator=("phone", elsewhere), kind=SightingKind.SEEN
        )
    messages = []
    for value in (elsewhere, "+372 5888 1111"):
        document, signature = signed(fed, set_id, value=("phone", value))
        with pytest.raises(PeerRejectedError) as caught:
            await fed.nodes[AUTHORITY].peers.report_sighting(owner(fed), document, signature)
        assert caught.value.peer_code == "indicator_not_in_set"
        messages.append(caught.value.message)
        assert "5999" not in caught.value.message
        assert "5888" not in caught.value.message
    # A value the owner holds in another set gets the very same answer as one it never held.
    assert messages[0] == messages[1]
    assert stored(fed, UNIT) == 0


async def test_a_forged_signature_is_refused(fed: Federation) -> None:
    set_id = await shared_set(fed)
    document, signature = signed(fed, set_id, key=SigningKey.generate())
    assert await refused(fed, AUTHORITY, document, signature) == "bad_sighting_signature"
    document, good = signed(fed, set_id)
    tampered = document.replace(b'"kind":"seen"', b'"kind":"false_positive"')
    assert await refused(fed, AUTHORITY, tampered, good) == "bad_sighting_signature"
    assert stored(fed, UNIT) == 0


async def test_reports_go_to_the_owner_only(fed: Federation) -> None:
    set_id = await shared_set(fed, tlp="TLP:GREEN")
    await fed.nodes[UNIT].indicators.share(set_id, THIRD)
    # The third agency's node holds a copy but is not the owner: it refuses the report.
    document, signature = signed(fed, set_id)
    third = fed.nodes[AUTHORITY].directory.find(THIRD)
    assert third is not None
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[AUTHORITY].peers.report_sighting(third, document, signature)
    assert caught.value.peer_code == "sighting_refused"
    # A report naming the third agency as owner of the unit's set: the unit refuses it.
    document, signature = signed(fed, set_id, owned_by=THIRD)
    assert await refused(fed, AUTHORITY, document, signature) == "sighting_refused"
    # A report about a set the authority received: it is not the authority's to count.
    document, signature = signed(fed, set_id, reporter=THIRD, owned_by=AUTHORITY)
    authority = fed.nodes[THIRD].directory.find(AUTHORITY)
    assert authority is not None
    with pytest.raises(PeerRejectedError) as caught:
        await fed.nodes[THIRD].peers.report_sighting(authority, document, signature)
    assert caught.value.peer_code == "not_found"
    assert stored(fed, UNIT) == stored(fed, THIRD) == stored(fed, AUTHORITY) == 0
    with pytest.raises(Exception, match="reports go to an owner"):
        await fed.nodes[UNIT].sightings.report(
            set_id, indicator=("phone", PHONE), kind=SightingKind.SEEN
        )


async def test_the_tls_client_must_be_the_reporter(fed: Federation) -> None:
    set_id = await shared_set(fed)
    document, signature = signed(fed, set_id)  # the authority's, correctly signed
    async with fed.channel(client=THIRD, server=UNIT) as channel:
        stub = indicators_pb2_grpc.IndicatorsStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportSighting(
                indicators_pb2.SignedSighting(document=document, signature=signature)
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "the TLS client is cc-central-authority" in str(caught.value.details())
    assert stored(fed, UNIT) == 0


async def test_a_green_set_passed_on_can_be_reported_by_its_holder(fed: Federation) -> None:
    set_id = await shared_set(fed, tlp="TLP:GREEN")
    await fed.nodes[AUTHORITY].indicators.share(set_id, THIRD)
    sent = await fed.nodes[THIRD].sightings.report(
        set_id, indicator=("platform_account", ACCOUNT), kind=SightingKind.FALSE_POSITIVE
    )
    [held] = await fed.nodes[UNIT].sightings.list_for(set_id)
    assert held.sighting == sent.sighting
    assert held.sighting.reporter == THIRD
