"""The wire format between a sandboxed vessel and its supervisor's network broker.

The child cannot make an internet socket; it asks for each one with a message over an AF_UNIX
SOCK_SEQPACKET socketpair, which keeps message boundaries, so no length framing is needed. Messages
are msgpack arrays:

    request:  [request_id, op, arg, ...]
    reply:    [request_id, "ok", result]
              [request_id, "err", exception_name, message]

`exception_name` is the name of a Repy exception (`seattle.vessel.errors.EXPORTED`) or
"InternalRepyError". Request ids let many user threads share the socket: replies may come back out of
order, since ops that wait (connect, wait-until-readable, name lookups) finish later than quick ones.

Both ends enforce the same limits, because either end may be the one that is lying: the child's API
checks arguments before it asks, and the broker checks them again before it touches a real socket.
The address rules (`is_valid_ip`, `is_valid_port`) live here for the same reason: they are part of the
contract both sides check.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

#: Largest encoded message either side sends or accepts.
MAX_MESSAGE = 128 * 1024
#: Largest TCP send per call and largest TCP read per call; Repy allows partial sends and reads.
MAX_TCP_CHUNK = 64 * 1024
#: Largest UDP payload (Repy V2: a bigger message is a RepyArgumentError).
MAX_UDP_PAYLOAD = 9216
#: Largest host name gethostbyname accepts (the DNS limit on a full name).
MAX_HOSTNAME = 253
#: Longest a single "wait" op may block; waiting callers loop, so a stuck wait never pins the broker.
MAX_WAIT_SECONDS = 30.0
#: Ops that may be waiting in the broker at once (connects and waits); more is ResourceExhaustedError.
MAX_PENDING = 1024
#: gethostbyname_ex answers with at most this many aliases and this many addresses (a hostile or broken
#: resolver answer is cut here, so a reply always fits a message).
MAX_HOST_ALIASES = 32
MAX_HOST_ADDRESSES = 32
#: Largest request id; ids are msgpack unsigned 63-bit integers.
MAX_REQUEST_ID = 2**63 - 1

OK = "ok"
ERR = "err"

# Op names. Arguments are listed as they travel; "handle" is an int the broker issued. A reply marked
# "+ socket" carries one descriptor as SCM_RIGHTS ancillary data: the vessel's copy of the socket, on
# which it then sends and receives itself (recvfrom/sendto, recv/send) without asking the broker.
OP_USAGE = "usage"                  # () -> dict (CPU, memory and disk use from the nanny)
OP_GETHOSTBYNAME = "gethostbyname"  # (name) -> ip
OP_GETHOSTBYNAME_EX = "gethostbyname_ex"  # (name) -> [hostname, [alias...], [ip...]] (V1)
OP_GETMYIP = "getmyip"              # () -> ip
OP_UDP_LISTEN = "udp_listen"        # (localip, localport) -> handle + socket
OP_UDP_SEND = "udp_send"            # (destip, destport, data, localip|None, localport) -> bytes sent
OP_TCP_LISTEN = "tcp_listen"        # (localip, localport) -> handle
OP_TCP_ACCEPT = "tcp_accept"        # (handle) -> [remoteip, remoteport, handle] + socket
OP_TCP_CONNECT = "tcp_connect"      # (destip, destport, localip|None, localport, timeout) -> handle + socket
OP_WAIT = "wait"                    # (listener handle, "r"|"w", timeout) -> True if ready, False on timeout
OP_CLOSE = "close"                  # (handle) -> True on the first close, False after

OPS = frozenset({
    OP_USAGE, OP_GETHOSTBYNAME, OP_GETHOSTBYNAME_EX, OP_GETMYIP, OP_UDP_LISTEN, OP_UDP_SEND, OP_TCP_LISTEN,
    OP_TCP_ACCEPT, OP_TCP_CONNECT, OP_WAIT, OP_CLOSE,
})
#: The ops whose successful reply carries a socket.
SOCKET_OPS = frozenset({OP_UDP_LISTEN, OP_TCP_ACCEPT, OP_TCP_CONNECT})


class ProtocolError(ValueError):
    """A message that does not follow this format; the other side is broken or hostile."""


def encode(message: list[Any]) -> bytes:
    """Pack one message, refusing anything over MAX_MESSAGE."""
    data: bytes = msgpack.packb(message, use_bin_type=True)
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE}-byte limit")
    return data


def _decode(data: bytes) -> list[Any]:
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE}-byte limit")
    try:
        message = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise ProtocolError(f"undecodable message: {exc}") from None
    if type(message) is not list or not message:
        raise ProtocolError("a message must be a non-empty array")
    request_id = message[0]
    if type(request_id) is not int or not 0 <= request_id <= MAX_REQUEST_ID:
        raise ProtocolError(f"bad request id {request_id!r}")
    return message


def encode_request(request_id: int, op: str, args: tuple[Any, ...] | list[Any]) -> bytes:
    return encode([request_id, op, *args])


def decode_request(data: bytes) -> tuple[int, str, list[Any]]:
    """Split a request into (id, op, args). The op is checked against OPS by the server, so that an
    unknown op still gets a reply naming it."""
    message = _decode(data)
    if len(message) < 2 or type(message[1]) is not str:
        raise ProtocolError("a request must be [request_id, op, args...]")
    return message[0], message[1], message[2:]


def encode_ok(request_id: int, result: Any) -> bytes:
    return encode([request_id, OK, result])


def encode_err(request_id: int, exception_name: str, text: str) -> bytes:
    return encode([request_id, ERR, exception_name, text])


def decode_reply(data: bytes) -> tuple[int, bool, Any]:
    """Split a reply into (id, ok, payload); payload is the result, or (name, message) for an error."""
    message = _decode(data)
    if len(message) == 3 and message[1] == OK:
        return message[0], True, message[2]
    if len(message) == 4 and message[1] == ERR and type(message[2]) is str and type(message[3]) is str:
        return message[0], False, (message[2], message[3])
    raise ProtocolError("a reply must be [id, 'ok', result] or [id, 'err', name, message]")


_DOTTED_QUAD = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", re.ASCII)


def is_valid_ip(ip: object) -> bool:
    """A dotted-quad IPv4 address a vessel may name: not 0.x (any address) and not 224.x and above
    (multicast, broadcast, reserved), as in Repy V2. (One regular expression: every datagram a vessel
    sends checks two addresses, and the split-and-loop form cost more than the send itself.)"""
    if type(ip) is not str:
        return False
    match = _DOTTED_QUAD.fullmatch(ip)
    if match is None:
        return False
    a, b, c, d = map(int, match.groups())
    return 0 < a < 224 and b <= 255 and c <= 255 and d <= 255


def is_valid_port(port: object) -> bool:
    """A port number 1..65535 given as a real int (bool is not a port)."""
    return type(port) is int and 1 <= port <= 65535


def is_loopback(ip: str) -> bool:
    """Whether traffic to `ip` is charged to loopsend/looprecv rather than netsend/netrecv."""
    return ip.startswith("127.") and is_valid_ip(ip)
