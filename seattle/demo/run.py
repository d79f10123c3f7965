"""`seattle demo` as a library function: a whole Seattle experiment on this machine, from nothing, in seconds.

    result = run_demo(nodes=4, out=Path("seattle-demo.png"), progress=print)
    result.matrix.rtt_ms[0][1]      # median UDP round-trip time from vessel 0 to vessel 1, in ms

Steps (each reported through `progress`), all in a fresh temporary directory that is removed at the end
(unless `keep`), whatever happens, Ctrl-C included:

1. a researcher identity, saved in the directory's own SEATTLE_HOME (the user's keys are never touched);
2. a planner profile, signed by the researcher, giving every node `vessels_per_node` vessels it owns;
3. a local testbed: `nodes` node managers on 127.0.0.1 laid out by that profile, one overlay;
4. browse: the overlay, asked through node 0 for the researcher's key, names the nodes that advertise its
   vessels, and each node describes them (GetVessels); each vessel's first UDP port comes from its resources;
5. `pingall.r2py` uploaded to every vessel and started there with the list of all vessel addresses, through
   the signed node manager API, as a researcher would with `seattle call`;
6. the vessels' logs read until each has reported, then the vessels stopped;
7. the node managers stopped, and the latency matrix drawn as a PNG heat map.

With `pool=True` (`seattle demo --pool`) the vessels come from the pool instead (docs/pool.md): the profile,
signed by a separate planner key, gives half of each node's donation to the pool as `vessels_per_node` pool
vessels (owned by the node's own key), and step 4 becomes an acquire: the researcher finds the nodes' offers
in the overlay through node 0 and leases every pool vessel (`seattle.experiment.pool`, as `seattle acquire`).
After step 6 the leases are released and the nodes reset the vessels.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import trio

from seattle.demo.heatmap import write_heatmap
from seattle.demo.matrix import LatencyMatrix, build_matrix, finished, parse_rtts
from seattle.donor.donation import measure_machine
from seattle.errors import DemoFailed, OutputNotWritten, SeattleError
from seattle.experiment import pool as pool_library
from seattle.experiment.browse import FoundVessel, browse
from seattle.experiment.session import Session
from seattle.keys import Identity, PublicKey, generate_identity, save_identity
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError
from seattle.planner.profile import PoolShare, VesselPlan, write_profile
from seattle.resources import ResourceParseError, parse_resources
from seattle.testbed import LocalTestbed, TestbedNode, from_profile

DEFAULT_NODES = 4
DEFAULT_VESSELS_PER_NODE = 2
#: Replies each vessel collects from each other vessel; the matrix shows their median.
DEFAULT_ROUNDS = 10
#: Share of this machine each demo node donates (of which the vessels take their profile's percents).
DONATION_PERCENT = 10
#: With --pool: the pool's share of each node's donation (the rest is one vessel of the planner's).
POOL_PERCENT = 50
#: With --pool: the vessels one key may lease, in all (its quota) and from one node (the node's cap).
POOL_MAX_VESSELS = 10
POOL_MAX_PER_NODE = 2
#: With --pool: how long the demo's leases last (it releases them when done).
POOL_LEASE = 600.0
PROGRAM = "pingall.r2py"
RESEARCHER = "researcher"
#: Bounded waits for the steps that depend on other processes.
FIND_TIMEOUT = 20.0
EXPERIMENT_TIMEOUT = 40.0
CALL_TIMEOUT = 15.0
POLL_INTERVAL = 0.25

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoVessel:
    """One vessel of the experiment: where its node manager is, its name there, and its ping address."""

    label: str
    node: TestbedNode
    name: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class DemoResult:
    researcher: PublicKey
    nodes: tuple[str, ...]
    vessels: tuple[DemoVessel, ...]
    matrix: LatencyMatrix
    heatmap: Path
    seconds: float
    #: The temporary directory when it was kept (`keep=True`), else None: it is gone.
    kept: Path | None


def run_demo(*, nodes: int = DEFAULT_NODES, vessels_per_node: int = DEFAULT_VESSELS_PER_NODE,
             out: Path = Path("seattle-demo.png"), keep: bool = False, rounds: int = DEFAULT_ROUNDS,
             pool: bool = False, progress: Progress = lambda message: None) -> DemoResult:
    """Run the whole demo (module docstring). DemoFailed names the step that failed; the temporary
    directory and every process started are gone when this returns or raises (unless `keep`)."""
    if nodes < 1 or vessels_per_node < 1 or nodes * vessels_per_node < 2:
        raise ValueError("the demo needs at least two vessels")
    if pool and (vessels_per_node > POOL_MAX_PER_NODE or nodes * vessels_per_node > POOL_MAX_VESSELS):
        raise ValueError(f"from the pool one key leases at most {POOL_MAX_VESSELS} vessels, {POOL_MAX_PER_NODE} "
                         "per node")
    out = Path(out).absolute()
    if not out.parent.is_dir():
        raise OutputNotWritten(out, f"the directory {out.parent} does not exist")
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="seattle-demo-"))
    try:
        home = directory / "home"
        researcher = _make_researcher(home)
        progress(f"Created the researcher identity {researcher.public_key.fingerprint()} in {home} "
                 "(a demo identity; your own keys are not used)")
        if pool:
            planner = generate_identity("planner")
            profile = write_profile(directory / "profile", [VesselPlan(100 - POOL_PERCENT, planner.public_key)],
                                    [], planner, PoolShare(POOL_PERCENT, POOL_PERCENT // vessels_per_node))
            progress(f"Wrote a planner profile: each node donates {DONATION_PERCENT}% of this machine, half of "
                     f"it to the pool as {vessels_per_node} pool vessel(s) owned by the node itself")
        else:
            profile = write_profile(directory / "profile", _plans(researcher.public_key, vessels_per_node), [],
                                    researcher)
            progress(f"Wrote a planner profile: each node donates {DONATION_PERCENT}% of this machine as "
                     f"{vessels_per_node} vessel(s) owned by the researcher")
        factory = from_profile(profile, percent=DONATION_PERCENT, machine=measure_machine(directory))
        testbed = LocalTestbed(directory, nodes, factory, env={**os.environ, "SEATTLE_HOME": str(home)})
        with testbed:
            progress(f"Started {nodes} node managers in {directory}: node 0 at {testbed.nodes[0].address}, "
                     f"the others joined its overlay ({', '.join(n.address for n in testbed.nodes[1:]) or '-'})")
            vessels, matrix = _run_experiment(testbed, researcher, nodes * vessels_per_node, rounds, pool,
                                              progress)
        progress(f"Stopped the vessels and the {nodes} node managers")
        heatmap = write_heatmap(matrix, out, title=f"All-pairs UDP round-trip time, {len(vessels)} vessels")
        progress(f"Wrote the heat map to {heatmap}")
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    if not keep:
        progress(f"Removed {directory}")
    return DemoResult(researcher.public_key, tuple(node.address for node in testbed.nodes), vessels, matrix,
                      heatmap, time.monotonic() - started, directory if keep else None)


def _run_experiment(testbed: LocalTestbed, researcher: Identity, expected: int, rounds: int, pool: bool,
                    progress: Progress) -> tuple[tuple[DemoVessel, ...], LatencyMatrix]:
    """Steps 4-6 in trio; a failure comes out as one plain exception, with what any dead node said."""
    try:
        try:
            if pool:
                return trio.run(_pool_experiment, testbed, researcher, expected, rounds, progress)
            return trio.run(_browsed_experiment, testbed, researcher, expected, rounds, progress)
        except BaseExceptionGroup as group:  # trio's nurseries group what their tasks raise
            raise _plain(group) from None
    except DemoFailed as exc:
        exited = testbed.exited()  # a node that died explains more than the call that failed
        if not exited:
            raise
        raise DemoFailed(exc.step, f"{exc.reason}; {'; '.join(exited)}") from None


def _plain(group: BaseExceptionGroup) -> BaseException:
    """What a person should see of `group`: a Ctrl-C if it holds one, else its SeattleError if that is all
    it holds; otherwise the group itself (a bug, whose whole traceback matters)."""
    for kind, alone in ((KeyboardInterrupt, False), (SeattleError, True)):
        matched, rest = group.split(kind)
        if matched is not None and (rest is None or not alone):
            first: BaseException = matched
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            return first
    return group


def _make_researcher(home: Path) -> Identity:
    keys = home / "keys"
    keys.mkdir(mode=0o700, parents=True)
    identity = generate_identity(RESEARCHER)
    save_identity(identity, keys)
    return identity


def _plans(owner: PublicKey, count: int) -> list[VesselPlan]:
    """`count` vessels sharing 100 % as evenly as whole percents allow (the last takes the remainder)."""
    share = 100 // count
    return [VesselPlan(share if number < count - 1 else 100 - share * (count - 1), owner)
            for number in range(count)]


async def _browsed_experiment(testbed: LocalTestbed, researcher: Identity, expected: int, rounds: int,
                              progress: Progress) -> tuple[tuple[DemoVessel, ...], LatencyMatrix]:
    found = await _browse(testbed, researcher.public_key, expected)
    progress(f"Browsed the overlay through node 0: the researcher's key finds its {len(found)} vessels on "
             f"{len({vessel.address for vessel in found})} nodes")
    return await _experiment(testbed, researcher, found, rounds, progress)


async def _pool_experiment(testbed: LocalTestbed, researcher: Identity, expected: int, rounds: int,
                           progress: Progress) -> tuple[tuple[DemoVessel, ...], LatencyMatrix]:
    """Step 4 as an acquire from the pool, the experiment, then every lease released."""
    step = "acquiring vessels from the pool"
    session = Session(timeout=CALL_TIMEOUT)
    offers = await _offers(testbed, expected)
    try:
        result = await pool_library.acquire(session, researcher, offers, expected, duration=POOL_LEASE)
    except SeattleError as exc:
        raise DemoFailed(step, str(exc)) from None
    numbers = session.targets.resolve("acquiregood")
    if len(numbers) < expected:
        refusals = "; ".join(sorted({f"{a.address}: {a.kind} {a.message}".strip()
                                     for a in result.attempts if not a.kept and not a.released}))
        raise DemoFailed(step, f"leased {len(numbers)} of {expected} vessels ({refusals or 'no refusal'})")
    found = [FoundVessel(PublicKey.from_text(str(known.node_key)), known.ref.host, known.ref.port,
                         known.ref.vessel, PublicKey.from_text(str(known.node_key)), (researcher.public_key,),
                         "Fresh", False, "") for known in (session.targets.vessels[n] for n in numbers)]
    progress(f"Acquired {len(found)} vessels from the pool in {result.seconds:.1f} s: offers found in the "
             f"overlay through node 0, leases signed by {len({v.address for v in found})} nodes")
    try:
        return await _experiment(testbed, researcher, found, rounds, progress)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(CALL_TIMEOUT):
            released = await pool_library.release(session, numbers, researcher)
            progress(f"Released {sum(o.ok for o in released)} of {len(numbers)} leases: their nodes reset the "
                     "vessels for the next researcher")


async def _offers(testbed: LocalTestbed, expected: int) -> list[pool_library.Reachable]:
    """The pool's offers, through node 0, once they cover `expected` vessels (nodes file their offers shortly
    after they start, so the first lookups may find only some)."""
    step = "finding the pool's offers in the overlay"
    bootstrap = [(testbed.nodes[0].host, testbed.nodes[0].port)]
    room = 0
    with trio.move_on_after(FIND_TIMEOUT):
        while True:
            try:
                offers = await pool_library.find_offers(bootstrap, timeout=CALL_TIMEOUT)
            except SeattleError as exc:
                raise DemoFailed(step, str(exc)) from None
            room = sum(min(each.offer.free, POOL_MAX_PER_NODE) for each in offers)
            if room >= expected:
                return offers
            await trio.sleep(POLL_INTERVAL)
    raise DemoFailed(step, f"the offers found within {FIND_TIMEOUT:g} s hold {room} of the {expected} vessels")


async def _experiment(testbed: LocalTestbed, researcher: Identity, found: Sequence[FoundVessel], rounds: int,
                      progress: Progress) -> tuple[tuple[DemoVessel, ...], LatencyMatrix]:
    nodes = {node.address: node for node in testbed.nodes}
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for address in sorted({vessel.address for vessel in found}, key=lambda a: nodes[a].index):
            node = nodes[address]
            clients[node.index] = await stack.enter_async_context(
                await _step("connecting to the node managers", NodeClient.connect(
                    node.host, node.port, researcher, node_key=_found_key(found, address), timeout=CALL_TIMEOUT)))
        vessels = await _with_ports(found, nodes, clients)
        addresses = [vessel.address for vessel in vessels]
        program = resources.files("seattle.demo").joinpath(PROGRAM).read_bytes()
        try:
            await _start_all(vessels, clients, program, rounds, addresses)
            progress(f"Uploaded {PROGRAM} to every vessel and started it: each pings the other "
                     f"{len(vessels) - 1} over UDP until it has {rounds} replies from each")
            logs = await _collect(vessels, clients)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CALL_TIMEOUT):
                await _stop_all(vessels, clients)
    rtts: dict[tuple[int, int], float] = {}
    for log in logs:
        rtts.update(parse_rtts(log, addresses))
    matrix = build_matrix([vessel.label for vessel in vessels], rtts)
    progress(f"All {len(vessels)} vessels reported: {len(rtts)} of {len(vessels) * (len(vessels) - 1)} pairs "
             "measured")
    return tuple(vessels), matrix


def _found_key(found: Sequence[FoundVessel], address: str) -> PublicKey:
    """The node key browse saw at `address`: the connection insists on it."""
    return next(vessel.node_key for vessel in found if vessel.address == address)


async def _step(step: str, call: Any) -> Any:
    """Await a node manager call, turning its failure into DemoFailed naming the demo's step."""
    try:
        return await call
    except (NodeClientError, CallFailed) as exc:
        raise DemoFailed(step, str(exc)) from None


