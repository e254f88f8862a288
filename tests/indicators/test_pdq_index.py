# SPDX-License-Identifier: Apache-2.0
"""The PDQ index gives exactly what a brute-force scan over Python integers gives."""

from __future__ import annotations

import random

import pytest

from node.indicators.pdq_index import (
    PDQ_MIN_QUALITY,
    PdqEntry,
    PdqIndex,
    hash_words,
    too_weak_to_keep,
)


def hex_of(number: int) -> str:
    return f"{number:064x}"


def flip_bits(number: int, count: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), count):
        number ^= 1 << bit
    return number


def brute_force(
    entries: list[PdqEntry], query: str, max_distance: int, now_ms: int
) -> list[tuple[int, str, str]]:
    """What the node did before the index: XOR and bit_count over every stored hash."""
    target = int(query, 16)
    found = []
    for e in entries:
        distance = (int(e.value, 16) ^ target).bit_count()
        live = e.expires_ms is None or e.expires_ms > now_ms
        if distance <= max_distance and live:
            found.append((distance, e.set_id, e.value))
    return sorted(found)


def random_entries(rng: random.Random, centre: int) -> list[PdqEntry]:
    """Random hashes, and hashes at every distance 0-40 from ``centre`` (31 and 32 included),
    some in several sets, some expiring."""
    values = [rng.getrandbits(256) for _ in range(300)]
    values += [flip_bits(centre, d, rng) for d in range(41) for _ in range(3)]
    return [
        PdqEntry(
            set_id=f"set-{rng.randrange(5)}",
            owner="aa-cyber-unit",
            value=hex_of(v),
            expires_ms=rng.choice([None, None, 500, 2000]),
        )
        for v in values
    ]


@pytest.mark.parametrize("seed", range(5))
def test_the_index_matches_a_brute_force_scan(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    centre = rng.getrandbits(256)
    entries = random_entries(rng, centre)
    index = PdqIndex(entries)
    queries = [hex_of(centre), hex_of(flip_bits(centre, 5, rng)), hex_of(rng.getrandbits(256))]
    for query in queries:
        for max_distance in (0, 10, 31):
            hits = index.search(query, max_distance=max_distance, now_ms=1000)
            got = [(h.distance, h.entry.set_id, h.entry.value) for h in hits]
            assert got == brute_force(entries, query, max_distance, 1000)


def test_thirty_one_bits_match_and_thirty_two_do_not() -> None:
    rng = random.Random(7)  # noqa: S311 (reproducible test data, not secrets)
    centre = rng.getrandbits(256)
    at_31 = PdqEntry(set_id="a", owner="o", value=hex_of(flip_bits(centre, 31, rng)))
    at_32 = PdqEntry(set_id="b", owner="o", value=hex_of(flip_bits(centre, 32, rng)))
    index = PdqIndex([at_31, at_32])
    hits = index.search(hex_of(centre), max_distance=31, now_ms=0)
    assert [(h.entry, h.distance) for h in hits] == [(at_31, 31)]
    assert [int(d) for d in index.distances(hex_of(centre))] == [31, 32]


def test_an_expired_hash_stops_matching_at_its_expiry() -> None:
    entry = PdqEntry(set_id="a", owner="o", value="c3" * 32, expires_ms=1000)
    index = PdqIndex([entry])
    assert len(index.search("c3" * 32, max_distance=0, now_ms=999)) == 1
    assert index.search("c3" * 32, max_distance=0, now_ms=1000) == []


def test_a_batch_answers_each_query_in_order() -> None:
    entries = [
        PdqEntry(set_id="a", owner="o", value="00" * 32),
        PdqEntry(set_id="b", owner="o", value="ff" * 32),
    ]
    found = PdqIndex(entries).search_many(
        ["ff" * 32, "00" * 32, "0f" * 32], max_distance=31, now_ms=0
    )
    assert [[h.entry.set_id for h in hits] for hits in found] == [["b"], ["a"], []]


def test_an_empty_index_matches_nothing() -> None:
    assert PdqIndex([]).search("00" * 32, max_distance=31, now_ms=0) == []
    assert PdqIndex.combine([]).search("00" * 32, max_distance=31, now_ms=0) == []


def test_combined_parts_search_like_one_index() -> None:
    rng = random.Random(11)  # noqa: S311 (reproducible test data, not secrets)
    centre = rng.getrandbits(256)
    entries = random_entries(rng, centre)
    parts = [PdqIndex(entries[:100]), PdqIndex(entries[100:101]), PdqIndex(entries[101:])]
    combined = PdqIndex.combine(parts)
    assert len(combined) == len(entries)
    whole = PdqIndex(entries)
    for max_distance in (0, 31):
        assert combined.search(
            hex_of(centre), max_distance=max_distance, now_ms=1000
        ) == whole.search(hex_of(centre), max_distance=max_distance, now_ms=1000)


def test_words_are_read_most_significant_first() -> None:
    words = hash_words(["00" * 31 + "01"])
    assert [int(w) for w in words[0]] == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="64 hexadecimal"):
        hash_words(["abc"])


@pytest.mark.parametrize(
    ("indicator_type", "quality", "weak"),
    [
        ("pdq", 49, True),
        ("pdq", 0, True),
        ("pdq", PDQ_MIN_QUALITY, False),
        ("pdq", None, False),
        ("phone", 10, False),
    ],
)
def test_pdq_hashes_below_the_minimum_quality_are_too_weak_to_keep(
    indicator_type: str, quality: int | None, *, weak: bool
) -> None:
    assert too_weak_to_keep(indicator_type, quality) is weak
