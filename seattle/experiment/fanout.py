"""Run one operation on many vessels at once and say, per vessel, what happened.

Vessels are grouped by node: each node gets one connection (a node limits connections per client address,
and a handshake per vessel would double the cost), its vessels are served one after the other on it, and at
most `concurrency` nodes are in flight. Every wait is bounded: connecting (and learning the node's key) within
`timeout`, each vessel's operation within `op_timeout` (default `timeout`). A node that misses a deadline is
left at once: its connection may still deliver a late answer, which would be taken for the next call's.

Outcomes, the words the summary and `--json` use:

| kind | meaning |
|---|---|
| ok | the node did it |
| unreachable | no connection (refused: nothing listens there; no route; name unknown) |
| timed out | connected, but no answer within the timeout |
| refused | the node answered with an error: `code` and `message` say which |
| failed | the connection broke mid-way, or a local step (reading or writing a file) failed |
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from seattle.errors import SeattleError
from seattle.experiment.targets import VesselRef
from seattle.keys import Identity, PublicKey
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError
from seattle.nodemgr.known_nodes import KnownNodes

OK = "ok"
UNREACHABLE = "unreachable"
TIMED_OUT = "timed out"
REFUSED = "refused"
FAILED = "failed"
DEFAULT_CONCURRENCY = 50


@dataclass(frozen=True)
class Outcome:
    """What happened on one vessel."""

    number: int
    ref: VesselRef
    kind: str
    result: Any = None
    code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == OK

    @property
    def reason(self) -> str:
        """Why it failed, for people: "refused: insufficient_permissions: ..."; "" when it went well."""
        if self.kind == OK:
            return ""
        detail = f"{self.code}: {self.message}" if self.code else self.message
        return f"{self.kind}: {detail}" if detail else self.kind

    def to_json(self) -> dict[str, Any]:
        """One JSON object per vessel for `--json` (bytes as {"base64": ...}, so nothing is lost)."""
        return {"target": f"%{self.number}", "vessel": str(self.ref), "outcome": self.kind, "code": self.code,
                "message": self.message, "result": jsonable(self.result)}


class BadAnswer(Exception):
    """The node answered, but not with what the call promises (operations check the shapes they rely on)."""


@dataclass
class Node:
    """One connected node as an operation sees it; `memo` caches per-node answers (GetVessels, the offcut)."""

    client: NodeClient
    memo: dict[str, Any] = field(default_factory=dict)


VesselOp = Callable[[Node, VesselRef], Awaitable[Any]]
#: (host, port) → the key that node showed before (browse, contact): pinned for later connections.
NodeKeys = Mapping[tuple[str, int], PublicKey]
Progress = Callable[[int, int], None]


async def fan_out(items: Sequence[tuple[int, VesselRef]], op: VesselOp, *, identity: Identity | None,
                  timeout: float, op_timeout: float | None = None, concurrency: int = DEFAULT_CONCURRENCY,
                  progress: Progress | None = None, node_keys: NodeKeys | None = None,
                  known_nodes: KnownNodes | None = None) -> list[Outcome]:
    """`op(node, ref)` on every (number, ref); one Outcome per item, in the order given. A node listed in
    `node_keys` must present that key in the channel's handshake (else its vessels fail: another machine took
    its address); any other node must present its pin in `known_nodes` (a first contact pins it)."""
    per_vessel = op_timeout if op_timeout is not None else timeout

    async def each(node: Node, vessels: Sequence[tuple[int, VesselRef]], report: Report) -> None:
        for index, (number, ref) in enumerate(vessels):
            try:
                with trio.fail_after(per_vessel):
                    result = await op(node, ref)
            except trio.TooSlowError:
                report.rest(vessels[index:], TIMED_OUT, f"no answer within {per_vessel:g} s")
                return
            except CallFailed as exc:
                report.add(Outcome(number, ref, REFUSED, code=exc.code, message=exc.message))
            except NodeClientError as exc:
                report.rest(vessels[index:], FAILED, str(exc))
                return
            except SeattleError as exc:
                report.add(Outcome(number, ref, FAILED, message=str(exc)))
            except (BadAnswer, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                # A node's answer of the wrong shape (a faulty or hostile node) fails its vessel, not the command.
                report.add(Outcome(number, ref, FAILED, message=f"the node sent an unusable answer: {exc!r:.200}"))
            else:
                report.add(Outcome(number, ref, OK, result))

    return await fan_out_nodes(items, each, identity=identity, timeout=timeout, concurrency=concurrency,
                               progress=progress, call_timeout=per_vessel, node_keys=node_keys,
                               known_nodes=known_nodes)


class Report:
    """Collects outcomes as they come and tells the progress callback."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.outcomes: dict[int, Outcome] = {}
        self.total = total
        self.progress = progress

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome.number] = outcome
        if self.progress is not None:
            self.progress(len(self.outcomes), self.total)

    def rest(self, vessels: Sequence[tuple[int, VesselRef]], kind: str, message: str) -> None:
        for number, ref in vessels:
            if number not in self.outcomes:
                self.add(Outcome(number, ref, kind, message=message))


