"""A running vessel whose supervisor stops reporting is shown as Stale, and as Started again once it reports."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import trio

from seattle.keys import generate_identity
from seattle.nodemgr.client import NodeClient
from seattle.nodemgr.node import NodeManager, init_node

pytestmark = pytest.mark.slow

LOOPING = b"while True:\n    sleep(0.05)\n"


async def status_of(client: NodeClient, vessel: str) -> str:
    vessels = (await client.call("GetVessels"))["vessels"]
    return next(v["status"] for v in vessels if v["name"] == vessel)


async def wait_for_status(client: NodeClient, vessel: str, wanted: str) -> None:
    with trio.fail_after(20):
        while await status_of(client, vessel) != wanted:
            await trio.sleep(0.05)


async def test_a_silent_supervisor_makes_its_vessel_stale(tmp_path: Path) -> None:
    owner = generate_identity("owner")
    init_node(tmp_path / "node", owner.public_key)
    async with NodeManager(tmp_path / "node", "127.0.0.1", 0) as nm:
        assert nm.api is not None
        nm.api.stale_after = 1.0
        client = await NodeClient.connect("127.0.0.1", nm.port, owner)
        async with client:
            await client.call("AddFileToVessel", vessel="v1", filename="loop.py", data=LOOPING)
            await client.call("StartVessel", vessel="v1", program="loop.py", args=[])
            handle = nm.api.running_handle("v1")
            assert handle is not None and handle.supervisor_pid is not None
            os.kill(handle.supervisor_pid, signal.SIGSTOP)
            try:
                await wait_for_status(client, "v1", "Stale")
            finally:
                os.kill(handle.supervisor_pid, signal.SIGCONT)
            await wait_for_status(client, "v1", "Started")
            assert await client.call("StopVessel", vessel="v1") == "Stopped"
