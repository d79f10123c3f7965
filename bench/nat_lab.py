"""The NAT testbed of issue 15 on `seattle.netlab`, shared by bench/bench_nat.py and tests/netlab/test_relays.py:
four public donors, two behind cone NATs, two behind symmetric NATs, one behind a firewall, each a real
`seattle node run` in its own namespace on port 1224, all owned by one identity; the NATed ones are told they
need a relay (node.json's needs_relay) and reserve on the public ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seattle.keys import Identity, PublicKey, generate_identity, save_identity
from seattle.natkind import NatKind
from seattle.netlab.lab import Host, Lab
from seattle.nodemgr.config import NodeConfig
from seattle.nodemgr.node import init_node
from seattle.nodemgr.nodedir import NodeDir
from seattle.resources import DEFAULT_ALLOTMENT

PORT = 1224
PUBLIC = ("p1", "p2", "p3", "p4")
NATTED = (("c1", NatKind.CONE), ("c2", NatKind.CONE), ("s1", NatKind.SYMMETRIC), ("s2", NatKind.SYMMETRIC),
          ("f1", NatKind.FIREWALL))
#: p1, the first public host: every donor joins the overlay through it.
BOOTSTRAP = f"198.18.0.10:{PORT}"
RESEARCHER_SCRIPT = str(Path(__file__).with_name("nat_researcher.py"))


def researcher_home(root: Path) -> tuple[Path, Identity]:
    """The researcher's SEATTLE_HOME under `root`, holding a new identity "alice" who owns every donor's vessel."""
    home = root / "home"
    (home / "keys").mkdir(parents=True)
    alice = generate_identity("alice")
    save_identity(alice, home / "keys")
    return home, alice


def start_donor(lab: Lab, root: Path, owner: PublicKey, name: str, host: Host,
                pool: int = 0) -> subprocess.Popen[bytes]:
    """Create donor `name` in `root/name` (one small vessel owned by `owner`, and `pool` pool vessels, as a
    profile built with `--pool` gives) and start `seattle node run` in `host`; returns once it listens."""
    directory = root / name
    layout = [(DEFAULT_ALLOTMENT.replace(cpu=0.1, memory=64 * 1024 * 1024, diskused=8 * 1024 * 1024,
                                         messport=frozenset({63100}), connport=frozenset({63100})), owner, ())]
    pool_vessels = [DEFAULT_ALLOTMENT.replace(cpu=0.05, memory=32 * 1024 * 1024, diskused=4 * 1024 * 1024,
                                              messport=frozenset({63101 + i}), connport=frozenset({63101 + i}))
                    for i in range(pool)]
    init_node(directory, owner, layout, pool=pool_vessels)
    NodeDir(directory).write_config(NodeConfig(
        "0.0.0.0", PORT, (host.address,), () if name == "p1" else (BOOTSTRAP,), needs_relay=host.home is not None))
    process = lab.spawn(host, [sys.executable, "-m", "seattle.cli", "node", "run", "--dir", str(directory)],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    if not process.stdout.readline().startswith(b"listening on"):
        raise RuntimeError(f"donor {name} did not start; see {NodeDir(directory).log_path}")
    return process


def start_donors(lab: Lab, root: Path, owner: PublicKey, pool: int = 0) -> dict[str, Host]:
    """Every donor of the module docstring, started, each with `pool` pool vessels; by name."""
    donors: dict[str, Host] = {}
    for name in PUBLIC:
        donors[name] = lab.public_host(name)
    for name, kind in NATTED:
        donors[name] = lab.home("h" + name, kind).host(name)
    for name, host in donors.items():
        start_donor(lab, root, owner, name, host, pool)
    return donors


def researcher_command(home: Path, *args: str) -> list[str]:
    """bench/nat_researcher.py with `home` as SEATTLE_HOME."""
    return ["env", f"SEATTLE_HOME={home}", sys.executable, RESEARCHER_SCRIPT, "--bootstrap", BOOTSTRAP, *args]
