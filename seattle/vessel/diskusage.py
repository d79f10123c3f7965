"""What a vessel's files cost against its `diskused` allotment: one home for the nanny and the node manager.

A leaf, because both sides of the trust boundary count disk the same way: the supervisor's nanny (which kills
a vessel over its allotment) and the host (the node manager refuses an upload that would not fit, and shows
use in `seattle node status`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The original's disk rule: each file costs its size plus one 4 KiB block.
PER_FILE_OVERHEAD = 4096


def disk_usage(vessel_dir: Path) -> int:
    """Bytes charged to `diskused`: every regular file's size plus 4096, found recursively.

    Symlinks are neither followed nor charged, so a link cannot make the vessel pay for (or learn the size
    of) a file outside its directory. Files and directories that vanish while being walked are skipped:
    the program keeps running during the walk. The walk uses an explicit stack, so a deeply nested tree
    cannot overflow the interpreter's recursion limit.
    """
    root = Path(vessel_dir)
    if not root.is_dir():
        raise NotADirectoryError(f"vessel directory {str(root)!r} does not exist or is not a directory")
    total = 0
    pending: list[str | Path] = [root]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size + PER_FILE_OVERHEAD
                    except FileNotFoundError:
                        continue
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total
