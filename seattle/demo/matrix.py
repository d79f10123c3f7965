"""The latency matrix: what the vessels of the demo's all-pairs ping measured, read from their logs.

`pingall.r2py` logs one line per other vessel,

    rtt FROM TO MEDIAN_MS MIN_MS REPLIES SENT       (MEDIAN_MS and MIN_MS are "-" when no reply came)

and `done` when it has finished. The matrix is indexed [from][to] in the order of the vessel addresses
the program was given; the diagonal and pairs without a reply are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DONE_LINE = "done"


@dataclass(frozen=True)
class LatencyMatrix:
    """Median round-trip times in milliseconds between labelled vessels, [from][to]."""

    labels: tuple[str, ...]
    rtt_ms: tuple[tuple[float | None, ...], ...]

    def missing(self) -> list[tuple[str, str]]:
        """The (from, to) pairs with no measurement, the diagonal excepted."""
        return [(self.labels[a], self.labels[b]) for a, row in enumerate(self.rtt_ms)
                for b, value in enumerate(row) if a != b and value is None]

    def values(self) -> list[float]:
        return [value for row in self.rtt_ms for value in row if value is not None]


def finished(log: str) -> bool:
    """Whether a pingall log holds its final `done` line."""
    return DONE_LINE in log.splitlines()


def parse_rtts(log: str, addresses: Sequence[str]) -> dict[tuple[int, int], float]:
    """The measured (from, to) pairs of one vessel's log, by index in `addresses`; lines that are not a
    well-formed rtt line between two of the addresses (or have no reply) are skipped."""
    index = {address: number for number, address in enumerate(addresses)}
    found: dict[tuple[int, int], float] = {}
    for line in log.splitlines():
        words = line.split()
        if len(words) != 7 or words[0] != "rtt" or words[1] not in index or words[2] not in index:
            continue
        try:
            median = float(words[3])
        except ValueError:
            continue
        if median >= 0:
            found[(index[words[1]], index[words[2]])] = median
    return found


def build_matrix(labels: Sequence[str], rtts: dict[tuple[int, int], float]) -> LatencyMatrix:
    size = len(labels)
    rows = tuple(tuple(rtts.get((a, b)) if a != b else None for b in range(size)) for a in range(size))
    return LatencyMatrix(tuple(labels), rows)
