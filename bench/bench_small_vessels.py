"""Small vessels (issue 17): what a vessel is charged for memory, what the nanny pays to measure it, and how many
15 MB vessels one node runs at once with the host memory they really use.

Run: `python bench/bench_small_vessels.py [--vessels 40] [--quick]`. Prints one table.

* The memory charged to an empty vessel (goal < 3 MB; before issue 17 the nanny charged RSS, about 18 MB), with
  its unique set size (USS) and RSS beside it.
* The nanny's cost of a memory check: the full read (/proc/PID/smaps_rollup, the USS) and the cheap gate
  (/proc/PID/status counters), and the share of one core they cost per vessel, idle (gate every 0.1 s, full read once a
  second) and near its allotment (full read every 0.1 s).
* N idle vessels with 15 MB allotments started at once: whether all run, and the host memory they use, counted
  two ways: the sum of every vessel's and supervisor's USS plus the zygote's RSS once (the zygote's pages are the
  ones all share), and the sum of the PSS of every process involved (the kernel's own fair split, which adds up
  to exactly the memory they use), with the per-vessel cost and the vessels a 10 % donation of this machine
  holds at that cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.table import Row, print_table  # noqa: E402
from seattle.resources import DEFAULT_ALLOTMENT  # noqa: E402
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher  # noqa: E402
from seattle.vessel.spec import VesselSpec  # noqa: E402
from seattle.vessel.supervisor.memcharge import MemoryMeter  # noqa: E402
from seattle.vessel.supervisor.nanny import MEMORY_REFRESH  # noqa: E402

MB = 1_000_000
SMALL = DEFAULT_ALLOTMENT.replace(memory=15 * MB)
IDLE = "print('up')\nwhile True:\n    sleep(1.0)\n"
NANNY_PERIOD = 0.1


def rollup(pid: int) -> dict[str, int]:
    """/proc/PID/smaps_rollup in bytes by field name."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return fields


def uss(fields: dict[str, int]) -> int:
    return fields["Private_Clean"] + fields["Private_Dirty"] + fields.get("SwapPss", 0)


async def start_idle(launcher: VesselLauncher, workdir: Path, name: str) -> VesselHandle:
    vessel_dir = workdir / name
    vessel_dir.mkdir(parents=True)
    (vessel_dir / "idle.py").write_text(IDLE)
    handle = await launcher.start(VesselSpec(vessel_dir=vessel_dir, program="idle.py", resources=SMALL))
    with trio.fail_after(60):
        while b"up" not in handle.log.read():
            await trio.sleep(0.02)
    return handle


async def reported_charge(handle: VesselHandle) -> int:
    """The nanny's charge from a usage report that came after the program was up."""
    with trio.fail_after(30):
        first = handle.usage.get("cpu_seconds")
        while handle.usage.get("cpu_seconds") == first or not handle.usage.get("memory"):
            await trio.sleep(0.05)
    charged: int = handle.usage["memory"]
    return charged


def check_costs(pid: int, reads: int) -> tuple[float, float]:
    """Seconds per full read (smaps_rollup) and per gate read (status counters), through descriptors opened once."""
    meter = MemoryMeter(pid)
    try:
        start = time.perf_counter()
        for _ in range(reads):
            meter.unique_bytes()
        full = (time.perf_counter() - start) / reads
        start = time.perf_counter()
        for _ in range(reads):
            meter.anonymous_bytes()
        return full, (time.perf_counter() - start) / reads
    finally:
        meter.close()


