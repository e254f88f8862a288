# SPDX-License-Identifier: Apache-2.0
"""Who may see which openings of an audit leaf (Law Enforcement Directive Art. 25 logging).

The agency that keeps the log, and a court under an order, get every opening. The oversight
body gets what it needs to check lawfulness: who asked (the requesting unit the form names,
the user who acted, their unit and whoever approved), what about and why (the justification,
the reason given, or an overlap check's stated reason) and, for an overlap check, how many
values were asked about. The treaty secretariat gets
nothing beyond the public fields: its bundle proves that the record exists, no more. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from node.audit.leaf import Opening, OpeningName
from node.errors import ComityError, ErrorKind

ROLES = ("agency", "court", "oversight", "secretariat")
_RELEASED: dict[str, frozenset[OpeningName] | None] = {
    "agency": None,  # everything
    "court": None,
    "oversight": frozenset(
        {
            OpeningName.REQUESTING_UNIT,
            OpeningName.JUSTIFICATION,
            OpeningName.OFFICER,
            OpeningName.OFFICER_UNIT,
            OpeningName.APPROVER,
            OpeningName.REASON,
            OpeningName.SUBJECT,
            OpeningName.DETAIL,
            OpeningName.ITEMS,
        }
    ),
    "secretariat": frozenset(),
}
MAX_REASON_CHARS = 500


class DisclosureError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_disclosure"


class NotEntitledError(ComityError):
    kind = ErrorKind.PERMISSION_DENIED
    code = "not_entitled"


def remote_role(member_roles: Iterable[str]) -> str:
    """The role under which a federation member may ask for openings over the network.

    Raises:
        NotEntitledError: the member is neither an oversight body nor the secretariat.
    """
    roles = set(member_roles)
    if "oversight" in roles:
        return "oversight"
    if "secretariat" in roles:
        return "secretariat"
    raise NotEntitledError("only an oversight body or the secretariat may ask for openings")


def released_to(role: str, openings: Iterable[Opening]) -> tuple[Opening, ...]:
    """The openings ``role`` may receive.

    Raises:
        DisclosureError: an unknown role.
    """
    if role not in _RELEASED:
        raise DisclosureError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    allowed = _RELEASED[role]
    return tuple(o for o in openings if allowed is None or o.name in allowed)


def check_reason(role: str, reason: str, order: str | None) -> None:
    """Every release states why; a court release names the order it answers.

    Raises:
        DisclosureError: a missing or oversized reason, or a court release without an order.
    """
    if not reason.strip():
        raise DisclosureError("a release of audit openings needs a reason")
    if len(reason) > MAX_REASON_CHARS:
        raise DisclosureError(f"the reason is longer than {MAX_REASON_CHARS} characters")
    if role == "court" and not (order or "").strip():
        raise DisclosureError("a release to a court names the order (--order)")
    if order is not None and len(order) > MAX_REASON_CHARS:
        raise DisclosureError(f"the order reference is longer than {MAX_REASON_CHARS} characters")
