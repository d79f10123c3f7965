"""The original's semantics in the API's corners (issue 17), in-process over a real broker.

getresources() reports the ports used; a local IP the host lacks is AddressBindingError while one the vessel
was not given is ResourceForbiddenError; a dropped file object is closed; close() waits for a write in flight;
getlasterror() answers after the except block; SafeDict.has_key; V1 gethostbyname_ex through the broker.
Real vessels run the same corners in tests/vessel/test_api_corners_vessel.py.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest

from seattle.vessel import errors
from seattle.vessel.child.api import core, files, network, vnamespace
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.runtime import build_globals
from tests.api_harness import PATIENCE, Harness, vessel, wait_until
from tests.vessel.test_broker import free_ports

NOT_ON_ANY_HOST = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never assigned to an interface here
ON_HOST_NOT_GIVEN = "127.0.0.2"  # on `lo` (127/8), but the vessel is given only 127.0.0.1


def run_program(harness: Harness, source: str) -> str:
    """Check, compile and run `source` with the vessel's real globals, in a thread of its own as a vessel's
    main thread would be (what a thread last handled is per thread); what it logged."""
    code = check_and_compile(source, "prog.r2py")
    main = threading.Thread(target=exec, args=(code, build_globals(harness.ctx)))
    main.start()
    main.join(PATIENCE)
    return harness.log()


# -- files ------------------------------------------------------------------------------------------------


def test_a_dropped_file_object_is_closed(tmp_path: Path) -> None:
    with vessel(tmp_path, filesopened=1) as h:
        api = h.api(files)
        api["openfile"]("data", True).writeat(b"kept", 0)  # dropped at once, never closed
        gc.collect()
        # The one filesopened item and the name are free again: neither FileInUseError nor exhaustion.
        again = api["openfile"]("data", False)
        assert again.readat(None, 0) == b"kept"
        assert h.usage("filesopened") == 1
        again.close()
        assert h.usage("filesopened") == 0


def test_a_method_held_without_its_object_finds_the_file_closed(tmp_path: Path) -> None:
    with vessel(tmp_path) as h:
        api = h.api(files)
        writeat = api["openfile"]("data", True).writeat
        gc.collect()
        api["listfiles"]()  # a file call performs the closes the finalizers queued
        with pytest.raises(errors.FileClosedError):
            writeat(b"late", 0)
        api["removefile"]("data")  # no longer open


def test_close_waits_for_a_write_in_flight(tmp_path: Path) -> None:
    with vessel(tmp_path) as h:
        api = h.api(files)
        f = api["openfile"]("data", True)
        waiting, go_on = threading.Event(), threading.Event()
        accountant = h.ctx.accountant
        real_wait_for = accountant.wait_for

        def slow_wait_for(resource: str) -> None:  # the writer is stuck in its filewrite bucket
            if resource == "filewrite":
                waiting.set()
                assert go_on.wait(PATIENCE)
            real_wait_for(resource)

        accountant.wait_for = slow_wait_for  # type: ignore[method-assign]
        writer = threading.Thread(target=f.writeat, args=(b"x" * 10_000, 0))
        writer.start()
        assert waiting.wait(PATIENCE)
        closer = threading.Thread(target=f.close)
        closer.start()
        closer.join(0.2)
        assert closer.is_alive()  # close() waits for the write that began before it
        go_on.set()
        writer.join(PATIENCE)
        closer.join(PATIENCE)
        assert not closer.is_alive()
        accountant.wait_for = real_wait_for  # type: ignore[method-assign]
        assert (tmp_path / "data").read_bytes() == b"x" * 10_000
        with pytest.raises(errors.FileClosedError):
            f.writeat(b"y", 0)  # a call that begins after close() is refused
        assert h.usage("filesopened") == 0


# -- getlasterror, SafeDict.has_key -------------------------------------------------------------------------


def test_getlasterror_after_the_except_block(tmp_path: Path) -> None:
    source = """
log(getlasterror(), '|')
def fail():
    return {}['missing']
try:
    fail()
except KeyError:
    pass
text = getlasterror()
log('KeyError' in text, 'line 4' in text, 'line 6' in text, '|')
def in_thread():
    log(getlasterror(), '|')
