# SPDX-License-Identifier: Apache-2.0
"""Member cards and root keys for directory tests."""

from __future__ import annotations

from functools import cache

from nacl.signing import SigningKey

from node.crypto.keys import AgencyKeys
from node.ids import AgencyId
from node.members import MemberCard, member_card, read_member_card
from node.tls import generate_tls_identity

NOW_MS = 1_790_000_000_000  # 2026-09-21


@cache
def card(agency: str, country: str = "EE") -> MemberCard:
    """A member card with fresh keys (cached: certificates are slow to make)."""
    return card_with_keys(agency, AgencyKeys.generate(), country)


def card_with_keys(agency: str, keys: AgencyKeys, country: str = "EE") -> MemberCard:
    certificate, _ = generate_tls_identity(AgencyId(agency))
    text = member_card(
        agency_id=agency,
        country=country,
        roles=["central_authority"],
        endpoint="127.0.0.1:7401",
        keys=keys,
        tls_certificate=certificate,
    )
    return read_member_card(text)


def root_keys(count: int) -> list[SigningKey]:
    return [SigningKey.generate() for _ in range(count)]
