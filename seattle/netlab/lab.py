"""`Lab`: a switch, public hosts and home networks behind routers, each a Linux network namespace.

    with Lab(prefix="stl-") as lab:
        p1 = lab.public_host("p1")
        home = lab.home("h1", kind=NatKind.CONE)
        d1 = home.host("d1")
        lab.run(d1, ["python3", "-c", "..."])     # a finished command's output
        process = lab.spawn(p1, ["seattle", "node", "run", ...])

Topology (addresses from 198.18.0.0/15, the benchmarking range, which no real network routes):

    switch      one namespace holding a bridge; every public host and every router's WAN side is a veth on it
    public      198.18.0.N/16 on the switch (N from 10), no default route: every public address is on-link
    router      198.18.1.N/16 on the switch (its WAN address), a bridge for its home's LAN, forwarding on, and
                iptables: FORWARD drops what is neither outbound from the LAN nor part of a flow already open
                (conntrack ESTABLISHED,RELATED), INPUT drops new connections to the router from the WAN (as
                home routers do); a NAT router also masquerades what leaves by the WAN
    NAT home    LAN 192.168.K.0/24, router .1, hosts .2, .3, ...; seen outside as the router's WAN address
    firewalled  LAN 198.19.K.0/24 (public addresses: every switch namespace gets a route to it via the
                router), router .1, hosts .2, ...; no translation, the same stateful filter
    home host   its LAN address, default route via its router

No packet leaves the namespaces: no link reaches the root namespace, and no namespace has a route beyond the
lab (only home hosts have a default route, to their router, whose own routes end at the switch).

Names: every namespace is PREFIX+NAME (the switch PREFIX+"switch"), its interface PREFIX+NAME, the other end
of that veth PREFIX+NAME+"-x", a router's LAN bridge PREFIX+NAME+"-l", the switch's bridge PREFIX+"sw". A
prefix is a letter, up to four letters or digits, and one "-" (so no prefix is the start of another's names);
a name is a letter and up to six letters or digits (a Linux interface name has at most 15 characters).

Cleanup: `close()` (the `with` block's end, `atexit`, SIGTERM and SIGHUP) kills the lab's processes and
deletes every namespace with the prefix; a new lab first removes whatever a killed run left with its prefix.
A lock file per prefix keeps two live labs with the same prefix from removing each other's namespaces: the
second waits for the first (a killed run's lock dies with it).
"""

from __future__ import annotations

import atexit
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import IO, Any

from seattle.natkind import NatKind
from seattle.netlab import system
from seattle.netlab.errors import BadLabName, LabBusy, LabClosed, LabCommandFailed, LabFull

DEFAULT_PREFIX = "stl-"
#: The switch's network: public hosts and routers' WAN sides.
SWITCH_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")
PUBLIC_HOSTS = ipaddress.IPv4Network("198.18.0.0/24")
ROUTERS = ipaddress.IPv4Network("198.18.1.0/24")
#: Firewalled homes' LANs (public addresses, routed via their router): 198.19.K.0/24.
FIREWALLED_HOMES = ipaddress.IPv4Network("198.19.0.0/16")
#: NATed homes' LANs: 192.168.K.0/24.
NAT_HOMES = ipaddress.IPv4Network("192.168.0.0/16")
#: The first host number on the switch's /24s (public hosts and routers).
_FIRST = 10
#: How long a second lab with the same prefix waits for the first to close.
LOCK_WAIT = 120.0

_PREFIX = re.compile(r"[a-z][a-z0-9]{0,4}-\Z")
_NAME = re.compile(r"[a-z][a-z0-9]{0,6}\Z")
_SWITCH = "switch"


@dataclass(frozen=True, eq=False)
class Host:
    """A machine: a namespace with one interface. `address` is on its own interface; `public_address` is
    where hosts on the switch see its packets come from (its router's WAN address behind a NAT)."""

    name: str
    namespace: str
    address: str
    home: Home | None = None

    @property
    def public_address(self) -> str:
        if self.home is not None and self.home.kind.translates:
            return self.home.address
        return self.address


@dataclass(eq=False)
class Home:
    """A home network: a router (its own namespace) of one `NatKind`, a LAN, the hosts on it."""

    name: str
    kind: NatKind
    #: The router's namespace.
    namespace: str
    #: The router's WAN address on the switch (the NAT's public address).
    address: str
    network: ipaddress.IPv4Network
    lab: Lab = field(repr=False)
    hosts: list[Host] = field(default_factory=list, repr=False)

    def host(self, name: str) -> Host:
        """A new host on this home's LAN."""
        return self.lab._home_host(self, name)


