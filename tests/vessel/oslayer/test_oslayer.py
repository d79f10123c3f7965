"""The OS layers, each on its own and all together, in real forked children.

Every test forks a child that applies a plan, tries something forbidden (or ordinary), and reports the
outcome through a pipe as JSON; the parent asserts. An outcome is "ok" or the exception's class name
with its errno, e.g. "PermissionError:13". Where the host lacks a layer, the test asserts instead that
`detect()` says so and why.
"""

from __future__ import annotations

import errno
import json
import math
import os
import resource
import select
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from seattle.vessel.oslayer import (
    LAYER_NAMES,
    HostSupport,
    LayerPlan,
    SandboxSetupError,
    apply_layers,
    default_readonly_paths,
    detect,
    probe,
)
from seattle.vessel.oslayer.baseline import PR_GET_NO_NEW_PRIVS, prctl
from seattle.vessel.oslayer.capabilities import effective_capabilities
from seattle.vessel.oslayer.namespaces import CLONE_NEWUSER, unshare
from seattle.vessel.oslayer.rlimits import THREAD_ALLOWANCE, address_space_limit

MiB = 2**20
NOBODY = 65534
CHILD_TIMEOUT = 30.0
PR_SET_DUMPABLE = 4

Outcome = str


def outcome(action: Callable[[], object]) -> Outcome:
    """"ok", or what the action raised: the class name, and the errno for an OSError."""
    try:
        action()
    except OSError as exc:
        return f"{type(exc).__name__}:{exc.errno}"
    except Exception as exc:
        return type(exc).__name__
    return "ok"


DENIED = f"PermissionError:{errno.EACCES}"  # what Landlock answers
EPERM = f"PermissionError:{errno.EPERM}"  # what seccomp (and Landlock scoping) answer


def run_in_child(body: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Fork; the child runs `body` and sends its dict back as JSON. A child error fails the test."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            try:
                report: dict[str, object] = {"result": body()}
            except BaseException as exc:
                report = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + CHILD_TIMEOUT
    try:
        while select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert chunks, f"the child sent no report (wait status {status:#x})"
    report = json.loads(b"".join(chunks))
    assert "error" not in report, report.get("trace")
    return report["result"]


def make_plan(vessel_dir: Path, *layers: str, memory_bytes: int = 256 * MiB, **limits: int) -> LayerPlan:
    return LayerPlan(
        vessel_dir=vessel_dir,
        memory_bytes=memory_bytes,
        max_open_files=limits.get("max_open_files", 64),
        max_file_bytes=limits.get("max_file_bytes", 4 * MiB),
        layers=frozenset(layers),
    )


def host_has(layer: str) -> bool:
    """Whether the host supports `layer`; if not, assert that detect() says why, so nothing is hidden."""
    support = detect()
    if layer in support.available():
        return True
    assert support.details[layer].startswith("no "), support.details
    return False


@pytest.fixture
def other_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the vessel holding a secret file."""
    directory = tmp_path_factory.mktemp("elsewhere")
    (directory / "secret.txt").write_text("host secret")
    return directory


@pytest.fixture
def listener() -> socket.socket:
    """A TCP listener on loopback in the test's own network namespace, non-blocking for accept checks."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def accepted_nothing(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


# ---------------------------------------------------------------- detection and plans


@pytest.mark.slow
def test_detect_names_every_layer_and_is_cached() -> None:
    support = detect()
    assert detect() is support
    assert set(LAYER_NAMES) <= set(support.details)
    assert all(sentence for sentence in support.details.values())
    assert "rlimits" in support.available()
    assert ("namespaces" in support.available()) == support.net_namespaces
    assert ("landlock" in support.available()) == (support.landlock_abi > 0)
    assert ("seccomp" in support.available()) == support.seccomp
    assert support.can_confine_untrusted() == (support.seccomp or support.landlock_abi > 0)
    for layer in LAYER_NAMES:
        if layer not in support.available():
            assert support.details[layer].startswith("no "), support.details


@pytest.mark.slow
def test_probe_leaves_the_caller_unconfined() -> None:
    namespace = os.readlink("/proc/self/ns/net")
    probe()
    assert os.readlink("/proc/self/ns/net") == namespace
    assert prctl(PR_GET_NO_NEW_PRIVS, what="prctl(PR_GET_NO_NEW_PRIVS)") == 0
    status = Path("/proc/self/status").read_text()
    assert "Seccomp:\t0" in status


def test_unusable_host_is_reported_with_reasons() -> None:
    support = HostSupport(False, 0, False, False, {})
    assert support.available() == frozenset({"rlimits"})
    assert not support.can_confine_untrusted()


def test_default_readonly_paths_cover_the_interpreter_and_nothing_broad() -> None:
    paths = default_readonly_paths()
    assert Path(os.__file__).resolve().parent in paths
    assert all(path.exists() and path.is_absolute() for path in paths)
    for broad in ("/", "/etc", "/home", "/root", "/tmp", "/proc", "/usr"):
        assert Path(broad) not in paths


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"memory_bytes": 0}, "memory_bytes must be a positive int"),
        ({"max_open_files": -1}, "max_open_files must be a positive int"),
        ({"max_file_bytes": 1.5}, "max_file_bytes must be a positive int"),
        ({"layers": frozenset({"seccomp", "selinux"})}, r"unknown layer\(s\) \['selinux'\]"),
        ({"layers": {"seccomp"}}, "layers must be a frozenset"),
        ({"vessel_dir": Path("relative")}, "vessel_dir must be an absolute Path"),
        ({"vessel_dir": Path("/nonexistent/vessel")}, "is not an existing directory"),
        ({"readonly_paths": ("usr",)}, "readonly_paths must hold absolute Paths"),
    ],
)
def test_plan_rejects_bad_input(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "vessel_dir": tmp_path,
        "memory_bytes": MiB,
        "max_open_files": 16,
        "max_file_bytes": MiB,
        "layers": frozenset(LAYER_NAMES),
    }
    with pytest.raises(ValueError, match=message):
        LayerPlan(**{**fields, **changes})


