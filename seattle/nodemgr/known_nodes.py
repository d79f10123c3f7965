"""Node keys pinned on first use, like SSH's known_hosts: `$SEATTLE_HOME/known_nodes`.

    known = KnownNodes.default()                     # $SEATTLE_HOME/known_nodes (may not exist yet)
    known.expected("203.0.113.7", 1224)              # the pinned key, or None: first contact
    known.pin("203.0.113.7", 1224, key)              # after a handshake proved `key`
    known.forget("203.0.113.7:1224")                 # `seattle known-nodes forget ADDRESS`

Why: a researcher who names a node by address (`seattle call HOST:PORT`, `seattle contact`) has no record
saying which key should answer there. The first connection learns the key the channel's handshake proved
and pins it; every later connection insists on it, so a machine that takes the address later (a DHCP lease,
an on-path attacker) is refused with both fingerprints instead of being trusted. Callers that always know
the key (browse and the fan-out commands use the key in the vessel's record, the testbed and the demo their
own nodes' keys) pass it to `NodeClient.connect` and never touch this file.

The file is text, one `HOST:PORT ed25519:KEY` per line (`#` comments and blank lines kept on rewrite, so a
line number the mismatch error names stays right until the file changes). It is written whole through
`seattle.atomicfile` with mode 0600; it is read and pinned under a fresh read each time, so two commands
pinning at once lose nothing but a race for the same address, which the second loses loudly next time.
It is bounded: `MAX_ENTRIES` nodes and `MAX_FILE_BYTES` bytes; a file beyond either is refused with the
file's name rather than read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from seattle.addresses import parse_address
from seattle.atomicfile import write_atomic
from seattle.errors import BadKnownNodesFile, KnownNodesFull, SeattleError, UnknownKnownNode
from seattle.home import seattle_home
from seattle.keys import PublicKey

FILE_NAME = "known_nodes"
#: Nodes pinned at most; a researcher naming more addresses directly than this is better served by browse.
MAX_ENTRIES = 10_000
#: An entry is ~70 bytes (a bracketed IPv6 address, a port, a 52-character key); room for comments too.
MAX_FILE_BYTES = MAX_ENTRIES * 128


def address_text(host: str, port: int) -> str:
    """The file's spelling of an address: `host:port`, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Pin:
    """One pinned node: its key and the line (1-based) that holds it, for the error that names it."""

    key: PublicKey
    line: int


class KnownNodes:
    """The known-nodes file at `path`; see the module docstring. Reads it again for every question."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def default(cls) -> KnownNodes:
        return cls(seattle_home() / FILE_NAME)

    def entries(self) -> dict[str, Pin]:
        """Address text → its pin, in file order; empty when the file does not exist yet."""
        return _parse(self.path, self._read())[0]

    def expected(self, host: str, port: int) -> Pin | None:
        """The pin for `host`:`port`, or None if the node was never pinned."""
        return self.entries().get(address_text(host, port))

    def pin(self, host: str, port: int, key: PublicKey) -> None:
        """Remember `key` for `host`:`port` (a first contact). An address pinned meanwhile by another command
        keeps its key: the first pin wins, and a different key there fails the next connection loudly."""
        address = address_text(host, port)
        text = self._read()
        entries, lines = _parse(self.path, text)
        if address in entries:
            return
        if len(entries) >= MAX_ENTRIES:
            raise KnownNodesFull(self.path, MAX_ENTRIES)
        lines.append(f"{address} {key.to_text()}")
        self._write(lines)

    def forget(self, address: str) -> Pin:
        """Remove the pin of `address` (HOST:PORT, as `seattle known-nodes list` shows it); the pin removed."""
        host, port = parse_address(address)
        wanted = address_text(host, port)
        entries, lines = _parse(self.path, self._read())
        pin = entries.get(wanted)
        if pin is None:
            raise UnknownKnownNode(wanted, self.path)
        del lines[pin.line - 1]
        self._write(lines)
        return pin

    def _read(self) -> str:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise BadKnownNodesFile(self.path, exc.strerror or str(exc)) from None
        with os.fdopen(fd, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise BadKnownNodesFile(self.path, f"it is larger than {MAX_FILE_BYTES:,} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadKnownNodesFile(self.path, "it is not UTF-8 text") from None

    def _write(self, lines: list[str]) -> None:
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        try:
            write_atomic(self.path, data, mode=0o600)
        except OSError as exc:
            raise BadKnownNodesFile(self.path, f"cannot write it: {exc.strerror or exc}") from None


def _parse(path: Path, text: str) -> tuple[dict[str, Pin], list[str]]:
    """(address → pin, every line as written); BadKnownNodesFile naming the first bad line."""
    entries: dict[str, Pin] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise BadKnownNodesFile(path, f"line {number} is not `HOST:PORT KEY`")
        try:
            host, port = parse_address(words[0])
            key = PublicKey.from_text(words[1])
        except SeattleError as exc:
            raise BadKnownNodesFile(path, f"line {number}: {exc}") from None
        address = address_text(host, port)
        if address in entries:
            raise BadKnownNodesFile(path, f"line {number} pins {address} again (first on line "
                                          f"{entries[address].line}); remove one of them")
        entries[address] = Pin(key, number)
    return entries, lines
