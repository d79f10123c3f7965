"""The Repy API as a vessel program sees it, run in the sandboxed child: the program's only capabilities.

    checks.py      — exact-type argument checks and `api_call`, the wrapper that decides what may leave a call
    core.py        — time, randomness, the log, threads, locks, exit, the resource report
    files.py       — openfile, listfiles, removefile and file objects, confined to the vessel directory
    network.py     — the V2 network calls and the V1 network names, carried out by the supervisor's broker
    legacy.py      — the V1 names not about the network: timers, getlock, randomfloat, listdir
    vnamespace.py  — virtual namespaces: code checked once, evaluated in contexts the program supplies
    dylink.py      — dy_import_module and friends: libraries from the vessel directory, loaded once each
    contextview.py — `_context`: the program's globals as a mapping, under the checker's rule for names
    strdata.py     — the original dialects' boundary: `str` for data in and out (latin-1)
"""
