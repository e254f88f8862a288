# SPDX-License-Identifier: Apache-2.0
"""What the lifecycle and the deadlines need to know about a request type.

The traits are data, declared once per type in ``schemas/registry/request-types.v1.json`` and
read by :mod:`node.forms.registry`; code asks a :class:`RequestTypeTraits` instead of keeping
its own list of type names. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Trait(StrEnum):
    """A trait as the registry file spells it."""

    PRESERVATION_ONLY = "preservation_only"
    EMERGENCY = "emergency"
    ALERT = "alert"


@dataclass(frozen=True, kw_only=True)
class RequestTypeTraits:
    """One request type's traits."""

    name: str
    preservation_only: bool = False
    """Asks that data be frozen, not handed over (Budapest Art. 29): it is confirmed as
    preserved and extended, and takes no evidence, which needs a disclosure or production
    request of its own."""
    emergency: bool = False
    """Due within its legal basis's emergency deadline."""
    alert: bool = False
    """Spontaneous information (Budapest Art. 26): nothing to decide; the recipient may close
    it once read. Campaign alerts are filed as this type."""

    @classmethod
    def of(cls, name: str, traits: frozenset[Trait]) -> RequestTypeTraits:
        """The traits of ``name``, from the registry file's list."""
        return cls(
            name=name,
            preservation_only=Trait.PRESERVATION_ONLY in traits,
            emergency=Trait.EMERGENCY in traits,
            alert=Trait.ALERT in traits,
        )