class Lab:
    """The namespace testbed (module docstring). Needs root, `ip` and `iptables`."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, lock_wait: float = LOCK_WAIT) -> None:
        if not _PREFIX.match(prefix):
            raise BadLabName("prefix", prefix, "a letter, up to four letters or digits, then one '-' (e.g. 'stl-')")
        system.require_tools()
        self.prefix = prefix
        self.switch = prefix + _SWITCH
        self.hosts: dict[str, Host] = {}
        self.homes: dict[str, Home] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        #: Every namespace on the switch (public hosts and routers), and the routes each must get.
        self._on_switch: list[str] = []
        self._routes: list[tuple[str, str, str]] = []  # (network, via, the router's namespace)
        self._closed = False
        self._lock = _lock(prefix, lock_wait)
        _open_labs.add(self)
        _install_exit_hooks()
        try:
            system.remove_everything(prefix)
            self._namespace(self.switch)
            system.ip("link", "add", self._bridge(), "type", "bridge", namespace=self.switch)
            system.ip("link", "set", self._bridge(), "up", namespace=self.switch)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- building ------------------------------------------------------------------------------------------

    def public_host(self, name: str) -> Host:
        """A host with a public address on the switch."""
        namespace = self._new_name(name)
        address = self._nth(PUBLIC_HOSTS, sum(1 for host in self.hosts.values() if host.home is None), "public hosts")
        self._namespace(namespace)
        self._plug_into_switch(namespace, address)
        host = Host(name, namespace, address)
        self.hosts[name] = host
        return host

    def home(self, name: str, kind: NatKind) -> Home:
        """A home network behind a router of `kind`, with no hosts yet (`home.host(name)` adds them)."""
        namespace = self._new_name(name)
        number = len(self.homes)
        address = self._nth(ROUTERS, number, "homes")
        lan = ipaddress.IPv4Network(
            f"{(NAT_HOMES if kind.translates else FIREWALLED_HOMES).network_address + 256 * (number + 1)}/24"
        )
        self._namespace(namespace)
        self._plug_into_switch(namespace, address)
        wan, bridge, gateway = self._interface(name), self._interface(name, "-l"), str(lan.network_address + 1)
        system.ip("link", "add", bridge, "type", "bridge", namespace=namespace)
        system.ip("addr", "add", f"{gateway}/{lan.prefixlen}", "dev", bridge, namespace=namespace)
        system.ip("link", "set", bridge, "up", namespace=namespace)
        self._in(namespace, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        for rule in _router_rules(kind, wan, bridge):
            self._in(namespace, ["iptables", *rule])
        if not kind.translates:  # its LAN is public: everyone on the switch routes to it through this router
            route = (str(lan), address, namespace)
            self._routes.append(route)
            for other in self._on_switch:
                if other != namespace:
                    system.ip("route", "add", route[0], "via", route[1], namespace=other)
        home = Home(name, kind, namespace, address, lan, self)
        self.homes[name] = home
        return home

    def _home_host(self, home: Home, name: str) -> Host:
        namespace = self._new_name(name)
        if len(home.hosts) >= 250:
            raise LabFull("hosts in one home", 250)
        address = str(home.network.network_address + 2 + len(home.hosts))
        self._namespace(namespace)
        inside, outside = self._interface(name), self._interface(name, "-x")
        system.ip("link", "add", inside, "netns", namespace, "type", "veth", "peer", "name", outside,
                  "netns", home.namespace)
        system.ip("link", "set", outside, "master", self._interface(home.name, "-l"), "up", namespace=home.namespace)
        system.ip("addr", "add", f"{address}/{home.network.prefixlen}", "dev", inside, namespace=namespace)
        system.ip("link", "set", inside, "up", namespace=namespace)
        system.ip("route", "add", "default", "via", str(home.network.network_address + 1), namespace=namespace)
        host = Host(name, namespace, address, home)
        home.hosts.append(host)
        self.hosts[name] = host
        return host

    # --- running -------------------------------------------------------------------------------------------

    def command(self, host: Host, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` in `host`'s namespace (for a caller that runs it itself, e.g.
        with `trio.run_process`; whatever it leaves running there is killed by `close`)."""
        self._check_open()
        return system.in_namespace(host.namespace, argv)

    def run(
        self, host: Host, argv: Sequence[str], timeout: float = 30.0, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in `host` to its end (text output captured); with `check`, LabCommandFailed unless it
        exits 0 within `timeout`."""
        full = self.command(host, argv)
        try:
            done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        except subprocess.TimeoutExpired as expired:
            stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
            raise LabCommandFailed(argv, None, stderr) from None
        if check and done.returncode != 0:
            raise LabCommandFailed(argv, done.returncode, done.stderr)
        return done

    def spawn(
        self,
        host: Host,
        argv: Sequence[str],
        *,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in `host` (in a session of its own); `close` stops it (SIGTERM, then SIGKILL)."""
        process = subprocess.Popen(
            self.command(host, argv), stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
            start_new_session=True,
        )
        self._processes.append(process)
        return process

    # --- cleanup -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the processes started here, then delete every namespace with the prefix (and so every link,
        bridge and rule in them). Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            _stop(self._processes)
            system.remove_everything(self.prefix)
        finally:
            _open_labs.discard(self)
            self._lock.close()

    def namespaces(self) -> list[str]:
        """Every namespace that exists now with this lab's prefix."""
        return system.namespaces(self.prefix)

    # --- helpers -------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LabClosed()

    def _new_name(self, name: str) -> str:
        self._check_open()
        if not _NAME.match(name) or name == _SWITCH:
            raise BadLabName("name", name, "a letter and up to six letters or digits, and not 'switch'")
        if name in self.hosts or name in self.homes:
            raise BadLabName("name", name, "already used by a host or home of this lab")
        return self.prefix + name

    def _nth(self, network: ipaddress.IPv4Network, index: int, what: str) -> str:
        if _FIRST + index >= network.num_addresses - 1:
            raise LabFull(what, network.num_addresses - 1 - _FIRST)
        return str(network.network_address + _FIRST + index)

    def _interface(self, name: str, suffix: str = "") -> str:
        return self.prefix + name + suffix

    def _bridge(self) -> str:
        return self.prefix + "sw"

    def _namespace(self, namespace: str) -> None:
        system.ip("netns", "add", namespace)
        system.ip("link", "set", "lo", "up", namespace=namespace)

    def _plug_into_switch(self, namespace: str, address: str) -> None:
        """A veth from `namespace` (named like it) to the switch's bridge, with `address` on this side, and
        the routes to the firewalled homes' LANs."""
        inside = namespace
        outside = inside + "-x"
        system.ip("link", "add", inside, "netns", namespace, "type", "veth", "peer", "name", outside,
                  "netns", self.switch)
        system.ip("link", "set", outside, "master", self._bridge(), "up", namespace=self.switch)
        system.ip("addr", "add", f"{address}/{SWITCH_NETWORK.prefixlen}", "dev", inside, namespace=namespace)
        system.ip("link", "set", inside, "up", namespace=namespace)
        self._on_switch.append(namespace)
        for network, via, _ in self._routes:
            system.ip("route", "add", network, "via", via, namespace=namespace)

    def _in(self, namespace: str, argv: Sequence[str]) -> None:
        system.command(system.in_namespace(namespace, argv))


