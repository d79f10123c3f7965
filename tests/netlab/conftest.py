"""The namespace testbed's tests need namespaces: skipped, with the kernel's reason, only where it refuses them.

A missing `ip` or `iptables` is not a reason to skip: CI installs them (`.ci/run`), so their absence fails.
"""

from __future__ import annotations

import os
import subprocess

import pytest

#: The prefix of the probe namespace that asks the kernel (no lab uses it: it is not a lab prefix).
_PROBE = "stlprobe"


def namespaces_refused() -> str | None:
    """Why this machine cannot make network namespaces, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN); this run is not root"
    name = f"{_PROBE}{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"the kernel refuses network namespaces here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=True)
    return None


@pytest.fixture(scope="session")
def namespaces_allowed() -> None:
    reason = namespaces_refused()
    if reason is not None:
        pytest.skip(reason)
