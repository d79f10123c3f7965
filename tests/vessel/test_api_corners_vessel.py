"""The API corners of issue 17 in real vessels, where they cross the sandbox: AddressBindingError comes from the
supervisor's broker, which finds the IP missing on the host; files are closed by the child's collector; a close
races a writeat between two program threads; getlasterror() sees the handlers of the checked program; the
ports getresources() reports, SafeDict.has_key and gethostbyname_ex (looked up by the broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.host.launcher import VesselLauncher
from seattle.vessel.status import EXIT_NORMAL
from tests.vessel.test_broker import free_ports
from tests.vessel_helpers import log_text, run_vessel

pytestmark = pytest.mark.slow

CORNERS = """
udp = listenformessage('127.0.0.1', UDP)
tcp = listenforconnection('127.0.0.1', TCP)
limits, usage, stops = getresources()
print('ports', sorted(usage['messport']), sorted(usage['connport']))
udp.close()
tcp.close()
print('closed', getresources()[1]['messport'])

for ip in ('192.0.2.1', '127.0.0.2'):
    try:
        listenformessage(ip, UDP)
    except AddressBindingError:
        print(ip, 'AddressBindingError')
    except ResourceForbiddenError:
        print(ip, 'ResourceForbiddenError')

for i in range(5):
    openfile('f', True).writeat('x' * i, 0)   # never closed; filesopened is 1
print('files', openfile('f', False).readat(None, 0))

try:
    [][1]
except IndexError:
    pass
print('lasterror', 'IndexError' in getlasterror())

d = SafeDict()
d['k'] = 1
print('has_key', d.has_key('k'), d.has_key('j'))
name, aliases, addresses = gethostbyname_ex('localhost')
print('ex', '127.0.0.1' in addresses)
"""

CLOSE_RACE = """
f = openfile('data', True)
f.writeat('a' * 4096, 0)          # fills the filewrite bucket (4096 B/s): the next writeat waits ~1 s
started = createlock()
started.acquire(True)
def writer():
    started.release()
    f.writeat('b' * 4096, 4096)
createthread(writer)
started.acquire(True)
sleep(0.3)                        # the writer is in its bucket wait now
f.close()                         # waits for it
g = openfile('data', False)
data = g.readat(None, 0)
print(len(data), data[4096:4100])
"""


async def test_api_corners_in_a_vessel(launcher: VesselLauncher, tmp_path: Path) -> None:
    udp, tcp = free_ports(2)
    resources = DEFAULT_ALLOTMENT.replace(messport=frozenset({udp}), connport=frozenset({tcp}), filesopened=1)
    source = f"UDP = {udp}\nTCP = {tcp}\n" + CORNERS
    handle = await run_vessel(launcher, tmp_path / "v", source, resources=resources)
    text = log_text(handle)
    assert handle.exit_code == EXIT_NORMAL, text
    assert text.splitlines() == [
        f"ports [{udp}] [{tcp}]",
        f"closed {{{udp}}}",
        "192.0.2.1 AddressBindingError",
        "127.0.0.2 ResourceForbiddenError",
        "files b'xxxx'",
        "lasterror True",
        "has_key True False",
        "ex True",
    ]


async def test_close_waits_for_a_racing_writeat_in_a_vessel(launcher: VesselLauncher, tmp_path: Path) -> None:
    resources = DEFAULT_ALLOTMENT.replace(filewrite=4096.0)
    handle = await run_vessel(launcher, tmp_path / "v", CLOSE_RACE, resources=resources)
    text = log_text(handle)
    assert handle.exit_code == EXIT_NORMAL, text
    assert text.splitlines() == ["8192 b'bbbb'"]