NodeOp = Callable[[Node, Sequence[tuple[int, VesselRef]], Report], Awaitable[None]]


async def fan_out_nodes(items: Sequence[tuple[int, VesselRef]], node_op: NodeOp, *, identity: Identity | None,
                        timeout: float, concurrency: int = DEFAULT_CONCURRENCY, progress: Progress | None = None,
                        call_timeout: float | None = None, node_keys: NodeKeys | None = None,
                        known_nodes: KnownNodes | None = None) -> list[Outcome]:
    """`node_op(node, its vessels, report)` once per node; the building block of `fan_out` and of join.

    Connection problems are reported here for every vessel of the node; `node_op` reports the rest (a vessel
    it does not report is marked failed, so nothing is silently dropped).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    by_node: dict[tuple[str, int], list[tuple[int, VesselRef]]] = defaultdict(list)
    for number, ref in items:
        by_node[(ref.host, ref.port)].append((number, ref))
    report = Report(len(items), progress)
    limit = trio.CapacityLimiter(concurrency)
    # The client's own deadlines sit beyond ours, so ours always fire first and say which step was slow.
    slack = 2 * max(timeout, call_timeout or timeout) + 1

    async def serve(address: tuple[str, int], vessels: list[tuple[int, VesselRef]]) -> None:
        async with limit:
            try:
                with trio.fail_after(timeout):
                    client = await NodeClient.connect(*address, identity, timeout=slack,
                                                      node_key=(node_keys or {}).get(address),
                                                      known_nodes=known_nodes)
            except trio.TooSlowError:
                report.rest(vessels, TIMED_OUT, f"the node did not answer within {timeout:g} s")
                return
            except NodeClientError as exc:
                report.rest(vessels, *_connect_failure(exc, address))
                return
            async with client:
                await node_op(Node(client), vessels, report)
            report.rest(vessels, FAILED, "the operation ended without a result for this vessel")

    async with trio.open_nursery() as nursery:
        for address, vessels in by_node.items():
            nursery.start_soon(serve, address, vessels)
    return [report.outcomes[number] for number, _ in items]


def result_groups(command: str, outcomes: Sequence[Outcome]) -> dict[str, list[int]]:
    """seash's result groups: `<command>good` (every ok vessel) and `<command>fail` (every other)."""
    return {f"{command}good": [o.number for o in outcomes if o.ok],
            f"{command}fail": [o.number for o in outcomes if not o.ok]}


def summarize(outcomes: Sequence[Outcome]) -> list[tuple[str, list[Outcome]]]:
    """Outcomes grouped by what happened: ("ok", [...]) first, then each distinct failure reason."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.reason or OK].append(outcome)
    return sorted(groups.items(), key=lambda item: (item[0] != OK, item[0]))


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes and contexts, and the members of exception groups among them, each once: where a
    connection failure's real reason (an OSError deep inside trio's groups) is found."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _connect_failure(error: NodeClientError, address: tuple[str, int]) -> tuple[str, str]:
    """(kind, reason): unreachable with the OS's words ("Connection refused", "No route to host") when the cause
    chain holds an OS error; otherwise the node was reached but misbehaved (a bad key or answer): failed, with
    the client's message without the address (the summary names the vessels itself)."""
    os_error: OSError | None = None
    for current in exception_chain(error):
        if isinstance(current, OSError):
            if current.strerror:  # trio's "all attempts to connect failed" wraps the one that says why
                return UNREACHABLE, current.strerror
            os_error = os_error or current
    if os_error is not None:
        return UNREACHABLE, str(os_error) or type(os_error).__name__
    return FAILED, str(error).removeprefix(f"cannot connect to the node manager at {address[0]}:{address[1]}: ")