async def _browse(testbed: LocalTestbed, researcher: PublicKey, expected: int) -> list[FoundVessel]:
    """Browse through node 0 until the `expected` vessels are found: a node advertises its vessels in the
    overlay shortly after it starts, so the first answers may hold only some of them."""
    step = "browsing the overlay for the researcher's vessels"
    bootstrap = [(testbed.nodes[0].host, testbed.nodes[0].port)]
    result = None
    with trio.move_on_after(FIND_TIMEOUT):
        while result is None or len(result.vessels) < expected:
            if result is not None:
                await trio.sleep(POLL_INTERVAL)
            try:
                result = await browse(researcher, bootstrap, timeout=CALL_TIMEOUT)
            except SeattleError as exc:
                raise DemoFailed(step, str(exc)) from None
    if result is None or len(result.vessels) < expected:
        got = 0 if result is None else len(result.vessels)
        unreachable = "" if result is None or not result.unreachable else \
            "; unreachable: " + ", ".join(f"{address} ({why})" for address, why in result.unreachable)
        raise DemoFailed(step, f"found {got} of the {expected} vessels within {FIND_TIMEOUT:g} s{unreachable}")
    known = {node.address for node in testbed.nodes}
    strangers = sorted({vessel.address for vessel in result.vessels} - known)
    if strangers:
        raise DemoFailed(step, f"vessels of the demo's new key were found on {', '.join(strangers)}, "
                               "which is not one of the demo's nodes")
    return result.vessels


