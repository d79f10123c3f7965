"""The escape corpus, run in real vessels: with every layer on, and with each listed layer off in turn.

Each program in tests/vessel/escape_corpus/ names in its header the layers that stop it on its own (`stopped-by`).
A program prints a line starting with ESCAPED only if it obtained what it was after, so the first assertion
everywhere is that no such line appears. The second is *which* layer stopped it: the checker's refusal (exit
code 2), or the error the OS layer produces (EPERM from seccomp, EACCES from Landlock, ENETUNREACH in the empty
network namespace), or a vessel API error. An attack with several layers listed is run again with each of them
switched off, and the remaining layers must still hold it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from seattle.resources import DEFAULT_ALLOTMENT
from seattle.vessel import errors
from seattle.vessel.host.launcher import VesselHandle, VesselLauncher
from seattle.vessel.spec import LANGUAGE_LAYER
from seattle.vessel.status import EXIT_CODE_UNSAFE
from tests.vessel_helpers import log_text, run_vessel

CORPUS = Path(__file__).resolve().parent / "escape_corpus"
SECRET = "SECRET-OUTSIDE"

#: What each layer's refusal looks like in the vessel log.
EVIDENCE = {
    "seccomp": re.compile(r"Operation not permitted|Errno 1\]|errno 1\b|no shell could be started"),
    "landlock": re.compile(r"Permission denied|Errno 13\]"),
    "namespaces": re.compile(r"Network is unreachable|Errno 101\]|Cannot assign requested address|Errno 99\]"),
    "api": re.compile("|".join(sorted(n for n in errors.EXPORTED if n != "RepyException"))
                      + r"|allotment|not allowed|refused|is not a valid|may not|not in this vessel|\bblocked\b"),
    "rlimits": re.compile(r"MemoryError|File too large|Too many open files"),
}


@dataclass(frozen=True)
class Attack:
    path: Path
    stopped_by: frozenset[str]
    runtime_language_stage: bool
    harness: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> Attack:
        header = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                  if line.startswith("# ")]
        stopped = next(line for line in header if line.startswith("# stopped-by:"))
        return cls(
            path=path,
            stopped_by=frozenset(p.strip() for p in stopped.split(":", 1)[1].split(",")),
            runtime_language_stage=any(line.startswith("# language-stage: runtime") for line in header),
            harness=tuple(line for line in header if line.startswith("# harness:")),
        )


ATTACKS = [Attack.load(path) for path in sorted(CORPUS.glob("*.py"))]


def plant_harness(attack: Attack, vessel_dir: Path) -> None:
    """What the header's `harness:` lines ask for, set up before the program starts."""
    vessel_dir.mkdir(parents=True)
    text = " ".join(attack.harness)
    if "planted-link" in text:
        os.symlink("/etc/passwd", vessel_dir / "planted-link")
        os.symlink("/etc", vessel_dir / "planted-dir")
    if "planted-hardlink" in text:
        outside = vessel_dir.parent / "outside-secret.txt"
        outside.write_text(SECRET)
        os.link(outside, vessel_dir / "planted-hardlink")
    if "victim.txt" in text:
        (vessel_dir.parent / "victim.txt").write_text("victim")


def stopped_by_evidence(handle: VesselHandle, layers: frozenset[str]) -> set[str]:
    """The layers among `layers` whose refusal shows in the vessel's exit or log."""
    text = log_text(handle)
    shown = {layer for layer, pattern in EVIDENCE.items() if layer in layers and pattern.search(text)}
    if LANGUAGE_LAYER in layers and handle.exit_code == EXIT_CODE_UNSAFE and "CodeUnsafeError" in text:
        shown.add(LANGUAGE_LAYER)
    if LANGUAGE_LAYER in layers and re.search(r"type\(\)", text):  # the safe type() refusing at run time
        shown.add(LANGUAGE_LAYER)
    return shown


def modes(attack: Attack, host_layers: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """All layers on, then each listed layer off in turn when another listed layer remains to stop it."""
    result = [("all layers", host_layers)]
    if len(attack.stopped_by) > 1:
        result += [(f"without {layer}", host_layers - {layer}) for layer in sorted(attack.stopped_by)
                   if layer not in ("api",)]
    return result


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(ATTACKS) >= 60
    categories = {a.path.name.split("_", 1)[0] for a in ATTACKS}
    assert {"introspection", "format", "frames", "types", "builtins", "unicode", "exceptions", "api",
            "filesystem", "network", "process"} <= categories


def test_every_capability_attack_stopped_by_the_language_layer_has_a_second_layer() -> None:
    for attack in ATTACKS:
        capability = next(line for line in attack.path.read_text().splitlines() if line.startswith("# capability:"))
        if capability.split(":", 1)[1].strip() in ("file", "exec", "socket", "process") and (
                LANGUAGE_LAYER in attack.stopped_by):
            assert len(attack.stopped_by) >= 2, attack.path.name


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.path.stem for a in ATTACKS])
async def test_attack_is_contained(attack: Attack, launcher: VesselLauncher, tmp_path: Path) -> None:
    host_layers = launcher.default_layers()
    results: dict[str, VesselHandle] = {}

    async def run_mode(label: str, layers: frozenset[str]) -> None:
        vessel_dir = tmp_path / label.replace(" ", "-") / "vessel"
        plant_harness(attack, vessel_dir)
        results[label] = await run_vessel(launcher, vessel_dir, attack.path.read_text(encoding="utf-8"),
                                          layers=layers, timeout=30, resources=DEFAULT_ALLOTMENT)

    async with trio.open_nursery() as nursery:
        for label, layers in modes(attack, host_layers):
            nursery.start_soon(run_mode, label, layers)

    for label, handle in results.items():
        text = log_text(handle)
        assert "ESCAPED" not in text, f"{attack.path.name} escaped ({label}):\n{text}"
        assert SECRET not in text, f"{attack.path.name} read the planted secret ({label}):\n{text}"
        layers_on = host_layers if label == "all layers" else host_layers - {label.removeprefix("without ")}
        expected = attack.stopped_by & (layers_on | {"api"})
        assert stopped_by_evidence(handle, expected), (
            f"{attack.path.name} ({label}): none of {sorted(expected)} visibly stopped it "
            f"(exit {handle.exit_code}, {handle.reason}):\n{text}")
    if LANGUAGE_LAYER in attack.stopped_by and not attack.runtime_language_stage:
        assert results["all layers"].exit_code == EXIT_CODE_UNSAFE, log_text(results["all layers"])
