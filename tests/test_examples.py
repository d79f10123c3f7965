"""The shipped example programs, run in real vessels: the seed slides' UDP ping between two vessels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.status import EXIT_NORMAL
from tests.vessel_helpers import log_text, run_vessel, start_vessel

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_two_vessels_exchange_the_udp_ping(launcher: VesselLauncher, tmp_path: Path) -> None:
    server = await start_vessel(launcher, tmp_path / "server", (EXAMPLES / "ping_server.py").read_text())
    with trio.fail_after(10):
        while b"listening" not in server.log.read():
            assert server.running, log_text(server)
            await trio.sleep(0.01)
    client = await run_vessel(launcher, tmp_path / "client", (EXAMPLES / "ping_client.py").read_text(),
                              args=("127.0.0.1", "hello-seattle"))
    assert client.exit_code == EXIT_NORMAL, log_text(client)
    assert re.search(r"received: hello-seattle from 127\.0\.0\.1 \d+\n", log_text(client)), log_text(client)
    assert server.running, "the server ends only when stopped"
    await server.stop()


async def test_hello_example_runs(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await run_vessel(launcher, tmp_path, (EXAMPLES / "hello.py").read_text())
    assert handle.exit_code == EXIT_NORMAL, log_text(handle)
    assert "read back: b'hello, seattle\\n'" in log_text(handle)
    assert (tmp_path / "greeting.txt").read_bytes() == b"hello, seattle\n"
