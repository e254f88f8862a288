# SPDX-License-Identifier: Apache-2.0
"""Linking cases by shared values: thresholds, per-value limit, benign list, campaign refs."""

from __future__ import annotations

import json

import pytest

from node.errors import FormValidationError
from node.indicators.campaigns import (
    CampaignError,
    LinkRules,
    Value,
    check_name,
    link_cases,
    reference_campaign,
    referenced_campaigns,
)

CAMPAIGN = "5b0f4b5e-8d7a-4f0e-9a39-0d7c1f0b6a11"


def accounts(*names: str) -> list[Value]:
    return [("platform_account", f"chirper:{n}") for n in names]


def test_cases_sharing_enough_values_form_one_campaign_through_a_chain() -> None:
    cases = {
        "a": accounts("x", "y", "z"),
        "b": accounts("y", "z", "w"),
        "c": accounts("w", "v", "z2", "u"),
        "d": accounts("v", "u"),
        "e": accounts("x"),  # one shared value: below the threshold
        "f": accounts("q"),
    }
    linking = link_cases(cases, benign=frozenset(), rules=LinkRules(min_shared=2))
    assert [g.set_ids for g in linking.groups] == [("a", "b"), ("c", "d")]
    cases["c"].append(("platform_account", "chirper:y"))
    cases["c"].append(("platform_account", "chirper:z"))
    linking = link_cases(cases, benign=frozenset(), rules=LinkRules(min_shared=2))
    [group] = linking.groups
    assert group.set_ids == ("a", "b", "c", "d")
    assert group.shared[("a", "b")] == 2
    assert group.shared[("c", "d")] == 2


def test_values_held_in_too_many_sets_link_nothing() -> None:
    common = accounts("support")
    cases = {name: common + accounts(f"own{name}") for name in "abcd"}
    cases["a"] += accounts("p", "q")
    cases["b"] += accounts("p", "q")
    rules = LinkRules(min_shared=1, max_sets_per_value=3)
    linking = link_cases(cases, benign=frozenset(), rules=rules)
    assert [g.set_ids for g in linking.groups] == [("a", "b")]
    assert linking.noisy_values == 1
    # Allowed in four sets, the common value links all four.
    linking = link_cases(cases, benign=frozenset(), rules=LinkRules(min_shared=1))
    assert [g.set_ids for g in linking.groups] == [("a", "b", "c", "d")]


def test_known_benign_values_link_nothing() -> None:
    cases = {"a": accounts("support", "x"), "b": accounts("support", "y")}
    benign = frozenset(accounts("support"))
    linking = link_cases(cases, benign=benign, rules=LinkRules(min_shared=1))
    assert linking.groups == ()
    assert (linking.benign_values, linking.noisy_values) == (1, 0)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"min_shared": 0}, "min_shared"),
        ({"max_sets_per_value": 1}, "max_sets_per_value"),
    ],
)
def test_rules_are_checked(rules: dict[str, int], message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        LinkRules(**rules)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "two\nlines"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(CampaignError):
        check_name(name)


def test_a_request_names_its_campaign_in_its_campaign_field() -> None:
    form = {"case_reference": "EE-1"}
    once = reference_campaign(json.dumps(form).encode(), campaign_id=CAMPAIGN)
    twice = reference_campaign(once, campaign_id=CAMPAIGN)
    assert json.loads(twice) == {"case_reference": "EE-1", "campaign": CAMPAIGN}
    assert referenced_campaigns(twice) == {CAMPAIGN}
    with pytest.raises(CampaignError, match="another campaign"):
        reference_campaign(twice, campaign_id="6b0f4b5e-8d7a-4f0e-9a39-0d7c1f0b6a11")


def test_an_alerts_reference_counts_as_naming_the_campaign() -> None:
    form = {"alert": {"campaign_reference": "EE-CAMP-2026-03"}}
    assert referenced_campaigns(json.dumps(form).encode()) == {"EE-CAMP-2026-03"}
    assert referenced_campaigns(b"not json") == set()
    assert referenced_campaigns(b"[]") == set()


@pytest.mark.parametrize("form", [b"[1", b"[]", b"3"])
def test_forms_that_cannot_name_a_campaign_are_refused(form: bytes) -> None:
    with pytest.raises(FormValidationError):
        reference_campaign(form, campaign_id=CAMPAIGN)
