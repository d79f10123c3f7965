"""The demo's latency matrix as a PNG heat map.

matplotlib is imported inside `write_heatmap`, so importing this module (and starting `seattle`) costs
nothing; it draws on a bare `Figure` with the Agg canvas, so no display and no pyplot global state are
involved, and it works on a headless CI machine.
"""

from __future__ import annotations

import io
from pathlib import Path

from seattle.atomicfile import write_atomic
from seattle.demo.matrix import LatencyMatrix
from seattle.errors import OutputNotWritten

#: Cells get their value written in them up to this many vessels; beyond that the text would not fit.
MAX_ANNOTATED = 12


def write_heatmap(matrix: LatencyMatrix, path: Path, *, title: str = "All-pairs UDP round-trip time") -> Path:
    """Draw `matrix` (rows: from, columns: to; blank cells: no measurement) and write it to `path` as PNG,
    replacing it atomically; OutputNotWritten if the file cannot be written."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = len(matrix.labels)
    data = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row] for row in matrix.rtt_ms],
                                         dtype=float).reshape(size, size))
    side = max(4.0, 1.0 + 0.6 * size)
    figure = Figure(figsize=(side + 1.5, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor("#e0e0e0")  # the diagonal and unmeasured pairs
    image = axes.imshow(data, cmap="viridis", interpolation="nearest")
    axes.set_xticks(range(size), matrix.labels, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(size), matrix.labels, fontsize=8)
    axes.set_xlabel("to (answering vessel)")
    axes.set_ylabel("from (pinging vessel)")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="median round-trip time (ms)")
    if size <= MAX_ANNOTATED and data.count():
        middle = (float(data.min()) + float(data.max())) / 2
        unmeasured = np.ma.getmaskarray(data)
        for row in range(size):
            for column in range(size):
                if not unmeasured[row, column]:
                    value = float(data[row, column])
                    axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                              color="black" if value > middle else "white")
    figure.tight_layout()
    path = Path(path)
    png = io.BytesIO()
    figure.savefig(png, format="png")
    try:
        write_atomic(path, png.getvalue(), mode=0o644)
    except OSError as exc:
        raise OutputNotWritten(path, exc.strerror or str(exc)) from None
    return path
