"""Vessel resource allotments: the 17 resource names, the `resource NAME VALUE` file format, and the
arithmetic the node manager uses to split and join vessels.

One module serves the vessel (what it may use), the node manager (split/join, offcut) and the installer
(what a donor gives), so that all three agree on names, units and validation. docs/resources.md is the
reference for people; this docstring only records the decisions that shape the code:

* Renewable values (rates, and the cpu share) are floats kept on a fixed grid of `RENEWABLE_RESOLUTION`
  (0.0001). All arithmetic converts them to whole grid units, computes with ints and converts back, so
  `+` and `-` are exact and the split/join conservation invariant holds with `==`, not a tolerance.
  Every other quantity is an int, as in the original.
* Values are bounded (`MAX_RENEWABLE`, `MAX_COUNT`) so that they stay exact on the grid and fit msgpack's
  64-bit integers on the wire.
* A `Resources` value is immutable and always complete: all 15 quantities are present (missing ones are 0),
  so callers never meet a KeyError for a known name.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

RESOURCE_NAMES: tuple[str, ...] = (
    "cpu", "memory", "diskused", "events", "filesopened", "insockets", "outsockets", "netsend", "netrecv",
    "loopsend", "looprecv", "filewrite", "fileread", "lograte", "random", "messport", "connport",
)
#: Refilled over time: a rate per second (cpu: a share of one core). Parsed as floats.
RENEWABLE: frozenset[str] = frozenset(
    {"cpu", "netsend", "netrecv", "loopsend", "looprecv", "filewrite", "fileread", "lograte", "random"}
)
#: Fungible items: a count of things held at once (threads, open files, sockets).
ITEMS: frozenset[str] = frozenset({"events", "filesopened", "insockets", "outsockets"})
#: Fixed quantities in bytes, policed by the nanny rather than charged per call.
FIXED_QUANTITIES: frozenset[str] = frozenset({"memory", "diskused"})
#: Individual items: the sets of local ports a vessel may use (UDP and TCP).
PORT_SETS: frozenset[str] = frozenset({"messport", "connport"})
#: Every resource except the port sets; these are the keys of `Resources.quantities`.
QUANTITY_NAMES: tuple[str, ...] = tuple(name for name in RESOURCE_NAMES if name not in PORT_SETS)
#: A resource file (and a split request) must name these, as in the original.
MANDATORY: tuple[str, ...] = ("cpu", "memory", "diskused")

#: Renewable values are rounded to this grid; exact arithmetic needs a fixed resolution.
RENEWABLE_RESOLUTION = Fraction(1, 10_000)
#: Largest renewable value: 100 GB/s. Keeps grid units below 2**50, where float conversion stays exact.
MAX_RENEWABLE = 100_000_000_000.0
#: Largest count or byte quantity: what a signed 64-bit msgpack integer holds.
MAX_COUNT = 2**63 - 1
#: Largest resource text accepted; a real file is a few hundred bytes.
MAX_TEXT_BYTES = 64 * 1024

_FLOAT_TOKEN = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT_TOKEN = re.compile(r"\d+")


class ResourceParseError(ValueError):
    """A resource text or dict is malformed. `line` is 1-based, or None when no single line is at fault."""

    def __init__(self, reason: str, *, source: str = "<resources>", line: int | None = None) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.source}: {self.reason}"
        return f"{self.source}:{self.line}: {self.reason}"


class ResourceArithmeticError(ValueError):
    """A subtraction would leave a resource negative or take ports the parent lacks (or a sum overflows).

    `problems` lists one sentence per offending resource or port, so a caller can show them all at once.
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems = tuple(problems)
        detail = "; ".join(self.problems)
        super().__init__(f"{message} {detail}".strip() if detail else message)


# ---------------------------------------------------------------------------------------------------------
# Value validation, shared by the text parser, from_dict and the Resources constructor.


