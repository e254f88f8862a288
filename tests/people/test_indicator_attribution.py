# SPDX-License-Identifier: Apache-2.0
"""Indicator work is attributed too: a set shared, a sighting reported, a reveal decided
(each naming the analyst in its openings), and a group's tags handed to a member."""

from __future__ import annotations

from node.audit.leaf import Leaf
from node.ids import AgencyId
from node.indicators.sets import Indicator
from node.indicators.sightings import SightingKind
from node.model.people import Actor, Role, Via
from node.services.access import acting_as
from node.storage import audit_repo
from node.storage.engine import transaction
from tests.integration.harness import Federation

UNIT, AUTHORITY = AgencyId("aa-cyber-unit"), AgencyId("bb-central-authority")
PHONE, ACCOUNT = "+372 5123 4567", "chirper:orbit_watch_77"


def _analyst(name: str) -> Actor:
    return Actor(name=name, unit="Threat Intel", roles=frozenset({Role.INDICATOR_ANALYST}),
                 via=Via.TOKEN)  # fmt: skip


def _events(fed: Federation, agency: str, event: str) -> list[tuple[Leaf, dict[str, str]]]:
    with transaction(fed.nodes[agency].engine) as session:
        rows = audit_repo.audit_leaves(session, start=0, end=audit_repo.audit_size(session))
        return [
            (leaf, {o.name: o.value for o in audit_repo.audit_openings(session, row.idx)})
            for row in rows
            if (leaf := Leaf.from_bytes(row.leaf)).public.event == event
        ]


async def _own_set(fed: Federation, agency: str, tlp: str, recipients: list[AgencyId]) -> str:
    service = fed.nodes[agency].indicators
    created = await service.create(tlp=tlp, recipients=recipients, clients={})
    set_id = created.indicator_set.set_id
    items = [Indicator.of("phone", PHONE), Indicator.of("platform_account", ACCOUNT)]
    await service.add(set_id, items)
    return set_id


async def test_a_share_and_a_sighting_name_the_analysts(fed: Federation) -> None:
    set_id = await _own_set(fed, UNIT, "TLP:AMBER+STRICT", [AUTHORITY])
    with acting_as(_analyst("liis")):
        await fed.nodes[UNIT].indicators.share(set_id, AUTHORITY)
    with acting_as(_analyst("tiago")):
        await fed.nodes[AUTHORITY].sightings.report(
            set_id, indicator=("phone", PHONE), kind=SightingKind.SEEN
        )
    [(shared, opened)] = _events(fed, UNIT, "indicators.shared")
    assert (shared.public.sender, shared.public.recipient) == (UNIT, AUTHORITY)
    assert (opened["officer"], opened["subject"]) == ("liis", set_id)
    [(reported, opened)] = _events(fed, AUTHORITY, "sighting.reported")
    assert (reported.public.sender, reported.public.recipient) == (AUTHORITY, UNIT)
    assert opened["officer"] == "tiago"
    assert opened["officer_unit"] == "Threat Intel"
    assert PHONE not in opened["detail"]


async def test_a_reveal_decision_names_who_consented(fed: Federation) -> None:
    await _own_set(fed, UNIT, "green", [])
    await _own_set(fed, AUTHORITY, "green", [])
    asked = await fed.nodes[UNIT].reveal.ask(AUTHORITY, "the same campaign?", [])
    with acting_as(_analyst("tiago")):
        await fed.nodes[AUTHORITY].reveal.decide(asked.request.request_id, consent=True)
    [(decided, opened)] = _events(fed, AUTHORITY, "reveal.decided")
    assert decided.public.recipient == UNIT
    assert (opened["officer"], opened["detail"]) == ("tiago", "consented")


async def test_a_pull_that_hands_over_tags_is_logged_and_an_empty_one_is_not(
    fed: Federation,
) -> None:
    set_id = await _own_set(fed, UNIT, "green", [])
    group = (await fed.nodes[UNIT].groups.create("doxxing wave", [AUTHORITY])).group
    await fed.nodes[UNIT].groups.publish(group.group_id, set_id)
    await fed.nodes[AUTHORITY].groups.sync(group.group_id)
    await fed.nodes[AUTHORITY].groups.sync(group.group_id)  # nothing new: not logged
    [(pulled, opened)] = _events(fed, UNIT, "group.pull-answered")
    assert (pulled.public.sender, pulled.public.recipient) == (UNIT, AUTHORITY)
    assert opened["subject"] == group.group_id
    assert "officer" not in opened  # the node answered; no person acted