async def _with_ports(found: Sequence[FoundVessel], nodes: dict[str, TestbedNode],
                      clients: dict[int, NodeClient]) -> list[DemoVessel]:
    """Each vessel with its first message port (from its resources), in node order and the node's vessel
    order, labelled n<node>/<vessel>."""
    step = "reading the vessels' resources"
    vessels: list[DemoVessel] = []
    for vessel in found:
        node = nodes[vessel.address]
        text = await _step(step, clients[node.index].call("GetVesselResources", vessel=vessel.vessel))
        try:
            ports = parse_resources(text).messport
        except ResourceParseError as exc:
            raise DemoFailed(step, f"node {node.address} sent unreadable resources: {exc}") from None
        if not ports:
            raise DemoFailed(step, f"vessel {vessel.vessel} on {node.address} has no UDP port")
        vessels.append(DemoVessel(f"n{node.index}/{vessel.vessel}", node, vessel.vessel, node.host, min(ports)))
    vessels.sort(key=lambda v: v.node.index)  # stable: browse's vessel order stays within each node
    return vessels


async def _start_all(vessels: Sequence[DemoVessel], clients: dict[int, NodeClient], program: bytes,
                     rounds: int, addresses: Sequence[str]) -> None:
    async def start(number: int, vessel: DemoVessel) -> None:
        client = clients[vessel.node.index]
        step = f"starting {PROGRAM} in {vessel.label}"
        await _step(step, client.call("AddFileToVessel", vessel=vessel.name, filename=PROGRAM, data=program))
        await _step(step, client.call("StartVessel", vessel=vessel.name, program=PROGRAM,
                                      args=[str(number), str(rounds), *addresses]))

    async with trio.open_nursery() as nursery:
        for number, vessel in enumerate(vessels):
            nursery.start_soon(start, number, vessel)


