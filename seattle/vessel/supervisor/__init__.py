"""The trusted, unconfined processes between the host and a vessel: the zygote and one supervisor per vessel.

The host starts the zygote (`python -I -m seattle.vessel.supervisor.zygote FD`); the zygote forks supervisors; each
supervisor forks its vessel's sandboxed child (which runs `seattle.vessel.child.startup`) and holds it to its
allotment from outside.

    zygote.py         — the fork-server: imports everything once, keeps a spare supervisor ready, exits with the host
    supervise.py      — one supervisor's life: fork the child, run its threads, report usage and the exit to the host
    nanny.py          — enforces the child's CPU, memory and disk allotment from outside (SIGSTOP/SIGCONT, SIGKILL)
    cpu_throttle.py   — the nanny's CPU share controller: the arithmetic of a closed-loop token bucket
    broker_server.py  — performs the child's network calls on real sockets, after checking every one again

These processes trust the host and nothing that comes from the child: broker requests are checked against the
allotment as if the child's API had never checked them, and the child's use of CPU, memory and disk is measured,
never asked for.
"""
