# SPDX-License-Identifier: Apache-2.0
"""Campaigns between real nodes: cases linked by shared values and by private overlap counts,
alerts that carry only what each recipient's labels allow, requests that name a campaign."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from node.cli.main import main
from node.errors import FormValidationError, NotFoundError
from node.forms.registry import schemas_dir
from node.ids import AgencyId
from node.indicators.campaigns import CampaignError, CampaignExistsError
from node.indicators.sets import Indicator
from node.model.request import RequestState
from node.timeutil import format_ms
from tests.integration.harness import Federation

UNIT, AUTHORITY, THIRD = (
    AgencyId("aa-cyber-unit"),
    AgencyId("bb-central-authority"),
    AgencyId("cc-central-authority"),
)
ALERT_FORM = schemas_dir() / "examples" / "campaign-alert.example.json"
PRESERVATION_FORM = schemas_dir() / "examples" / "preservation.example.json"


async def case(
    fed: Federation, agency: str, names: list[str], *, tlp: str = "green", to: str = ""
) -> str:
    service = fed.nodes[agency].indicators
    created = await service.create(tlp=tlp, recipients=[AgencyId(to)] if to else [], clients={})
    set_id = created.indicator_set.set_id
    values = [Indicator.of("platform_account", f"chirper:{n}") for n in names]
    await service.add(set_id, values)
    return set_id


async def cli(fed: Federation, agency: str, *args: str) -> int:
    config = str(fed.configs[agency].config_path)
    return await asyncio.to_thread(main, [*args, "--config", config])


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


async def linked_campaign(fed: Federation) -> tuple[str, str, str]:
    """The unit's case linked with a case the third agency shared with it, AMBER+STRICT:
    (campaign id, the unit's set, the third agency's set)."""
    mine = await case(fed, UNIT, ["a", "b", "c", "d"], tlp="amber+strict", to=THIRD)
    theirs = await case(fed, THIRD, ["c", "d", "e"], tlp="amber+strict", to=UNIT)
    await fed.nodes[THIRD].indicators.share(theirs, UNIT)
    found = await fed.nodes[UNIT].campaigns.detect("Orbit watch")
    [campaign] = found.campaigns
    assert found.created == (campaign.campaign_id,)
    return campaign.campaign_id, mine, theirs


async def test_cases_held_here_that_share_values_are_linked(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign_id, mine, theirs = await linked_campaign(fed)
    unit = fed.nodes[UNIT].campaigns
    view = await unit.get(campaign_id)
    assert view.name == "Orbit watch"
    assert {(c.kind, c.ref, c.agency, c.shared) for c in view.cases} == {
        ("set", mine, UNIT, 2),
        ("set", theirs, THIRD, 2),
    }
    assert view.agencies == (THIRD,)
    # Nothing new: detecting again links nothing and makes no campaign.
    again = await unit.detect()
    assert (again.campaigns, again.created) == ((), ())

    # A third case joins the same campaign rather than starting another.
    third = await case(fed, UNIT, ["d", "e", "f"])
    extended = await unit.detect()
    assert extended.created == ()
    [view] = extended.campaigns
    assert third in {c.ref for c in view.cases}

    assert await cli(fed, UNIT, "campaign", "list", "--json") == 0
    [listed] = json_out(capsys)
    assert listed["campaign_id"] == campaign_id
    assert len(listed["cases"]) == 3


async def test_benign_and_common_values_link_nothing(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    await case(fed, UNIT, ["support", "helpdesk", "x"])
    await case(fed, UNIT, ["support", "helpdesk", "y"])
    assert (
        await cli(
            fed, UNIT, "campaign", "benign", "add", "platform_account", "Chirper:@Support", "--json"
        )
        == 0
    )
    answer = json_out(capsys)
    assert answer["changed"] == 1
    assert answer["values"] == [{"type": "platform_account", "value": "chirper:support"}]
    found = await fed.nodes[UNIT].campaigns.detect()
    assert found.campaigns == ()
    assert found.benign_values == 1
    # Taken off the list, the value links the two cases again.
    assert (
        await cli(fed, UNIT, "campaign", "benign", "remove", "platform_account", "chirper:support")
        == 0
    )
    capsys.readouterr()
    assert len((await fed.nodes[UNIT].campaigns.detect()).campaigns) == 1
    # A value that breaks its type's rules is refused, naming the type.
    code = await cli(fed, UNIT, "campaign", "benign", "add", "url", "ftp://x.org/")
    assert code != 0
    assert "url" in capsys.readouterr().err


async def test_another_agencys_case_is_linked_by_a_private_count(fed: Federation) -> None:
    campaign_id, mine, _ = await linked_campaign(fed)
    await case(fed, AUTHORITY, ["a", "b", "zz"])
    link = await fed.nodes[UNIT].campaigns.link_agency(campaign_id, AUTHORITY, [mine])
    assert (link.overlap.shared, link.linked) == (2, True)
    assert link.campaign.agencies == (AUTHORITY, THIRD)
    [agency_case] = [c for c in link.campaign.cases if c.kind == "agency"]
    assert (agency_case.ref, agency_case.shared) == (AUTHORITY, 2)
    # The authority learned nothing: no campaign there, no set of the unit's.
    assert await fed.nodes[AUTHORITY].campaigns.list_campaigns() == []
    assert fed.rows(AUTHORITY)["indicator_set"] == 1


async def test_a_count_below_the_threshold_links_nothing(fed: Federation) -> None:
    campaign_id, mine, _ = await linked_campaign(fed)
    await case(fed, AUTHORITY, ["a", "zz"])
    link = await fed.nodes[UNIT].campaigns.link_agency(campaign_id, AUTHORITY, [mine])
    assert (link.overlap.shared, link.linked) == (1, False)
    assert link.campaign.agencies == (THIRD,)


async def test_alerts_carry_only_what_each_recipients_labels_allow(
    fed: Federation, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    campaign_id, mine, _ = await linked_campaign(fed)
    await case(fed, AUTHORITY, ["a", "b"])
    await fed.nodes[UNIT].campaigns.link_agency(campaign_id, AUTHORITY, [mine])

    assert (
        await cli(fed, UNIT, "campaign", "alert", campaign_id, "--form", str(ALERT_FORM), "--json")
        == 0
    )
    alerts = {a["peer"]: a for a in json_out(capsys)}
    assert set(alerts) == {AUTHORITY, THIRD}
    received = {
        agency: await fed.nodes[agency].exchange.get_request(alerts[agency]["request_id"])
        for agency in alerts
    }
    values = {
        agency: {(i["type"], i["value"]) for i in json.loads(view.form_json)["indicators"]}
        for agency, view in received.items()
    }
    form_values = {("platform_account", "chirper:orbit_watch_77")}
    form_values.add(("platform_account", "chirper:quiet.lantern"))
    # Both AMBER+STRICT sets name only the unit and the third agency: the authority gets the
    # form's own indicators, the third agency the linking values too.
    assert values[AUTHORITY] == form_values
    linking = {("platform_account", "chirper:c"), ("platform_account", "chirper:d")}
    assert values[THIRD] == form_values | linking
    for view in received.values():
        assert view.state is RequestState.REGISTERED
        form = json.loads(view.form_json)
        assert (form["campaign"], form["alert"]["campaign_reference"]) == (
            campaign_id,
            "EE-CAMP-2026-03",
        )
    assert "chirper:c" not in caplog.text
    assert campaign_id not in caplog.text


async def test_a_campaign_adopted_from_an_alert_lists_the_requests_naming_it(
    fed: Federation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    campaign_id, _, _ = await linked_campaign(fed)
    [alert] = await fed.nodes[UNIT].campaigns.alert(campaign_id, ALERT_FORM.read_bytes(), [])
    # The third agency adopts the campaign under the same id and files a preservation
    # request to the authority that names it.
    assert await cli(fed, THIRD, "campaign", "create", "Orbit", "--id", campaign_id) == 0
    capsys.readouterr()
    assert (
        await cli(
            fed,
            THIRD,
            *(
                "request",
                "file",
                "preservation",
                "--to",
                AUTHORITY,
                "--form",
                str(PRESERVATION_FORM),
            ),
            *("--campaign", campaign_id, "--json"),
        )
        == 0
    )
    filed = json_out(capsys)
    assert await cli(fed, THIRD, "campaign", "show", campaign_id, "--json") == 0
    shown = json_out(capsys)
    naming = {(r["request_id"], r["direction"]) for r in shown["requests"]}
    assert naming == {
        (alert.request_id, "inbound"),
        (filed["request_id"], "outbound"),
    }
    assert {r["created_at"] for r in shown["requests"]} == {
        format_ms(alert.created_at_ms),
        filed["created_at"],
    }
    # The agencies concerned include those the requests naming it came from or went to.
    assert shown["agencies"] == [UNIT, AUTHORITY]
    # The authority's copy names the campaign, which it can adopt in turn.
    received = await fed.nodes[AUTHORITY].exchange.get_request(filed["request_id"])
    assert json.loads(received.form_json)["campaign"] == campaign_id


async def test_bad_campaign_input_is_refused_and_changes_nothing(
    fed: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    campaigns = fed.nodes[UNIT].campaigns
    before = fed.rows(UNIT)
    with pytest.raises(NotFoundError):
        await campaigns.get("5b0f4b5e-8d7a-4f0e-9a39-0d7c1f0b6a11")
    with pytest.raises(FormValidationError, match="campaign_id"):
        await campaigns.create("x", "not-a-uuid")
    with pytest.raises(CampaignError):
        await campaigns.create("  ")
    lonely = await campaigns.create("Nobody else yet")
    with pytest.raises(CampaignError, match="no other agency"):
        await campaigns.alert(lonely.campaign_id, ALERT_FORM.read_bytes(), [])
    with pytest.raises(CampaignExistsError):
        await campaigns.create("again", lonely.campaign_id)
    code = await cli(fed, UNIT, "campaign", "alert", lonely.campaign_id, "--form", "/nonexistent")
    assert code != 0
    assert "cannot read the form" in capsys.readouterr().err
    code = await cli(
        fed,
        UNIT,
        "campaign",
        "alert",
        lonely.campaign_id,
        "--form",
        str(ALERT_FORM),
        "--to",
        "zz-nobody",
    )
    assert code != 0
    assert "zz-nobody" in capsys.readouterr().err
    after = fed.rows(UNIT)
    assert after["exchange"] == before["exchange"]
    assert after.get("campaign", 0) == before.get("campaign", 0) + 1


async def test_an_alert_form_refused_for_one_recipient_files_no_alert(fed: Federation) -> None:
    campaign_id, mine, _ = await linked_campaign(fed)
    await case(fed, AUTHORITY, ["a", "b"])
    await fed.nodes[UNIT].campaigns.link_agency(campaign_id, AUTHORITY, [mine])
    form = json.loads(ALERT_FORM.read_text())
    form["alert"]["summary"] = "too short"
    before = fed.rows(UNIT)["exchange"]
    with pytest.raises(FormValidationError, match="summary"):
        await fed.nodes[UNIT].campaigns.alert(campaign_id, json.dumps(form).encode(), [])
    assert fed.rows(UNIT)["exchange"] == before
    for agency in (AUTHORITY, THIRD):
        assert fed.rows(agency)["exchange"] == 0


async def test_filing_names_a_campaign_held_here_and_nothing_else(fed: Federation) -> None:
    exchange = fed.nodes[UNIT].exchange
    held = await fed.nodes[UNIT].campaigns.create("Filed under")
    form = PRESERVATION_FORM.read_bytes()
    before = fed.rows(UNIT)
    with pytest.raises(NotFoundError, match="no campaign"):
        await exchange.file_request(
            request_type="preservation",
            recipient=AUTHORITY,
            form_json=form,
            campaign_id="5b0f4b5e-8d7a-4f0e-9a39-0d7c1f0b6a11",
        )
    naming_another = json.dumps(
        {**json.loads(form), "campaign": "5b0f4b5e-8d7a-4f0e-9a39-0d7c1f0b6a11"}
    ).encode()
    with pytest.raises(CampaignError, match="another campaign"):
        exchange.preview_request(
            request_type="preservation",
            recipient=AUTHORITY,
            form_json=naming_another,
            campaign_id=held.campaign_id,
        )
    assert fed.rows(UNIT)["exchange"] == before["exchange"]
    filed = await exchange.file_request(
        request_type="preservation",
        recipient=AUTHORITY,
        form_json=form,
        campaign_id=held.campaign_id,
    )
    assert json.loads(filed.form_json)["campaign"] == held.campaign_id