async def _collect(vessels: Sequence[DemoVessel], clients: dict[int, NodeClient]) -> list[str]:
    """Every vessel's log once it says `done`; DemoFailed if a vessel ends without it or time runs out."""
    logs = [""] * len(vessels)
    pending = set(range(len(vessels)))
    step = "waiting for the vessels' measurements"
    with trio.move_on_after(EXPERIMENT_TIMEOUT):
        while pending:
            for number in sorted(pending):
                vessel = vessels[number]
                data = await _step(step, clients[vessel.node.index].call("ReadVesselLog", vessel=vessel.name))
                logs[number] = bytes(data).decode("utf-8", "replace")
                if finished(logs[number]):
                    pending.discard(number)
            await _check_running(vessels, clients, pending, logs, step)
            if pending:
                await trio.sleep(POLL_INTERVAL)
    if pending:
        late = ", ".join(vessels[number].label for number in sorted(pending))
        raise DemoFailed(step, f"no result from {late} within {EXPERIMENT_TIMEOUT:g} s")
    return logs


async def _check_running(vessels: Sequence[DemoVessel], clients: dict[int, NodeClient], pending: set[int],
                         logs: list[str], step: str) -> None:
    """DemoFailed, with the end of its log, for a pending vessel whose program has ended."""
    for index in {vessels[number].node.index for number in pending}:
        answer = await _step(step, clients[index].call("GetVessels"))
        status = {vessel["name"]: vessel["status"] for vessel in answer["vessels"]}
        for number in sorted(pending):
            vessel = vessels[number]
            if vessel.node.index == index and status.get(vessel.name) not in ("Started", "Stale"):
                tail = " / ".join(logs[number].strip().splitlines()[-3:]) or "(empty log)"
                raise DemoFailed(step, f"{vessel.label} ended ({status.get(vessel.name)}) before reporting; "
                                       f"its log ends: {tail}")


async def _stop_all(vessels: Sequence[DemoVessel], clients: dict[int, NodeClient]) -> None:
    """StopVessel for every vessel still running; errors are left to the node manager's own shutdown, which
    stops any vessel this missed."""
    async def stop(vessel: DemoVessel) -> None:
        with contextlib.suppress(NodeClientError, CallFailed):
            await clients[vessel.node.index].call("StopVessel", vessel=vessel.name)

    async with trio.open_nursery() as nursery:
        for vessel in vessels:
            nursery.start_soon(stop, vessel)