def _quote(text: str, limit: int = 80) -> str:
    """The offending text for an error message, cut short so a 64 KiB line cannot flood a log."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _to_units(name: str, value: float | int) -> int:
    """A validated value in exact integer units (grid steps for renewables, the value itself otherwise)."""
    if name in RENEWABLE:
        return round(Fraction(value) / RENEWABLE_RESOLUTION)
    return int(value)


def _from_units(name: str, units: int) -> float | int:
    if name in RENEWABLE:
        return float(units * RENEWABLE_RESOLUTION)
    return units


_MAXIMUM: dict[str, float | int] = {
    name: MAX_RENEWABLE if name in RENEWABLE else MAX_COUNT for name in QUANTITY_NAMES
}


def _check_quantity(name: str, value: object) -> float | int:
    """Validate one quantity and return it in canonical form; raise ValueError with the reason."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} needs a number, got {value!r}")
    if name in RENEWABLE:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} {value!r} is not a finite number")
        if value > MAX_RENEWABLE:
            raise ValueError(f"{name} {value!r} is above the maximum {MAX_RENEWABLE:.0f}")
        if value < 0:
            raise ValueError(f"{name} {value!r} is negative")
        units = _to_units(name, value)
        if units == 0 and value > 0:
            raise ValueError(
                f"{name} {value!r} is below the smallest step {float(RENEWABLE_RESOLUTION)} (use 0 or more)"
            )
        return _from_units(name, units)
    if not isinstance(value, int):
        raise ValueError(f"{name} needs a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} {value} is negative")
    if value > MAX_COUNT:
        raise ValueError(f"{name} {value} is above the maximum {MAX_COUNT}")
    return value


def _check_port(name: str, port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"{name} needs whole port numbers, got {port!r}")
    if not 1 <= port <= 65535:
        raise ValueError(f"{name} port {port} is outside 1..65535")
    return port


def _port_set(name: str, ports: object) -> frozenset[int]:
    """A list of ports (any iterable but a string) as a validated set; raise ValueError with the reason."""
    return frozenset(_check_port(name, port) for port in _iterable(name, ports))


def _check_call(line: object) -> str:
    """A Repy V1 `call` line, kept verbatim; it must survive a round trip through the text form."""
    if not isinstance(line, str):
        raise ValueError(f"call lines must be strings, got {line!r}")
    tokens = line.split()
    one_line = line == line.strip() and not any(c in line for c in "\n\r#")
    if not tokens or tokens[0] != "call" or not one_line:
        raise ValueError(f"not a single 'call ...' line without a comment: {_quote(line)}")
    return line


