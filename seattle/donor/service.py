"""A systemd user unit that keeps a node running across log-outs and reboots.

    path = install_unit(node_dir)      # writes ~/.config/systemd/user/seattle-node-<id>.service
    commands(path)                     # the `systemctl --user` lines that enable and start it

The unit runs `python -m seattle.cli node run --dir DIR` with the interpreter seattle is installed in, so it
keeps working when `seattle` is not on the service manager's PATH. SIGTERM is what `node run` treats as a
clean stop (vessels stopped and recorded), and TimeoutStopSec leaves time for that. `Delegate=yes` hands the
unit's cgroup subtree to the node, so its vessels get the kernel's CPU and memory limits (the cgroup layer,
docs/sandbox-layers.md) instead of the nanny's SIGSTOP pauses. The unit is named after
a hash of the node directory's absolute path, so several nodes of one user get one unit each. Installing
writes the file and records it in the node's manifest (so `seattle node uninstall` removes it); `enable`
(`service install --enable`) also runs `systemctl --user`, only when asked, because a unit started behind
the donor's back would be a surprise; without systemctl or a user manager the commands are printed instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

from seattle.atomicfile import write_atomic
from seattle.donor.manifest import record_outside
from seattle.errors import UnsafeUnitValue

#: Bounds a `systemctl` call made while uninstalling (a wedged user manager must not hang uninstall).
SYSTEMCTL_TIMEOUT = 20.0


def unit_directory() -> Path:
    """`$XDG_CONFIG_HOME/systemd/user`, or `~/.config/systemd/user`."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


def unit_name(node_dir: Path) -> str:
    digest = hashlib.blake2b(os.fsencode(Path(node_dir).resolve()), digest_size=5).hexdigest()
    return f"seattle-node-{digest}.service"


def unit_text(node_dir: Path, python: str | None = None) -> str:
    """The unit file's text. Every value is checked (`_checked`) and quoted or escaped the way systemd reads it,
    because the node directory's path is whatever the donor (or a script acting for them) typed: a path holding
    a newline would otherwise add lines, even a second `[Service]` section, to a unit run at every log-in."""
    node_dir = Path(node_dir).resolve()
    command = " ".join(_quote(word) for word in (python or sys.executable, "-m", "seattle.cli", "node", "run",
                                                 "--dir", str(node_dir)))
    # Description is not unquoted by systemd (quotes show as they are) but its specifiers are expanded; the
    # closing quote also keeps a path ending in a backslash from continuing the line.
    description = f'seattle node manager for "{_specifiers(_checked(str(node_dir)))}"'
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={command}\n"
        "Delegate=yes\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=60\n"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _checked(value: str) -> str:
    """`value`, or UnsafeUnitValue if it holds a control character: no quoting can make a newline safe in a
    line-based file, and systemd would read a tab or an escape sequence differently from what was written."""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        raise UnsafeUnitValue(value, bad)
    return value


def _specifiers(text: str) -> str:
    """`%` doubled: systemd expands `%h`, `%u`, ... in most settings, and `%%` is a literal percent."""
    return text.replace("%", "%%")


def _quote(word: str) -> str:
    """One ExecStart word as systemd parses it: checked for control characters, in double quotes with a
    backslash before `"` and `\\`, `%` doubled (specifiers) and `$` doubled (`$NAME` and `${NAME}` would be
    replaced by the service's environment, so a directory named `$HOME` would run somewhere else)."""
    escaped = _checked(word).replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{_specifiers(escaped)}"'


def install_unit(node_dir: Path) -> Path:
    """Write the node's unit file and record it in the node's manifest; returns its path."""
    node_dir = Path(node_dir)
    directory = unit_directory()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / unit_name(node_dir)
    write_atomic(path, unit_text(node_dir).encode("utf-8"), mode=0o644)
    record_outside(node_dir, path)
    return path


def commands(path: Path) -> list[str]:
    """What the donor runs to enable and start the unit now and at every boot."""
    return ["systemctl --user daemon-reload", f"systemctl --user enable --now {path.name}",
            "loginctl enable-linger  # optional: keep it running while you are logged out"]


def enable(path: Path) -> str | None:
    """Run the `systemctl --user` commands that load, enable and start the unit; None when they succeeded,
    else why not (no systemctl, or no user manager to talk to), so the caller can print the commands."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return "systemctl is not installed"
    for arguments in (["daemon-reload"], ["enable", "--now", path.name]):
        try:
            done = subprocess.run([systemctl, "--user", *arguments], capture_output=True, text=True,
                                  timeout=SYSTEMCTL_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"systemctl --user {arguments[0]} failed: {exc}"
        if done.returncode != 0:
            return f"systemctl --user {arguments[0]} failed: {done.stderr.strip()[:200]}"
    return None


def disable(path: Path) -> None:
    """Stop and disable a unit before its file is removed, when systemctl is there and the unit is known."""
    systemctl = shutil.which("systemctl")
    if systemctl is None or not path.name.startswith("seattle-node-"):
        return
    try:
        subprocess.run([systemctl, "--user", "disable", "--now", path.name], capture_output=True,
                       timeout=SYSTEMCTL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass  # no user manager (e.g. in a container): the file is removed all the same
