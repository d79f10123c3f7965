"""Donors behind NATs, end to end on the namespace testbed (root only, slow lane, one lab for the module).

Four public donors, two behind cone NATs, two behind symmetric NATs, one behind a firewall, each a real
`seattle node run` in its own namespace, and a researcher behind a cone NAT running the real CLI. The NATed
donors are told they need a relay (node.json's needs_relay, until reachability is measured): they reserve on
public donors, advertise the relays with their vouchers, and a researcher controls every vessel through them.
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

from bench.nat_lab import BOOTSTRAP, NATTED, researcher_command, researcher_home, start_donors
from seattle.natkind import NatKind
from seattle.netlab.lab import Host, Lab

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("namespaces_allowed")]

PROGRAM = b'log("relayed-marker\\n")\nwhile True:\n  sleep(0.1)\n'


@dataclass
class NatTestbed:
    lab: Lab
    home: Path
    researcher: Host
    bootstrap: str
    donors: dict[str, Host]

    def seattle(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """`seattle ARGS` as the researcher, in its namespace (behind its cone NAT)."""
        argv = ["env", f"SEATTLE_HOME={self.home}", sys.executable, "-m", "seattle.cli", *args]
        return self.lab.run(self.researcher, argv, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def testbed(namespaces_allowed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatTestbed]:
    root = tmp_path_factory.mktemp("nat")
    home, alice = researcher_home(root)
    with Lab(prefix="str-") as lab:
        donors = start_donors(lab, root, alice.public_key)
        researcher = lab.home("hr", NatKind.CONE).host("r1")
        testbed = NatTestbed(lab, home, researcher, BOOTSTRAP, donors)
        assert testbed.seattle("as", "alice").returncode == 0
        yield testbed


def browse_all(testbed: NatTestbed, count: int, deadline: float = 60.0) -> None:
    started = time.monotonic()
    out = ""
    while time.monotonic() - started < deadline:
        out = testbed.seattle("browse", "--bootstrap", testbed.bootstrap, "--timeout", "3").stdout
        if f"found {count} vessels" in out:
            return
        time.sleep(0.5)
    pytest.fail(f"browse did not find {count} vessels within {deadline:g} s:\n{out}")


def test_every_donor_is_controllable_through_relays_where_it_cannot_be_dialled(testbed: NatTestbed,
                                                                                tmp_path: Path) -> None:
    count = len(testbed.donors)
    browse_all(testbed, count)
    rows = [json.loads(line) for line in testbed.seattle("browse", "--bootstrap", testbed.bootstrap, "--timeout",
                                                         "3", "--json").stdout.splitlines()]
    assert sum(row["node"].endswith(".relayed:0") for row in rows) == len(NATTED), rows
    program = tmp_path / "marker.r2py"
    program.write_bytes(PROGRAM)
    ran = testbed.seattle("run", str(program))
    assert f"{count} of {count} vessels ok" in ran.stdout, ran.stdout + ran.stderr
    deadline = time.monotonic() + 30
    log = ""
    while time.monotonic() < deadline and log.count("relayed-marker") < count:
        log = testbed.seattle("show", "log").stdout
        time.sleep(0.5)
    assert log.count("relayed-marker") == count, log
    downloaded = testbed.seattle("download", "marker.r2py", str(tmp_path / "back"))
    assert f"{count} of {count} vessels ok" in downloaded.stdout, downloaded.stdout
    copies = list(tmp_path.glob("back.*"))
    assert len(copies) == count and all(copy.read_bytes() == PROGRAM for copy in copies)
    stopped = testbed.seattle("stop")
    assert f"{count} of {count} vessels ok" in stopped.stdout, stopped.stdout


def test_cone_nat_donors_end_on_a_direct_path_and_symmetric_ones_stay_relayed(testbed: NatTestbed) -> None:
    argv = researcher_command(testbed.home, "--identity", "alice", "--expect", str(len(testbed.donors)),
                              "--calls", "3")
    report = json.loads(testbed.lab.run(testbed.researcher, argv, timeout=120).stdout)
    rows = {row["node"]: row for row in report["nodes"]}
    assert len(rows) == len(testbed.donors), report
    paths = {}
    for row in rows.values():
        assert "error" not in row, row
        if row["relayed"]:
            (attempt,) = row["tries"]
            paths[row["node"]] = attempt
    outcomes = [(attempt["punch"], attempt["path"].split()[0]) for attempt in paths.values()]
    assert outcomes.count(("success", "direct")) >= 2, report  # both cone NAT donors (and the firewall's)
    direct_hosts = {attempt["path"].split()[1].rsplit(":", 1)[0] for attempt in paths.values()
                    if attempt["path"].startswith("direct")}
    cone_routers = {testbed.donors[name].public_address for name, kind in NATTED if kind == NatKind.CONE}
    symmetric_routers = {testbed.donors[name].public_address for name, kind in NATTED if kind == NatKind.SYMMETRIC}
    assert cone_routers <= direct_hosts, report
    assert not symmetric_routers & direct_hosts, report
