"""Removing a node: only what seattle created, as listed in the node's manifest.

    record_install(node_dir, created_dir=True)     # by `seattle node init`
    record_outside(node_dir, unit_path)            # by `seattle node service install`
    result = uninstall(node_dir)                   # by `seattle node uninstall`: removed and kept paths

`<node_dir>/manifest.json` (format `seattle-manifest-v1`) says whether init created the directory and which
paths outside it seattle made: files (the systemd unit) are removed; directories are the installer's (a
virtual environment, removed whole when it has a `pyvenv.cfg`, and the install directory, removed only when
empty). Inside the directory, seattle's files are the fixed names
below (the node manager creates some of them later: logs, the control socket, the routing table), so the
manifest does not need rewriting at every start. Anything else found there was put by someone else and is
kept, and so is the directory itself then, or when it existed before init: uninstalling never loses a file
seattle did not make. A running node is stopped first (through its control socket), so no vessel is left
running on a removed directory.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seattle.errors import NodeControlFailed, NodeNotRunning, NoManifest

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "seattle-manifest-v1"
#: Every name seattle creates in a node directory (fnmatch patterns); directories are removed whole.
NODE_FILES: tuple[str, ...] = (
    "node.json", "node.json.tmp", "node.privatekey", "node.publickey", "names", "node.db", "node.db-wal",
    "node.db-shm", "node.db-journal", "node.lock", "donation.json", "donation.json.tmp", "control.sock",
    "nodemanager.log", "nodemanager.log.[0-9]*", "node.out", "routing.json", "routing.json.tmp",
    ".*.tmp", MANIFEST,
)
NODE_DIRECTORIES: tuple[str, ...] = ("vessels", "logs")
#: How long uninstall waits for a running node to stop its vessels and exit.
STOP_TIMEOUT = 30.0


@dataclass
class Uninstalled:
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    stopped: bool = False


def record_install(node_dir: Path, created_dir: bool) -> None:
    """Write the manifest of a node just created (`created_dir`: init made the directory itself)."""
    _write(Path(node_dir), {"format": MANIFEST_FORMAT, "created_dir": created_dir, "outside": []})


def record_outside(node_dir: Path, path: Path) -> None:
    """Add a file seattle wrote outside the node directory (NoManifest for a node without one)."""
    manifest = read_manifest(node_dir)
    if str(path) not in manifest["outside"]:
        manifest["outside"].append(str(path))
    _write(Path(node_dir), manifest)


def read_manifest(node_dir: Path) -> dict[str, Any]:
    path = Path(node_dir) / MANIFEST
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(64 * 1024))
    except (OSError, ValueError):
        raise NoManifest(node_dir) from None
    if (not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT
            or not isinstance(data.get("created_dir"), bool) or not isinstance(data.get("outside"), list)
            or not all(isinstance(p, str) and os.path.isabs(p) for p in data["outside"])):
        raise NoManifest(node_dir)
    return data


def _write(node_dir: Path, manifest: dict[str, Any]) -> None:
    temporary = node_dir / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    temporary.replace(node_dir / MANIFEST)


def uninstall(node_dir: Path) -> Uninstalled:
    """Stop the node if it runs, then remove what the manifest says seattle made (module docstring)."""
    from seattle.nodemgr import control, service  # both import modules that import this one's callers

    node_dir = Path(node_dir)
    manifest = read_manifest(node_dir)
    result = Uninstalled()
    try:
        control.control_request(node_dir, "stop")
        result.stopped = True
    except NodeNotRunning:
        pass
    if control.is_locked(node_dir) and not control.wait_until_stopped(node_dir, STOP_TIMEOUT):
        raise NodeControlFailed(node_dir, f"it did not stop within {STOP_TIMEOUT:g} s; nothing was removed")
    outside = [Path(p) for p in manifest["outside"]]
    for path in outside:
        if not path.is_dir():
            service.disable(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                result.removed.append(path)
    for entry in sorted(node_dir.iterdir(), key=lambda p: p.name == MANIFEST):  # the manifest goes last
        if entry.name in NODE_DIRECTORIES and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in NODE_FILES) and not entry.is_dir():
            entry.unlink()
        else:
            result.kept.append(entry)
            continue
        result.removed.append(entry)
    if manifest["created_dir"] and not result.kept:
        node_dir.rmdir()
        result.removed.append(node_dir)
    for path in outside:  # directories the installer made, in the order it recorded them: venv, then its parent
        if (path / "pyvenv.cfg").is_file():
            shutil.rmtree(path)
            result.removed.append(path)
        elif path.is_dir():
            try:
                path.rmdir()
                result.removed.append(path)
            except OSError:
                result.kept.append(path)
    return result