def _router_rules(kind: NatKind, wan: str, lan: str) -> list[list[str]]:
    """A home router's iptables rules: forward what the LAN sends out and what answers it, drop the rest
    (new inbound connections and datagrams); a NAT also masquerades what leaves by the WAN, a symmetric one
    with a random port per flow. New connections to the router itself from the WAN are dropped too, as home
    routers do: answered with a reset, conntrack would keep that flow's tuple, and a hole punch whose SYN
    reaches the router before its host's own SYN left would find the NAT giving the punched port away
    (measured: about half the punches between two cone NATs failed that way, none with this rule)."""
    rules = [
        ["-A", "INPUT", "-i", wan, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
        ["-P", "FORWARD", "DROP"],
        ["-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-A", "FORWARD", "-i", lan, "-o", wan, "-j", "ACCEPT"],
    ]
    if kind is NatKind.CONE:
        rules.append(["-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE"])
    elif kind is NatKind.SYMMETRIC:
        rules.append(["-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE", "--random-fully"])
    return rules


def _stop(processes: list[subprocess.Popen[bytes]], grace: float = 2.0) -> None:
    """SIGTERM each running process's session, SIGKILL what is still there after `grace`, reap them all."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


# --- one live lab per prefix, and cleanup on exit ---------------------------------------------------------------

def _lock(prefix: str, wait: float) -> IO[bytes]:
    """An exclusive lock on the prefix's lock file, held while the lab lives (the kernel drops it when the
    process dies, however it dies); LabBusy after `wait` seconds."""
    directory = "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(directory, f"seattle-netlab-{prefix}lock")
    handle = open(path, "ab")  # noqa: SIM115 - held open for the lab's life, closed by Lab.close
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() - started >= wait:
                handle.close()
                raise LabBusy(prefix, path, wait) from None
            time.sleep(0.1)


_open_labs: set[Lab] = set()
_hooks_installed = False


def _close_all() -> None:
    for lab in list(_open_labs):
        lab.close()


def _install_exit_hooks() -> None:
    """Once per process: close every open lab at exit and on SIGTERM or SIGHUP (then let the signal do what
    it did before: call the previous handler, or end the process as by default). Only the main thread can
    set signal handlers; from another, atexit (and the next lab's removal of leftovers) must do."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_close_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN or previous is None:
                continue
            signal.signal(signum, _on_signal(signum, previous))
        except ValueError:  # not the main thread
            return


def _on_signal(signum: int, previous: Any) -> Any:
    def handle(number: int, frame: FrameType | None) -> None:
        _close_all()
        if callable(previous):
            previous(number, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handle
