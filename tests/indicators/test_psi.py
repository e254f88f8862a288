# SPDX-License-Identifier: Apache-2.0
"""PSI cardinality: the count is right, the order reveals nothing, bad points are refused."""

from __future__ import annotations

import os

import pytest

from node.indicators.psi import (
    OverlapError,
    blind_each,
    blind_items,
    check_distinct,
    check_reason,
    input_digest,
    item_bytes,
    new_secret,
    reblind,
    reblind_each,
    shared_count,
)


def items(names: list[str]) -> list[bytes]:
    return [item_bytes("platform_account", f"chirper:{n}") for n in names]


def run(mine: list[bytes], theirs: list[bytes]) -> int:
    a, b = new_secret(), new_secret()
    sent = blind_items(mine, a)
    doubled = reblind(sent, b)  # the responder
    their_blinded = blind_items(theirs, b)
    return shared_count(doubled, reblind(their_blinded, a))


@pytest.mark.parametrize(
    ("mine", "theirs", "shared"),
    [
        (["a", "b", "c"], ["b", "c", "d", "e"], 2),
        (["a"], ["b"], 0),
        ([], ["b"], 0),
        ([str(i) for i in range(200)], [str(i) for i in range(150, 400)], 50),
    ],
)
def test_the_initiator_learns_how_many_are_shared(
    mine: list[str], theirs: list[str], shared: int
) -> None:
    assert run(items(mine), items(theirs)) == shared


def test_same_value_of_another_type_is_another_item() -> None:
    a, b = new_secret(), new_secret()
    phone = [item_bytes("phone", "+37251234567")]
    other = [item_bytes("platform_account", "+37251234567")]
    assert shared_count(reblind(blind_items(phone, a), b), reblind(blind_items(other, b), a)) == 0


def test_blinded_lists_are_sorted_so_order_says_nothing() -> None:
    secret = new_secret()
    blinded = blind_items(items(["z", "a", "m"]), secret)
    assert blinded == sorted(blinded)
    # Fresh secrets make unlinkable lists: the same items blind to different points.
    assert set(blinded).isdisjoint(blind_items(items(["z", "a", "m"]), new_secret()))


@pytest.mark.parametrize(
    "point",
    # u = 0 and u = 1 have small order (blinding them gives zero); then wrong lengths.
    [bytes(32), b"\x01" + bytes(31), os.urandom(31), os.urandom(33)],
)
def test_invalid_points_are_refused(point: bytes) -> None:
    with pytest.raises(OverlapError, match="point 0 is not a valid"):
        reblind([point], new_secret())


def test_reveal_mode_keeps_the_initiators_order_and_count_mode_does_not() -> None:
    a, b = new_secret(), new_secret()
    mine = items(["z", "a", "m", "q"])
    sent = blind_each(mine, a)
    doubled_in_order = reblind_each(sent, b)
    # Each position answers for the item sent there: blinding in the other order commutes.
    assert doubled_in_order == [reblind_each(blind_each([i], b), a)[0] for i in mine]
    assert reblind(sent, b) == sorted(doubled_in_order)


def test_points_must_be_distinct_and_canonical() -> None:
    points = blind_items(items(["a", "b", "c"]), new_secret())
    check_distinct(points)
    with pytest.raises(OverlapError, match="point 3 repeats"):
        check_distinct([*points, points[1]])
    # X25519 ignores the top bit and reads u modulo p: with the top bit set, the same point
    # is spelled another way, which a byte comparison would not catch; so is 9 + p (the base
    # point).
    u = int.from_bytes(points[0], "little")
    spelling = (u | 1 << 255).to_bytes(32, "little")
    secret = new_secret()
    assert reblind_each([spelling], secret) == reblind_each([points[0]], secret)
    for other in (spelling, (9 + 2**255 - 19).to_bytes(32, "little")):
        with pytest.raises(OverlapError, match="point 0 is not a canonical"):
            check_distinct([other, *points[1:]])


def test_the_input_digest_commits_to_the_points_and_their_order() -> None:
    points = blind_items(items(["a", "b"]), new_secret())
    assert input_digest(points) == input_digest(list(points))
    assert input_digest(points) != input_digest(points[::-1])
    assert input_digest(points) != input_digest(points[:1])


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("", "states its reason"),
        (" \n ", "states its reason"),
        ("x" * 1001, "at most 1000"),
        ("a\x00b", "control characters"),
    ],
)
def test_a_check_states_a_reason(reason: str, problem: str) -> None:
    with pytest.raises(OverlapError, match=problem):
        check_reason(reason)


def test_a_reason_keeps_its_lines_and_loses_its_margins() -> None:
    assert check_reason("  case 2026/117:\n\tshared? ") == "case 2026/117:\n\tshared?"
