"""Issue 14 end to end: every node manager connection is a secure channel. A man in the middle on loopback
(tests/mitm.py) that flips bytes or substitutes its own key is detected, the node never executes a tampered
request, an old plaintext client is told to upgrade, and half-open handshakes are capped and time out."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from seattle.keys import Identity, generate_identity
from seattle.nodemgr.client import CallFailed, NodeClient, NodeClientError, NodeKeyMismatch
from seattle.nodemgr.frames import FrameDecoder
from seattle.nodemgr.known_nodes import KnownNodes
from seattle.nodemgr.node import NodeManager
from seattle.nodemgr.server import ServerLimits
from tests.mitm import DOWN, UP, Proxy
from tests.nodemgr.conftest import NodeFactory

WAIT = 20.0


async def _files(nm: NodeManager, owner: Identity) -> list[str]:
    """The node's files in v1, asked directly (not through the proxy)."""
    async with await NodeClient.connect("127.0.0.1", nm.port, owner, node_key=nm.node_key) as client:
        files: list[str] = await client.call("ListFilesInVessel", vessel="v1")
        return files


@pytest.mark.slow
async def test_a_flipped_byte_either_way_closes_the_connection_and_nothing_tampered_is_executed(
        start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm, trio.open_nursery() as nursery:
        proxy = Proxy(nm.port)
        await nursery.start(proxy.run)
        with trio.fail_after(WAIT):
            # Towards the node: the request fails its authentication there and is never executed.
            async with await NodeClient.connect("127.0.0.1", proxy.port, owner, node_key=nm.node_key) as client:
                assert await client.call("ListFilesInVessel", vessel="v1") == []  # the session works
                proxy.flip(UP)
                with pytest.raises(NodeClientError, match="connection to the node failed"):
                    await client.call("AddFileToVessel", vessel="v1", filename="tampered", data=b"evil")
            assert "tampered" not in await _files(nm, owner)
            assert nm.server is not None and nm.server.stats["channel_decrypt_failed"] == 1
            # Towards the client: a forged or damaged answer is refused, not believed.
            async with await NodeClient.connect("127.0.0.1", proxy.port, owner, node_key=nm.node_key) as client:
                await client.call("ListFilesInVessel", vessel="v1")
                proxy.flip(DOWN)
                with pytest.raises(NodeClientError, match="decrypt_failed"):
                    await client.call("GetVessels")
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_a_substituted_key_is_refused_naming_both_fingerprints(
        start_node: NodeFactory, owner: Identity, tmp_path: Path) -> None:
    mallory = generate_identity("mallory")
    known = KnownNodes(tmp_path / "known_nodes")
    async with start_node() as nm, trio.open_nursery() as nursery:
        proxy = Proxy(nm.port)
        await nursery.start(proxy.run)
        with trio.fail_after(WAIT):
            # First use through the (for now honest) relay pins the node's real key for this address.
            async with await NodeClient.connect("127.0.0.1", proxy.port, owner, known_nodes=known) as client:
                assert client.node_key == nm.node_key
            pin = known.expected("127.0.0.1", proxy.port)
            assert pin is not None and pin.key == nm.node_key
            proxy.substitute = mallory
            for expectation in ({"known_nodes": known}, {"node_key": nm.node_key}):
                with pytest.raises(NodeKeyMismatch) as refused:
                    await NodeClient.connect("127.0.0.1", proxy.port, owner, **expectation)  # type: ignore[arg-type]
                text = str(refused.value)
                assert nm.node_key.fingerprint() in text and mallory.public_key.fingerprint() in text
                assert f"127.0.0.1:{proxy.port}" in text
                assert refused.value.actual == mallory.public_key
            # The pinned case names the file and the line to remove.
            with pytest.raises(NodeKeyMismatch, match=f"line {pin.line} of {known.path}"):
                await NodeClient.connect("127.0.0.1", proxy.port, owner, known_nodes=known)
            # Without an expected key the substitute is let in, and says who it is: the reason for pinning.
            async with await NodeClient.connect("127.0.0.1", proxy.port) as client:
                assert client.node_key == mallory.public_key
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_an_old_plaintext_client_is_told_to_upgrade(start_node: NodeFactory) -> None:
    async with start_node() as nm:
        # The plaintext client the benchmark keeps is exactly the old protocol: frames with no handshake.
        with trio.fail_after(WAIT):
            async with await NodeClient.connect("127.0.0.1", nm.port, node_key=nm.node_key,
                                                plaintext_benchmark_only=True) as old:
                with pytest.raises(CallFailed) as refused:
                    await old.call("GetVessels")
        assert refused.value.code == "upgrade_required" and "upgrade seattle" in refused.value.message
        with trio.fail_after(WAIT):  # counted once the node has given the old client time to read its answer
            while nm.server is not None and not nm.server.stats["handshakes_version_mismatch"]:
                await trio.sleep(0.05)


@pytest.mark.slow
async def test_half_open_handshakes_from_one_address_are_capped_and_time_out(
        start_node: NodeFactory, owner: Identity) -> None:
    limits = ServerLimits(max_connections_per_address=4, handshake_timeout=0.5)
    async with start_node(limits) as nm:
        assert nm.server is not None
        silent = [await trio.open_tcp_stream("127.0.0.1", nm.port) for _ in range(10)]
        outcomes = []
        with trio.fail_after(WAIT):
            for stream in silent:
                decoder, answers = FrameDecoder(), []
                while data := await stream.receive_some(65536):  # the node ends each one, one way or the other
                    answers += decoder.feed(data)
                outcomes.append(answers[0]["code"] if answers else "closed")  # type: ignore[index]
                await stream.aclose()
        # Four were taken as handshakes and ended at the deadline; the six beyond the address's budget were
        # refused at once, before any handshake work.
        assert outcomes.count("closed") == 4 and outcomes.count("too_many_connections") == 6
        assert nm.server.stats["handshakes_handshake_timeout"] == 4
        assert nm.server.stats["connections_refused"] == 6
        assert nm.server.connections == 0
        assert await _files(nm, owner) == []  # and the owner is served afterwards


@pytest.mark.slow
async def test_handshakes_are_paced_per_address_before_their_cryptography(start_node: NodeFactory) -> None:
    limits = ServerLimits(handshake_rate=20.0, handshake_burst=2)
    async with start_node(limits) as nm:
        assert nm.server is not None
        with trio.fail_after(WAIT):
            for _ in range(4):
                async with await NodeClient.connect("127.0.0.1", nm.port, node_key=nm.node_key):
                    pass
        # The first two are the burst; the next two waited for their tokens, and completed.
        assert nm.server.stats["handshakes_paced"] == 2
        assert not nm.server.stats["handshakes_handshake_timeout"]
