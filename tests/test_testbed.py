"""The local testbed: real `seattle node run` processes on loopback, through the library and the script."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import trio

from seattle.errors import NodeExists, TestbedStartFailed
from seattle.experiment.browse import browse
from seattle.keys import PublicKey, generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.nodedir import NodeDir
from seattle.resources import parse_resources
from seattle.testbed import LocalTestbed, NodeSpec, free_port_pool, owned_vessels

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "simulations" / "local_testbed.py"
WAIT = 30.0


def read_lines(process: subprocess.Popen[bytes], count: int, timeout: float = WAIT) -> list[str]:
    """The first `count` lines of the process's stdout, failing the test after `timeout` seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    data = b""
    while data.count(b"\n") < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            pytest.fail(f"only {data!r} within {timeout} s")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"the script ended after {data!r}; exit {process.wait()}")
        data += chunk
    return data.decode().splitlines()[:count]


def family(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def assert_all_gone(processes: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, [p.cmdline() for p in alive if p.is_running()]


async def node_info(address: str) -> dict[str, object]:
    host, port = address.rsplit(":", 1)
    async with await NodeClient.connect(host, int(port)) as client:
        info: dict[str, object] = await client.call("GetNodeInfo")
        return info


async def nodes_advertising(key: PublicKey, through: str, expected: int) -> set[str]:
    """The nodes browse finds for `key` through `through`, asked again until `expected` answer (nodes
    advertise shortly after they start) or 20 s have passed."""
    host, port = through.rsplit(":", 1)
    found: set[str] = set()
    with trio.move_on_after(20):
        while True:
            found = {vessel.address for vessel in (await browse(key, [(host, int(port))], timeout=5)).vessels}
            if len(found) >= expected:
                break
            await trio.sleep(0.2)
    return found


def start_script(directory: Path, nodes: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(SCRIPT), "--nodes", str(nodes), "--dir", str(directory)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_script_prints_every_node_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    script = start_script(tmp_path / "tb", 3)
    try:
        lines = read_lines(script, 4)
        nodes = [line.split() for line in lines[:3]]
        assert [words[0:2] for words in nodes] == [["node", "0"], ["node", "1"], ["node", "2"]]
        addresses = [words[2] for words in nodes]
        keys = {trio.run(node_info, address)["node_key"] for address in addresses}
        assert len(keys) == 3, "three different node managers answer"
        # node 0 started the overlay; the others were told to join through it
        assert NodeDir(tmp_path / "tb" / "node0").read_config().bootstrap == ()
        for index in (1, 2):
            assert NodeDir(tmp_path / "tb" / f"node{index}").read_config().bootstrap == (addresses[0],)
        owner = PublicKey.from_text(lines[3].removeprefix("vessels owned by "))
        # one overlay: asked through the last node, it names every node's vessel
        assert trio.run(nodes_advertising, owner, addresses[2], 3) == set(addresses)
        processes = family(script.pid)
        assert len(processes) >= 4, "the script and its three node managers"
        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=WAIT) == 0
    finally:
        if script.poll() is None:
            script.kill()
    err = script.stderr.read().decode() if script.stderr else ""
    assert "stopped: node 0 exit 0, node 1 exit 0, node 2 exit 0" in err, err
    assert_all_gone(processes)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(addresses[0].rsplit(":", 1)[1])), timeout=2).close()


def test_ctrl_c_stops_the_script_cleanly(tmp_path: Path) -> None:
    script = start_script(tmp_path / "tb", 1)
    try:
        read_lines(script, 1)
        processes = family(script.pid)
        script.send_signal(signal.SIGINT)
        assert script.wait(timeout=WAIT) == 0
    finally:
        if script.poll() is None:
            script.kill()
    assert_all_gone(processes)


def test_nodes_get_disjoint_port_pools_shared_by_their_vessels(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    with LocalTestbed(tmp_path, 2, owned_vessels(owner.public_key, vessels_per_node=2), ports_per_node=6) as tb:
        pools = [set(node.ports) for node in tb.nodes]
        assert len(pools[0]) == len(pools[1]) == 6 and not pools[0] & pools[1]

        async def vessel_ports(node_index: int) -> list[frozenset[int]]:
            node = tb.nodes[node_index]
            async with await NodeClient.connect(node.host, node.port, owner) as client:
                vessels = (await client.call("GetVessels"))["vessels"]
                assert [v["owner"] for v in vessels] == [owner.public_key.to_text()] * 2
                return [parse_resources(await client.call("GetVesselResources", vessel=v["name"])).messport
                        for v in vessels]

        for index, pool in enumerate(pools):
            first, second = trio.run(vessel_ports, index)
            assert len(first) == len(second) == 3 and not first & second and first | second == pool
        processes = [psutil.Process(node.process.pid) for node in tb.nodes]
    assert tb.stop() == {0: 0, 1: 0}
    assert_all_gone(processes)


def test_a_node_that_cannot_start_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    made: list[NodeSpec] = []

    def no_node(spec: NodeSpec) -> None:  # a directory, but no node key or state in it
        made.append(spec)
        spec.directory.mkdir()

    testbed = LocalTestbed(tmp_path, 2, no_node, startup_timeout=WAIT)
    with pytest.raises(TestbedStartFailed, match=r"could not start node 0 in .*node0: .*printed: .*node"):
        testbed.start()
    assert [spec.index for spec in made] == [0], "node 1 is not attempted after node 0 failed"
    assert all(code is not None for code in testbed.stop().values())


def test_a_directory_with_an_earlier_testbed_is_refused(tmp_path: Path) -> None:
    (tmp_path / "node0").mkdir()
    (tmp_path / "node0" / "node.json").write_text("{}")
    owner = generate_identity("owner")
    with pytest.raises(NodeExists):
        LocalTestbed(tmp_path, 1, owned_vessels(owner.public_key)).start()
    assert (tmp_path / "node0" / "node.json").read_text() == "{}"


def test_free_ports_skip_ports_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        ports = free_port_pool(2, port_range=range(port, port + 10))
    assert port not in ports and len(set(ports)) == 2
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        with pytest.raises(TestbedStartFailed, match="only 0 of the 1 ports"):
            free_port_pool(1, port_range=range(port, port + 1))
