"""The memory charge's readings (seattle.vessel.supervisor.memcharge), on this test process itself."""

from __future__ import annotations

import mmap
import os

import psutil
import pytest

from seattle.vessel.supervisor.memcharge import MemoryMeter, memory_charged, unique_bytes_of

MIB = 1024 * 1024

ROLLUP = b"""55d0c0a0b000-7ffd4e3f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               17780 kB
Pss:                6617 kB
Shared_Clean:       5108 kB
Shared_Dirty:       8360 kB
Private_Clean:        12 kB
Private_Dirty:      4312 kB
Anonymous:         12672 kB
Swap:                100 kB
SwapPss:              40 kB
"""


def test_the_unique_set_size_is_private_pages_and_their_share_of_swap() -> None:
    assert unique_bytes_of(ROLLUP) == (12 + 4312 + 40) * 1024


def test_readings_follow_private_memory_and_the_gate_bounds_them() -> None:
    meter = MemoryMeter(os.getpid())
    try:
        before = meter.unique_bytes()
        # Fresh pages, whatever the heap has free already: private anonymous and shared anonymous (shmem).
        blocks = [mmap.mmap(-1, 16 * MIB, flags=mmap.MAP_PRIVATE), mmap.mmap(-1, 16 * MIB, flags=mmap.MAP_SHARED)]
        for block in blocks:
            for offset in range(0, len(block), 4096):
                block[offset] = 1
        bound = meter.upper_bound()  # what the nanny's gate sees before its next full read
        grown = meter.unique_bytes()
        assert 30 * MIB < grown - before < 40 * MIB
        assert bound >= grown  # the gate never hides a charge
        assert abs(grown - psutil.Process().memory_full_info().uss) < 4 * MIB
        for block in blocks:
            block.close()
    finally:
        meter.close()


def test_memory_charged_counts_from_the_baseline_and_never_below_zero() -> None:
    total = memory_charged(os.getpid())
    assert total > 0
    assert memory_charged(os.getpid(), baseline=total * 4) == 0
    assert 0 <= memory_charged(os.getpid(), baseline=total // 2) < total


def test_a_meter_of_a_process_that_is_gone_says_so() -> None:
    with pytest.raises(FileNotFoundError):
        MemoryMeter(2**22 + 12345)  # above the default pid_max: never a live process
