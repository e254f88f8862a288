# SPDX-License-Identifier: Apache-2.0
"""TLP 2.0 as a rule the node enforces, not a tag: who may receive an indicator set.

FIRST's TLP 2.0 in federation terms. CLEAR: anyone. GREEN: the community, here every
federation member. AMBER: the recipient organisation and its clients on a need-to-know basis:
the owner sends to the agencies it names, and each of them may pass the set on only to the
clients the owner declared for it. AMBER+STRICT: the recipient organisation only: the named
agencies, and no one further. RED: named recipients only, no further disclosure (Comity names
agencies; who inside them reads it is theirs to restrict). The same check runs at the sender
before anything leaves and at the receiver before anything is stored; :func:`may_hold` answers
whether an agency may hold a set at all (a sighting's reporter, a sharing group's members). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from enum import Enum

from node.errors import ComityError, ErrorKind
from node.ids import AgencyId


class Tlp(Enum):
    CLEAR = "TLP:CLEAR"
    GREEN = "TLP:GREEN"
    AMBER = "TLP:AMBER"
    AMBER_STRICT = "TLP:AMBER+STRICT"
    RED = "TLP:RED"

    @property
    def marking_definition(self) -> str:
        """The STIX 2.1 marking-definition id of the TLP 2.0 extension."""
        return _MARKINGS[self]

    @classmethod
    def parse(cls, text: str) -> Tlp:
        """``TLP:AMBER+STRICT``, ``amber+strict`` …

        Raises:
            TlpError: not a TLP 2.0 label.
        """
        label = text.strip().upper()
        label = label if label.startswith("TLP:") else f"TLP:{label}"
        for tlp in cls:
            if tlp.value == label:
                return tlp
        raise TlpError(f"unknown TLP label; one of {', '.join(t.value for t in cls)}")


_MARKINGS = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
NAMED = (Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)
"""Labels under which the owner names the recipient agencies."""
FEDERATION_WIDE = (Tlp.CLEAR, Tlp.GREEN)
"""Labels that let any member hold the set, whoever passed it on."""


class TlpError(ComityError):
    kind = ErrorKind.INVALID_INPUT
    code = "bad_tlp"


class TlpEgressError(ComityError):
    """The label does not let this set go to that agency."""

    kind = ErrorKind.PERMISSION_DENIED
    code = "tlp_forbids"


def may_hold(
    tlp: Tlp,
    agency: str,
    *,
    given_to: Callable[[], Collection[str]],
    clients: Callable[[], Mapping[str, Collection[str]]] = dict,
) -> bool:
    """May ``agency`` hold a set labelled ``tlp``, whoever it came from?

    Under CLEAR and GREEN any member may. Otherwise the agencies the owner gave it to
    (``given_to``) may, and under AMBER also the clients the owner declared for them
    (``clients``, by recipient); AMBER+STRICT and RED stay with the agencies the owner gave
    it to. ``given_to`` and ``clients`` are asked only when the label makes them matter, so a
    caller reads a set's document only then.
    """
    if tlp in FEDERATION_WIDE or agency in given_to():
        return True
    return tlp is Tlp.AMBER and any(agency in granted for granted in clients().values())


def check_share(
    tlp: Tlp,
    *,
    owner: AgencyId,
    recipients: Sequence[AgencyId],
    clients: Mapping[str, Sequence[str]],
    sender: AgencyId,
    recipient: AgencyId,
    members: Collection[str],
) -> None:
    """May ``sender`` pass a set of ``owner``'s under ``tlp`` to ``recipient``?

    Raises:
        TlpEgressError: it may not; the message names the label and the rule.
    """
    if recipient not in members:
        raise TlpEgressError(f"{recipient} is not a federation member")
    if recipient in (owner, sender):
        raise TlpEgressError("an indicator set is not shared with its owner or its sender")
    if tlp in FEDERATION_WIDE:
        return
    if sender == owner:
        if recipient not in recipients:
            raise TlpEgressError(f"{tlp.value} allows only the agencies the owner named")
        return
    if tlp is Tlp.AMBER and recipient in clients.get(sender, ()):
        return
    rule = {
        Tlp.AMBER: "a recipient may pass it on only to the clients the owner declared for it",
        Tlp.AMBER_STRICT: "it stays with the recipient agency",
        Tlp.RED: "no further disclosure",
    }[tlp]
    raise TlpEgressError(f"{tlp.value}: {rule}")
