# SPDX-License-Identifier: Apache-2.0
"""Fuzz every target in turn and print inputs run and crashes per target.

``python -m tests.fuzz.campaign --runs 1000000 [TARGET ...]`` (``make fuzz``). Each target
runs in its own process (atheris takes the process over), starting from its committed corpus
in ``tests/fuzz/corpus/TARGET``; new inputs go to a scratch directory, never into the
repository. A crashing input is written to ``--artifacts`` as ``TARGET-crash-<sha1>``: to
keep it, copy it into the target's corpus as ``crash-<what it shows>`` and add a unit test
beside the parser's other tests.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).parent / "corpus"
MAX_LEN = 16384
"""Bytes; above the largest seed, so mutations can grow every seed."""
INPUT_TIMEOUT_S = 10
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.MULTILINE)
_EXECUTED = re.compile(r"^#(\d+)\s", re.MULTILINE)


@dataclass(frozen=True)
class FuzzResult:
    target: str
    runs: int
    seconds: float
    crashes: tuple[Path, ...]
    returncode: int
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes


def fuzz(
    target: str, *, runs: int, artifacts: Path, max_time_s: int = 0, seed: int = 0
) -> FuzzResult:
    """Run ``target`` for ``runs`` inputs (and at most ``max_time_s`` seconds, if set);
    ``seed`` fixes libFuzzer's mutations (0: a new one each run)."""
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"comity-fuzz-{target}-") as scratch:
        command = [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            f"-runs={runs}",
            f"-max_len={MAX_LEN}",
            f"-timeout={INPUT_TIMEOUT_S}",
            f"-artifact_prefix={artifacts}/{target}-",
            "-print_final_stats=1",
            scratch,
            str(CORPUS / target),
        ]
        if max_time_s:
            command.insert(4, f"-max_total_time={max_time_s}")
        if seed:
            command.insert(4, f"-seed={seed}")
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    log = done.stdout + done.stderr
    return FuzzResult(
        target=target,
        runs=_runs(log),
        seconds=time.monotonic() - started,
        crashes=tuple(sorted(artifacts.glob(f"{target}-*"))),
        returncode=done.returncode,
        log=log,
    )


def _runs(log: str) -> int:
    done = _DONE.search(log)
    if done:
        return int(done.group(1))
    executed = _EXECUTED.findall(log)  # a crash ends the run before "Done"
    return int(executed[-1]) if executed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--max-time", type=int, default=0, help="seconds per target, 0: none")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"))
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    args = parser.parse_args()
    failed = False
    print(f"{'target':<14} {'inputs run':>12} {'seconds':>8} {'crashes':>8}")
    for target in args.targets:
        result = fuzz(target, runs=args.runs, artifacts=args.artifacts, max_time_s=args.max_time)
        print(
            f"{target:<14} {result.runs:>12,} {result.seconds:>8.0f} {len(result.crashes):>8}",
            flush=True,
        )
        for crash in result.crashes:
            print(f"    {crash}")
        if not result.ok:
            failed = True
            print(result.log[-3000:], file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
