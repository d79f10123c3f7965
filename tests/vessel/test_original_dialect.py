"""The original dialect in real vessels: every construct, dylink from each dialect, the seed slides' ping pair,
and the hint for original code started as Python 3."""

from __future__ import annotations

import errno
import re
import socket
from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher
from seattle.vessel.spec import PYTHON3, REPY_V1, REPY_V2, VesselSpec
from seattle.vessel.status import EXIT_CODE_UNSAFE, EXIT_NORMAL, EXIT_UNCAUGHT
from tests.vessel_helpers import VESSEL_TIMEOUT, log_text

pytestmark = pytest.mark.slow

#: (name, program in the original dialect, what it logs): one per construct of the original's Python 2 subset.
PROGRAMS = [
    ("print", "print 'a', 1\nprint 'b',\nprint 'c'\nprint\n", "a 1\nb c\n\n"),
    ("except_comma", "try:\n    raise ValueError('v')\nexcept ValueError, e:\n    print 'caught', e\n", "caught v\n"),
    ("raise_comma", "try:\n    raise KeyError, 'k'\nexcept KeyError, e:\n    print 'raised', e\n",
     "raised 'k'\n"),
    ("long_literals", "x = 0L + 10L\nprint x, type(x) is long\n", "10 True\n"),
    ("octal_literals", "print 0777, 010\n", "511 8\n"),
    ("backticks", "print `[1, 'a']`\n", "[1, 'a']\n"),
    ("not_equal", "print 1 <> 2, 1 <> 1\n", "True False\n"),
    ("has_key", "d = {'a': 1}\nprint d.has_key('a'), not d.has_key('b'), mycontext.has_key('x')\n",
     "True True False\n"),
    ("xrange", "print [i for i in xrange(3)], sum(xrange(4)), range(3)\n", "[0, 1, 2] 6 [0, 1, 2]\n"),
    ("long", "print long(3) + 1, isinstance(3, long)\n", "4 True\n"),
    ("cmp", "print cmp(1, 2), cmp('b', 'a'), cmp(3, 3)\n", "-1 1 0\n"),
    ("reduce", "print reduce(lambda a, b: a * b, [1, 2, 3, 4])\n", "24\n"),
    ("division", "x = 7\nx /= 2\nprint 7 / 2, -7 / 2, 7.0 / 2, x\n", "3 -4 3.5 3\n"),
    ("dict_lists", "d = {'b': 2, 'a': 1}\nk = d.keys()\nk.sort()\nprint k, d.values()[0] in (1, 2)\n",
     "['a', 'b'] True\n"),
    ("map_filter_zip", "print map(str, [1, 2]), filter(None, [0, 1]), zip('ab', [1, 2])[1]\n",
     "['1', '2'] [1] ('b', 2)\n"),
    ("unicode_basestring", "print isinstance('s', basestring), unicode(5)\n", "True 5\n"),
    ("str_file_data", "f = openfile('d.bin', True)\nf.writeat('\\xff\\x00ok', 0)\nd = f.readat(None, 0)\n"
                      "print type(d) is str, len(d), d[2:], ord(d[0])\n", "True 4 ok 255\n"),
    ("underscore_names", "_hidden = 2\nclass C:\n    def __init__(self):\n        self._x = _hidden\n"
                         "print C()._x, _context['_hidden']\n", "2 2\n"),
]


async def start(launcher: VesselLauncher, vessel_dir: Path, files: dict[str, str], platform: str, *,
                args: tuple[str, ...] = (), messport: frozenset[int] | None = None) -> VesselHandle:
    vessel_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (vessel_dir / name).write_text(text, encoding="latin-1")
    resources = DEFAULT_ALLOTMENT if messport is None else DEFAULT_ALLOTMENT.replace(messport=messport)
    spec = VesselSpec(vessel_dir=vessel_dir, program=next(iter(files)), resources=resources, args=args,
                      local_ips=("127.0.0.1",), platform=platform)
    return await launcher.start(spec)


async def finish(handle: VesselHandle) -> VesselHandle:
    with trio.fail_after(VESSEL_TIMEOUT):
        await handle.wait()
    return handle


