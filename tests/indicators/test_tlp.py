# SPDX-License-Identifier: Apache-2.0
"""Who may receive an indicator set, for every TLP 2.0 label and every kind of sender."""

from __future__ import annotations

from typing import Any

import pytest

from node.ids import AgencyId
from node.indicators.tlp import Tlp, TlpEgressError, TlpError, check_share, may_hold

OWNER, NAMED, CLIENT, OTHER = (
    AgencyId("aa-unit"),
    AgencyId("bb-authority"),
    AgencyId("cc-authority"),
    AgencyId("dd-contact"),
)
MEMBERS = {OWNER, NAMED, CLIENT, OTHER}

# Each case: the label, who sends, to whom, and whether the label allows it.
CASES = [
    (Tlp.CLEAR, OWNER, OTHER, True),
    (Tlp.CLEAR, NAMED, OTHER, True),
    (Tlp.GREEN, OWNER, OTHER, True),
    (Tlp.GREEN, NAMED, CLIENT, True),
    (Tlp.AMBER, OWNER, NAMED, True),
    (Tlp.AMBER, OWNER, OTHER, False),
    (Tlp.AMBER, NAMED, CLIENT, True),
    (Tlp.AMBER, NAMED, OTHER, False),
    (Tlp.AMBER, CLIENT, OTHER, False),
    (Tlp.AMBER_STRICT, OWNER, NAMED, True),
    (Tlp.AMBER_STRICT, OWNER, OTHER, False),
    (Tlp.AMBER_STRICT, NAMED, CLIENT, False),
    (Tlp.RED, OWNER, NAMED, True),
    (Tlp.RED, OWNER, CLIENT, False),
    (Tlp.RED, NAMED, CLIENT, False),
]


@pytest.mark.parametrize(("tlp", "sender", "recipient", "allowed"), CASES)
def test_each_label_decides_who_may_receive(
    tlp: Tlp, sender: AgencyId, recipient: AgencyId, allowed: bool
) -> None:
    def share() -> None:
        check_share(
            tlp,
            owner=OWNER,
            recipients=[NAMED],
            clients={NAMED: [CLIENT]},
            sender=sender,
            recipient=recipient,
            members=MEMBERS,
        )

    if allowed:
        share()
    else:
        with pytest.raises(TlpEgressError, match=tlp.value.replace("+", r"\+")):
            share()


@pytest.mark.parametrize("recipient", [OWNER, "zz-stranger"])
def test_never_to_the_owner_nor_outside_the_federation(recipient: AgencyId) -> None:
    with pytest.raises(TlpEgressError):
        check_share(
            Tlp.CLEAR,
            owner=OWNER,
            recipients=[],
            clients={},
            sender=NAMED,
            recipient=recipient,
            members=MEMBERS,
        )


@pytest.mark.parametrize(
    ("text", "tlp"),
    [
        ("TLP:AMBER+STRICT", Tlp.AMBER_STRICT),
        ("amber+strict", Tlp.AMBER_STRICT),
        (" tlp:red ", Tlp.RED),
        ("CLEAR", Tlp.CLEAR),
    ],
)
def test_labels_parse(text: str, tlp: Tlp) -> None:
    assert Tlp.parse(text) is tlp


@pytest.mark.parametrize("text", ["TLP:WHITE", "amber strict", "", "TLP:"])
def test_tlp_1_and_other_labels_are_refused(text: str) -> None:
    with pytest.raises(TlpError, match="unknown TLP label"):
        Tlp.parse(text)


def test_marking_definitions_are_the_tlp_2_extension_ids() -> None:
    assert Tlp.RED.marking_definition == (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
    )
    assert len({t.marking_definition for t in Tlp}) == 5


GIVEN_TO = frozenset({"bb"})
CLIENTS = {"bb": ("cc",)}


@pytest.mark.parametrize(
    ("tlp", "holders"),
    [
        (Tlp.CLEAR, {"bb", "cc", "dd"}),
        (Tlp.GREEN, {"bb", "cc", "dd"}),
        (Tlp.AMBER, {"bb", "cc"}),
        (Tlp.AMBER_STRICT, {"bb"}),
        (Tlp.RED, {"bb"}),
    ],
)
def test_who_may_hold_a_set(tlp: Tlp, holders: set[str]) -> None:
    # The owner gave it to bb and declared cc a client of bb; dd got it from nobody.
    for agency in ("bb", "cc", "dd"):
        allowed = may_hold(tlp, agency, given_to=lambda: GIVEN_TO, clients=lambda: CLIENTS)
        assert allowed is (agency in holders), (tlp, agency)


def test_may_hold_reads_only_what_the_label_needs() -> None:
    def unread() -> Any:
        raise AssertionError("read although the label does not need it")

    assert may_hold(Tlp.GREEN, "dd", given_to=unread, clients=unread)
    assert not may_hold(Tlp.RED, "dd", given_to=lambda: GIVEN_TO, clients=unread)
