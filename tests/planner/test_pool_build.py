"""`seattle installer build --pool PERCENT [--pool-vessel-size twopercent|PERCENT]`."""

from __future__ import annotations

import os
from pathlib import Path

from seattle.keys import generate_identity, save_identity
from seattle.planner.profile import PoolShare, read_profile
from tests.cli_runner import seattle


def test_build_with_a_pool_signs_it_into_the_profile(tmp_path: Path) -> None:
    save_identity(generate_identity("planner"))
    built = seattle("installer", "build", "--vessel", "70 planner", "--pool", "30", "--out", "i.pyz", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "pool: 30% as 15 vessel(s) of 2% each" in built.stdout
    assert read_profile(tmp_path / "i.profile").pool == PoolShare(30, 2)
    sized = seattle("installer", "build", "--vessel", "70 planner", "--pool", "30", "--pool-vessel-size", "10",
                    "--out", "j.pyz", cwd=tmp_path)
    assert sized.returncode == 0 and read_profile(tmp_path / "j.profile").pool == PoolShare(30, 10)


def test_build_refuses_a_bad_pool_and_writes_nothing(tmp_path: Path) -> None:
    save_identity(generate_identity("planner"))
    over = seattle("installer", "build", "--vessel", "80 planner", "--pool", "30", cwd=tmp_path)
    assert over.returncode == 2 and "80 + 30 (pool) = 110" in over.stderr
    size = seattle("installer", "build", "--vessel", "80 planner", "--pool", "20", "--pool-vessel-size", "big",
                   cwd=tmp_path)
    assert size.returncode == 2 and "neither 'twopercent' nor a whole percent" in size.stderr
    assert os.listdir(tmp_path) == []
