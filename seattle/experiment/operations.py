"""The library function behind each researcher command: node manager calls per vessel, and their effect on
the session (result groups, cached vessel details, vessels that split or joined).

Scripts use the same functions the `seattle` command does:

    session = load_session()
    numbers = session.targets.resolve("%all")
    outcomes = await execute(session, "upload", numbers, upload("ping.r2py", data), identity)
    save_session(session)

Each `VesselOp` (see fanout.py) takes the connected node and one vessel; per-node answers that several
vessels share (GetVessels, the offcut) are asked once per node and kept in `node.memo`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from seattle.errors import ContactFailed, SeattleError
from seattle.experiment.fanout import (
    FAILED,
    OK,
    REFUSED,
    BadAnswer,
    Node,
    Outcome,
    Progress,
    Report,
    VesselOp,
    fan_out,
    fan_out_nodes,
    result_groups,
)
from seattle.experiment.session import Session
from seattle.experiment.targets import VESSEL_NAME, VesselRef
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError
from seattle.nodemgr.known_nodes import KnownNodes
from seattle.vessel.spec import PYTHON3

#: GetVessels fields a researcher sees with `show owner`, `show users`, ...
VESSEL_FIELDS = ("status", "owner", "users", "ownerinfo", "advertise")


# --- operations on one vessel ------------------------------------------------------------------------------


async def node_vessels(node: Node) -> dict[str, dict[str, Any]]:
    """GetVessels once per node: vessel name → its entry."""
    if "vessels" not in node.memo:
        answer = await node.client.call("GetVessels")
        node.memo["vessels"] = {entry["name"]: check_entry(entry) for entry in answer["vessels"]}
    vessels: dict[str, dict[str, Any]] = node.memo["vessels"]
    return vessels


def check_entry(entry: Any) -> dict[str, Any]:
    """A GetVessels entry with every field a command shows, of the right type; BadAnswer otherwise."""
    types = {"name": str, "status": str, "owner": str, "users": list, "ownerinfo": str, "advertise": bool}
    if (not isinstance(entry, dict) or not all(isinstance(entry.get(k), t) for k, t in types.items())
            or not VESSEL_NAME.fullmatch(entry["name"])):
        raise BadAnswer(f"a GetVessels entry without the expected fields: {entry!r:.200}")
    return entry


async def describe(node: Node, ref: VesselRef) -> dict[str, Any]:
    """The vessel's GetVessels entry (`list`, `update`, `show owner`, ...)."""
    entry = (await node_vessels(node)).get(ref.vessel)
    if entry is None:
        raise CallFailed("GetVessels", "no_such_vessel", f"the node has no vessel {ref.vessel!r} (any more)")
    return entry


def call(name: str, **args: Any) -> VesselOp:
    """An operation making one call on the vessel: `call("StopVessel")`, `call("AddFileToVessel", ...)`."""

    async def op(node: Node, ref: VesselRef) -> Any:
        return await node.client.call(name, vessel=ref.vessel, **args)

    return op


def upload(remote: str, data: bytes) -> VesselOp:
    return call("AddFileToVessel", filename=remote, data=data)


def run(remote: str, data: bytes, args: Sequence[str], platform: str = PYTHON3) -> VesselOp:
    """Upload the program, then start it (seash's `run`): both pipelined on the node's connection."""
    starting = _start_call(remote, args, platform)

    async def op(node: Node, ref: VesselRef) -> Any:
        await node.client.call("AddFileToVessel", vessel=ref.vessel, filename=remote, data=data)
        return await node.client.call(starting[0], vessel=ref.vessel, **starting[1])

    return op


def start(program: str, args: Sequence[str], platform: str = PYTHON3) -> VesselOp:
    name, arguments = _start_call(program, args, platform)
    return call(name, **arguments)


def _start_call(program: str, args: Sequence[str], platform: str) -> tuple[str, dict[str, Any]]:
    """StartVessel for our dialect (which every node knows), StartVesselEx with the platform otherwise."""
    if platform == PYTHON3:
        return "StartVessel", {"program": program, "args": list(args)}
    return "StartVesselEx", {"platform": platform, "program": program, "args": list(args)}


async def node_info(node: Node, ref: VesselRef) -> dict[str, Any]:
    """The node's GetNodeInfo answer, asked once per node."""
    if "info" not in node.memo:
        node.memo["info"] = await node.client.call("GetNodeInfo")
    return dict(node.memo["info"])


async def offcut(node: Node, ref: VesselRef) -> str:
    if "offcut" not in node.memo:
        node.memo["offcut"] = await node.client.call("GetOffcutResources")
    text: str = node.memo["offcut"]
    return text


