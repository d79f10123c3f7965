"""Run one fuzz target under atheris (coverage-guided, libFuzzer underneath).

    python fuzz/run.py TARGET [libFuzzer options, e.g. -max_total_time=60 -runs=100000 CORPUS_DIR]
    python fuzz/run.py --list

TARGET is a name in fuzz/targets.py's TARGETS. The saved inputs in fuzz/regressions/TARGET/ are run first
(a regression fails at once, before any fuzzing), then atheris mutates from them (a copy of them, when
no corpus directory is given). A crash (any exception the
target does not document) ends the run with a non-zero status; libFuzzer writes the input to
crash-<sha1> in the working directory (or -artifact_prefix=...) and prints it; copy it into
fuzz/regressions/TARGET/ so it stays fixed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["seattle", "fuzz"]):
    from fuzz.targets import TARGETS, regression_inputs


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        names = ", ".join(TARGETS)
        if len(sys.argv) >= 2 and sys.argv[1] == "--list":
            print("\n".join(TARGETS))
            return
        sys.exit(f"usage: python fuzz/run.py TARGET [libFuzzer options]; targets: {names}")
    name = sys.argv[1]
    target = TARGETS[name]
    for path in regression_inputs(name):
        print(f"regression input {path.name}", flush=True)
        target(path.read_bytes())
    options = sys.argv[2:]
    with tempfile.TemporaryDirectory() as corpus:
        if not any(not option.startswith("-") for option in options):
            # No corpus given: start from the saved inputs (copied, since libFuzzer adds to its corpus).
            for path in regression_inputs(name):
                shutil.copy(path, corpus)
            options.append(corpus)
        atheris.Setup([sys.argv[0], *options], target)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
