"""The namespace testbed: real namespaces, real iptables NATs, real UDP and TCP between them (root only).

One lab is built for the module: three public hosts, and one home of each kind with one host in it; every
host runs `probe.py serve`, which answers each datagram and connection with the address it came from. Each
test asks from fresh local ports, so no earlier test's conntrack entries decide what it sees.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from seattle.natkind import NatKind
from seattle.netlab import system
from seattle.netlab.errors import BadLabName
from seattle.netlab.lab import FIREWALLED_HOMES, NAT_HOMES, Host, Lab

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("namespaces_allowed")]

PROBE = str(Path(__file__).with_name("probe.py"))
PORT = 7000


@pytest.fixture(scope="module")
def lab(namespaces_allowed: None) -> Iterator[Lab]:
    with Lab(prefix="stl-") as built:
        for name in ("p1", "p2", "p3"):
            built.public_host(name)
        for name, kind in (("hc", NatKind.CONE), ("hs", NatKind.SYMMETRIC), ("hf", NatKind.FIREWALL)):
            built.home(name, kind).host(name[1] + "1")
        for host in built.hosts.values():
            server = built.spawn(host, [sys.executable, PROBE, "serve", str(PORT)], stdout=subprocess.PIPE)
            assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        yield built


def ask(lab: Lab, host: Host, protocol: str, local_port: int, *targets: str, wait: float = 2.0) -> dict[str, str]:
    """What each target's server saw as our address ("IP:PORT"), or None/the error's name when no answer came."""
    argv = [sys.executable, PROBE, protocol, str(local_port), *targets, "--wait", str(wait)]
    answers: dict[str, str] = json.loads(lab.run(host, argv).stdout)
    return answers


def at(host: Host | str, port: int = PORT) -> str:
    return f"{host.address if isinstance(host, Host) else host}:{port}"


def test_public_hosts_reach_each_other_over_udp_and_tcp(lab: Lab) -> None:
    p1, p2 = lab.hosts["p1"], lab.hosts["p2"]
    assert ask(lab, p1, "udp", 41000, at(p2)) == {at(p2): f"{p1.address}:41000"}
    assert ask(lab, p2, "tcp", 41001, at(p1)) == {at(p1): f"{p2.address}:41001"}


def test_home_hosts_reach_public_hosts_from_their_public_address(lab: Lab) -> None:
    p1 = lab.hosts["p1"]
    for name in ("c1", "s1", "f1"):
        host = lab.hosts[name]
        assert host.home is not None
        for protocol in ("udp", "tcp"):
            seen = ask(lab, host, protocol, 41100, at(p1))[at(p1)]
            assert seen is not None and seen.split(":")[0] == host.public_address, (name, protocol, seen)
        inside = ipaddress.ip_address(host.address)
        if host.home.kind is NatKind.FIREWALL:  # a public address of its own, seen as itself
            assert inside in FIREWALLED_HOMES and host.public_address == host.address
        else:  # a private one, seen as the router's
            assert inside in NAT_HOMES and host.public_address == host.home.address != host.address


def test_cone_nat_keeps_one_external_port_for_every_destination(lab: Lab) -> None:
    p1, p2, c1 = lab.hosts["p1"], lab.hosts["p2"], lab.hosts["c1"]
    seen = ask(lab, c1, "udp", 41200, at(p1), at(p2))
    assert seen[at(p1)] == seen[at(p2)] == f"{c1.public_address}:41200"  # MASQUERADE keeps the port it can


def test_symmetric_nat_gives_each_destination_its_own_port(lab: Lab) -> None:
    p1, p2, s1 = lab.hosts["p1"], lab.hosts["p2"], lab.hosts["s1"]
    for protocol in ("udp", "tcp"):
        seen = ask(lab, s1, protocol, 41300, at(p1), at(p2))
        assert seen[at(p1)] is not None and seen[at(p2)] is not None
        assert seen[at(p1)].split(":")[0] == seen[at(p2)].split(":")[0] == s1.public_address
        assert seen[at(p1)] != seen[at(p2)], protocol


def test_nobody_opens_a_new_flow_into_a_home(lab: Lab) -> None:
    """From a public host that no home host ever talked to: the routers' public addresses (where a NAT would
    have to forward) and the firewalled host's own address give no answer over UDP nor TCP, and the NATed
    hosts' private addresses are not even routed."""
    p3 = lab.hosts["p3"]
    closed = [at(lab.homes["hc"].address), at(lab.homes["hs"].address), at(lab.hosts["f1"])]
    for protocol in ("udp", "tcp"):
        seen = ask(lab, p3, protocol, 41400, *closed, wait=0.5)
        # A router answers for itself (nothing listens there: a refused TCP connection); nothing gets through.
        assert all(answer in (None, "ConnectionRefusedError") for answer in seen.values()), (protocol, seen)
        assert seen[at(lab.hosts["f1"])] is None  # the firewall drops it: not even a refusal comes back
        private = ask(lab, p3, protocol, 41401, at(lab.hosts["c1"]), wait=0.5)[at(lab.hosts["c1"])]
        assert private in (None, "OSError"), private  # no route to 192.168.x.y


