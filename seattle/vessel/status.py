"""Vessel states and the exit codes that map onto them.

The node manager shows these names to users, so they match the original Seattle states. The exit codes
are the vessel process's own; `status_for_exit` is the single place that turns one into a state.
"""

from __future__ import annotations

from enum import StrEnum


class VesselStatus(StrEnum):
    FRESH = "Fresh"
    STARTED = "Started"
    STOPPED = "Stopped"
    TERMINATED = "Terminated"
    THREAD_ERR = "ThreadErr"
    STALE = "Stale"


# Exit codes of a vessel program. 44 and 56 are the original's; the rest name our own reasons.
EXIT_NORMAL = 0          # the program ended or called exitall()
EXIT_UNCAUGHT = 1        # an uncaught exception in any thread
EXIT_CODE_UNSAFE = 2     # the safety checker refused the program
EXIT_STOPPED = 44        # stopped by its controller (StopVessel)
EXIT_THREAD_ERR = 56     # the OS refused a thread
EXIT_RESOURCE_KILL = 60  # memory or disk over the allotment: killed by the nanny (or the kernel: cgroup limit)
EXIT_INTERNAL = 70       # a fault of the vessel runtime (InternalRepyError)
EXIT_SANDBOX_SETUP = 71  # the OS layers could not be applied; no user code ran
EXIT_SIGNALLED = 72      # died from a signal nobody asked for (segfault, OOM killer)


def status_for_exit(code: int) -> VesselStatus:
    """The state a vessel is in after its process ended with `code`."""
    if code == EXIT_STOPPED:
        return VesselStatus.STOPPED
    if code == EXIT_THREAD_ERR:
        return VesselStatus.THREAD_ERR
    return VesselStatus.TERMINATED


_EXIT_REASONS = {
    EXIT_NORMAL: "the program ended",
    EXIT_UNCAUGHT: "uncaught exception",
    EXIT_CODE_UNSAFE: "the safety checker refused the program",
    EXIT_STOPPED: "stopped on request",
    EXIT_THREAD_ERR: "the operating system refused a thread",
    EXIT_INTERNAL: "internal error in the vessel runtime",
    EXIT_SANDBOX_SETUP: "the sandbox could not be set up",
}


def exit_reason(code: int) -> str:
    """A short phrase a person reads for an exit code the program's own process produced."""
    return _EXIT_REASONS.get(code, f"exited with code {code}")