async def test_every_construct_runs_in_a_real_vessel(launcher: VesselLauncher, tmp_path: Path) -> None:
    handles: dict[str, VesselHandle] = {}

    async def one(name: str, source: str) -> None:
        handles[name] = await finish(await start(launcher, tmp_path / name, {f"{name}.r2py": source}, REPY_V2))

    async with trio.open_nursery() as nursery:
        for name, source, _ in PROGRAMS:
            nursery.start_soon(one, name, source)
    failures = {name: (handles[name].exit_code, log_text(handles[name])) for name, _, expected in PROGRAMS
                if (handles[name].exit_code, log_text(handles[name])) != (EXIT_NORMAL, expected)}
    assert failures == {}


async def test_errors_point_at_the_users_lines(launcher: VesselLauncher, tmp_path: Path) -> None:
    refused = await finish(await start(launcher, tmp_path / "refused",
                                       {"prog.r2py": "print 'ok'\n\nx = `1`.__class__\n"}, REPY_V2))
    assert refused.exit_code == EXIT_CODE_UNSAFE
    assert "prog.r2py, line 3" in log_text(refused)
    failing = await finish(await start(launcher, tmp_path / "failing",
                                       {"prog.r2py": "print 'ok'\n\n\nprint 1 / 0\n"}, REPY_V2))
    assert failing.exit_code == EXIT_UNCAUGHT
    assert 'File "prog.r2py", line 4' in log_text(failing) and "ZeroDivisionError" in log_text(failing)


async def test_original_code_started_as_python3_gets_the_hint(launcher: VesselLauncher, tmp_path: Path) -> None:
    handle = await finish(await start(launcher, tmp_path / "v", {"ping.r2py": "print 'hello'\n"}, PYTHON3))
    assert handle.exit_code == EXIT_CODE_UNSAFE
    assert "run it with --dialect repyV2" in log_text(handle)


LIBRARY = "def greet(who):\n    return 'hello ' + who\n"


@pytest.mark.parametrize(("platform", "program"), [
    (PYTHON3, "lib = dy_import_module('greet.r2py')\nprint(lib.greet('python3'))\n"),
    (REPY_V2, "dy_import_module_symbols('greet.r2py')\nprint greet('repyV2')\n"),
])
async def test_dylink_from_each_dialect(launcher: VesselLauncher, tmp_path: Path, platform: str,
                                        program: str) -> None:
    handle = await finish(await start(launcher, tmp_path / "v", {"main.r2py": program, "greet.r2py": LIBRARY},
                                      platform))
    assert (handle.exit_code, log_text(handle)) == (EXIT_NORMAL, f"hello {platform}\n")


#: The seed slides' UDP ping server and client, as printed (the slide's text lost its indentation).
SEED_SERVER = """def got_message(srcip,srcport,mess,ch):
    sendmess(srcip,srcport,mess)

if callfunc == 'initialize':
    recvmess(getmyip(),54321,got_message)
"""
SEED_CLIENT = """def got_reply(srcip, srcport, mess, ch):
    print 'received:', mess, 'from', srcip, srcport
if callfunc == 'initialize':
    recvmess(getmyip(), 43210, got_reply)
    # send the second arg to the first arg's IP
    sendmess(callargs[0], 54321, callargs[1], getmyip(), 43210)
    # exit in one second
    settimer(1, exitall, ())
"""


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


async def test_the_seed_slides_ping_server_and_client(launcher: VesselLauncher, tmp_path: Path) -> None:
    ports = frozenset({54321, 43210})
    server = await start(launcher, tmp_path / "server", {"pingserver.repy": SEED_SERVER}, REPY_V1, messport=ports)
    try:
        with trio.fail_after(VESSEL_TIMEOUT):
            while not udp_port_taken(54321):  # the program itself gives no sign that it listens
                assert server.running, log_text(server)
                await trio.sleep(0.05)
        client = await finish(await start(launcher, tmp_path / "client", {"pingclient.repy": SEED_CLIENT}, REPY_V1,
                                          args=("127.0.0.1", "hello"), messport=ports))
        assert client.exit_code == EXIT_NORMAL, log_text(client)
        # The server's sendmess names no local port, so the reply comes from whichever one the host picks.
        assert re.fullmatch(r"received: hello from 127\.0\.0\.1 \d+\n", log_text(client)), log_text(client)
    finally:
        await server.stop()
