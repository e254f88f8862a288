# SPDX-License-Identifier: Apache-2.0
"""What the sharing-group service answers: a group as held here, a sync's outcome, matches."""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import ComityError
from node.indicators.groups import Group


@dataclass(frozen=True, kw_only=True)
class GroupView:
    group: Group
    published_sets: tuple[str, ...]
    own_seq: int
    undelivered: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SyncOutcome:
    group_id: str
    publisher: str
    fetched: int
    held_seq: int
    error: ComityError | None = None


@dataclass(frozen=True, kw_only=True)
class TagMatch:
    type: str
    value: str
    agencies: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class GroupMatches:
    group: Group
    matches: tuple[TagMatch, ...]
