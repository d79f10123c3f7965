"""Removing a node: only what seattle created, as listed in the node's manifest.

    result = uninstall(node_dir)                   # by `seattle node uninstall`: removed and kept paths

The manifest (`manifest.record_install`, `record_outside`) says whether init created the directory and which
paths outside it seattle made: files (the systemd unit) are removed; directories are the installer's (a
virtual environment, removed whole when it has a `pyvenv.cfg` and the installer's marker naming this node,
and the install directory, removed only when empty). The manifest is a file anyone with the donor's rights
can edit, so it is not trusted to name paths: an outside path is accepted only if it is one seattle could
have written for this node (`allowed_outside`: this node's unit file in the systemd user unit directory, or
the installer's `venv` beside the node directory and their common parent). One path that is not refuses the
whole uninstall before anything is removed.

Inside the directory, seattle's files are those `NodeDir.owns` names (the node manager creates some
of them later: logs, the control socket, the routing table), so the manifest does not need rewriting at
every start. Anything else found there was put by someone else and is kept, and so is the directory itself
then, or when it existed before init: uninstalling never loses a file seattle did not make. A running node
is stopped first (through its control socket), so no vessel is left running on a removed directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from seattle.donor import service
from seattle.donor.daemonctl import control_request, is_locked, wait_until_stopped
from seattle.errors import NodeControlFailed, NodeNotRunning, UnsafeManifest
from seattle.nodemgr.nodedir import NodeDir

#: How long uninstall waits for a running node to stop its vessels and exit.
STOP_TIMEOUT = 30.0


@dataclass
class Uninstalled:
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    stopped: bool = False


def uninstall(node_dir: Path) -> Uninstalled:
    """Stop the node if it runs, then remove what the manifest says seattle made (module docstring)."""
    node_dir = Path(node_dir)
    paths = NodeDir(node_dir)
    manifest = paths.read_manifest()
    for text in manifest["outside"]:
        if not allowed_outside(node_dir, Path(text)):
            raise UnsafeManifest(node_dir, text)
    result = Uninstalled()
    try:
        control_request(node_dir, "stop")
        result.stopped = True
    except NodeNotRunning:
        pass
    if is_locked(node_dir) and not wait_until_stopped(node_dir, STOP_TIMEOUT):
        raise NodeControlFailed(node_dir, f"it did not stop within {STOP_TIMEOUT:g} s; nothing was removed")
    outside = [Path(p) for p in manifest["outside"]]
    for path in outside:
        if path.name.endswith(".service") and not path.is_dir():
            service.disable(path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                result.removed.append(path)
    for entry in sorted(node_dir.iterdir(), key=lambda p: p.name == NodeDir.MANIFEST):  # the manifest last
        if not paths.owns(entry):
            result.kept.append(entry)
            continue
        if entry.name in NodeDir.OWNED_DIRECTORIES:
            shutil.rmtree(entry)
        else:
            entry.unlink()
        result.removed.append(entry)
    if manifest["created_dir"] and not result.kept:
        node_dir.rmdir()
        result.removed.append(node_dir)
    for path in outside:  # directories the installer made, in the order it recorded them: venv, then its parent
        if path.is_symlink():
            result.kept.append(path)
        elif path.name == INSTALLER_VENV and (path / "pyvenv.cfg").is_file() and _marked_for(path, node_dir):
            shutil.rmtree(path)
            result.removed.append(path)
        elif path.is_dir():
            try:
                path.rmdir()
                result.removed.append(path)
            except OSError:
                result.kept.append(path)
    return result


#: The virtual environment the one-file installer creates beside the node directory
#: (`seattle.planner.installer`: DIR/venv and DIR/node), and the file in it naming the node it was made for.
INSTALLER_VENV = "venv"
VENV_MARKER = ".seattle-node"


def _marked_for(venv: Path, node_dir: Path) -> bool:
    """True if the installer made `venv` for this node: a virtual environment the donor made themselves, even
    one at DIR/venv, is never removed whole on the manifest's word alone."""
    try:
        with open(venv / VENV_MARKER, "rb") as marker:
            named = marker.read(4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False
    return Path(named) == Path(os.path.normpath(node_dir.absolute()))


def allowed_outside(node_dir: Path, path: Path) -> bool:
    """Whether `path`, named in the manifest of `node_dir`, is one seattle may have made for this node: this
    node's own unit file (`service.unit_name`) directly in the systemd user unit directory, or the installer's
    DIR/venv and DIR for a node in DIR/node. Paths are compared as written, made absolute and normalised
    (`..` cannot climb out), so a manifest naming /etc/passwd, ~/.ssh or another node's files is refused."""
    candidate = Path(os.path.normpath(path))
    if not path.is_absolute() or candidate != path:
        return False
    node = Path(os.path.normpath(node_dir.absolute()))
    unit = Path(os.path.normpath(service.unit_directory().absolute())) / service.unit_name(node)
    return candidate in (unit, node.parent / INSTALLER_VENV, node.parent) and candidate != Path(candidate.anchor)
