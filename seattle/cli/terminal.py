"""Text from nodes made safe to print: control characters become visible escapes.

    click.echo(printable(entry["ownerinfo"]))                  # one field: every control character escaped
    click.echo(printable(log_text, keep_layout=True))          # a log or a file: newlines and tabs kept

Owner information, file names, vessel names, logs, error messages and reverse-DNS names are chosen by whoever
runs a node (or a program in a vessel, or a DNS server). Printed raw, an escape sequence in them drives the
researcher's terminal: `\\x1b]0;...\\x07` retitles the window, `\\x1b[2J` clears the screen and hides earlier
output, OSC 52 writes the clipboard, and `\\r` or a bidirectional override makes a line read as something it is
not. Every CLI path that prints such text passes it through `printable` once, at the edge: the library keeps the
exact strings (JSON output escapes them itself, as JSON does).
"""

from __future__ import annotations

#: C0 controls, DEL and C1 controls (0x9b is a one-byte CSI on some terminals), the Unicode line and paragraph
#: separators, and the bidirectional embeddings, overrides and isolates ("Trojan source").
_CONTROLS = [*range(0x00, 0x20), *range(0x7f, 0xa0), 0x2028, 0x2029, *range(0x202a, 0x202f),
             *range(0x2066, 0x206a)]
_ESCAPES: dict[int, str] = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}
_LAYOUT = {ord("\n"): "\n", ord("\t"): "\t"}
_ESCAPES_KEEPING_LAYOUT = {**_ESCAPES, **_LAYOUT}


def printable(text: object, *, keep_layout: bool = False) -> str:
    """`str(text)` with every control character shown as `\\xNN` (or `\\uNNNN`); with `keep_layout`, newlines
    and tabs stay as they are (multi-line output: logs, files, listings), and everything else, `\\r` included,
    is escaped."""
    return str(text).translate(_ESCAPES_KEEPING_LAYOUT if keep_layout else _ESCAPES)
