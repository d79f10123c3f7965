"""Vessel benchmarks: start latency, pure-Python speed, API call overhead, and renewable-resource rates.

Run: `python bench/bench_vessel.py [--quick]`. Prints one table, each figure with its goal beside it. The
baseline for speed is plain CPython running the same code in the same run. The rate figures send real UDP
traffic; `netsend` needs a non-loopback destination, so the script re-runs itself inside a network namespace
it creates (as root), gives that namespace's `lo` one extra address, and sends only to that address.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.resources import DEFAULT_ALLOTMENT, Resources  # noqa: E402
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher  # noqa: E402
from seattle.vessel.spec import VesselSpec  # noqa: E402

NETNS_ADDRESS = "10.250.0.1"  # exists only inside the private network namespace this script creates

WORK = """
def work(n):
    total = 0
    table = {}
    for i in range(n):
        total = (total + i * i) % 1000003
        table[i % 97] = total
        if i % 3 == 0:
            total = total ^ (i & 255)
    return total
"""

THROUGHPUT_PROGRAM = WORK + """
best = None
for attempt in range(5):
    start = getruntime()
    work(ITERATIONS)
    elapsed = getruntime() - start
    if best is None or elapsed < best:
        best = elapsed
log(best)
"""

OVERHEAD_PROGRAM = """
def plain():
    return 1

def timed(fn, n):
    start = getruntime()
    for i in range(n):
        fn()
    return (getruntime() - start) / n

