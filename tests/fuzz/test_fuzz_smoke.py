# SPDX-License-Identifier: Apache-2.0
"""Every corpus input replays cleanly, and every target survives a short fuzzing run.

The long runs are ``make fuzz``; this is the part that runs with every ``make test``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fuzz.campaign import CORPUS, fuzz
from tests.fuzz.targets import TARGETS

SMOKE_RUNS = int(os.environ.get("FUZZ_SMOKE_RUNS", "2000"))
SMOKE_SECONDS = 5
SMOKE_SEED = 1
"""The smoke run replays the same mutations every time: `make test` stays deterministic, and
exploration is left to `make fuzz`."""
CORPUS_FILES = sorted(CORPUS.glob("*/*"))


def test_every_target_has_a_seed_corpus() -> None:
    assert {p.name for p in CORPUS.iterdir()} == set(TARGETS)
    for target in TARGETS:
        assert any((CORPUS / target).glob("seed-*")), target


def test_the_corpus_stays_small() -> None:
    assert sum(p.stat().st_size for p in CORPUS_FILES) < 2 * 1024 * 1024


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_corpus_input_parses_or_is_refused_with_the_documented_error(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_fuzzing_run_finds_no_crash(target: str, tmp_path: Path) -> None:
    result = fuzz(
        target, runs=SMOKE_RUNS, artifacts=tmp_path, max_time_s=SMOKE_SECONDS, seed=SMOKE_SEED
    )
    assert result.ok, result.log[-4000:]
    assert result.runs > 0
