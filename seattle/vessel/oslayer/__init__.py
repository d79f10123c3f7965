"""The OS layers of a vessel: kernel walls the sandboxed child applies to itself before user code runs.

Shared by three processes, so it sits beside the process subpackages: the host (the launcher, `seattle vessel
doctor`) and the zygote call `detect()`, which probes in a throwaway fork; the zygote also caches the read-only
paths and compiles the seccomp filter once; the child calls `apply_layers()` on itself. See docs/sandbox-layers.md
for what each layer stops.

    detect.py          — what this host's kernel offers and why not, found by trying in a throwaway fork (cached)
    plan.py            — LayerPlan: the limits, paths and layers one vessel gets
    apply.py           — apply a LayerPlan in the child, in the one order that works
    baseline.py        — what every child does: no_new_privs, the parent-death signal, no core dumps
    namespaces.py      — a network (and IPC) namespace of the child's own
    capabilities.py    — drop every Linux capability, so a root daemon's vessel is not root in power
    rlimits.py         — kernel resource limits: the OS backstop behind the API's accounting
    landlock.py        — Landlock: the filesystem, TCP and signal walls
    seccomp_filter.py  — the seccomp filter: system calls a vessel never needs fail with EPERM
    paths.py           — the paths the interpreter must still read once Landlock confines the child
    libc.py            — the C library handle, loaded before any fork, and its errors turned into OSError
    cgroups.py         — the cgroup layer: one group per vessel (CPU quota, memory limit), made by its supervisor
"""

from seattle.vessel.oslayer.apply import SandboxSetupError, apply_layers
from seattle.vessel.oslayer.detect import HostSupport, detect, probe
from seattle.vessel.oslayer.paths import default_readonly_paths
from seattle.vessel.oslayer.plan import LAYER_NAMES, LayerPlan

__all__ = [
    "LAYER_NAMES",
    "HostSupport",
    "LayerPlan",
    "SandboxSetupError",
    "apply_layers",
    "default_readonly_paths",
    "detect",
    "probe",
]
