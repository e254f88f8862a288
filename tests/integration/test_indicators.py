# SPDX-License-Identifier: Apache-2.0
"""Indicator sets between real nodes: TLP enforced when a set leaves and when it arrives,
owner signatures, versions, revocation passed along, and no value in logs or traces."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from stix2validator import ValidationOptions, validate_string

from node.cli.main import main
from node.errors import PeerRejectedError
from node.ids import AgencyId
from node.indicators.sets import Indicator, IndicatorSet, sign_set
from node.indicators.tlp import TlpEgressError
from node.services.indicators import SetView
from tests.integration.harness import Federation

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
PHONE, ACCOUNT = "+372 5123 4567", "Chirper:@Orbit_Watch_77"
CANONICAL = ("+37251234567", "chirper:orbit_watch_77")


async def a_set(
    fed: Federation,
    tlp: str,
    recipients: list[AgencyId],
    clients: dict[str, list[str]] | None = None,
) -> SetView:
    service = fed.nodes[UNIT].indicators
    created = await service.create(tlp=tlp, recipients=recipients, clients=clients or {})
    indicators = [Indicator.of("phone", PHONE), Indicator.of("platform_account", ACCOUNT)]
    return await service.add(created.indicator_set.set_id, indicators)


async def held(fed: Federation, agency: str, set_id: str) -> IndicatorSet | None:
    views = await fed.nodes[agency].indicators.list_sets()
    by_id = {v.indicator_set.set_id: v for v in views}
    if set_id not in by_id:
        return None
    return (await fed.nodes[agency].indicators.get(set_id)).indicator_set


async def test_amber_strict_goes_to_the_named_agency_and_no_further(fed: Federation) -> None:
    view = await a_set(fed, "TLP:AMBER+STRICT", [AUTHORITY])
    set_id = view.indicator_set.set_id
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    received = await held(fed, AUTHORITY, set_id)
    assert received is not None
    assert received.version == 2
    assert sorted(i.value for i in received.indicators) == sorted(CANONICAL)
    shared = await fed.nodes[UNIT].indicators.get(set_id)
    assert shared.shared_with == (AUTHORITY,)

    with pytest.raises(TlpEgressError, match="TLP:AMBER\\+STRICT allows only the agencies"):
        await fed.nodes[UNIT].indicators.share(set_id, THIRD)
    with pytest.raises(TlpEgressError, match="it stays with the recipient agency"):
        await fed.nodes[AUTHORITY].indicators.share(set_id, THIRD)
    assert await held(fed, THIRD, set_id) is None


async def test_the_receiver_enforces_the_label_too(fed: Federation) -> None:
    view = await a_set(fed, "TLP:RED", [AUTHORITY])
    set_id = view.indicator_set.set_id
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    # A node that skips its own egress check: the third agency still refuses the set.
    authority = fed.nodes[AUTHORITY]
    with authority.engine.connect() as connection:
        document, signature = connection.execute(
            text("SELECT document, signature FROM indicator_set WHERE set_id = :s"),
            {"s": set_id},
        ).one()
    third = authority.directory.find(THIRD)
    assert third is not None
    before = fed.rows(THIRD)
    with pytest.raises(PeerRejectedError) as caught:
        await authority.peers.offer_set(third, document, signature)
    assert caught.value.peer_code == "tlp_forbids"
    assert fed.rows(THIRD) == before


async def test_amber_passes_to_the_declared_clients_only(fed: Federation) -> None:
    view = await a_set(fed, "TLP:AMBER", [AUTHORITY], {AUTHORITY: [THIRD]})
    set_id = view.indicator_set.set_id
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    await fed.nodes[AUTHORITY].indicators.share(set_id, THIRD)
    received = await held(fed, THIRD, set_id)
    assert received is not None
    assert received.owner == UNIT
    assert (await fed.nodes[THIRD].indicators.get(set_id)).received_from == AUTHORITY
    with pytest.raises(TlpEgressError, match="only to the clients the owner declared"):
        await fed.nodes[THIRD].indicators.share(set_id, AUTHORITY)

    # Revoked by its owner: the tombstone follows the set's path, hop by hop.
    await fed.nodes[UNIT].indicators.revoke(set_id)
    for agency in (AUTHORITY, THIRD):
        tombstone = await held(fed, agency, set_id)
        assert tombstone is not None
        assert tombstone.revoked
        assert tombstone.indicators == ()


async def test_green_goes_anywhere_in_the_federation(fed: Federation) -> None:
    view = await a_set(fed, "TLP:GREEN", [])
    set_id = view.indicator_set.set_id
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    await fed.nodes[AUTHORITY].indicators.share(set_id, THIRD)
    assert await held(fed, THIRD, set_id) is not None


async def test_forged_stale_and_conflicting_versions_are_refused(fed: Federation) -> None:
    view = await a_set(fed, "TLP:GREEN", [])
    set_id = view.indicator_set.set_id
    await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    unit = fed.nodes[UNIT]
    authority = unit.directory.find(AUTHORITY)
    assert authority is not None
    current = view.indicator_set
    key = fed.keys(UNIT).signing

    forged = IndicatorSet(**{**current.__dict__, "version": 3}).to_bytes()
    stranger = sign_set(forged, fed.keys(THIRD).signing)
    older = IndicatorSet(**{**current.__dict__, "version": 1, "indicators": ()}).to_bytes()
    other = IndicatorSet(**{**current.__dict__, "indicators": current.indicators[:1]}).to_bytes()
    cases = [
        (forged, stranger, "bad_indicator_signature"),
        (older, sign_set(older, key), "stale_indicator_set"),
        (other, sign_set(other, key), "replayed_message_id"),
        (b'{"v":1}', sign_set(b'{"v":1}', key), "bad_indicator_set"),
    ]
    before = fed.rows(AUTHORITY)
    for document, signature, code in cases:
        with pytest.raises(PeerRejectedError) as caught:
            await unit.peers.offer_set(authority, document, signature)
        assert caught.value.peer_code == code
    assert fed.rows(AUTHORITY) == before
    assert await held(fed, AUTHORITY, set_id) == current
    # The same version again changes nothing and is not an error.
    row_document = current.to_bytes()
    await unit.peers.offer_set(authority, row_document, sign_set(row_document, key))
    assert fed.rows(AUTHORITY) == before
    assert await held(fed, AUTHORITY, set_id) == current


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_the_cli_creates_imports_shares_and_revokes(
    fed: Federation,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    unit = ("--config", str(fed.configs[UNIT].config_path))
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))
    code, out, err = await cli(
        capsys, "indicators", "create", "--tlp", "amber+strict", "--recipient", AUTHORITY, *unit
    )
    assert code == 0, err
    set_id = out.split("set ")[1].split()[0]
    code, _, err = await cli(capsys, "indicators", "add", set_id, "phone", PHONE, *unit)
    assert code == 0, err
    bulk = tmp_path / "bulk.json"
    bulk.write_text(
        json.dumps([{"type": "platform_account", "value": f"chirper:user{i}"} for i in range(2500)])
    )
    code, out, err = await cli(capsys, "indicators", "import", set_id, str(bulk), *unit)
    assert code == 0, err
    assert "with 2501" in " ".join(out.split())

    code, _, err = await cli(capsys, "indicators", "share", set_id, "--with", THIRD, *unit)
    assert code != 0
    assert "tlp_forbids" in err
    code, _, err = await cli(capsys, "indicators", "share", set_id, "--with", AUTHORITY, *unit)
    assert code == 0, err
    code, out, err = await cli(capsys, "indicators", "show", set_id, "--json", *authority)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["received_from"] == UNIT
    assert shown["indicator_count"] == 2501
    assert {"type": "phone", "value": CANONICAL[0]} in [
        {"type": i["type"], "value": i["value"]} for i in shown["indicators"]
    ]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"type": "phone", "value": "0555 SECRETNUMBER"}]))
    code, _, err = await cli(capsys, "indicators", "import", set_id, str(bad), *unit)
    assert code != 0
    assert "phone must be in international form" in err
    assert "SECRETNUMBER" not in err

    code, out, err = await cli(capsys, "indicators", "revoke", set_id, *unit)
    assert code == 0, err
    code, out, err = await cli(capsys, "indicators", "list", "--json", *authority)
    assert code == 0, err
    [listed] = json.loads(out)
    assert listed["revoked"]
    assert listed["indicator_count"] == 0

    # No indicator value reached a log line or a span.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    traced = json.dumps([span.to_json() for span in fed.spans.get_finished_spans()])
    for value in (*CANONICAL, "chirper:user1", PHONE):
        assert value not in logged
        assert value not in traced


async def test_stix_export_and_import_through_the_cli(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    red = await a_set(fed, "TLP:RED", [AUTHORITY])
    green = await a_set(fed, "TLP:GREEN", [])
    unit = ("--config", str(fed.configs[UNIT].config_path))
    third = ("--config", str(fed.configs[THIRD].config_path))
    files = {}
    for name, view in (("red", red), ("green", green)):
        files[name] = tmp_path / f"{name}.json"
        code, _, err = await cli(
            capsys,
            *("indicators", "export", view.indicator_set.set_id, "--out", str(files[name])),
            *unit,
        )
        assert code == 0, err
        result = validate_string(files[name].read_text(), ValidationOptions(version="2.1"))
        assert result.is_valid

    code, out, err = await cli(capsys, "indicators", "create", "--tlp", "green", *third)
    assert code == 0, err
    target = out.split("set ")[1].split()[0]
    code, _, err = await cli(capsys, "indicators", "import", target, str(files["red"]), *third)
    assert code != 0
    assert "marked TLP:RED, stricter than the set's" in err
    code, out, err = await cli(capsys, "indicators", "import", target, str(files["green"]), *third)
    assert code == 0, err
    imported = (await fed.nodes[THIRD].indicators.get(target)).indicator_set
    assert sorted(i.value for i in imported.indicators) == sorted(CANONICAL)


def flip(pdq: str, bits: int) -> str:
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


async def test_pdq_hashes_match_near_images_under_strict_labels_only(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image = "c3" * 32
    unit = ("--config", str(fed.configs[UNIT].config_path))
    authority = ("--config", str(fed.configs[AUTHORITY].config_path))
    code, out, err = await cli(capsys, "indicators", "create", "--tlp", "green", *unit)
    assert code == 0, err
    green = out.split("set ")[1].split()[0]
    code, _, err = await cli(capsys, "indicators", "add", green, "pdq", image, *unit)
    assert code != 0
    assert "pdq hashes travel only under TLP:AMBER+STRICT or TLP:RED" in err

    code, out, err = await cli(
        capsys, "indicators", "create", "--tlp", "red", "--recipient", AUTHORITY, *unit
    )
    assert code == 0, err
    red = out.split("set ")[1].split()[0]
    hashes = tmp_path / "pdq.json"
    hashes.write_text(
        json.dumps(
            [
                {"type": "pdq", "value": image, "quality": 100},
                # Another image: its first 28 bits inverted, 38 bits from the query below.
                {"type": "pdq", "value": flip(image, 256)[:7] + image[7:], "quality": 90},
                {"type": "pdq", "value": "ab" * 32, "quality": 30},
            ]
        )
    )
    code, out, err = await cli(capsys, "indicators", "import", red, str(hashes), *unit)
    assert code == 0, err
    assert "Left out 1 pdq hash(es) of quality 49 or less" in " ".join(out.split())
    code, _, err = await cli(capsys, "indicators", "share", red, "--with", AUTHORITY, *unit)
    assert code == 0, err

    near = flip(image, 10)
    code, out, err = await cli(capsys, "indicators", "match-pdq", near, "--json", *authority)
    assert code == 0, err
    assert json.loads(out) == [{"set_id": red, "owner": UNIT, "value": image, "distance": 10}]
    code, out, err = await cli(
        capsys, "indicators", "match-pdq", near, "--max-distance", "0", "--json", *authority
    )
    assert code == 0, err
    assert json.loads(out) == []
    code, _, err = await cli(
        capsys, "indicators", "match-pdq", near, "--max-distance", "32", *authority
    )
    assert code != 0
    assert "distance of 31 or less" in err