def change(name: str, argument: str, value: Any) -> VesselOp:
    """An owner call that sets one thing (`set users`, `set owner`, ...); the vessel's details are re-read."""

    async def op(node: Node, ref: VesselRef) -> dict[str, Any]:
        await node.client.call(name, vessel=ref.vessel, **{argument: value})
        node.memo.pop("vessels", None)
        return await describe(node, ref)

    return op


# --- running over the session's targets --------------------------------------------------------------------


async def execute(session: Session, command: str, numbers: Sequence[int], op: VesselOp,
                  identity: Identity | None, *, op_timeout: float | None = None,
                  concurrency: int = 50, progress: Progress | None = None) -> list[Outcome]:
    """Fan `op` out over the vessels `numbers`, then record `<command>good`/`<command>fail`; dict results
    that are GetVessels entries refresh the cached details."""
    outcomes = await fan_out(session.targets.refs(numbers), op, identity=identity, timeout=session.timeout,
                             op_timeout=op_timeout, concurrency=concurrency, progress=progress,
                             node_keys=node_keys(session, numbers),
                             known_nodes=KnownNodes.default())
    remember(session, command, outcomes)
    return outcomes


def node_keys(session: Session, numbers: Sequence[int]) -> dict[tuple[str, int], PublicKey]:
    """The node keys browse or contact saw for these vessels' nodes, to insist on them (key pinning)."""
    keys = {}
    for number in numbers:
        known = session.targets.vessels.get(number)
        if known is not None and known.node_key:
            try:
                keys[(known.ref.host, known.ref.port)] = PublicKey.from_text(known.node_key)
            except SeattleError:  # a damaged entry pins nothing; the signature still binds each request
                continue
    return keys


def remember(session: Session, command: str, outcomes: Sequence[Outcome]) -> None:
    for name, members in result_groups(command, outcomes).items():
        session.targets.set_group(name, members)
    for outcome in outcomes:
        known = session.targets.vessels.get(outcome.number)
        if outcome.ok and known is not None and isinstance(outcome.result, dict) and "owner" in outcome.result:
            known.info = {name: outcome.result.get(name) for name in VESSEL_FIELDS}


async def split(session: Session, numbers: Sequence[int], resources: str, identity: Identity,
                progress: Progress | None = None) -> list[Outcome]:
    """SplitVessel on each vessel; the two pieces replace it (groups `split1`: leftovers, `split2`: requested
    pieces, `splitfail`)."""
    async def split_one(node: Node, ref: VesselRef) -> list[str]:
        names = await node.client.call("SplitVessel", vessel=ref.vessel, resources=resources)
        if not (isinstance(names, list) and len(names) == 2
                and all(isinstance(n, str) and VESSEL_NAME.fullmatch(n) for n in names)):
            raise BadAnswer(f"SplitVessel should give two vessel names, not {names!r:.200}")
        return names

    outcomes = await fan_out(session.targets.refs(numbers), split_one, identity=identity,
                             timeout=session.timeout, progress=progress, node_keys=node_keys(session, numbers),
                             known_nodes=KnownNodes.default())
    pieces: tuple[list[int], list[int]] = ([], [])
    for outcome in outcomes:
        if outcome.ok:
            known = session.targets.vessels[outcome.number]
            for index, name in enumerate(outcome.result):
                ref = VesselRef(outcome.ref.host, outcome.ref.port, str(name))
                pieces[index].append(session.targets.add_vessel(ref, known.node_key, dict(known.info)))
    session.targets.forget(o.number for o in outcomes if o.ok)
    session.targets.set_group("split1", pieces[0])
    session.targets.set_group("split2", pieces[1])
    session.targets.set_group("splitfail", [o.number for o in outcomes if not o.ok])
    return outcomes


