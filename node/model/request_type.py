# SPDX-License-Identifier: Apache-2.0
"""What the lifecycle and the deadlines need to know about a request type.

The traits are data, declared once per type in ``schemas/registry/request-types.v1.json`` and
read by :mod:`node.forms.registry`; code asks a :class:`RequestTypeTraits` instead of keeping
its own list of type names. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from node.errors import ComityError, ErrorKind


class RoleNotAllowedError(ComityError):
    """A member whose directory roles do not include one that may send this type of request."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "role_not_allowed"


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
    sent_by: frozenset[str] = frozenset()
    """The directory roles of which a member must hold one to open an exchange with this
    type of request (the registry's ``sent_by``)."""

    @classmethod
    def of(
        cls, name: str, traits: frozenset[Trait], *, sent_by: Iterable[str] = ()
    ) -> RequestTypeTraits:
        """The traits of ``name``, from the registry file's lists."""
        return cls(
            name=name,
            preservation_only=Trait.PRESERVATION_ONLY in traits,
            emergency=Trait.EMERGENCY in traits,
            alert=Trait.ALERT in traits,
            sent_by=frozenset(sent_by),
        )

    def check_sender_roles(self, agency_id: str, roles: Iterable[str]) -> None:
        """Refuse a request of this type from ``agency_id``, whose directory roles are
        ``roles``, unless one of them may send it.

        Raises:
            RoleNotAllowedError: none of ``roles`` is among ``sent_by``.
        """
        if self.sent_by.isdisjoint(roles):
            raise RoleNotAllowedError(
                f"{agency_id} holds no directory role that may send a {self.name} request "
                f"(it takes one of: {', '.join(sorted(self.sent_by))})"
            )
