# SPDX-License-Identifier: Apache-2.0
"""Linking cases into campaigns by the indicators they share. Pure: no I/O.

A case, at a node, is an indicator set: the node's own, or one a peer shared with it. Two cases
are linked when they share at least ``min_shared`` indicator values, and every group of cases
linked directly or through others is one campaign (connected components, found with a
union-find).

Common values would link everything (MISP's correlation tables grew to 150 M rows for 1.3 M
attributes that way), so two kinds of value never link: values on the node's list of known-benign
values (a platform's own support account, a URL shortener's home page), and values held in more
than ``max_sets_per_value`` sets. A campaign is a lead for review, never a verdict: linking only
records which cases share how much.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from node.errors import ComityError, ErrorKind, FormValidationError

Value = tuple[str, str]
"""(type, canonical value) of an indicator."""

CAMPAIGN_INDICATOR = "campaign_id"
MAX_NAME_CHARS = 200


class CampaignError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_campaign"


class CampaignExistsError(ComityError):
    kind = ErrorKind.CONFLICT
    code = "campaign_exists"


@dataclass(frozen=True)
class LinkRules:
    min_shared: int = 2
    """How many values two cases share before they are linked."""
    max_sets_per_value: int = 20
    """A value held in more sets than this is too common to link anything."""

    def __post_init__(self) -> None:
        if self.min_shared < 1:
            raise CampaignError("campaigns.min_shared is at least 1")
        if self.max_sets_per_value < 2:
            raise CampaignError("campaigns.max_sets_per_value is at least 2")


@dataclass(frozen=True)
class CaseGroup:
    """Cases (set ids) that belong together, and how many linking values each pair shares."""

    set_ids: tuple[str, ...]
    shared: Mapping[tuple[str, str], int]
    """Shared linking values by pair of set ids (the smaller id first)."""


@dataclass(frozen=True)
class Linking:
    groups: tuple[CaseGroup, ...]
    noisy_values: int
    """Values left out because too many sets hold them."""
    benign_values: int
    """Values left out because they are on the known-benign list."""


def link_cases(
    cases: Mapping[str, Iterable[Value]], *, benign: frozenset[Value], rules: LinkRules
) -> Linking:
    """Groups of two or more cases linked by shared values, largest first."""
    holders = _holders(cases)
    noisy = {v for v, ids in holders.items() if len(ids) > rules.max_sets_per_value}
    benign_held = {v for v in holders if v in benign}
    shared = _pair_counts(holders, skip=noisy | benign_held)
    linked = {pair: n for pair, n in shared.items() if n >= rules.min_shared}
    groups = [_group(component, linked) for component in _components(linked)]
    groups.sort(key=lambda g: (-len(g.set_ids), g.set_ids))
    return Linking(
        groups=tuple(groups), noisy_values=len(noisy - benign_held), benign_values=len(benign_held)
    )


def _holders(cases: Mapping[str, Iterable[Value]]) -> dict[Value, set[str]]:
    holders: dict[Value, set[str]] = defaultdict(set)
    for set_id, values in cases.items():
        for value in values:
            holders[value].add(set_id)
    return holders


def _pair_counts(
    holders: Mapping[Value, set[str]], *, skip: set[Value]
) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for value, ids in holders.items():
        if value in skip or len(ids) < 2:
            continue
        ordered = sorted(ids)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1 :]:
                counts[(first, second)] += 1
    return counts


def _components(pairs: Iterable[tuple[str, str]]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def root(item: str) -> str:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for first, second in pairs:
        parent[root(first)] = root(second)
    members: dict[str, set[str]] = defaultdict(set)
    for item in list(parent):
        members[root(item)].add(item)
    return list(members.values())


def _group(component: set[str], linked: Mapping[tuple[str, str], int]) -> CaseGroup:
    pairs = {pair: n for pair, n in linked.items() if pair[0] in component}
    return CaseGroup(set_ids=tuple(sorted(component)), shared=pairs)


def check_name(name: str) -> str:
    """A campaign's local name: one line, 1 to 200 characters."""
    stripped = name.strip()
    if not stripped or len(stripped) > MAX_NAME_CHARS:
        raise CampaignError(f"a campaign name is 1 to {MAX_NAME_CHARS} characters")
    if any(ord(c) < 32 for c in stripped):
        raise CampaignError("a campaign name is one line without control characters")
    return stripped


CAMPAIGN_FIELD = "campaign"
"""The optional field of every request form that names the campaign (schemas/requests)."""


def reference_campaign(form_json: bytes, *, campaign_id: str) -> bytes:
    """The form with its ``campaign`` field set to ``campaign_id``, so the request says which
    campaign it belongs to in a field both ends can match on.

    Raises:
        FormValidationError: the form is not a JSON object.
        CampaignError: the form names another campaign already.
    """
    try:
        form = json.loads(form_json)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormValidationError(f"the form is not JSON: {e}") from e
    if not isinstance(form, dict):
        raise FormValidationError("the form is not a JSON object")
    named = form.setdefault(CAMPAIGN_FIELD, campaign_id)
    if named != campaign_id:
        raise CampaignError("the form names another campaign already")
    return json.dumps(form, ensure_ascii=False).encode("utf-8")


def referenced_campaigns(form_json: bytes) -> set[str]:
    """Campaigns a stored request form names: its ``campaign`` field, and a campaign alert's
    own reference."""
    try:
        form = json.loads(form_json)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return set()
    if not isinstance(form, dict):
        return set()
    found = {form[CAMPAIGN_FIELD]} if isinstance(form.get(CAMPAIGN_FIELD), str) else set()
    alert = form.get("alert")
    if isinstance(alert, dict) and isinstance(alert.get("campaign_reference"), str):
        found.add(alert["campaign_reference"])
    return found