async def join(session: Session, numbers: Sequence[int], identity: Identity,
               progress: Progress | None = None) -> list[Outcome]:
    """Join, per node, every targeted vessel into one (JoinVessels repeatedly); the result replaces them.

    Every joined vessel's outcome carries the new name; groups `joingood` (the new vessels) and `joinfail`.
    """

    async def join_node(node: Node, vessels: Sequence[tuple[int, VesselRef]], report: Report) -> None:
        if len(vessels) < 2:
            for number, ref in vessels:
                report.add(Outcome(number, ref, REFUSED, code="nothing_to_join",
                                   message="no other targeted vessel on its node"))
            return
        current = vessels[0][1].vessel
        done: list[tuple[int, VesselRef]] = [vessels[0]]
        for number, ref in vessels[1:]:
            try:
                joined = await node.client.call("JoinVessels", vessel=current, other=ref.vessel)
                if not isinstance(joined, str) or not VESSEL_NAME.fullmatch(joined):
                    report.rest(vessels, FAILED, f"JoinVessels gave no vessel name: {joined!r:.200}")
                    return
                current = joined
            except CallFailed as exc:
                report.add(Outcome(number, ref, REFUSED, code=exc.code, message=exc.message))
                continue
            except NodeClientError as exc:
                report.rest(vessels, FAILED, str(exc))
                return
            done.append((number, ref))
        for number, ref in done:
            report.add(Outcome(number, ref, OK if len(done) > 1 else REFUSED, result=current,
                               code="" if len(done) > 1 else "nothing_joined",
                               message="" if len(done) > 1 else "no other vessel could be joined to it"))

    outcomes = await fan_out_nodes(session.targets.refs(numbers), join_node, identity=identity,
                                   timeout=session.timeout, progress=progress, node_keys=node_keys(session, numbers),
                                   known_nodes=KnownNodes.default())
    joined: list[int] = []
    for outcome in outcomes:
        if outcome.ok:
            known = session.targets.vessels.get(outcome.number)
            ref = VesselRef(outcome.ref.host, outcome.ref.port, str(outcome.result))
            info = dict(known.info) if known is not None else {}
            node_key = known.node_key if known is not None else None
            session.targets.forget([outcome.number])
            joined.append(session.targets.add_vessel(ref, node_key, info))
    session.targets.set_group("joingood", joined)
    session.targets.set_group("joinfail", [o.number for o in outcomes if not o.ok])
    return outcomes


# --- finding vessels ---------------------------------------------------------------------------------------


async def contact(session: Session, host: str, port: int, key: PublicKey | None,
                  vessel: str | None = None, node_key: PublicKey | None = None) -> list[int]:
    """Add the vessels of the node at HOST:PORT without the overlay: `vessel` only, or every vessel `key` owns
    or uses (every vessel when there is no key). Their numbers; ContactFailed if the node cannot be asked.
    GetVessels is public, so nothing is signed and no passphrase is needed. The node must prove `node_key`
    if given, else its pin in the known-nodes file (a first contact pins it); the session keeps the key proven
    for its vessels, so later commands insist on it."""
    address = VesselRef(host, port, "-").address
    try:
        with trio.fail_after(session.timeout):
            async with await NodeClient.connect(host, port, node_key=node_key, known_nodes=KnownNodes.default(),
                                                timeout=2 * session.timeout) as client:
                answer = await client.call("GetVessels")
                proven = client.node_key.to_text()
    except trio.TooSlowError:
        raise ContactFailed(address, f"no answer within {session.timeout:g} s") from None
    except NodeClientError as exc:
        raise ContactFailed(address, str(exc)) from None
    text = key.to_text() if key is not None else None
    numbers = []
    try:
        entries = [check_entry(entry) for entry in answer["vessels"]]
    except (BadAnswer, KeyError, TypeError) as exc:
        raise ContactFailed(address, f"the node sent an unusable GetVessels answer ({exc})") from None
    for entry in entries:
        mine = text is None or entry["owner"] == text or text in entry["users"]
        if (vessel is None and mine) or entry["name"] == vessel:
            info = {name: entry.get(name) for name in VESSEL_FIELDS}
            numbers.append(session.targets.add_vessel(VesselRef(host, port, entry["name"]), proven, info))
    if vessel is not None and not numbers:
        raise ContactFailed(address, f"it has no vessel named {vessel!r}")
    return numbers


def add_found(session: Session, found: Sequence[Any]) -> tuple[list[int], list[str]]:
    """Number the vessels browse found (FoundVessel objects) and refresh their details. Returns their numbers
    and, for any the session cannot hold (a vessel name no node manager gives), why it was left out."""
    numbers, rejected = [], []
    for vessel in found:
        if not VESSEL_NAME.fullmatch(vessel.vessel):
            rejected.append(f"{vessel.address}: vessel name {vessel.vessel!r:.80} is not a vessel name")
            continue
        info = {"status": vessel.status, "owner": vessel.owner.to_text(),
                "users": [user.to_text() for user in vessel.users], "ownerinfo": vessel.ownerinfo,
                "advertise": vessel.advertise}
        ref = VesselRef(vessel.host, vessel.port, vessel.vessel)
        numbers.append(session.targets.add_vessel(ref, vessel.node_key.to_text(), info))
    return numbers, rejected


def owned_by(info: dict[str, Any], key: PublicKey | None) -> bool:
    return key is not None and info.get("owner") == key.to_text()
