"""StartVesselEx through a real node manager: each platform runs its dialect, an unknown one is refused."""

from __future__ import annotations

import pytest
import trio

from seattle.keys import Identity
from seattle.nodemgr.client import NodeClient
from seattle.vessel.spec import PYTHON3, REPY_V1, REPY_V2
from tests.nodemgr.conftest import NodeFactory

pytestmark = pytest.mark.slow

WAIT = 20.0
#: Runs in both original platforms, not as Python 3 (the print statement).
ORIGINAL = b"print 'platform', callargs[0], 7 / 2\n"
PYTHON = b"print('platform', callargs[0], 7 // 2)\n"


async def _log_once_ended(client: NodeClient) -> bytes:
    with trio.fail_after(WAIT):
        while (await client.call("GetVessels"))["vessels"][0]["status"] == "Started":
            await trio.sleep(0.05)
    log: bytes = await client.call("ReadVesselLog", vessel="v1")
    return log


@pytest.mark.parametrize(("platform", "program"), [
    (PYTHON3, PYTHON), (REPY_V2, ORIGINAL), (REPY_V1, ORIGINAL), ("REPYv2", ORIGINAL),
])
async def test_each_platform_runs_its_dialect(start_node: NodeFactory, owner: Identity, platform: str,
                                              program: bytes) -> None:
    async with start_node() as nm, await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
        await client.call("AddFileToVessel", vessel="v1", filename="prog.r2py", data=program)
        started = await client.call("StartVesselEx", vessel="v1", platform=platform, program="prog.r2py",
                                    args=[platform])
        assert started == "Started"
        assert await _log_once_ended(client) == f"platform {platform} 3\n".encode()


async def test_an_unknown_platform_is_refused_with_the_originals_text(start_node: NodeFactory,
                                                                      owner: Identity) -> None:
    async with start_node() as nm, await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
        await client.call("AddFileToVessel", vessel="v1", filename="prog.r2py", data=PYTHON)
        response = await client.request("StartVesselEx", vessel="v1", platform="repyV3", program="prog.r2py",
                                        args=[])
        assert response.code == "unsupported_platform"
        assert response.message.startswith("Programming language platform is not supported.")
        assert (await client.call("GetVessels"))["vessels"][0]["status"] == "Fresh"


async def test_startvessel_is_python3(start_node: NodeFactory, owner: Identity) -> None:
    async with start_node() as nm, await NodeClient.connect("127.0.0.1", nm.port, owner) as client:
        await client.call("AddFileToVessel", vessel="v1", filename="prog.r2py", data=ORIGINAL)
        await client.call("StartVessel", vessel="v1", program="prog.r2py", args=["x"])
        assert b"--dialect repyV2" in await _log_once_ended(client)
