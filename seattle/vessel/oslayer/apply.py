"""Apply a LayerPlan inside the sandboxed child, in the one order that works.

Order matters: no_new_privs first (Landlock and seccomp need it); namespaces while capabilities are
still there (root needs CAP_SYS_ADMIN for them); then every capability goes; rlimits while /proc can
still be read; Landlock; seccomp last, because it forbids calls the earlier steps make.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from seattle.vessel.oslayer.baseline import harden_process, thread_count
from seattle.vessel.oslayer.capabilities import drop_all_capabilities
from seattle.vessel.oslayer.detect import HostSupport
from seattle.vessel.oslayer.landlock import restrict
from seattle.vessel.oslayer.namespaces import isolate_network
from seattle.vessel.oslayer.plan import LayerPlan
from seattle.vessel.oslayer.rlimits import apply_rlimits
from seattle.vessel.oslayer.seccomp_filter import install


class SandboxSetupError(RuntimeError):
    """A step the plan needs failed; the child must exit (status.EXIT_SANDBOX_SETUP) without user code."""


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Turn the OS's error in one step into a SandboxSetupError that names the step."""
    try:
        yield
    except (OSError, ValueError) as exc:
        raise SandboxSetupError(f"the {name} layer could not be applied: {exc}") from exc


def apply_layers(plan: LayerPlan, support: HostSupport) -> tuple[str, ...]:
    """Confine this process as `plan` says; return the names of the layers applied, in order.

    Always: no_new_privs, death signal SIGKILL, RLIMIT_CORE 0, and all capabilities dropped. Then those
    of `plan.layers` that `support` says are available. A requested layer the host lacks is skipped:
    whether that is acceptable was the caller's decision (see `HostSupport.can_confine_untrusted`).
    Must be called single-threaded, after the runtime's imports and before any user code.
    """
    threads = thread_count()
    if threads != 1:
        raise SandboxSetupError(
            f"apply_layers needs a single-threaded process, this one has {threads} threads: "
            "Landlock and user namespaces would leave the other threads unconfined"
        )
    wanted = plan.layers & support.available()
    applied: list[str] = []
    with _step("baseline (no_new_privs, death signal, no core)"):
        harden_process()
    own_user_namespace = False
    if "namespaces" in wanted:
        with _step("namespaces"):
            own_user_namespace = isolate_network()
        applied.append("namespaces")
    with _step("capabilities"):
        drop_all_capabilities()
    if "rlimits" in wanted:
        with _step("rlimits"):
            apply_rlimits(
                plan.memory_bytes,
                plan.max_open_files,
                plan.max_file_bytes,
                own_user_namespace=own_user_namespace,
            )
        applied.append("rlimits")
    if "landlock" in wanted:
        with _step("landlock"):
            restrict(plan.readonly_paths, (plan.vessel_dir,), support.landlock_abi)
        applied.append("landlock")
    if "seccomp" in wanted:
        with _step("seccomp"):
            install(os.getpid())
        applied.append("seccomp")
    return tuple(applied)
