"""The donor's view and control of the pool over the control socket: `seattle node status` shows pool vessels,
lessees and expiries; `seattle node pool evict` and `block` end a lease and refuse a key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from seattle.keys import generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.control import serve_until_stopped
from seattle.nodemgr.node import NodeManager
from tests.cli_runner import seattle
from tests.nodemgr.test_pool_node import make_node

pytestmark = pytest.mark.slow


async def _no_signals() -> AsyncIterator[int]:
    await trio.sleep_forever()
    yield 0  # pragma: no cover - never reached


async def test_status_evict_block(tmp_path: Path) -> None:
    node_dir = tmp_path / "n"
    make_node(node_dir)
    researcher = generate_identity("researcher")
    async with NodeManager(node_dir, "127.0.0.1", 0) as nm, trio.open_nursery() as nursery:
        nursery.start_soon(serve_until_stopped, node_dir, nm, _no_signals())
        async with await NodeClient.connect("127.0.0.1", nm.port, researcher) as me:
            granted = await me.call("AcquireVessel", slot=0, duration=3600.0)

            shown = await trio.to_thread.run_sync(seattle, "node", "status", "--dir", str(node_dir), "--json")
            pool = {row["vessel"]: row for row in json.loads(shown.stdout)["pool"]}
            assert pool[granted["vessel"]]["lessee"] == researcher.public_key.to_text()
            assert pool[granted["vessel"]]["state"] == "leased" and pool[granted["vessel"]]["slot"] == 0
            table = await trio.to_thread.run_sync(seattle, "node", "status", "--dir", str(node_dir))
            assert "1 of 2 pool vessels free" in table.stdout and researcher.public_key.fingerprint() in table.stdout

            evicted = await trio.to_thread.run_sync(seattle, "node", "pool", "evict", "--dir", str(node_dir),
                                                    granted["vessel"])
            assert evicted.returncode == 0 and "free again" in evicted.stdout
            assert nm.state is not None and not nm.state.get_vessel(granted["vessel"]).users
            again = await trio.to_thread.run_sync(seattle, "node", "pool", "evict", "--dir", str(node_dir),
                                                  granted["vessel"])
            assert again.returncode != 0 and "not leased" in again.stderr

            blocked = await trio.to_thread.run_sync(seattle, "node", "pool", "block", "--dir", str(node_dir),
                                                    researcher.public_key.to_text(), "--for", "2h")
            assert blocked.returncode == 0 and "refused by this node until" in blocked.stdout
            refused = await me.request("AcquireVessel", slot=1, duration=60.0)
            assert refused.code == "key_blocked" and "blocked" in refused.message
        nursery.cancel_scope.cancel()
