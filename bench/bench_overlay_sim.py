"""The overlay at scale on the simulated network: lookup success, hops and latency under churn, and the cost of
simulating it (wall time, memory).

    python bench/bench_overlay_sim.py [--nodes 10000] [--lookups 1000] [--big 100000] [--big-lookups 200]
                                      [--seed 1] [--skip-big]

Each case runs `simulations/overlay.py --json` in its own process, so its wall time (from process start to
exit, imports included) and its peak RSS are its own. Goals (issue 4): at 10,000 nodes and 1,000 lookups,
success 100 % / >= 99.5 % / >= 95 % at 0 / 20 / 50 % churn, each case in < 60 s wall on 2 cores; median hops
<= 4; median virtual latency under 20 % churn <= 2 x the no-churn median; a 100,000-node overlay runs (time and
memory reported). Definitions: docs/simulations.md. The exit status is 1 if a goal is missed.

Behind NAT (issue 15): the same 10,000 nodes with 20 % leave-and-join churn and 60 % of them (joiners too)
behind home routers of their own (cone NAT, symmetric NAT, firewall in turn), every node measuring its
reachability: lookup success >= 99.5 % (the answers are the public nodes; the NATed ones are DHT clients that
start lookups too), every live node measured, each in the state its router gives, time to a state reported.
Relays in the same run (`simulations/relays.py`, to one hour of virtual time): every public node runs the real
relay rules, every NATed node keeps two reservations as `RelayManager` does; reported: reservations per relay (no
relay over its cap), relay control bytes per hour per NATed node and per relay, reservations lost to relays
leaving and the time to replace them, and the goal: every NATed node that is up reachable through a relay.

Churn is run two ways, both held to the same goals: "departures" (F·N nodes die abruptly during the lookups,
nobody replaces them: how the DHT survey that set these goals measured churn) and "leave and join" (as many new
nodes join for real as leave, so joins' signed traffic is simulated too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.nodemgr.relay import RelayLimits  # noqa: E402

SUCCESS_GOALS = {0.0: 1.0, 0.2: 0.995, 0.5: 0.95}
WALL_GOAL = 60.0
HOPS_GOAL = 4
LATENCY_RATIO_GOAL = 2.0
NAT_SHARE = 0.6
RELAY_CAP = RelayLimits().max_reservations


def simulate(nodes: int, lookups: int, churn: float, seed: int, out: Path,
             rejoin: bool = True, behind_nat: float = 0.0) -> tuple[dict[str, Any], float]:
    """One case in a fresh process: its summary and its wall time in seconds."""
    command = [
        sys.executable, str(ROOT / "simulations" / "overlay.py"), "--nodes", str(nodes), "--lookups", str(lookups),
        "--churn", str(churn), "--seed", str(seed), "--out", str(out), "--json", "--behind-nat", str(behind_nat),
    ]
    if not rejoin:
        command.append("--no-rejoin")
    started = time.perf_counter()
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(finished.stdout), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000, help="nodes in the large run")
    parser.add_argument("--big-lookups", type=int, default=200, help="lookups in the large run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-big", action="store_true", help="leave out the large run")
    options = parser.parse_args()
    rows: list[Row] = []
    summaries: dict[tuple[float, bool], dict[str, Any]] = {}
    cases = [(0.0, True)] + [(churn, rejoin) for rejoin in (False, True) for churn in (0.2, 0.5)]
    with tempfile.TemporaryDirectory(prefix="bench-overlay-") as scratch:
        for churn, rejoin in cases:
            success_goal = SUCCESS_GOALS[churn]
            summary, wall = simulate(options.nodes, options.lookups, churn, options.seed,
                                     Path(scratch) / f"{churn}-{rejoin}", rejoin)
            summaries[churn, rejoin] = summary
            model = "" if not churn else (" (leave and join)" if rejoin else " (departures)")
            label = f"{options.nodes:,} nodes, {options.lookups:,} lookups, {churn:.0%} churn{model}"
            rows.append(Row(
                f"{label}: success", f">= {success_goal:.1%}",
                f"{summary['success_rate']:.2%} (k closest found {summary['closest_found_mean']:.1%}, "
                f"{summary['timed_out']} timed out, {summary['joined']} joined,"
                f" {summary['joins_failed']} failed joins)",
                summary["success_rate"] >= success_goal,
            ))
            rows.append(Row(
                f"{label}: wall time", f"< {WALL_GOAL:.0f} s",
                f"{wall:.1f} s (build {summary['build_seconds']:.1f} s, run {summary['run_seconds']:.1f} s; "
                f"{summary['datagrams_per_lookup']:.0f} datagrams per lookup)",
                wall < WALL_GOAL,
            ))
        calm, churned = summaries[0.0, True], summaries[0.2, True]
        rows.append(Row(
            f"lookup hops at {options.nodes:,} nodes (no churn)", f"median <= {HOPS_GOAL}",
            f"median {calm['hops_median']:g}, p90 {calm['hops_p90']:g}; {calm['messages_median']:g} messages",
            calm["hops_median"] <= HOPS_GOAL,
        ))
        ratio = churned["latency_median"] / calm["latency_median"]
        rows.append(Row(
            "virtual lookup latency under 20 % churn (leave and join)",
            f"median <= {LATENCY_RATIO_GOAL:g} x no-churn median",
            f"{churned['latency_median']:.3f} s vs {calm['latency_median']:.3f} s ({ratio:.2f} x)",
            ratio <= LATENCY_RATIO_GOAL,
        ))
        nat, wall = simulate(options.nodes, options.lookups, 0.2, options.seed, Path(scratch) / "nat",
                             behind_nat=NAT_SHARE)
        label = f"{options.nodes:,} nodes, {NAT_SHARE:.0%} behind NAT, 20 % churn (leave and join)"
        rows.append(Row(
            f"{label}: success", f">= {SUCCESS_GOALS[0.2]:.1%}",
            f"{nat['success_rate']:.2%} (k closest found {nat['closest_found_mean']:.1%}, {nat['timed_out']} timed "
            f"out, {nat['joins_failed']} failed joins; {wall:.0f} s wall)",
            nat["success_rate"] >= SUCCESS_GOALS[0.2],
        ))
        rows.append(Row(
            f"{label}: reachability measured", "every live node, in its router's state; time reported",
            f"{nat['measured']:.1%} measured, {nat['state_correct']:.1%} right; time to a state median "
            f"{nat['reachable_median']:.2f} s, p90 {nat['reachable_p90']:.2f} s (virtual)",
            nat["measured"] == 1.0 and nat["state_correct"] == 1.0,
        ))
        relays = nat["relays"]
        rows.append(Row(
            f"{label}: reservations per relay", f"none over the cap ({RELAY_CAP})",
            f"mean {relays['reservations_mean']:.1f}, p50 {relays['reservations_p50']:g}, p99 "
            f"{relays['reservations_p99']:g}, max {relays['reservations_max']} (peak {relays['reservations_peak']}) "
            f"on {relays['relays']:,} relays; refusals {relays['refusals'] or 'none'}",
            relays["reservations_peak"] <= RELAY_CAP,
        ))
        rows.append(Row(
            f"{label}: relay control bytes", "reported",
            f"{relays['nated_bytes_per_hour'] / 1024:.1f} KiB/h per NATed node, "
            f"{relays['relay_bytes_per_hour'] / 1024:.1f} KiB/h per relay (p99 "
            f"{relays['relay_bytes_per_hour_p99'] / 1024:.1f} KiB/h), over {relays['hours']:g} h virtual",
            None,
        ))
        rows.append(Row(
            f"{label}: NATed nodes reachable through a relay", "100 % of those up; replacement time reported",
            f"{relays['reachable']:.2%} ({relays['both_held']:.1%} hold both) of {relays['nated']:,}; "
            f"{relays['lost']} reservations lost to churn, {relays['replaced']} replaced in median "
            f"{relays['replace_median']:.0f} s, p95 {relays['replace_p95']:.0f} s (virtual); "
            f"{relays['unreplaced']} not replaced",
            relays["reachable"] == 1.0 and relays["unreplaced"] == 0,
        ))
        if not options.skip_big:
            big, wall = simulate(options.big, options.big_lookups, 0.0, options.seed, Path(scratch) / "big")
            rows.append(Row(
                f"{options.big:,}-node overlay, {options.big_lookups} lookups", "runs; time and memory",
                f"{wall:.0f} s wall (build {big['build_seconds']:.0f} s, lookups {big['run_seconds']:.0f} s), "
                f"peak RSS {big['peak_rss_mib']:,.0f} MiB; success {big['success_rate']:.1%}, "
                f"hops median {big['hops_median']:g}",
                None,
            ))
    print_table("Overlay simulation (virtual time, real protocol code)", rows)
    missed = [row.figure for row in rows if row.met is False]
    print("verdict:", "all goals met" if not missed else "MISSED: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
