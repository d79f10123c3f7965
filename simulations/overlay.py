"""Simulate the overlay at scale: N real protocol engines on the simulated network, with churn and loss.

    python simulations/overlay.py [--nodes 1000] [--churn 0.2] [--loss 0.01] [--lookups 200] [--seed 1]
                                  [--k 20] [--alpha 3] [--interval 0.1] [--behind-nat 0.6] [--relay-hours 1]
                                  [--out DIR] [--json]

Prints a table of the summary figures (or, with --json, one JSON object), and writes `lookups.csv` (one row
per lookup) and `lookups.png` (hops, latency, success over time) into --out (default: a directory named
after the run under ./simulation-results, printed at the end). Behind NAT, the relay model
(`simulations/relays.py`) runs over the result to --relay-hours of virtual time, and its figures are the
summary's "relays" (prefixed "relays_" in the table). Definitions: docs/simulations.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seattle.overlay.simulation import Config, run_simulation, write_csv, write_plot
from simulations.relays import RelayModel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="starting population")
    parser.add_argument("--churn", type=float, default=0.0, help="fraction that leaves (and as many join)")
    parser.add_argument("--no-rejoin", action="store_true",
                        help="churn is departures only: nobody joins in place of the nodes that leave")
    parser.add_argument("--loss", type=float, default=0.0, help="probability that a datagram is dropped")
    parser.add_argument("--lookups", type=int, default=200, help="lookups to run")
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same run")
    parser.add_argument("--k", type=int, default=20, help="bucket size and lookup width")
    parser.add_argument("--alpha", type=int, default=3, help="requests in flight per lookup")
    parser.add_argument("--interval", type=float, default=0.1, help="virtual seconds between lookup starts")
    parser.add_argument("--puzzle-bits", type=int, default=0,
                        help="work each node id carries (the real network: 13); each node costs 2**bits keys")
    parser.add_argument("--behind-nat", type=float, default=0.0,
                        help="share of nodes behind a home router of their own (cone NAT, symmetric NAT, firewall "
                             "in turn); every node then measures its reachability, and those behind are DHT clients")
    parser.add_argument("--relay-hours", type=float, default=1.0,
                        help="behind NAT: virtual hours from the phase's start the relay model runs to")
    parser.add_argument("--out", type=Path, help="directory for lookups.csv and lookups.png")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the summary figures")
    options = parser.parse_args(argv)
    try:
        config = Config(
            nodes=options.nodes,
            churn=options.churn,
            loss=options.loss,
            lookups=options.lookups,
            seed=options.seed,
            k=options.k,
            alpha=options.alpha,
            interval=options.interval,
            rejoin=not options.no_rejoin,
            puzzle_bits=options.puzzle_bits,
            behind_nat=options.behind_nat,
        )
    except ValueError as error:
        parser.error(str(error))
    out = options.out or Path("simulation-results") / (
        f"overlay-n{config.nodes}-churn{config.churn:g}{'' if config.rejoin else '-norejoin'}"
        f"-loss{config.loss:g}{f'-nat{config.behind_nat:g}' if config.behind_nat else ''}-seed{config.seed}"
    )
    out.mkdir(parents=True, exist_ok=True)
    if not options.relay_hours > 0:
        parser.error(f"--relay-hours must be a positive number of hours, got {options.relay_hours!r}")
    result = run_simulation(config)
    write_csv(result, out / "lookups.csv")
    write_plot(result, out / "lookups.png")
    figures = asdict(result.summary)
    if config.behind_nat:
        figures["relays"] = asdict(RelayModel(result.timeline).run(options.relay_hours))
    if options.json:
        print(json.dumps({**figures, "out": str(out)}))
    else:
        print_summary(figures)
        print(f"per-lookup figures: {out / 'lookups.csv'}; plot: {out / 'lookups.png'}")
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    flat = {name: value for name, value in summary.items() if name != "relays"}
    flat.update({f"relays_{name}": value for name, value in summary.get("relays", {}).items()})
    width = max(len(name) for name in flat)
    for name, value in flat.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")


if __name__ == "__main__":
    sys.exit(main())
