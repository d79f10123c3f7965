"""The sandboxed vessel process: the one process that runs untrusted code.

Forked from its supervisor (whose `supervise.prepare_child` wires its stdio and hands it the spec), it first runs
only our code (`startup`: read the program, apply the OS layers to itself while still single-threaded); from then on
it shares its interpreter with the program, which reaches the modules below only through the API in its globals.

    startup.py        — from spec to program: read the program, apply the OS layers, build the context, run it
    runtime.py        — build the program's globals, check and compile it, run it, end with an exit code
    context.py        — VesselContext: what the API functions of one vessel share (allotment, accountant, broker)
    checker.py        — the static safety checker: the first half of the language layer
    dialect.py        — the original dialect (Repy's Python 2): translated to Python 3 before the check
    py2syntax.py      — the translator's first pass: Python 2-only syntax rewritten in place, as text
    py2names.py       — the Python 2 builtins (xrange, long, cmp, ...) translated programs still name
    safe_builtins.py  — the builtins a program sees: the second half of the language layer
    accounting.py     — per-call accounting of rates, items and port sets against the allotment
    broker_client.py  — the child's end of the broker: asks the supervisor for sockets (they come back with the
                        reply) and for everything else only the supervisor may do
    tracebacks.py     — exception text for the vessel log, without host details
    api/              — the Repy V2 API (and the V1 names): the program's only capabilities

The child trusts its supervisor (its parent, which hands it the spec) and nothing the program passes in: the API
checks arguments by exact type and charges the allotment before it acts. Nothing here imports the host or the
supervisor side.
"""