async def run_benchmarks(vessels: int, quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="seattle-bench-small-") as tmp:
        workdir = Path(tmp)
        async with VesselLauncher() as launcher:
            handle = await start_idle(launcher, workdir, "empty")
            assert handle.pid is not None
            charged = await reported_charge(handle)
            fields = rollup(handle.pid)
            rows.append(Row("memory charged to an empty vessel", "< 3 MB", f"{charged / MB:.2f} MB",
                            charged < 3 * MB))
            rows.append(Row("  its USS (the prepared process's own pages included)", "-",
                            f"{uss(fields) / MB:.2f} MB", None))
            rows.append(Row("  its RSS (what was charged before)", "-", f"{fields['Rss'] / MB:.2f} MB", None))
            full, gate = check_costs(handle.pid, 500 if quick else 5000)
            rows.append(Row("nanny memory read, full (smaps_rollup: USS)", "-", f"{full * 1e6:.1f} µs", None))
            rows.append(Row("nanny memory read, gate (status: RssAnon + RssShmem + VmSwap)", "-",
                            f"{gate * 1e6:.1f} µs", None))
            idle = (gate / NANNY_PERIOD + full / MEMORY_REFRESH) * 100
            rows.append(Row("  share of a core per idle vessel (gate every 0.1 s, full every 1 s)", "< 0.1 %",
                            f"{idle:.3f} %", idle < 0.1))
            near = (gate + full) / NANNY_PERIOD * 100
            rows.append(Row("  share of a core per vessel near its allotment (full every 0.1 s)", "< 1 %",
                            f"{near:.3f} %", near < 1))
            await handle.stop()

            handles: list[VesselHandle] = []
            started = time.monotonic()
            for number in range(vessels):
                handles.append(await start_idle(launcher, workdir, f"v{number}"))
            start_seconds = time.monotonic() - started
            charges = [await reported_charge(h) for h in handles]
            running = sum(1 for h in handles if h.running)
            rows.append(Row(f"15 MB vessels running at once, idle (started {vessels})", "report",
                            f"{running} (started in {start_seconds:.1f} s)", None))
            children = [rollup(h.pid) for h in handles if h.pid is not None]
            supervisors = [rollup(h.supervisor_pid) for h in handles if h.supervisor_pid is not None]
            zygote_pid = psutil.Process(handles[0].supervisor_pid).ppid()
            zygote = rollup(zygote_pid)
            spare = [p.pid for p in psutil.Process(zygote_pid).children(recursive=True)
                     if p.pid not in {h.pid for h in handles} | {h.supervisor_pid for h in handles}]
            spare_pss = sum(rollup(pid)["Pss"] for pid in spare)
            uss_total = sum(uss(f) for f in children + supervisors) + zygote["Rss"]
            pss_total = sum(f["Pss"] for f in children + supervisors) + zygote["Pss"] + spare_pss
            rows.append(Row("  sum of what they are charged", "-", f"{sum(charges) / MB:.1f} MB "
                            f"(median {statistics.median(charges) / MB:.2f} MB)", None))
            rows.append(Row("  host memory: Σ USS (vessels + supervisors) + zygote RSS once", "-",
                            f"{uss_total / MB:.1f} MB ({uss_total / vessels / MB:.2f} MB a vessel)", None))
            rows.append(Row("  host memory: Σ PSS of every process (cross-check)", "-",
                            f"{pss_total / MB:.1f} MB ({pss_total / vessels / MB:.2f} MB a vessel)", None))
            overhead = (uss_total - zygote["Rss"] - sum(charges)) / vessels
            rows.append(Row("  per-vessel overhead not charged (prepared process + supervisor USS)", "-",
                            f"{overhead / MB:.2f} MB", None))
            donation = psutil.virtual_memory().total // 10
            fit = int((donation - zygote["Rss"]) // (15 * MB + overhead))
            rows.append(Row(f"15 MB vessels a 10 % donation of this host holds ({donation / MB:,.0f} MB)",
                            "report", f"{fit} (zygote once + 15 MB + overhead each)", None))
            bound = vessels * (15 * MB + overhead) + zygote["Rss"]
            rows.append(Row("  host memory within Σ (allotment + overhead) + zygote", "Σ PSS ≤ bound",
                            f"{pss_total / MB:.1f} MB ≤ {bound / MB:.1f} MB", pss_total <= bound))
            for h in handles:
                await h.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vessels", type=int, default=40, help="idle 15 MB vessels to start at once")
    parser.add_argument("--quick", action="store_true", help="10 vessels and fewer timing reads")
    args = parser.parse_args()
    vessels = 10 if args.quick else args.vessels
    rows = trio.run(run_benchmarks, vessels, args.quick)
    print_table("Small vessels (issue 17): memory charged, the nanny's cost, vessels per node", rows)


if __name__ == "__main__":
    main()
