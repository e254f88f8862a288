# SPDX-License-Identifier: Apache-2.0
"""Run one fuzz target under atheris (libFuzzer): ``python -m tests.fuzz.run TARGET [flags]``.

The flags after the target name are libFuzzer's (``-runs=N``, ``-max_total_time=S``, corpus
directories, ``-artifact_prefix=``). atheris takes over the process and exits it, which is
why the tests start this module in a subprocess.
"""

from __future__ import annotations

import sys

import atheris

# Coverage guidance follows the edges of Comity's own modules; they must be imported inside
# this block to be instrumented.
with atheris.instrument_imports(include=["node"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.run {{{','.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