n = ITERATIONS
base = min([timed(plain, n) for i in range(3)])
inproc = min([timed(getthreadname, n) for i in range(3)])
brokered = min([timed(getmyip, n // 10) for i in range(3)])
log(base, inproc, brokered)
"""

RATE_PROGRAMS = {
    "fileread": """
f = openfile('data', True)
f.writeat(b'x' * 65536, 0)
start = getruntime()
done = 0
while getruntime() - start < SECONDS:
    done = done + len(f.readat(4096, 0))
log(done / (getruntime() - start))
""",
    "filewrite": """
f = openfile('data', True)
start = getruntime()
done = 0
while getruntime() - start < SECONDS:
    f.writeat(b'y' * 4096, 0)
    done = done + 4096
log(done / (getruntime() - start))
""",
    "random": """
start = getruntime()
done = 0
while getruntime() - start < SECONDS:
    done = done + len(randombytes())
log(done / (getruntime() - start))
""",
    "netsend": """
ip = getmyip()
sink = listenformessage(ip, 63101)
start = getruntime()
done = 0
while getruntime() - start < SECONDS:
    done = done + sendmessage(ip, 63101, b'z' * 1024, ip, 63100) + 64
    try:
        while True:
            sink.getmessage()
    except SocketWouldBlockError:
        pass
log(done / (getruntime() - start))
""",
}

RATE_ALLOTMENT = {"fileread": 1_000_000, "filewrite": 1_000_000, "random": 100_000, "netsend": 200_000}


async def start_program(launcher: VesselLauncher, workdir: Path, name: str, source: str,
                        resources: Resources, local_ips: tuple[str, ...] = ("127.0.0.1",)) -> VesselHandle:
    vessel_dir = workdir / name
    vessel_dir.mkdir(parents=True, exist_ok=True)
    (vessel_dir / "program.py").write_text(source)
    spec = VesselSpec(vessel_dir=vessel_dir, program="program.py", resources=resources, local_ips=local_ips)
    return await launcher.start(spec)


async def finished_log(handle: VesselHandle, timeout: float = 300) -> str:
    with trio.fail_after(timeout):
        code = await handle.wait()
    text = handle.log.read().decode()
    if code != 0:
        raise RuntimeError(f"benchmark program failed ({handle.reason}):\n{text}")
    return text


async def measure_start_latency(launcher: VesselLauncher, workdir: Path, count: int) -> tuple[list[float], list[float]]:
    """Per start: seconds from the host's start request to the program's first bytecode, and to the host
    receiving its first output.

    The program's first statement logs getruntime(), which counts from the host's start request on the
    host-wide monotonic clock, so it is the start-to-first-bytecode time itself.
    """
    to_bytecode, to_output = [], []
    vessel_dir = workdir / "start"
    vessel_dir.mkdir()
    (vessel_dir / "program.py").write_text("log(getruntime())\n")
    spec = VesselSpec(vessel_dir=vessel_dir, program="program.py", resources=DEFAULT_ALLOTMENT)
    for attempt in range(count + 1):
        first_output = trio.Event()
        began = time.perf_counter()
        handle = await launcher.start(spec, on_output=lambda _data, e=first_output: e.set())
        await first_output.wait()
        output_latency = time.perf_counter() - began
        await handle.wait()
        if attempt:  # the first start also waits for the zygote to boot
            to_bytecode.append(float(handle.log.read()))
            to_output.append(output_latency)
    return to_bytecode, to_output


def plain_cpython_seconds(n: int) -> float:
    """The same work in a plain `python` process, best of five."""
    shims = "import time\ngetruntime = time.perf_counter\nlog = print\n"
    code = shims + THROUGHPUT_PROGRAM.replace("ITERATIONS", str(n))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run_benchmarks(quick: bool, with_netsend: bool) -> list[Row]:
    rows: list[Row] = []
    full_cpu = DEFAULT_ALLOTMENT.replace(cpu=1.0)
    with tempfile.TemporaryDirectory(prefix="seattle-bench-") as tmp:
        workdir = Path(tmp)
        async with VesselLauncher() as launcher:
            to_bytecode, to_output = await measure_start_latency(launcher, workdir, 30 if quick else 200)
            p50, p99 = statistics.median(to_bytecode) * 1000, percentile(to_bytecode, 0.99) * 1000
            rows.append(Row("start to first user bytecode, forked: p50", "< 10 ms", f"{p50:.2f} ms", p50 < 10))
            rows.append(Row("start to first user bytecode, forked: p99", "< 25 ms", f"{p99:.2f} ms", p99 < 25))
            p50 = statistics.median(to_output) * 1000
            rows.append(Row("start to the host reading the first output: p50", "-", f"{p50:.2f} ms", None))

            n = 300_000 if quick else 2_000_000
            handle = await start_program(launcher, workdir, "throughput",
                                         THROUGHPUT_PROGRAM.replace("ITERATIONS", str(n)), full_cpu)
            vessel_seconds = float(await finished_log(handle))
            plain_seconds = plain_cpython_seconds(n)
            ratio = plain_seconds / vessel_seconds
            rows.append(Row("pure-Python throughput, vessel / plain CPython", "≥ 0.95", f"{ratio:.3f}",
                            ratio >= 0.95))

            # getmyip charges netsend/netrecv; a generous rate keeps the token bucket out of the measurement.
            unmetered = full_cpu.replace(netsend=10**10, netrecv=10**10)
            handle = await start_program(launcher, workdir, "overhead",
                                         OVERHEAD_PROGRAM.replace("ITERATIONS", str(20_000 if quick else 200_000)),
                                         unmetered)
            base, inproc, brokered = (float(x) for x in (await finished_log(handle)).split())
            inproc_us, brokered_us = (inproc - base) * 1e6, (brokered - base) * 1e6
            rows.append(Row("API call overhead, in-process (getthreadname)", "< 2 µs", f"{inproc_us:.2f} µs",
                            inproc_us < 2))
            rows.append(Row("API call overhead, brokered (getmyip round trip)", "< 50 µs",
                            f"{brokered_us:.1f} µs", brokered_us < 50))

            seconds = 3 if quick else 10
            rate_handles = {}
            for resource, rate in RATE_ALLOTMENT.items():
                if resource == "netsend" and not with_netsend:
                    continue
                allotment = full_cpu.replace(**{resource: rate})
                ips = (NETNS_ADDRESS,) if resource == "netsend" else ("127.0.0.1",)
                source = RATE_PROGRAMS[resource].replace("SECONDS", str(seconds))
                rate_handles[resource] = await start_program(launcher, workdir, resource, source, allotment, ips)
            for resource, handle in rate_handles.items():
                measured = float(await finished_log(handle))
                error = (measured - RATE_ALLOTMENT[resource]) / RATE_ALLOTMENT[resource] * 100
                rows.append(Row(f"{resource} rate over {seconds} s (allotment {RATE_ALLOTMENT[resource]:,} B/s)",
                                "within ±10 %", f"{measured:,.0f} B/s ({error:+.1f} %)", abs(error) <= 10))
            if not with_netsend:
                rows.append(Row("netsend rate", "within ±10 %", "not measured: needs root and `ip` for a "
                                "private network namespace", False))
    return rows


def in_private_netns() -> bool:
    return os.environ.get("SEATTLE_BENCH_NETNS") == NETNS_ADDRESS


def reexec_in_netns() -> int | None:
    """Re-run this script in a new network namespace with a dummy interface; None if that is not possible."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    setup = (f"ip link set lo up && ip addr add {NETNS_ADDRESS}/32 dev lo "
             f"&& exec {sys.executable} {' '.join(map(repr, sys.argv))}")
    env = dict(os.environ, SEATTLE_BENCH_NETNS=NETNS_ADDRESS)
    return subprocess.run(["unshare", "--net", "sh", "-c", setup], env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and 3 s rate runs (smoke test)")
    args = parser.parse_args()
    if not in_private_netns():
        code = reexec_in_netns()
        if code is not None:
            sys.exit(code)
    rows = trio.run(run_benchmarks, args.quick, in_private_netns())
    print_table("Vessel benchmarks", rows)


if __name__ == "__main__":
    main()