def test_plan_refuses_a_vessel_dir_holding_interpreter_files(tmp_path: Path) -> None:
    inside = tmp_path / "lib"
    inside.mkdir()
    with pytest.raises(ValueError, match="contains the read-only path"):
        LayerPlan(tmp_path, MiB, 16, MiB, frozenset(), readonly_paths=(inside,))


# ---------------------------------------------------------------- always applied


@pytest.mark.slow
def test_baseline_is_applied_even_with_no_layers(tmp_path: Path) -> None:
    def body() -> dict[str, object]:
        applied = apply_layers(make_plan(tmp_path), detect())
        return {
            "applied": list(applied),
            "no_new_privs": prctl(PR_GET_NO_NEW_PRIVS, what="get"),
            "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
            "capabilities": effective_capabilities(),
        }

    result = run_in_child(body)
    assert result["applied"] == []
    assert result["no_new_privs"] == 1
    assert result["core"] == [0, 0]
    assert result["capabilities"] == 0


@pytest.mark.slow
def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    """The middle process exits once the layers are on; its confined child must die by the death signal.

    The middle waits for "ready" because a parent that dies before the child's prctl cannot be noticed
    by the kernel; the caller of apply_layers must compare getppid() with the pid it forked from.
    """
    plan = make_plan(tmp_path)
    ready_read, ready_write = os.pipe()  # grandchild -> middle: the layers are on
    alive_read, alive_write = os.pipe()  # grandchild -> test: its pid; open for as long as it lives
    middle = os.fork()
    if middle == 0:
        try:
            os.close(alive_read)
            if os.fork() == 0:
                apply_layers(plan, detect())
                os.write(alive_write, f"{os.getpid()}\n".encode())
                os.write(ready_write, b"ready")
                time.sleep(CHILD_TIMEOUT)  # only the death signal ends this early
            else:
                os.close(alive_write)
                os.read(ready_read, 100)
        finally:
            os._exit(0)
    for unused in (alive_write, ready_write, ready_read):
        os.close(unused)
    os.waitpid(middle, 0)
    try:
        grandchild = int(os.read(alive_read, 100))
        gone = select.select([alive_read], [], [], 10)[0] and os.read(alive_read, 1) == b""
        if not gone:
            os.kill(grandchild, signal.SIGKILL)
            pytest.fail("the grandchild outlived its parent")
    finally:
        os.close(alive_read)


