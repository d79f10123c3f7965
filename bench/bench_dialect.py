"""The original dialect and dylink: what running existing Repy code costs a vessel (issue 17).

    python bench/bench_dialect.py [--runs 7]

Rows: translation + check of a 1,000-line original-dialect program (the translation cache cleared before each
run, so every run translates; the translator runs on Python's own parser, so this is about twice the check),
the same with the translation cached (a program or library seen before), the check alone of the translated
text (what a Python 3 program of that size pays), and a dylink import of a 300-line library through a real
file API (the first import: read, translate, check, evaluate; then a cached import). Each figure is the median
of the runs, in-process, on the machine's current load. The exit status is 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.vessel.child import dialect  # noqa: E402
from seattle.vessel.child.checker import check_and_compile  # noqa: E402
from seattle.vessel.child.runtime import Runtime  # noqa: E402
from seattle.vessel.spec import REPY_V2  # noqa: E402
from tests.api_harness import vessel  # noqa: E402

GOAL_TRANSLATE_CHECK_MS = 100.0
GOAL_IMPORT_FIRST_MS = 50.0
GOAL_IMPORT_CACHED_MS = 1.0

#: One block of original-dialect code using every construct the translator rewrites; repeated to size.
BLOCK = '''
def handler_{n}(srcip, srcport, mess, ch):
    """Reply to a ping, counting what came in."""
    count = 0L
    mode = 0777
    if mycontext.has_key('seen_{n}') and count <> 3:
        print 'received:', mess, 'from', srcip, srcport
    try:
        for j in xrange(10):
            count = count + long(j) / 2
    except ValueError, e:
        raise ValueError, "bad " + `e`
    keys = mycontext.keys()
    keys.sort()
    total = reduce(lambda a, b: a + b, map(len, keys), 0)
    return cmp(total, count)
'''


def program(lines: int) -> str:
    parts: list[str] = []
    n = 0
    while sum(part.count("\n") for part in parts) < lines:
        parts.append(BLOCK.format(n=n))
        n += 1
    return "".join(parts)


def median_ms(operation: Callable[[], object], runs: int, before: Callable[[], None] = lambda: None) -> float:
    times: list[float] = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        operation()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (the median is reported)")
    runs = parser.parse_args().runs

    source = program(1000)
    clear = dialect._cache.clear
    dialect.translate("x = 1\n")  # per-node-type caches fill on the first translation
    translated = dialect.translate(source, "big.r2py")
    full = median_ms(lambda: check_and_compile(dialect.translate(source, "big.r2py"), "big.r2py"), runs, clear)
    cached = median_ms(lambda: check_and_compile(dialect.translate(source, "big.r2py"), "big.r2py"), runs)
    check_only = median_ms(lambda: check_and_compile(translated, "big.r2py"), runs)

    library = program(300)
    firsts: list[float] = []
    cached_imports: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for run in range(runs):
            with vessel(Path(directory) / f"v{run}") as harness:
                (harness.ctx.vessel_dir / "lib.r2py").write_text(library)
                clear()
                namespace = Runtime(harness.ctx, platform=REPY_V2).namespace("initialize", [])
                importer = namespace["dy_import_module"]
                firsts.append(median_ms(lambda importer=importer: importer("lib.r2py"), 1))
                cached_imports.append(median_ms(lambda importer=importer: importer("lib.r2py"), 100))
    first, again = statistics.median(firsts), statistics.median(cached_imports)

    rows = [
        Row(f"translation + check, {source.count(chr(10))}-line original-dialect program",
            f"< {GOAL_TRANSLATE_CHECK_MS:.0f} ms", f"{full:.1f} ms", full < GOAL_TRANSLATE_CHECK_MS),
        Row("the same, translation cached (seen before)", "-", f"{cached:.1f} ms", None),
        Row("check alone of the translated text", "-", f"{check_only:.1f} ms", None),
        Row(f"dylink import of a {library.count(chr(10))}-line library, first", f"< {GOAL_IMPORT_FIRST_MS:.0f} ms",
            f"{first:.1f} ms", first < GOAL_IMPORT_FIRST_MS),
        Row("dylink import, cached", f"< {GOAL_IMPORT_CACHED_MS:.0f} ms", f"{again * 1000:.1f} µs",
            again < GOAL_IMPORT_CACHED_MS),
    ]
    print_table("The original dialect and dylink", rows)
    sys.exit(0 if all(row.met is not False for row in rows) else 1)


if __name__ == "__main__":
    main()
