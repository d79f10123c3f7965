"""Reachability, measured by real node managers on the namespace testbed (root only, slow lane).

One lab for the module: four public hosts, and a home behind each kind of router with one host in it. Each
host runs `seattle node run` (the public hosts' first node starts the overlay, every other node joins through
it); `seattle node status --json` then shows each node's reachability: the public ones `public`, the ones
behind a NAT (cone or symmetric) `nat`, the firewalled one `firewalled`, within a few seconds of the last
start, with the address peers see each at, and the node's log records the change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seattle.keys import generate_identity
from seattle.natkind import NatKind
from seattle.netlab.lab import Host, Lab
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.daemon import create_node

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("namespaces_allowed")]

PORT = 7300
#: How long every node has, from the last one's start, to report its state.
WITHIN = 20.0


@dataclass
class Node:
    host: Host
    directory: Path
    home: Path


@pytest.fixture(scope="module")
def nodes(namespaces_allowed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    root = tmp_path_factory.mktemp("reach")
    owner = generate_identity("owner").public_key
    with Lab(prefix="stlr-") as lab:
        hosts = [lab.public_host(f"p{number}") for number in range(1, 5)]
        for name, kind in (("hc", NatKind.CONE), ("hs", NatKind.SYMMETRIC), ("hf", NatKind.FIREWALL)):
            hosts.append(lab.home(name, kind).host(name[1] + "1"))
        first = f"{hosts[0].address}:{PORT}"
        started: dict[str, Node] = {}
        for host in hosts:
            home = root / host.name / "home"
            directory = root / host.name / "node"
            home.mkdir(parents=True)
            bootstrap = () if host is hosts[0] else (first,)
            create_node(directory, owner, NodeConfig(host.address, PORT, bootstrap=bootstrap))
            env = {**os.environ, "SEATTLE_HOME": str(home)}
            lab.spawn(host, [sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(directory)], env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started[host.name] = Node(host, directory, home)
            _wait_for_control_socket(directory)
        yield started


def _wait_for_control_socket(directory: Path) -> None:
    deadline = time.monotonic() + 30
    while not (directory / "control.sock").exists():
        assert time.monotonic() < deadline, f"the node in {directory} did not start: {_log(directory)[-2000:]}"
        time.sleep(0.1)


def _log(directory: Path) -> str:
    log = directory / "nodemanager.log"
    return log.read_text() if log.exists() else ""


def status(node: Node) -> dict[str, object]:
    """`seattle node status --json` for the node, run by the donor's command line."""
    done = subprocess.run([sys.executable, "-m", "seattle.cli", "node", "status", "--dir", str(node.directory),
                           "--json"], capture_output=True, text=True, timeout=30, check=True,
                          env={**os.environ, "SEATTLE_HOME": str(node.home)})
    reachability: dict[str, object] = json.loads(done.stdout)["reachability"]
    return reachability


def test_public_nat_and_firewalled_nodes_each_report_their_state(nodes: dict[str, Node]) -> None:
    expected = {"p1": "public", "p2": "public", "p3": "public", "p4": "public", "c1": "nat", "s1": "nat",
                "f1": "firewalled"}
    deadline = time.monotonic() + WITHIN
    while True:
        states = {name: status(node) for name, node in nodes.items()}
        if {name: state["state"] for name, state in states.items()} == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {name: state["state"] for name, state in states.items()} == expected, {
        name: _log(node.directory)[-1500:] for name, node in nodes.items()}
    for name, state in states.items():
        host = nodes[name].host
        # Trusted once three peers agree: the first public nodes may have been checked (and found public) while
        # they knew only two, and an idle overlay asks nothing more of anyone. The homes asked three.
        assert state["observed_ip"] == host.public_address or (host.home is None and state["observed_ip"] is None)
        assert state["checked_at"] is not None and state["next_check"] is not None
        reached = state["state"] == "public"
        assert (state["udp"], state["tcp"]) == (reached, reached), (name, state)
    assert states["c1"]["observed"] == [f"{nodes['c1'].host.public_address}:{PORT}"]  # MASQUERADE keeps the port
    assert states["s1"]["observed"] == []  # a new port per peer: no port agreed on
    assert "reachability unknown -> nat" in _log(nodes["c1"].directory)
