"""The one interface every overlay driver offers, and the request/lookup helpers written once for all of them.

A driver feeds one `OverlayNode` engine datagrams and time: `seattle.overlay.udp.UdpOverlay` over a real UDP
socket, `seattle.overlay.simnet.SimTransport` over the simulated network. Everything above the engine (the
join, publishing and reading records, the node manager) is written against `OverlayTransport`, so it runs
unchanged on either.

`EngineTransport` holds the awaitable helpers (request, ping, bootstrap, lookup): queue the work on the engine,
let the driver send it, wait until the engine says it ended. A driver supplies only how to send queued work
(`_queued`) and how to sleep until a condition holds (`_until`), so the two drivers cannot drift apart again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from seattle.overlay.messages import Kind, Message
from seattle.overlay.nodeid import Contact, NodeId
from seattle.overlay.protocol import Address, OverlayNode, Status


class OverlayTransport(Protocol):
    """One node on the overlay, as its users see it: its engine, its address, its clock, and awaitable
    requests. `timeout` None means the driver's default (`EngineTransport.default_timeout`)."""

    @property
    def node(self) -> OverlayNode: ...

    @property
    def address(self) -> Address: ...

    @property
    def contact(self) -> Contact: ...

    def now(self) -> float:
        """The engine's clock: wall-clock seconds (virtual ones in a simulation)."""
        ...

    async def request(
        self, contact: Contact, kind: Kind, body: dict[str, Any], timeout: float | None = None
    ) -> Message: ...

    async def ping(self, contact: Contact, timeout: float | None = None) -> Message: ...

    async def bootstrap(self, host: str, port: int, timeout: float | None = None) -> Message: ...

    async def lookup(
        self, target: NodeId, timeout: float | None = None, answers: Sequence[Message] = ()
    ) -> list[Contact]: ...


class EngineTransport(ABC):
    """The helpers of `OverlayTransport`, given a driver's `_queued`, `_until` and `_check_running`."""

    #: How long a helper waits when no timeout is given (the engine's own RTT-based timeouts end it sooner).
    default_timeout: float

    def __init__(self, node: OverlayNode) -> None:
        self._node = node

    @property
    def node(self) -> OverlayNode:
        """The protocol engine this transport drives."""
        return self._node

    @property
    @abstractmethod
    def address(self) -> Address: ...

    @property
    def contact(self) -> Contact:
        """How peers reach this node."""
        return Contact(self._node.node_id, *self.address)

    @abstractmethod
    def now(self) -> float: ...

    @abstractmethod
    def _check_running(self) -> None:
        """Raise RuntimeError if this node cannot send now (not running, or killed in a simulation)."""

    @abstractmethod
    async def _queued(self) -> None:
        """The engine has new work queued: send it and schedule the engine's next deadline."""

    @abstractmethod
    async def _until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Sleep until `ready()` holds, rechecked when a request or lookup of the engine ended;
        TimeoutError naming `what` after `timeout` seconds."""

    async def request(
        self, contact: Contact, kind: Kind, body: dict[str, Any], timeout: float | None = None
    ) -> Message:
        """Send a request and return its answer (possibly an ERROR message).

        TimeoutError when the engine gave up waiting (its RTT-based deadline passed without an answer).
        """
        self._check_running()
        txid = self._node.request(contact, kind, body, self.now())
        return await self._answer(txid, f"{kind} to {contact.host}:{contact.port}", timeout)

    async def ping(self, contact: Contact, timeout: float | None = None) -> Message:
        return await self.request(contact, Kind.PING, {}, timeout)

    async def bootstrap(self, host: str, port: int, timeout: float | None = None) -> Message:
        """Ask a node known only by address for our neighbours (`OverlayNode.bootstrap`); it enters our
        table, and its answer can seed the join lookup (`lookup(own id, answers=[...])`). TimeoutError if
        silent."""
        self._check_running()
        txid = self._node.bootstrap((host, port), self.now())
        return await self._answer(txid, f"bootstrap request to {host}:{port}", timeout)

    async def lookup(
        self, target: NodeId, timeout: float | None = None, answers: Sequence[Message] = ()
    ) -> list[Contact]:
        """The k live nodes closest to `target` that answered, nearest first; `answers` as `start_lookup`'s."""
        self._check_running()
        lookup_id = self._node.start_lookup(target, self.now(), answers)
        await self._finish_lookup(lookup_id, timeout)
        result = self._node.lookup_result(lookup_id)
        assert result is not None  # _finish_lookup returned, so the lookup finished
        self._node.forget_lookup(lookup_id)
        return result

    async def _finish_lookup(self, lookup_id: int, timeout: float | None) -> None:
        """Send a started lookup's first requests and wait until it ends."""
        await self._queued()
        node = self._node
        await self._until(lambda: node.lookup_result(lookup_id) is not None, self._timeout(timeout), "a lookup")

    async def _answer(self, txid: bytes, what: str, timeout: float | None) -> Message:
        await self._queued()
        node = self._node
        await self._until(lambda: node.outcome(txid).status is not Status.WAITING, self._timeout(timeout), what)
        message = node.outcome(txid).message
        node.forget_outcome(txid)
        if message is None:
            raise TimeoutError(f"{what} got no answer")
        return message

    def _timeout(self, timeout: float | None) -> float:
        return self.default_timeout if timeout is None else timeout
