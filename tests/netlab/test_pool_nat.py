"""Pool vessels from donors behind NATs, end to end on the namespace testbed (root only, slow lane, one small lab).

Two public donors (p1: the bootstrap node and a relay, no pool; p2: one pool vessel), one donor behind a cone
NAT and one behind a symmetric NAT (one pool vessel each), all real `seattle node run` daemons told they need a
relay where they sit behind a NAT, and a researcher behind its own cone NAT running the real CLI: it acquires
from the NATed donors only (`--where reachability=nat`), runs a program there through their relays, renews and
releases the leases, and acquires again to see the vessels came back reset.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.nat_lab import BOOTSTRAP, researcher_home, start_donor
from seattle.natkind import NatKind
from seattle.netlab.lab import Host, Lab
from seattle.nodemgr.node import load_node_identity

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("namespaces_allowed")]

PROGRAM = b'log("pool-nat-marker\\n")\nwhile True:\n  sleep(0.1)\n'
#: Polls the overlay from the researcher's namespace until both NATed donors' offers are found.
WAIT_FOR_OFFERS = f"""
import trio
from seattle.experiment import pool

async def main() -> None:
    while sum(each.offer.reachability == "nat" for each in await pool.find_offers([("{BOOTSTRAP.split(':')[0]}",
              {BOOTSTRAP.split(':')[1]})], timeout=3.0)) < 2:
        await trio.sleep(0.3)

trio.run(main)
"""


@dataclass
class PoolLab:
    lab: Lab
    home: Path
    researcher: Host
    natted: dict[str, str]  # node key text → donor name

    def seattle(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`seattle ARGS` as the researcher, in its namespace (behind its cone NAT)."""
        argv = ["env", f"SEATTLE_HOME={self.home}", sys.executable, "-m", "seattle.cli", *args]
        return self.lab.run(self.researcher, argv, timeout=timeout, check=False)

    def wait_for_offers(self) -> None:
        """Until the overlay lists both NATed donors' offers with a free vessel: a node files its offer once it
        has one free (at its start, or after a release), and the overlay has it a moment later."""
        found = self.lab.run(self.researcher, ["env", f"SEATTLE_HOME={self.home}", sys.executable, "-c",
                                               WAIT_FOR_OFFERS], timeout=60, check=False)
        assert found.returncode == 0, found.stderr


@pytest.fixture(scope="module")
def testbed(namespaces_allowed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoolLab]:
    root = tmp_path_factory.mktemp("poolnat")
    home, alice = researcher_home(root)
    with Lab(prefix="spn-") as lab:
        start_donor(lab, root, alice.public_key, "p1", lab.public_host("p1"))
        start_donor(lab, root, alice.public_key, "p2", lab.public_host("p2"), pool=1)
        start_donor(lab, root, alice.public_key, "c1", lab.home("hc1", NatKind.CONE).host("c1"), pool=1)
        start_donor(lab, root, alice.public_key, "s1", lab.home("hs1", NatKind.SYMMETRIC).host("s1"), pool=1)
        researcher = lab.home("hr", NatKind.CONE).host("r1")
        natted = {load_node_identity(root / name).public_key.to_text(): name for name in ("c1", "s1")}
        testbed = PoolLab(lab, home, researcher, natted)
        assert testbed.seattle("as", "alice").returncode == 0
        testbed.wait_for_offers()
        yield testbed


def acquire_natted(testbed: PoolLab) -> list[dict[str, object]]:
    """`seattle acquire 2 --where reachability=nat`: the rows it kept, asserted to be one per NATed donor."""
    done = testbed.seattle("acquire", "2", "--where", "reachability=nat", "--bootstrap", BOOTSTRAP, "--timeout",
                           "10", "--for", "20m", "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    kept = [row for row in rows if row["target"] is not None]
    assert done.returncode == 0 and len(kept) == 2, done.stdout + done.stderr
    assert sorted(testbed.natted[str(row["node"])] for row in kept) == ["c1", "s1"], rows
    assert all(str(row["address"]).endswith(".relayed:0") for row in kept), rows
    return kept


def test_a_researcher_behind_a_nat_acquires_runs_and_releases_pool_vessels_of_natted_donors(
        testbed: PoolLab, tmp_path: Path) -> None:
    acquire_natted(testbed)
    program = tmp_path / "marker.r2py"
    program.write_bytes(PROGRAM)
    ran = testbed.seattle("run", "--on", "acquiregood", str(program))
    assert "2 of 2 vessels ok" in ran.stdout, ran.stdout + ran.stderr
    deadline = time.monotonic() + 30
    log = ""
    while time.monotonic() < deadline and log.count("pool-nat-marker") < 2:
        log = testbed.seattle("show", "log", "--on", "acquiregood").stdout
        time.sleep(0.5)
    assert log.count("pool-nat-marker") == 2, log
    renewed = testbed.seattle("renew", "acquiregood", "--for", "30m")
    assert "2 of 2 vessels ok" in renewed.stdout, renewed.stdout + renewed.stderr
    released = testbed.seattle("release", "acquiregood")
    assert "released 2 of 2 vessels" in released.stderr + released.stdout, released.stdout + released.stderr

    # Reset: the same two vessels can be leased again, stopped and wiped (Fresh, no log of the previous lease).
    testbed.wait_for_offers()
    acquire_natted(testbed)
    listed = testbed.seattle("list", "--on", "acquiregood")
    assert listed.stdout.count("Fresh") == 2, listed.stdout + listed.stderr
    assert "pool-nat-marker" not in testbed.seattle("show", "log", "--on", "acquiregood").stdout
    again = testbed.seattle("release", "acquiregood")
    assert "released 2 of 2 vessels" in again.stderr + again.stdout, again.stdout + again.stderr
