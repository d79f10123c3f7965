"""Small vessels (issue 17): a vessel is charged for the memory it adds, not for the zygote's pages it shares.

An empty program is charged under 3 MB; a 15 MB allotment (the original's test vessels) runs programs in the
style of the original's tests; a program that allocates past its allotment is still killed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.status import EXIT_NORMAL, EXIT_RESOURCE_KILL
from tests.vessel.test_broker import free_ports
from tests.vessel_helpers import log_text, run_vessel, start_vessel

pytestmark = pytest.mark.slow

MB = 1_000_000
#: The original's test vessels had 15 MB (seattle-original.md §2.4; nminit's own test vessel had 30 MB).
SMALL = DEFAULT_ALLOTMENT.replace(memory=15 * MB)

TIMER = """
fired = []
def tick(n):
    fired.append(n)
for n in range(5):
    settimer(0.01 * n, tick, (n,))
sleep(0.5)
print('timer', sorted(fired))
"""

UDP_ECHO = """
server = listenformessage('127.0.0.1', SERVER)
client = listenformessage('127.0.0.1', CLIENT)
for i in range(20):
    sendmessage('127.0.0.1', SERVER, 'ping %d' % i, '127.0.0.1', CLIENT)
    while True:
        try:
            ip, port, message = server.getmessage()
            break
        except SocketWouldBlockError:
            sleep(0.001)
    sendmessage(ip, port, message, '127.0.0.1', SERVER)
    while True:
        try:
            echoed = client.getmessage()[2]
            break
        except SocketWouldBlockError:
            sleep(0.001)
print('udp', echoed)
"""

FILE_WRITES = """
f = openfile('data', True)
for i in range(200):
    f.writeat('%05d' % i * 100, i * 500)
f.close()
f = openfile('data', False)
print('file', len(f.readat(None, 0)))
f.close()
"""

BIG_DICT = """
table = {}
for i in range(10000):
    table['key%d' % i] = [i, str(i)]
print('dict', len(table), table['key9999'])
"""


async def charged_while_idle(launcher: VesselLauncher, vessel_dir: Path, source: str) -> int:
    """Start `source` (which prints 'up' and then idles) and return its memory charge once reported."""
    handle = await start_vessel(launcher, vessel_dir, source, resources=SMALL)
    try:
        with trio.fail_after(30):
            while b"up" not in handle.log.read():
                await trio.sleep(0.02)
            # The supervisor reports usage once a second, with the nanny's latest reading.
            reports = handle.usage.get("cpu_seconds")
            while handle.usage.get("cpu_seconds") == reports or not handle.usage.get("memory"):
                await trio.sleep(0.05)
        charged: int = handle.usage["memory"]
    finally:
        await handle.stop()
    return charged


async def test_an_empty_program_is_charged_under_3_mb(launcher: VesselLauncher, tmp_path: Path) -> None:
    charged = await charged_while_idle(launcher, tmp_path / "v", "print('up')\nwhile True:\n    sleep(1.0)\n")
    assert 0 < charged < 3 * MB, f"an empty vessel is charged {charged:,} bytes"


async def test_a_15_mb_vessel_runs_the_originals_kind_of_program(launcher: VesselLauncher, tmp_path: Path) -> None:
    server, client = free_ports(2)
    resources = SMALL.replace(messport=frozenset({server, client}))
    programs = {
        "timer": TIMER,
        "udp": f"SERVER = {server}\nCLIENT = {client}\n" + UDP_ECHO,
        "file": FILE_WRITES,
        "dict": BIG_DICT,
    }
    expected = {
        "timer": "timer [0, 1, 2, 3, 4]",
        "udp": "udp b'ping 19'",
        "file": "file 100000",
        "dict": "dict 10000 [9999, '9999']",
    }
    for name, source in programs.items():
        handle = await run_vessel(launcher, tmp_path / name, source, resources=resources)
        text = log_text(handle)
        assert handle.exit_code == EXIT_NORMAL, f"{name}: {text}"
        assert text.strip() == expected[name]


async def test_memory_past_the_allotment_is_still_killed(launcher: VesselLauncher, tmp_path: Path) -> None:
    # Private pages, written a megabyte at a time: exactly what the charge counts.
    source = "chunks = []\nwhile True:\n    chunks.append(b'x' * 1000000)\n    sleep(0.01)\n"
    handle = await run_vessel(launcher, tmp_path / "v", source, resources=SMALL)
    assert handle.exit_code == EXIT_RESOURCE_KILL
    assert "memory use" in log_text(handle) and "15,000,000" in log_text(handle)
