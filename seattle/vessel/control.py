"""The control channel between the host and a vessel's supervisor (and the start request to the zygote).

Each channel is an AF_UNIX SOCK_SEQPACKET socket, so one `send` is one message and no framing is needed.
Messages are msgpack maps with a type field `t`:

    host → zygote      {"t": "start", "spec": VesselSpec.to_wire()}  + the supervisor's end of a new control
                       channel passed as SCM_RIGHTS
    supervisor → host  {"t": "started", "pid": child pid, "supervisor": supervisor pid, "layers": [...]}
                       {"t": "log", "data": bytes}                 program output, in order
                       {"t": "usage", "usage": {...}}              once a second (Nanny.usage() and the
                                                                   broker's network byte counts)
                       {"t": "exit", "code": int, "status": str, "reason": str}   the last message
    host → supervisor  {"t": "stop"}

A closed channel means the other side is gone: the supervisor then kills its vessel, and the host marks the
vessel Terminated.
"""

from __future__ import annotations

from typing import Any

import msgpack

#: No control message is larger: log chunks are read 64 KiB at a time.
MAX_CONTROL_MESSAGE = 256 * 1024


class ControlProtocolError(Exception):
    """A message that is not a msgpack map with a string `t`."""


def encode(message: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return data


def decode(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_CONTROL_MESSAGE:
        raise ControlProtocolError(f"control message of {len(data)} bytes exceeds {MAX_CONTROL_MESSAGE}")
    try:
        message = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ControlProtocolError(f"undecodable control message: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ControlProtocolError("control message is not a map with a string 't'")
    return message
