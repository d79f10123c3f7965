"""Donors behind NATs on the namespace testbed (issue 15): how many a researcher controls, how often cone NATs
end on a direct path, what a relay adds to a call, and how soon a NATed node's vessels can be found.

    python bench/bench_nat.py [--tries 10] [--calls 30]      (root: it builds network namespaces)

The testbed is bench/nat_lab.py's: four public donors, two behind cone NATs, two behind symmetric NATs, one
behind a firewall (real `seattle node run` daemons), and a researcher behind a cone NAT running
bench/nat_researcher.py. Rows:

* share of donors controllable: donors whose vessel browse found and whose calls succeeded, of nine;
* cone-NAT donors on a direct path after the first call: each try connects (through a relay), makes one call,
  lets the hole punch run (up to 10 s) and notes whether the next call went direct; `--tries` per cone donor;
* relayed call latency p50 against direct p50 + one relay round trip + 1 ms: GetVessels on each relayed donor
  before any punch (the relayed path) against the public donors (direct), and the researcher's TCP handshake
  time to the relay (one round trip);
* time from a NATed node's start to its vessels being found by browse: a tenth donor, behind a cone NAT, is
  started once the rest run; from its spawn to the researcher's browse listing its vessel;
* acquire from NATed donors: every donor has one pool vessel; `seattle acquire 5 --where
  reachability=nat|firewalled` (the real CLI, behind the researcher's NAT) must lease the five NATed donors'
  (the firewalled one's offer says "firewalled" once measured) through their relays, and no public donor's;
  the time is the command's own (offers chosen to leases verified) and the whole command's (Python's start
  and the overlay lookup of the offers included). The leases are released afterwards.

The testbed has no added delay (the kernel here has no netem): round trips are tens of microseconds plus the
daemons' own time, so the latency row compares processing, not distance. The exit status is 1 if a goal is
missed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nat_lab import (  # noqa: E402
    BOOTSTRAP,
    NATTED,
    researcher_command,
    researcher_home,
    start_donor,
    start_donors,
)
from bench.table import Row, print_table  # noqa: E402
from seattle.natkind import NatKind  # noqa: E402
from seattle.netlab.lab import Host, Lab  # noqa: E402
from seattle.nodemgr.node import load_node_identity  # noqa: E402
from seattle.nodemgr.routes import RELAYED_PORT, relayed_name  # noqa: E402

GOAL_SHARE = 1.0
GOAL_DIRECT = 0.95
GOAL_FOUND_SECONDS = 10.0
POOL_ACQUIRE = len(NATTED)


def researcher(lab: Lab, host: Host, home: Path, *args: str) -> dict[str, Any]:
    result = lab.run(host, researcher_command(home, "--identity", "alice", *args), timeout=900)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def acquire_natted(lab: Lab, host: Host, home: Path, natted: set[str]) -> tuple[int, float, float]:
    """(vessels leased from NATed donors, the acquire's own seconds, the command's wall seconds); released."""
    def seattle(command: str, *args: str) -> subprocess.CompletedProcess[str]:
        return lab.run(host, ["env", f"SEATTLE_HOME={home}", sys.executable, "-m", "seattle.cli", command, "--as",
                              "alice", *args], timeout=120, check=False)

    started = time.perf_counter()
    done = seattle("acquire", str(POOL_ACQUIRE), "--where", "reachability=nat|firewalled", "--bootstrap", BOOTSTRAP,
                   "--json")
    wall = time.perf_counter() - started
    kept = [row for row in map(json.loads, done.stdout.splitlines()) if row["target"] is not None]
    summary = re.search(r"acquired \d+ of \d+ vessels in ([0-9.]+) s", done.stderr)
    seattle("release", "acquiregood")
    return sum(row["node"] in natted for row in kept), float(summary.group(1)) if summary else float("inf"), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=10, help="punch tries per relayed donor (default 10)")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per donor and path (default 30)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-nat-"))
    home, alice = researcher_home(root)
    with Lab(prefix="sbn-") as lab:
        donors = start_donors(lab, root, alice.public_key, pool=1)
        r1 = lab.home("hr", NatKind.CONE).host("r1")
        names = {f"{relayed_name(load_node_identity(root / name).public_key)}:{RELAYED_PORT}": name
                 for name, _ in NATTED}
        kinds = dict(NATTED)
        report = researcher(lab, r1, home, "--expect", str(len(donors)), "--calls", str(args.calls),
                            "--tries", str(args.tries))
        rows = {row["node"]: row for row in report["nodes"]}
        controllable = sum(1 for row in rows.values() if "error" not in row and row.get("latencies"))
        cone_tries = [attempt for node, row in rows.items() if kinds.get(names.get(node, "")) == NatKind.CONE
                      for attempt in row["tries"]]
        direct = sum(1 for attempt in cone_tries if attempt["path"].startswith("direct"))
        relayed_ms = [ms for row in rows.values() if row["relayed"] for ms in row["latencies"]]
        direct_ms = [ms for row in rows.values() if not row["relayed"] for ms in row["latencies"]]
        rtt_ms = [row["relay_rtt"] for row in rows.values() if row["relayed"] and row.get("relay_rtt") is not None]
        symmetric_direct = sum(1 for node, row in rows.items() if kinds.get(names.get(node, "")) == NatKind.SYMMETRIC
                               for attempt in row["tries"] if attempt["path"].startswith("direct"))
        punched_ms = [ms for node, row in rows.items() if kinds.get(names.get(node, "")) == NatKind.CONE
                      for attempt in row["tries"] if attempt["path"].startswith("direct")
                      for ms in attempt["latencies"]]

        natted = {load_node_identity(root / name).public_key.to_text() for name, _ in NATTED}
        pool_leased, pool_seconds, pool_wall = acquire_natted(lab, r1, home, natted)

        late = lab.home("hc3", NatKind.CONE).host("c3")
        spawned = time.time()
        start_donor(lab, root, alice.public_key, "c3", late)
        found = researcher(lab, r1, home, "--expect", str(len(donors) + 1), "--calls", "1", "--tries", "0",
                           "--deadline", "60")
    found_seconds = found["found_at"] - spawned if found["found"] > len(donors) else float("inf")

    share = controllable / len(donors)
    direct_share = direct / len(cone_tries) if cone_tries else 0.0
    relayed_p50, direct_p50 = statistics.median(relayed_ms), statistics.median(direct_ms)
    rtt = statistics.median(rtt_ms)
    allowed = direct_p50 + rtt + 1.0
    table = [
        Row("share of donors controllable (4 public, 2 cone, 2 symmetric, 1 firewalled; researcher behind a cone "
            "NAT)", f"{GOAL_SHARE:.0%}", f"{controllable} of {len(donors)} ({share:.0%})", share >= GOAL_SHARE),
        Row("cone-NAT donors on a direct path after the first call", f">= {GOAL_DIRECT:.0%} of tries",
            f"{direct} of {len(cone_tries)} ({direct_share:.0%})", direct_share >= GOAL_DIRECT),
        Row("symmetric-NAT donors on a direct path (expected none: the relay stays)", "-",
            f"{symmetric_direct} of {2 * args.tries}", None),
        Row("relayed call latency p50 (GetVessels)", f"<= direct p50 + relay RTT + 1 ms = {allowed:.2f} ms",
            f"{relayed_p50:.2f} ms (direct p50 {direct_p50:.2f} ms, relay RTT {rtt:.2f} ms)", relayed_p50 <= allowed),
        Row("punched direct call latency p50 (cone NAT donors)", "-",
            f"{statistics.median(punched_ms):.2f} ms" if punched_ms else "no punched call", None),
        Row("NATed node's start to its vessels found by browse", f"< {GOAL_FOUND_SECONDS:g} s",
            f"{found_seconds:.1f} s", found_seconds < GOAL_FOUND_SECONDS),
        Row(f"acquire from NATed donors (`acquire {POOL_ACQUIRE} --where reachability=nat|firewalled`, through "
            "relays)",
            f"{POOL_ACQUIRE} of {POOL_ACQUIRE} leased; time: report",
            f"{pool_leased} of {POOL_ACQUIRE} in {pool_seconds:.1f} s (whole command {pool_wall:.1f} s)",
            pool_leased == POOL_ACQUIRE),
    ]
    print_table("Donors behind NATs on the namespace testbed (issue 15)", table)
    return 0 if all(row.met is not False for row in table) else 1


if __name__ == "__main__":
    sys.exit(main())