def test_an_outbound_flow_opens_the_way_back_only_for_its_peer(lab: Lab) -> None:
    """After c1 talked to p1 from port 41500, p1's answers come in (the test above saw them); p3, which c1
    never talked to, cannot use the same router port."""
    c1, p1, p3 = lab.hosts["c1"], lab.hosts["p1"], lab.hosts["p3"]
    assert ask(lab, c1, "udp", 41500, at(p1))[at(p1)] == f"{c1.public_address}:41500"
    assert ask(lab, p3, "udp", 41501, f"{c1.public_address}:41500", wait=0.5) == {
        f"{c1.public_address}:41500": None
    }


def test_no_namespace_routes_beyond_the_lab(lab: Lab) -> None:
    """Only home hosts have a default route (to their router); nothing reaches an address outside."""
    for host in lab.hosts.values():
        routes = lab.run(host, ["ip", "route"]).stdout
        gateway = [line for line in routes.splitlines() if line.startswith("default")]
        assert gateway == ([] if host.home is None else [gateway[0]])
        if host.home is not None:
            assert f"via {host.home.network.network_address + 1} " in gateway[0]
    for home in lab.homes.values():
        assert "default" not in system.ip("route", namespace=home.namespace)
    outside = ask(lab, lab.hosts["c1"], "udp", 41600, "9.9.9.9:53", wait=0.5)["9.9.9.9:53"]
    assert outside in (None, "OSError")  # the router has no route for it: dropped there
    assert system.root_links("stl-") == []


def test_names_are_checked(lab: Lab) -> None:
    with pytest.raises(BadLabName, match="already used"):
        lab.public_host("p1")
    with pytest.raises(BadLabName, match="up to six"):
        lab.public_host("much-too-long")
    with pytest.raises(BadLabName, match="prefix"):
        Lab(prefix="stl")


def test_close_removes_every_namespace_link_and_process(namespaces_allowed: None) -> None:
    lab = Lab(prefix="stlc-")
    host = lab.public_host("p1")
    lab.home("h1", NatKind.SYMMETRIC).host("d1")
    sleeper = lab.spawn(host, ["sleep", "60"])
    stray = subprocess.Popen(lab.command(host, ["sleep", "60"]))  # not started by spawn: close finds it anyway
    assert len(lab.namespaces()) == 4
    lab.close()
    lab.close()  # twice is harmless
    assert sleeper.poll() is not None and stray.wait(5) is not None
    assert system.namespaces("stlc-") == [] and system.root_links("stlc-") == []


def test_a_killed_runs_leftovers_are_removed_on_the_next_start(namespaces_allowed: None) -> None:
    script = textwrap.dedent("""
        import sys, time
        from seattle.natkind import NatKind
        from seattle.netlab.lab import Lab
        lab = Lab(prefix="stlk-")
        host = lab.public_host("old")
        lab.home("h1", NatKind.CONE).host("d1")
        sleeper = lab.spawn(host, ["sleep", "60"])
        print(sleeper.pid, flush=True)
        time.sleep(60)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).parents[2])
    assert run.stdout is not None
    sleeper = int(run.stdout.readline())
    run.kill()  # SIGKILL: no atexit, no signal handler, nothing cleaned
    run.wait()
    assert "stlk-old" in system.namespaces("stlk-") and sleeper in system.pids_in("stlk-old")
    with Lab(prefix="stlk-") as lab:
        assert lab.namespaces() == ["stlk-switch"]  # the old host, home and router are gone
        assert not Path(f"/proc/{sleeper}").exists() or "zombie" in Path(f"/proc/{sleeper}/status").read_text()
    assert system.namespaces("stlk-") == [] and system.root_links("stlk-") == []


def test_sigterm_removes_the_lab(namespaces_allowed: None) -> None:
    script = textwrap.dedent("""
        import time
        from seattle.netlab.lab import Lab
        lab = Lab(prefix="stls-")
        lab.spawn(lab.public_host("p1"), ["sleep", "60"])
        print("ready", flush=True)
        time.sleep(60)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).parents[2])
    assert run.stdout is not None and run.stdout.readline() == "ready\n"
    assert system.namespaces("stls-") == ["stls-p1", "stls-switch"]
    run.terminate()
    assert run.wait(10) == -15  # the lab was removed, then SIGTERM did what it does by default
    assert system.namespaces("stls-") == []
