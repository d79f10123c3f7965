"""Vessels: sandboxes that run untrusted Python, held to an allotment of CPU, memory, disk and network.

A vessel takes several processes, and the subpackages follow them, because the line between them is the trust
boundary:

    host/        — runs in the node manager or `seattle vessel run`: starts vessels and follows them
    supervisor/  — runs in the zygote and in one supervisor per vessel: trusted, unconfined, holds the child to
                   its allotment from outside
    child/       — runs in the sandboxed vessel process: confines itself, then runs the untrusted program

Shared leaves, imported by more than one of these processes (data types, wire formats, the kernel layers):

    errors.py           — the Repy exceptions: raised in the child, sent by name over the broker
    spec.py             — VesselSpec: what it takes to start a vessel, passed host → zygote → supervisor → child
    status.py           — the vessel states and the exit codes that map onto them
    control.py          — the control channel host ↔ zygote ↔ supervisor (and the spec pipe to the child)
    broker_protocol.py  — the wire format between the child's broker client and the supervisor's broker server
    netio.py            — what an OS error on a vessel's socket means in Repy's terms, for the broker and the child
    traffic.py          — the byte counters of a vessel's traffic, in memory the child and its supervisor share
    filenames.py        — the file-name rules: the child's file API and the node manager's file calls
    diskusage.py        — what files cost against `diskused`: the supervisor's nanny and the node manager
    oslayer/            — the OS layers: detected by the host and the zygote, applied by the child to itself

Trust flows one way. The host and the supervisor trust nothing the child says: control messages are bounded and
checked, every broker request is checked again (the broker makes every socket the child uses; the child may only
send and receive on them), and CPU, memory and disk are measured from outside. Once the child
has applied its layers it shares its interpreter with the program, so everything the program can reach there goes
through the API. Imports follow the processes: host/ and child/ import only the shared leaves; supervisor/ also
imports `child.startup`, because it forks the child. The node manager is a host too: it imports only host/ and
the shared leaves. import-linter contracts (setup.cfg) hold both rules.
"""
