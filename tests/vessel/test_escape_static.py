"""The escape corpus (tests/vessel/escape_corpus/), checked without running a vessel.

Each corpus file is one attack program. Its header says what it is after and who must stop it:

    # goal: <what it tries to obtain, in words>
    # capability: file | exec | socket | object | process
    # stopped-by: <layers, from: language, api, seccomp, landlock, namespaces, rlimits>

and may go on with further header lines: `# harness: ...` (something the end-to-end runner must set up
first, such as a planted symlink) and `# language-stage: runtime ...` (see below).

Conventions the end-to-end runner relies on:

* A program prints a line starting with `ESCAPED` only if it actually obtained its capability: bytes of a
  host file outside its directory, a working socket or listener it may not have, a process or a host
  program that ran, or (capability `object`) a host object or host behaviour the layers exist to withhold.
* `stopped-by` lists every layer that, on its own, keeps the program from printing ESCAPED. With any set
  of layers switched off that still leaves one listed layer on, no ESCAPED line may appear.
* Attacks stopped by the language layer also try the real OS action (fork, exec, a host file, a socket)
  when the language layer is off, so they name the OS layer that must hold them then as well.
* `language` means the checker refuses the program before it runs, except for files marked
  `# language-stage: runtime`: the checker accepts those and the safe builtins stop them while they run.

This file asserts the static half: the headers are well formed, the corpus is large enough, the checker
refuses exactly the files that say `language` (checked as bytes, as a vessel reads its program), and the
run-time-stage files really are stopped by the safe builtins (run in a child process, not in pytest's).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.errors import CodeUnsafeError

CORPUS = Path(__file__).parent / "escape_corpus"
CATEGORIES = frozenset({
    "introspection", "format", "frames", "types", "builtins", "unicode", "exceptions", "api", "filesystem",
    "network", "process",
})  # fmt: skip
CAPABILITIES = frozenset({"file", "exec", "socket", "object", "process"})
LAYERS = frozenset({"language", "api", "seccomp", "landlock", "namespaces", "rlimits"})
MINIMUM_FILES = 60

_HEADER = re.compile(
    rb"# goal: (?P<goal>.+)\n# capability: (?P<capability>.+)\n# stopped-by: (?P<layers>.+)\n"
)
_EXTRA_HEADER = re.compile(rb"# (?P<key>[a-z-]+): (?P<value>.+)\n")
_NAME = re.compile(r"(?P<category>[a-z]+)_(?P<short>[a-z0-9_]+)\.py")


@dataclass(frozen=True)
class Attack:
    path: Path
    category: str
    goal: str
    capability: str
    layers: tuple[str, ...]
    extra: dict[str, str]
    source: bytes

    @property
    def checked_at_run_time(self) -> bool:
        return self.extra.get("language-stage", "").startswith("runtime")


def parse(path: Path) -> Attack:
    """The attack in `path`, or an AssertionError saying what is wrong with its name or header."""
    name = _NAME.fullmatch(path.name)
    assert name, f"{path.name}: not named <category>_<short_name>.py"
    source = path.read_bytes()
    header = _HEADER.match(source)
    assert header, f"{path.name}: must start with the goal, capability and stopped-by lines"
    extra: dict[str, str] = {}
    position = header.end()
    while (line := _EXTRA_HEADER.match(source, position)) is not None:
        extra[line["key"].decode()] = line["value"].decode()
        position = line.end()
    layers = tuple(layer.strip() for layer in header["layers"].decode().split(","))
    return Attack(
        path=path,
        category=name["category"],
        goal=header["goal"].decode().strip(),
        capability=header["capability"].decode().strip(),
        layers=layers,
        extra=extra,
        source=source,
    )


ATTACK_PATHS = sorted(CORPUS.glob("*.py"))


def test_corpus_is_large_enough_and_covers_every_category() -> None:
    attacks = [parse(path) for path in ATTACK_PATHS]
    assert len(attacks) >= MINIMUM_FILES
    assert {attack.category for attack in attacks} == CATEGORIES
    assert not [path.name for path in CORPUS.iterdir() if path.suffix != ".py" and path.name != "__pycache__"]


@pytest.mark.parametrize("path", ATTACK_PATHS, ids=lambda path: path.stem)
def test_header_is_well_formed(path: Path) -> None:
    attack = parse(path)
    assert attack.category in CATEGORIES, f"unknown category {attack.category!r}"
    assert len(attack.goal) >= 20, "the goal should say in words what the attack tries to obtain"
    assert attack.capability in CAPABILITIES, f"unknown capability {attack.capability!r}"
    assert attack.layers and set(attack.layers) <= LAYERS, f"unknown layer in {attack.layers}"
    assert len(set(attack.layers)) == len(attack.layers), "a layer is listed twice"
    assert set(attack.extra) <= {"harness", "language-stage"}, f"unknown header lines {sorted(attack.extra)}"
    if attack.checked_at_run_time:
        assert "language" in attack.layers, "language-stage only makes sense for a language-stopped attack"
    # Every attack reports success the same way, so the runner can look for one marker.
    assert b"ESCAPED" in attack.source


@pytest.mark.parametrize("path", ATTACK_PATHS, ids=lambda path: path.stem)
def test_language_stopped_capability_attacks_name_a_second_layer(path: Path) -> None:
    # With the language layer off the program runs as plain Python and tries the real action, so another
    # layer (an OS layer, or the broker's own checks for network requests) must hold it then.
    attack = parse(path)
    if "language" in attack.layers and attack.capability != "object":
        assert len(attack.layers) >= 2, f"{path.name}: which layer stops it without the checker?"


@pytest.mark.parametrize("path", ATTACK_PATHS, ids=lambda path: path.stem)
def test_checker_verdict_matches_the_header(path: Path) -> None:
    attack = parse(path)
    if "language" in attack.layers and not attack.checked_at_run_time:
        with pytest.raises(CodeUnsafeError) as refusal:
            check_and_compile(attack.source, path.name)
        assert str(refusal.value).startswith(f"{path.name}, line ")
    else:
        check_and_compile(attack.source, path.name)


# Runs one corpus file as a vessel's language layer would: checked, compiled, executed with the safe
# builtins and nothing else. Only used for files the checker accepts and the safe builtins must stop.
_LANGUAGE_ONLY_RUNNER = """
import sys
from seattle.vessel.child.checker import check_and_compile
from seattle.vessel.child.safe_builtins import make_builtins
path = sys.argv[1]
with open(path, "rb") as handle:
    code = check_and_compile(handle.read(), path)
exec(code, {"__builtins__": make_builtins(print)})
"""

RUN_TIME_STAGE = [path for path in ATTACK_PATHS if parse(path).checked_at_run_time]


def test_there_are_run_time_stage_attacks() -> None:
    assert RUN_TIME_STAGE, "type(type(0)) and friends must be in the corpus"


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN_TIME_STAGE, ids=lambda path: path.stem)
def test_run_time_stage_attacks_are_stopped_by_the_safe_builtins(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LANGUAGE_ONLY_RUNNER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ESCAPED" not in result.stdout
    assert "blocked:" in result.stdout


@pytest.mark.slow
def test_run_time_stage_attacks_do_escape_with_the_real_builtins() -> None:
    # The control experiment: the same programs with the host's builtins obtain what they were after,
    # so the test above proves the safe builtins stopped them and not some mistake in the program.
    for path in RUN_TIME_STAGE:
        runner = _LANGUAGE_ONLY_RUNNER.replace('{"__builtins__": make_builtins(print)}', "{}")
        result = subprocess.run(
            [sys.executable, "-c", runner, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "ESCAPED" in result.stdout, path.name