createthread(in_thread)
"""
    with vessel(tmp_path) as h:
        run_program(h, source)
        wait_until(lambda: h.log().count("|") == 3)
        # None before any exception; the handled one afterwards; none in another thread.
        assert h.log().split("|")[:3] == ["None ", "True True True ", "None "]


def test_getlasterror_inside_the_handler_names_that_exception(tmp_path: Path) -> None:
    source = """
try:
    raise ValueError('first')
except ValueError:
    pass
try:
    1 // 0
except ZeroDivisionError:
    log('ZeroDivisionError' in getlasterror(), 'first' in getlasterror())
"""
    with vessel(tmp_path) as h:
        assert run_program(h, source) == "True False"


def test_safedict_has_key(tmp_path: Path) -> None:
    with vessel(tmp_path) as h:
        safe_dict = h.api(vnamespace)["SafeDict"]({"a": 1})
        assert safe_dict.has_key("a") and not safe_dict.has_key("b") and not safe_dict.has_key(1)
        source = "d = SafeDict()\nd['x'] = 1\nlog(d.has_key('x'), d.has_key('y'))\n"
        assert run_program(h, source) == "True False"


# -- network: ports in getresources, AddressBindingError, gethostbyname_ex -----------------------------------


@pytest.mark.slow
def test_getresources_reports_the_ports_used(tmp_path: Path) -> None:
    udp_port, tcp_port, connect_port, unused = free_ports(4)
    with vessel(tmp_path, messport=frozenset({udp_port, unused}),
                connport=frozenset({tcp_port, connect_port, unused})) as h:
        api = h.api(core) | h.api(network)
        usage = api["getresources"]()[1]
        assert usage["messport"] == set() and usage["connport"] == set()
        udp = api["listenformessage"]("127.0.0.1", udp_port)
        tcp = api["listenforconnection"]("127.0.0.1", tcp_port)
        conn = api["openconnection"]("127.0.0.1", tcp_port, "127.0.0.1", connect_port, 5.0)
        with pytest.raises(errors.ResourceForbiddenError):
            api["listenformessage"]("127.0.0.1", connect_port)  # not a messport: not used
        usage = api["getresources"]()[1]
        assert usage["messport"] == {udp_port}
        assert usage["connport"] == {tcp_port, connect_port}
        for sock in (udp, tcp, conn):
            sock.close()
        usage = api["getresources"]()[1]  # Repy kept a port once used
        assert usage["messport"] == {udp_port} and usage["connport"] == {tcp_port, connect_port}
        usage["messport"].add(unused)  # a copy
        assert api["getresources"]()[1]["messport"] == {udp_port}


@pytest.mark.slow
def test_a_local_ip_the_host_lacks_is_an_address_binding_error(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with vessel(tmp_path, messport=frozenset({port}), connport=frozenset({port})) as h:
        api = h.api(network)
        with pytest.raises(errors.AddressBindingError, match="not on this host"):
            api["listenformessage"](NOT_ON_ANY_HOST, port)
        with pytest.raises(errors.AddressBindingError):
            api["listenforconnection"](NOT_ON_ANY_HOST, port)
        with pytest.raises(errors.AddressBindingError):
            api["openconnection"]("127.0.0.1", 9, NOT_ON_ANY_HOST, port, 1.0)
        with pytest.raises(errors.ResourceForbiddenError, match="may not use the local IP"):
            api["listenformessage"](ON_HOST_NOT_GIVEN, port)
        assert h.usage("insockets") == 0 and h.usage("outsockets") == 0


@pytest.mark.slow
def test_gethostbyname_ex_for_v1(tmp_path: Path) -> None:
    with vessel(tmp_path) as h:
        api = h.api(network)
        hostname, aliases, addresses = api["gethostbyname_ex"]("localhost")
        assert type(hostname) is str and type(aliases) is list and "127.0.0.1" in addresses
        assert h.ctx.accountant.usage()["netsend"] > 0  # charged like gethostbyname
        with pytest.raises(errors.NetworkAddressError):
            api["gethostbyname_ex"]("name.invalid")
        with pytest.raises(errors.RepyArgumentError):
            api["gethostbyname_ex"]("x" * 300)
