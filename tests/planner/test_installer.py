"""`seattle installer build` and the installer it writes, run into a fresh virtual environment.

This machine has no network, and one dependency (pyseccomp) is in no local package index, so the test runs
the installer with `--pip-args "--no-deps --no-index"` and makes the dependencies visible through PYTHONPATH
(this test environment's site-packages). Everything else is the real thing: the installer creates the
virtual environment, pip installs the wheel it carries, and the installed `seattle` (not this source tree)
creates, starts, reports and uninstalls the node, each as a subprocess. `seattle installer build` itself runs in
process (tests/cli_runner.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from seattle.keys import generate_identity, save_identity
from seattle.planner.installer import PROFILE_MEMBER, build_installer
from seattle.planner.profile import read_profile
from tests.cli_runner import seattle


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def _tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files}


@pytest.mark.slow
def test_build_install_start_and_uninstall(tmp_path: Path) -> None:
    planner, bob = generate_identity("planner"), generate_identity("bob")
    save_identity(planner)
    save_identity(bob)
    built = seattle("installer", "build", "--as", "planner", "--vessel", "80 planner bob", "--vessel", "20 bob",
                    "--bootstrap", "127.0.0.1:9", "--out", "installer.pyz", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "v1: 80%" in built.stdout and "v2: 20%" in built.stdout
    profile = read_profile(tmp_path / "installer.profile")
    assert profile.planner == planner.public_key and profile.bootstrap == ("127.0.0.1:9",)
    with zipfile.ZipFile(tmp_path / "installer.pyz") as archive:
        assert archive.read(PROFILE_MEMBER) == (tmp_path / "installer.profile").read_bytes()
    before = _tree(tmp_path)

    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    target = tmp_path / "donor"
    installed = run([sys.executable, "installer.pyz", "--dir", str(target), "--pip-args", "--no-deps --no-index",
                     "--planner", planner.public_key.fingerprint(),
                     "--port", "0", "--ports", "47200-47209", "--percent", "20"], tmp_path, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "This node gives away 20% of this machine" in installed.stdout
    assert "v1: 80%" in installed.stdout and "47200-47207" in installed.stdout

    venv_seattle = str(target / "venv" / "bin" / "seattle")
    where = run([str(target / "venv" / "bin" / "python"), "-c", "import seattle; print(seattle.__file__)"],
                tmp_path, env)
    assert where.stdout.startswith(str(target / "venv")), where.stdout + where.stderr
    node = str(target / "node")
    assert json.loads((target / "node" / "node.json").read_text())["bootstrap"] == ["127.0.0.1:9"]
    started = run([venv_seattle, "node", "start", "--dir", node], tmp_path, env)
    assert started.returncode == 0, started.stderr
    try:
        status = json.loads(run([venv_seattle, "node", "status", "--dir", node, "--json"], tmp_path, env).stdout)
        assert [v["owner"] for v in status["vessels"]] == [planner.public_key.to_text(), bob.public_key.to_text()]
        again = run([sys.executable, "installer.pyz", "--dir", str(target), "--planner",
                     planner.public_key.to_text()], tmp_path, env)
        assert again.returncode == 2 and "already holds a node" in again.stderr
    finally:
        removed = run([venv_seattle, "node", "uninstall", "--dir", node, "--yes"], tmp_path, env)
    assert removed.returncode == 0, removed.stderr
    assert "stopped the running node manager" in removed.stdout
    assert _tree(tmp_path) == before  # the node, the virtual environment and the install directory are gone


def test_build_refuses_a_bad_plan_and_writes_nothing(tmp_path: Path) -> None:
    save_identity(generate_identity("planner"))
    bad = seattle("installer", "build", "--vessel", "60 planner", "--vessel", "30 planner", cwd=tmp_path)
    assert bad.returncode == 2 and "must total exactly 100, but 60 + 30 = 90" in bad.stderr
    shape = seattle("installer", "build", "--vessel", "half planner", cwd=tmp_path)
    assert shape.returncode == 2 and "is not 'PERCENT OWNER [USER,...]'" in shape.stderr
    nobody = seattle("installer", "build", "--vessel", "100 nobody", cwd=tmp_path)
    assert nobody.returncode == 2 and "no key is named 'nobody'" in nobody.stderr
    save_identity(generate_identity("second"))
    which = seattle("installer", "build", "--vessel", "100 planner", cwd=tmp_path)
    assert which.returncode == 2 and "--as IDENTITY (identities: planner, second)" in which.stderr
    assert os.listdir(tmp_path) == []


def test_the_same_inputs_build_the_same_installer(tmp_path: Path) -> None:
    planner = generate_identity("planner")
    save_identity(planner)
    assert seattle("installer", "build", "--vessel", "100 planner", "--out", "a.pyz", cwd=tmp_path).returncode == 0
    build_installer(tmp_path / "b.pyz", tmp_path / "a.profile")
    assert (tmp_path / "a.pyz").read_bytes() == (tmp_path / "b.pyz").read_bytes()
    assert (tmp_path / "a.pyz").stat().st_mode & 0o777 == 0o755