def _unknown_name(name: object) -> str:
    if not isinstance(name, str):
        return f"resource names are strings, got {name!r}"
    close = difflib.get_close_matches(name, RESOURCE_NAMES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown resource {_quote(name)}{hint}"


# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """A complete, validated allotment. Construct it directly, or with parse_resources / from_dict.

    The constructor fills missing quantities with 0, rounds renewables to the grid and raises
    ResourceParseError for anything invalid, so every Resources value in the program is well formed.
    """

    quantities: Mapping[str, float | int]
    messport: frozenset[int] = frozenset()
    connport: frozenset[int] = frozenset()
    #: Repy V1 `call` lines, kept verbatim and inherited through split and join; Repy V2 ignores them.
    calls: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            if not isinstance(self.quantities, Mapping):
                raise ValueError(f"quantities must be a mapping, got {type(self.quantities).__name__}")
            for name in self.quantities:
                if name not in QUANTITY_NAMES:
                    port_set = f"{name!r} is a port set, not a quantity"
                    raise ValueError(port_set if name in PORT_SETS else _unknown_name(name))
            full = {name: _check_quantity(name, self.quantities.get(name, 0)) for name in QUANTITY_NAMES}
            ports = {name: _port_set(name, getattr(self, name)) for name in PORT_SETS}
            calls = tuple(_check_call(line) for line in _iterable("calls", self.calls))
        except ValueError as exc:
            raise ResourceParseError(str(exc), source="<Resources>") from None
        object.__setattr__(self, "quantities", MappingProxyType(full))
        object.__setattr__(self, "messport", ports["messport"])
        object.__setattr__(self, "connport", ports["connport"])
        object.__setattr__(self, "calls", calls)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and deepcopy through the dict form; the read-only quantities view cannot be pickled."""
        return (Resources.from_dict, (self.to_dict(),))

    def __hash__(self) -> int:
        return hash((tuple(self.quantities.items()), self.messport, self.connport, self.calls))

    def __getitem__(self, name: str) -> float | int | frozenset[int]:
        """Any resource by name, for code that handles all 17 alike; typed code uses the accessors below."""
        if name in PORT_SETS:
            return self.ports(name)
        return self.quantity(name)

    def quantity(self, name: str) -> float:
        """A quantity (rate, share, count or bytes) by name; ints are returned as the ints they are.

        Typed as float so arithmetic and comparisons type-check without a union; use `count` where an
        int is needed. Raises KeyError for a port set or an unknown name.
        """
        if name in self.quantities:
            return self.quantities[name]
        raise KeyError(f"{name!r} is a port set, not a quantity" if name in PORT_SETS else _unknown_name(name))

    def count(self, name: str) -> int:
        """A whole-number quantity (an item count or a byte size); raises KeyError for a renewable rate."""
        value = self.quantity(name)
        if not isinstance(value, int):
            raise KeyError(f"{name!r} is a renewable rate, not a count")
        return value

    def ports(self, name: str) -> frozenset[int]:
        """The port set `messport` or `connport`; raises KeyError for any other name."""
        if name == "messport":
            return self.messport
        if name == "connport":
            return self.connport
        raise KeyError(f"{name!r} is a quantity, not a port set" if name in self.quantities else _unknown_name(name))

    def __add__(self, other: Resources) -> Resources:
        """Quantities add, port sets unite; the call lines are the left operand's (join keeps v1's)."""
        if not isinstance(other, Resources):
            return NotImplemented
        units = {name: _to_units(name, self.quantities[name]) + _to_units(name, other.quantities[name])
                 for name in QUANTITY_NAMES}
        too_big = [f"{name} {_from_units(name, u)} is above the maximum {_MAXIMUM[name]}"
                   for name, u in units.items() if u > _to_units(name, _MAXIMUM[name])]
        if too_big:
            raise ResourceArithmeticError("The sum is too large:", too_big)
        return Resources(
            {name: _from_units(name, u) for name, u in units.items()},
            messport=self.messport | other.messport,
            connport=self.connport | other.connport,
            calls=self.calls,
        )

    def __sub__(self, other: Resources) -> Resources:
        """Quantities subtract and `other`'s ports leave the sets; the call lines are the left operand's.

        Raises ResourceArithmeticError naming every resource that would go negative and every port of
        `other` that this allotment does not hold.
        """
        if not isinstance(other, Resources):
            return NotImplemented
        units = {name: _to_units(name, self.quantities[name]) - _to_units(name, other.quantities[name])
                 for name in QUANTITY_NAMES}
        problems = [
            f"{name}: {other.quantities[name]} needed, {self.quantities[name]} available"
            for name, u in units.items() if u < 0
        ]
        for name in ("messport", "connport"):
            missing = sorted(getattr(other, name) - getattr(self, name))
            if missing:
                problems.append(f"{name}: port{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(map(str, missing))} not held")
        if problems:
            raise ResourceArithmeticError("Insufficient resources:", problems)
        return Resources(
            {name: _from_units(name, u) for name, u in units.items()},
            messport=self.messport - other.messport,
            connport=self.connport - other.connport,
            calls=self.calls,
        )

    def fits_within(self, other: Resources) -> bool:
        """True if every quantity is ≤ `other`'s and every port set is a subset of `other`'s."""
        return all(self.quantities[n] <= other.quantities[n] for n in QUANTITY_NAMES) and all(
            getattr(self, n) <= getattr(other, n) for n in PORT_SETS
        )

    def replace(self, **changes: Any) -> Resources:
        """A copy with some resources (by name) or `calls` changed, validated like any new value."""
        quantities = dict(self.quantities)
        fields: dict[str, Any] = {"messport": self.messport, "connport": self.connport, "calls": self.calls}
        for name, value in changes.items():
            if name in fields:
                fields[name] = value
            elif name in quantities:
                quantities[name] = value
            else:
                raise ResourceParseError(_unknown_name(name), source="<Resources.replace>")
        return Resources(quantities, **fields)

    def to_text(self) -> str:
        """The canonical resource file: every quantity in RESOURCE_NAMES order, ports sorted, then calls."""
        lines = [f"resource {name} {_format_value(name, self.quantities[name])}" for name in QUANTITY_NAMES]
        for name in ("messport", "connport"):
            lines.extend(f"resource {name} {port}" for port in sorted(getattr(self, name)))
        lines.extend(self.calls)
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Plain values for msgpack or JSON: numbers, port sets as sorted lists, calls as a list."""
        out: dict[str, Any] = dict(self.quantities)
        out["messport"] = sorted(self.messport)
        out["connport"] = sorted(self.connport)
        out["calls"] = list(self.calls)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Resources:
        """The inverse of to_dict, validated like the text form (cpu, memory and diskused are mandatory)."""
        if not isinstance(data, Mapping):
            raise ResourceParseError(f"expected a mapping of resources, got {type(data).__name__}",
                                     source=source)
        for key in data:
            if key not in RESOURCE_NAMES and key != "calls":
                raise ResourceParseError(_unknown_name(key), source=source)
        missing = [name for name in MANDATORY if name not in data]
        if missing:
            raise ResourceParseError(f"missing mandatory resource{'s' if len(missing) > 1 else ''} "
                                     f"{', '.join(missing)}", source=source)
        try:
            return cls(
                {name: value for name, value in data.items() if name in QUANTITY_NAMES},
                messport=_port_set("messport", data.get("messport", ())),
                connport=_port_set("connport", data.get("connport", ())),
                calls=tuple(_iterable("calls", data.get("calls", ()))),
            )
        except ValueError as exc:
            reason = exc.reason if isinstance(exc, ResourceParseError) else str(exc)
            raise ResourceParseError(reason, source=source) from None


def _iterable(name: str, value: object) -> Iterable[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} needs a list, got {value!r}")
    return value


def _format_value(name: str, value: float | int) -> str:
    """Plain decimal, never exponent notation, and exactly enough digits to parse back to the same value."""
    if name in RENEWABLE:
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


# ---------------------------------------------------------------------------------------------------------
# The text form.


def parse_resources(text: str, source: str = "<resources>") -> Resources:
    """Parse `resource NAME VALUE` lines (`#` comments, blank lines and `call ...` lines allowed).

    Raises ResourceParseError naming the source, the 1-based line and the offending text.
    """
    if not isinstance(text, str):
        raise ResourceParseError(f"expected text, got {type(text).__name__}", source=source)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise ResourceParseError(f"{size} bytes is more than the limit of {MAX_TEXT_BYTES}", source=source)
    quantities: dict[str, float | int] = {}
    first_line: dict[str, int] = {}
    ports: dict[str, set[int]] = {name: set() for name in PORT_SETS}
    calls: list[str] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("#", 1)[0].strip()
        tokens = line.split()
        if not tokens:
            continue

        def fail(reason: str, number: int = number, line: str = line) -> ResourceParseError:
            return ResourceParseError(f"{reason} in {_quote(line)}", source=source, line=number)

        if tokens[0] == "call":
            try:
                calls.append(_check_call(line))
            except ValueError as exc:
                raise fail(str(exc)) from None
            continue
        if tokens[0] != "resource":
            raise fail("expected 'resource NAME VALUE' or 'call ...'")
        if len(tokens) != 3:
            raise fail(f"expected 3 words 'resource NAME VALUE', got {len(tokens)}")
        _, name, token = tokens
        if name not in RESOURCE_NAMES:
            raise fail(_unknown_name(name))
        if name not in PORT_SETS and name in quantities:
            raise fail(f"duplicate resource {name!r} (first given on line {first_line[name]})")
        try:
            value = _parse_value(name, token)
            if name in PORT_SETS:
                ports[name].add(_check_port(name, value))
            else:
                quantities[name] = _check_quantity(name, value)
                first_line[name] = number
        except ValueError as exc:
            raise fail(str(exc)) from None
    missing = [name for name in MANDATORY if name not in quantities]
    if missing:
        raise ResourceParseError(f"missing mandatory resource{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)}", source=source)
    return Resources(quantities, messport=frozenset(ports["messport"]),
                     connport=frozenset(ports["connport"]), calls=tuple(calls))


def _parse_value(name: str, token: str) -> float | int:
    """A number token: float syntax for renewables, digits only for everything else."""
    body = token[1:] if token.startswith("-") else token
    if name in RENEWABLE:
        if not _FLOAT_TOKEN.fullmatch(body):
            raise ValueError(f"{name} needs a number, got {_quote(token)}")
        value: float | int = float(body)
    else:
        if not _INT_TOKEN.fullmatch(body):
            if _FLOAT_TOKEN.fullmatch(body):
                raise ValueError(f"{name} needs a whole number, got {_quote(token)}")
            raise ValueError(f"{name} needs a number, got {_quote(token)}")
        value = int(body)
    if body is not token and value != 0:
        raise ValueError(f"{name} {token} is negative")
    return value


def load_resources(path: str | Path) -> Resources:
    """Read and parse a resource file (UTF-8). OSError from opening it passes through unchanged."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise ResourceParseError(f"the file is larger than the limit of {MAX_TEXT_BYTES} bytes",
                                 source=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ResourceParseError(f"not UTF-8 text (byte {exc.start})", source=str(path), line=line) from None
    return parse_resources(text, source=str(path))


# ---------------------------------------------------------------------------------------------------------
# Split and join (the node manager's SplitVessel / JoinVessels).

#: What one more vessel costs in overhead (the original's `resources.offcut`, but for memory). Memory is what a
#: vessel's processes hold that it is not charged for: its supervisor and the pages its prepared process wrote
#: before it got its program, about 7 MB measured (bench/bench_small_vessels.py), where the original's nanny
#: charged its whole interpreter and set aside 1 MB. Setting the overhead aside keeps the host's real memory
#: within the donation: Σ allotments + #vessels · offcut + NODE_RESERVE.
DEFAULT_OFFCUT = Resources({
    "cpu": 0.002, "memory": 8_000_000, "diskused": 100_000, "events": 2,
    "filewrite": 1000.0, "fileread": 1000.0, "filesopened": 1, "lograte": 100.0,
})

#: What a node's vessels share once, set aside from a donation before its vessels: the zygote's memory (the
#: interpreter pages every vessel process maps and none is charged for; about 18 MB resident, measured).
NODE_RESERVE = Resources({"memory": 24_000_000})

_KIB = 1024
_MIB = 1024 * 1024

#: What `seattle vessel run` gives a program run locally, without a node manager.
DEFAULT_ALLOTMENT = Resources(
    {
        "cpu": 0.5, "memory": 256 * _MIB, "diskused": 100 * _MIB,
        "events": 64, "filesopened": 32, "insockets": 16, "outsockets": 16,
        "netsend": 1.0 * _MIB, "netrecv": 1.0 * _MIB, "loopsend": 10.0 * _MIB, "looprecv": 10.0 * _MIB,
        "fileread": 10.0 * _MIB, "filewrite": 10.0 * _MIB, "lograte": 1.0 * _MIB, "random": 100.0 * _KIB,
    },
    messport=frozenset(range(63100, 63110)),
    connport=frozenset(range(63100, 63110)),
)


def split_resources(
    parent: Resources, requested: Resources, offcut: Resources = DEFAULT_OFFCUT
) -> tuple[Resources, Resources]:
    """Split `parent` into (leftover, requested) where leftover = parent − offcut − requested.

    Both results carry the parent's call lines. Raises ResourceArithmeticError with the original's
    messages: "Existing resources are so small they cannot be split." when the parent cannot pay the
    offcut, "Proposed vessel is too large." when it cannot also pay the request; each names the resources.
    """
    try:
        remaining = parent - offcut
    except ResourceArithmeticError as exc:
        raise ResourceArithmeticError("Existing resources are so small they cannot be split.",
                                      exc.problems) from None
    try:
        leftover = remaining - requested
    except ResourceArithmeticError as exc:
        raise ResourceArithmeticError("Proposed vessel is too large.", exc.problems) from None
    return leftover, requested.replace(calls=parent.calls)


def join_resources(a: Resources, b: Resources, offcut: Resources = DEFAULT_OFFCUT) -> Resources:
    """Merge two vessels: a + b + offcut (the overhead of one vessel comes back). Keeps a's call lines."""
    return a + b + offcut