@pytest.mark.slow
def test_apply_refuses_a_threaded_process(tmp_path: Path) -> None:
    def body() -> dict[str, object]:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            apply_layers(make_plan(tmp_path, "landlock"), detect())
        except SandboxSetupError as exc:
            return {"error": str(exc)}
        finally:
            stop.set()
            thread.join()
        return {"error": None}

    assert "single-threaded" in str(run_in_child(body)["error"])


@pytest.mark.slow
def test_unavailable_layers_are_skipped(tmp_path: Path) -> None:
    bare = HostSupport(seccomp=False, landlock_abi=0, user_namespaces=False, net_namespaces=False)

    def body() -> dict[str, object]:
        applied = apply_layers(make_plan(tmp_path, *LAYER_NAMES), bare)
        pid = os.fork()  # no seccomp was applied, so this must still work
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        return {"applied": list(applied), "fork_status": os.waitstatus_to_exitcode(status)}

    assert run_in_child(body) == {"applied": ["rlimits"], "fork_status": 7}


@pytest.mark.slow
def test_failing_layer_raises_naming_it(tmp_path: Path) -> None:
    if not host_has("landlock"):
        return
    missing = tmp_path.parent / "no-such-dir"
    plan = LayerPlan(tmp_path, 256 * MiB, 64, MiB, frozenset({"landlock"}), readonly_paths=(missing,))

    def body() -> dict[str, object]:
        try:
            apply_layers(plan, detect())
        except SandboxSetupError as exc:
            return {"error": str(exc)}
        return {"error": None}

    message = str(run_in_child(body)["error"])
    assert "landlock layer" in message
    assert str(missing) in message


# ---------------------------------------------------------------- rlimits


