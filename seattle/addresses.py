"""Node addresses as people type them: `HOST:PORT`, or `[IPv6]:PORT`.

A module of its own, importing nothing heavy, because both the node manager's `seattle call` and the
researcher's commands (which must start fast) read addresses.
"""

from __future__ import annotations

import ipaddress

from seattle.errors import BadNodeAddress

#: Longer than any IPv6 literal with brackets and port; bounds what is parsed at all.
MAX_ADDRESS_TEXT = 64


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` → (host, port); BadNodeAddress naming the part that is wrong."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise BadNodeAddress(text, "it has no ':PORT'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise BadNodeAddress(text, "write an IPv6 address in brackets, [::1]:PORT")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise BadNodeAddress(text, f"the port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def split_ip_port(text: object) -> tuple[str, int]:
    """`IP:PORT` or `[IPv6]:PORT` with an IP literal → (host, port), for addresses that must not need a name
    lookup (bootstrap nodes, advertised addresses, node.json). ValueError saying what is wrong, which the
    caller wraps in the error that names where the text came from."""
    if not isinstance(text, str) or len(text) > MAX_ADDRESS_TEXT:
        raise ValueError(f"it must be text of at most {MAX_ADDRESS_TEXT} characters, HOST:PORT")
    host, colon, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host:
        raise ValueError("it has no ':PORT' (write it as HOST:PORT, e.g. 10.0.0.5:1224)")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port {port_text!r:.20} is not a number from 1 to 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r:.80} is not an IP address (for example 10.0.0.5, or [2001:db8::5])") from None
    return host, int(port_text)
