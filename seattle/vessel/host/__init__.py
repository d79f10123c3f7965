"""The host's side of vessels: runs in the node manager or in `seattle vessel run`, outside every sandbox.

    launcher.py   — VesselLauncher and VesselHandle: start vessels through the zygote, follow their control channels
    local.py      — run one program locally the way a vessel would (`seattle vessel run`, the successor of repy.py)
    logbuffer.py  — CircularLog: the last 16 KiB of a vessel's output, in memory and optionally in two files

The host hears from a vessel only through its supervisor's control messages (bounded and checked by
`seattle.vessel.control`), and treats the log they carry as what it is: output of untrusted code.
"""