@pytest.mark.slow
def test_rlimits_memory_stops_a_big_allocation_but_lets_64_threads_start(tmp_path: Path) -> None:
    memory = 64 * MiB

    def body() -> dict[str, object]:
        limit = address_space_limit(memory)
        apply_layers(make_plan(tmp_path, "rlimits", memory_bytes=memory), detect())
        half = outcome(lambda: bytearray(memory // 2))
        huge = outcome(lambda: bytearray(limit))
        stop, started = threading.Event(), []

        def worker() -> None:
            started.append(bytearray(64 * 1024))
            stop.wait()

        threads = [threading.Thread(target=worker) for _ in range(THREAD_ALLOWANCE)]
        for thread in threads:
            thread.start()
        stop.set()
        for thread in threads:
            thread.join()
        return {"half": half, "huge": huge, "started": len(started)}

    assert run_in_child(body) == {"half": "ok", "huge": "MemoryError", "started": THREAD_ALLOWANCE}


@pytest.mark.slow
def test_rlimits_file_size(tmp_path: Path) -> None:
    limit = 256 * 1024

    def body() -> dict[str, object]:
        apply_layers(make_plan(tmp_path, "rlimits", max_file_bytes=limit), detect())
        exact = outcome(lambda: (tmp_path / "exact").write_bytes(b"x" * limit))
        over = outcome(lambda: (tmp_path / "over").write_bytes(b"x" * (limit + 1)))
        return {"exact": exact, "over": over}

    assert run_in_child(body) == {"exact": "ok", "over": f"OSError:{errno.EFBIG}"}


@pytest.mark.slow
def test_rlimits_open_files(tmp_path: Path) -> None:
    def body() -> dict[str, object]:
        apply_layers(make_plan(tmp_path, "rlimits", max_open_files=32), detect())
        opened = []
        try:
            while len(opened) < 100:
                opened.append(os.open(tmp_path, os.O_RDONLY))
        except OSError as exc:
            return {"errno": exc.errno, "highest": max(opened)}
        return {"errno": None}

    result = run_in_child(body)
    assert result["errno"] == errno.EMFILE
    assert result["highest"] == 31


def _become_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    prctl(PR_SET_DUMPABLE, 1, what="prctl(PR_SET_DUMPABLE)")  # what an ordinary unprivileged process is


def _threads_until_refused(limit: int = 200) -> int:
    stop, threads = threading.Event(), []
    try:
        while len(threads) < limit:
            thread = threading.Thread(target=stop.wait)
            thread.start()
            threads.append(thread)
    except RuntimeError:  # "can't start new thread"
        pass
    stop.set()
    for thread in threads:
        thread.join()
    return len(threads)


@pytest.mark.slow
def test_rlimits_caps_threads_of_an_unprivileged_child(tmp_path: Path) -> None:
    """RLIMIT_NPROC: the uid's tasks now plus THREAD_ALLOWANCE (other `nobody` tasks may take a few)."""

    plan = make_plan(tmp_path, "rlimits", memory_bytes=1024 * MiB)

    def body() -> dict[str, object]:
        _become_nobody()
        applied = apply_layers(plan, detect())
        return {"applied": list(applied), "started": _threads_until_refused()}

    result = run_in_child(body)
    assert result["applied"] == ["rlimits"]
    assert THREAD_ALLOWANCE // 2 <= result["started"] <= THREAD_ALLOWANCE


# ---------------------------------------------------------------- landlock


@pytest.mark.slow
def test_landlock_confines_files_to_the_vessel(tmp_path: Path, other_dir: Path) -> None:
    if not host_has("landlock"):
        return
    (tmp_path / "mine.txt").write_text("vessel data")
    (tmp_path / "link").symlink_to(other_dir / "secret.txt")

    def body() -> dict[str, object]:
        applied = apply_layers(make_plan(tmp_path, "landlock"), detect())
        escape = tmp_path / ".." / other_dir.name / "secret.txt"
        return {
            "applied": list(applied),
            "read own": (tmp_path / "mine.txt").read_text(),
            "write own": outcome(lambda: (tmp_path / "new.txt").write_text("written")),
            "read back": (tmp_path / "new.txt").read_text(),
            "remove own": outcome(lambda: (tmp_path / "new.txt").unlink()),
            "list own": sorted(os.listdir(tmp_path)),
            "hostname": outcome(lambda: Path("/etc/hostname").read_text()),
            "other tmp": outcome(lambda: (other_dir / "secret.txt").read_text()),
            "symlink out": outcome(lambda: (tmp_path / "link").read_text()),
            "dotdot": outcome(lambda: escape.read_text()),
            "write out": outcome(lambda: (other_dir / "dropped.txt").write_text("x")),
            "hard link in": outcome(lambda: os.link(other_dir / "secret.txt", tmp_path / "hard")),
            "make symlink": outcome(lambda: (tmp_path / "sym").symlink_to("/etc/passwd")),
            "make dir": outcome(lambda: (tmp_path / "sub").mkdir()),
            "stdlib": outcome(lambda: "é".encode("cp1252")),  # a lazy import from the stdlib
        }

    result = run_in_child(body)
    assert result == {
        "applied": ["landlock"],
        "read own": "vessel data",
        "write own": "ok",
        "read back": "written",
        "remove own": "ok",
        "list own": ["link", "mine.txt"],
        "hostname": DENIED,
        "other tmp": DENIED,
        "symlink out": DENIED,
        "dotdot": DENIED,
        "write out": DENIED,
        "hard link in": f"OSError:{errno.EXDEV}",
        "make symlink": DENIED,
        "make dir": DENIED,
        "stdlib": "ok",
    }
    assert not (other_dir / "dropped.txt").exists()


@pytest.mark.slow
def test_landlock_denies_tcp(tmp_path: Path, listener: socket.socket) -> None:
    if not host_has("landlock"):
        return
    if detect().landlock_abi < 4:
        assert "TCP" not in detect().details["landlock"]
        return
    port = listener.getsockname()[1]

    def body() -> dict[str, object]:
        apply_layers(make_plan(tmp_path, "landlock"), detect())
        with socket.socket() as client:
            connect = outcome(lambda: client.connect(("127.0.0.1", port)))
        with socket.socket() as server:
            bind = outcome(lambda: server.bind(("127.0.0.1", 0)))
        return {"connect": connect, "bind": bind}

    assert run_in_child(body) == {"connect": DENIED, "bind": DENIED}
    assert accepted_nothing(listener)


@pytest.mark.slow
def test_landlock_scopes_signals_and_abstract_sockets(tmp_path: Path) -> None:
    if not host_has("landlock"):
        return
    if detect().landlock_abi < 6:
        assert "scoping" not in detect().details["landlock"]
        return
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(f"\0seattle-oslayer-test-{os.getpid()}")
    abstract.listen(1)
    parent = os.getpid()

    def body() -> dict[str, object]:
        apply_layers(make_plan(tmp_path, "landlock"), detect())
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            connect = outcome(lambda: client.connect(abstract.getsockname()))
        return {
            "signal parent": outcome(lambda: os.kill(parent, 0)),
            "signal self": outcome(lambda: os.kill(os.getpid(), 0)),
            "abstract connect": connect,
        }

    try:
        assert run_in_child(body) == {"signal parent": EPERM, "signal self": "ok", "abstract connect": EPERM}
    finally:
        abstract.close()


# ---------------------------------------------------------------- seccomp


@pytest.mark.slow
def test_seccomp_denies_processes_and_sockets_but_not_threads(tmp_path: Path) -> None:
    if not host_has("seccomp"):
        return
    broker_parent, broker_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent = os.getpid()

    def body() -> dict[str, object]:
        broker_parent.close()
        applied = apply_layers(make_plan(tmp_path, "seccomp"), detect())
        box: list[int] = []
        thread = threading.Thread(target=lambda: box.append(sum(range(1000))))
        thread.start()
        thread.join()
        broker_child.send(b"request from the child")  # the broker client sends with send (sendmsg is denied)
        reply, _, _, _ = broker_child.recvmsg(100)
        return {
            "applied": list(applied),
            "fork": outcome(os.fork),
            "execv": outcome(lambda: os.execv("/bin/true", ["true"])),
            "subprocess": outcome(lambda: subprocess.run(["/bin/true"], check=False)),
            "inet socket": outcome(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
            "inet6 socket": outcome(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)),
            "unix socket": outcome(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
            "socketpair": outcome(socket.socketpair),
            "sendmsg": outcome(lambda: broker_child.sendmsg([b"x"])),
            "unshare": outcome(lambda: unshare(CLONE_NEWUSER)),
            "signal parent": outcome(lambda: os.kill(parent, 0)),
            "signal group": outcome(lambda: os.kill(0, 0)),
            "signal self": outcome(lambda: os.kill(os.getpid(), 0)),
            "thread": box,
            "reply": reply.decode(),
        }

    received: dict[str, str] = {}

    def serve() -> None:
        """The supervisor's side of the broker: answer one request."""
        received["request"] = broker_parent.recv(100).decode()
        broker_parent.sendmsg([b"reply from the supervisor"])

    broker_parent.settimeout(CHILD_TIMEOUT)
    server = threading.Thread(target=serve)
    server.start()
    try:
        result = run_in_child(body)
    finally:
        server.join(timeout=CHILD_TIMEOUT)
        broker_parent.close()
        broker_child.close()
    assert received == {"request": "request from the child"}
    assert result == {
        "applied": ["seccomp"],
        "fork": EPERM,
        "execv": EPERM,
        "subprocess": EPERM,
        "inet socket": EPERM,
        "inet6 socket": EPERM,
        "unix socket": EPERM,
        "socketpair": EPERM,
        "sendmsg": EPERM,
        "unshare": EPERM,
        "signal parent": EPERM,
        "signal group": EPERM,
        "signal self": "ok",
        "thread": [499500],
        "reply": "reply from the supervisor",
    }


# ---------------------------------------------------------------- namespaces


@pytest.mark.slow
def test_namespaces_cut_the_child_off_the_network(tmp_path: Path, listener: socket.socket) -> None:
    if not host_has("namespaces"):
        return
    port = listener.getsockname()[1]
    host_namespace = os.readlink("/proc/self/ns/net")

    def body() -> dict[str, object]:
        applied = apply_layers(make_plan(tmp_path, "namespaces"), detect())
        with socket.socket() as client:
            connect = outcome(lambda: client.connect(("127.0.0.1", port)))
        return {
            "applied": list(applied),
            "connect": connect,
            "interfaces": [name for _, name in socket.if_nameindex()],
            "moved": os.readlink("/proc/self/ns/net") != host_namespace,
        }

    assert run_in_child(body) == {
        "applied": ["namespaces"],
        "connect": f"OSError:{errno.ENETUNREACH}",
        "interfaces": ["lo"],
        "moved": True,
    }
    assert accepted_nothing(listener)


@pytest.mark.slow
def test_namespaces_for_an_unprivileged_child(tmp_path: Path, listener: socket.socket) -> None:
    """Without root the layer goes through a user namespace; the child keeps its own uid and gets
    an exact thread allowance, because the kernel counts RLIMIT_NPROC per user namespace."""
    port = listener.getsockname()[1]
    plan = make_plan(tmp_path, "namespaces", "rlimits", memory_bytes=1024 * MiB)

    def body() -> dict[str, object]:
        _become_nobody()
        support = probe()  # as nobody: the unprivileged route
        if not support.net_namespaces:
            return {"reason": support.details["namespaces"]}
        applied = apply_layers(plan, support)
        with socket.socket() as client:
            connect = outcome(lambda: client.connect(("127.0.0.1", port)))
        return {
            "applied": list(applied),
            "connect": connect,
            "uid": os.getuid(),
            "started": _threads_until_refused(),
        }

    result = run_in_child(body)
    if "reason" in result:
        assert str(result["reason"]).startswith("no network namespace: ")
        return
    assert result == {
        "applied": ["namespaces", "rlimits"],
        "connect": f"OSError:{errno.ENETUNREACH}",
        "uid": NOBODY,
        "started": THREAD_ALLOWANCE,
    }
    assert accepted_nothing(listener)


# ---------------------------------------------------------------- all together


@pytest.mark.slow
def test_all_layers_still_run_an_ordinary_program(
    tmp_path: Path, other_dir: Path, listener: socket.socket
) -> None:
    (tmp_path / "input.txt").write_text("\n".join(str(n) for n in range(1, 101)))
    port = listener.getsockname()[1]

    def body() -> dict[str, object]:
        applied = apply_layers(make_plan(tmp_path, *LAYER_NAMES, memory_bytes=64 * MiB), detect())
        numbers = [int(line) for line in (tmp_path / "input.txt").read_text().split()]
        totals: dict[int, float] = {}

        def work(index: int) -> None:
            totals[index] = math.fsum(math.sqrt(n) * index for n in numbers)

        threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        (tmp_path / "output.json").write_text(json.dumps({"sum": sum(numbers), "threads": len(totals)}))
        with socket.socket(fileno=os.dup(listener.fileno())) as inherited:
            inherited_name = inherited.getsockname()[1]
        return {
            "applied": list(applied),
            "output": json.loads((tmp_path / "output.json").read_text()),
            "random": len(os.urandom(16)),
            "inherited socket": inherited_name == port,
            "secret": outcome(lambda: (other_dir / "secret.txt").read_text()),
            "fork": outcome(os.fork),
            "connect": outcome(lambda: socket.create_connection(("127.0.0.1", port), timeout=1)),
        }

    result = run_in_child(body)
    available = detect().available()
    in_order = ("namespaces", "rlimits", "landlock", "seccomp")
    assert result["applied"] == [name for name in in_order if name in available]
    assert result["output"] == {"sum": 5050, "threads": 8}
    assert result["random"] == 16
    assert result["inherited socket"] is True
    if "landlock" in available:
        assert result["secret"] == DENIED
    if "seccomp" in available:
        assert result["fork"] == EPERM
        assert result["connect"] == EPERM
    assert accepted_nothing(listener)


@pytest.mark.slow
def test_landlock_rule_for_a_file_keeps_only_file_rights(tmp_path: Path) -> None:
    """/dev/null and /etc/ld.so.cache are files: a directory right on them would make the kernel refuse."""
    if not host_has("landlock"):
        return

    def body() -> dict[str, object]:
        apply_layers(make_plan(tmp_path, "landlock"), detect())
        return {
            "null": outcome(lambda: Path("/dev/null").read_bytes()),
            "write null": outcome(lambda: Path("/dev/null").write_bytes(b"x")),
        }

    assert run_in_child(body) == {"null": "ok", "write null": DENIED}

