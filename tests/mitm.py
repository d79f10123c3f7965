"""A man in the middle on loopback, between clients and one node manager, for the channel's end-to-end tests.

    async with trio.open_nursery() as nursery:
        proxy = Proxy(nm.port)
        await nursery.start(proxy.run)                 # listens on 127.0.0.1:proxy.port
        proxy.flip("up")                               # the next bytes towards the node get one bit flipped
        proxy.substitute = generate_identity("mallory")    # new connections: its own handshakes both ways

    with proxy_in_thread(port) as proxy: ...           # the same on a thread of its own, for CLI tests

A relaying proxy records every byte it carries (`captured`, per direction), which is what an on-path observer
sees. In substitute mode it is an active attacker with a key of its own: it completes the client's handshake
as itself and opens its own channel to the node, relaying plaintext between them; a client that checks the
node's key must refuse it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from seattle.channel.stream import ChannelError, secure_client, secure_server
from seattle.keys import Identity

UP, DOWN = "up", "down"  # towards the node, towards the client
_WAIT = 30.0


class Proxy:
    """See the module docstring."""

    def __init__(self, upstream_port: int, *, substitute: Identity | None = None) -> None:
        self.upstream_port = upstream_port
        self.substitute = substitute
        self.port = 0
        self.captured = {UP: bytearray(), DOWN: bytearray()}
        self.connections = 0
        self._flip = {UP: False, DOWN: False}

    def flip(self, direction: str) -> None:
        """Flip the last bit of the next chunk relayed in `direction` (once)."""
        self._flip[direction] = True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, down: trio.SocketStream) -> None:
        self.connections += 1
        try:
            up = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        except OSError:
            await down.aclose()
            return
        client_side: trio.abc.Stream = down
        node_side: trio.abc.Stream = up
        try:
            if self.substitute is not None:
                client_side = await secure_server(down, identity=self.substitute)
                node_side = await secure_client(up, expected=None)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client_side, node_side, UP, nursery.cancel_scope)
                nursery.start_soon(self._pump, node_side, client_side, DOWN, nursery.cancel_scope)
        except ChannelError:
            pass  # the client refused the substitute's key: the expected outcome of that attack
        finally:
            await trio.aclose_forcefully(client_side)
            await trio.aclose_forcefully(node_side)

    async def _pump(self, source: trio.abc.Stream, sink: trio.abc.Stream, direction: str,
                    scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                self.captured[direction] += data
                if self._flip[direction]:
                    self._flip[direction] = False
                    data = bytes(data[:-1]) + bytes([data[-1] ^ 1])
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()


@contextmanager
def proxy_in_thread(upstream_port: int) -> Iterator[Proxy]:
    """A relaying `Proxy` on a trio loop of its own thread, for tests whose commands run their own loops."""
    proxy = Proxy(upstream_port)
    ready: queue.Queue[trio.lowlevel.TrioToken | BaseException] = queue.Queue()
    stop = threading.Event()

    async def main() -> None:
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(proxy.run)
                ready.put(trio.lowlevel.current_trio_token())
                while not stop.is_set():
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            ready.put(exc)
            raise

    thread = threading.Thread(target=lambda: trio.run(main), daemon=True)
    thread.start()
    started = ready.get(timeout=_WAIT)
    if isinstance(started, BaseException):
        raise started
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(_WAIT)
