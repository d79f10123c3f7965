"""Simulate the pool at scale: real lease ledgers and the researchers' real acquire plan, in virtual time.

    python simulations/pool.py [--nodes 10000] [--churn 0.2] [--researchers 500] [--acquires 1000] [--count 10]
                               [--cheaters 0.05] [--timeout 5] [--seed 1] [--json]

Prints the summary figures (or, with --json, one JSON object). What is real and what is modelled:
`seattle.experiment.pool_simulation` and docs/simulations.md ("The pool").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seattle.experiment.pool_simulation import PoolConfig, run_simulation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000, help="nodes in the pool")
    parser.add_argument("--vessels", type=int, default=4, help="pool vessels per node")
    parser.add_argument("--churn", type=float, default=0.2, help="fraction of the nodes that leave (as many join)")
    parser.add_argument("--researchers", type=int, default=500, help="researcher keys")
    parser.add_argument("--acquires", type=int, default=1000, help="acquires during the run")
    parser.add_argument("--count", type=int, default=10, help="vessels per acquire")
    parser.add_argument("--cheaters", type=float, default=0.05, help="fraction of keys asking every slot twice")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds lost on a node that left")
    parser.add_argument("--span", type=float, default=3600.0, help="virtual seconds the run lasts")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args(argv)
    if options.nodes < 10 or options.researchers < 1 or options.count < 1 or not 0 <= options.churn < 1 \
            or not 0 <= options.cheaters <= 1 or options.timeout <= 0 or options.span <= 0:
        parser.error("--nodes >= 10, --researchers >= 1, --count >= 1, 0 <= --churn < 1, 0 <= --cheaters <= 1, "
                     "--timeout and --span > 0")
    summary = run_simulation(PoolConfig(nodes=options.nodes, vessels_per_node=options.vessels,
                                        researchers=options.researchers, acquires=options.acquires,
                                        count=options.count, churn=options.churn, cheaters=options.cheaters,
                                        span=options.span, timeout=options.timeout, seed=options.seed))
    figures = summary.to_json()
    if options.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:<26} {value:.3f}" if isinstance(value, float) else f"{name:<26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
