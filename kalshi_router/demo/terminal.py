"""Terminal output for the demo: a progress bar, a latency histogram and tables, in plain text."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

# Edges in seconds: each bucket holds latencies below its edge and at or above the one before.
EDGES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, math.inf)


def _label(low: float, high: float) -> str:
    def unit(value: float) -> str:
        return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"

    return f"≥ {unit(low)}" if high == math.inf else f"< {unit(high)}"


def histogram(samples: Sequence[float], width: int = 40) -> list[str]:
    """One line per non-empty bucket: its range, a bar, the count."""
    if not samples:
        return ["(no samples)"]
    counts = [0] * len(EDGES)
    for sample in samples:
        counts[next(i for i, edge in enumerate(EDGES) if sample < edge)] += 1
    first = next(i for i, count in enumerate(counts) if count)
    last = max(i for i, count in enumerate(counts) if count)
    peak = max(counts)
    lines = []
    for i in range(first, last + 1):
        low = EDGES[i - 1] if i else 0.0
        bar = "█" * max(1 if counts[i] else 0, round(width * counts[i] / peak))
        lines.append(f"{_label(low, EDGES[i]):>9} │{bar:<{width}} {counts[i]}")
    return lines


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        rest = "".join(f"  {v:>{w}}" for v, w in zip(cells[1:], widths[1:], strict=True))
        return f"{cells[0]:<{widths[0]}}{rest}".rstrip()

    return [line(columns), *(line(r) for r in rows)]


class Progress:
    """A one-line bar redrawn in place, only when the stream is a terminal."""

    def __init__(self, total_s: float, stream: TextIO | None = None) -> None:
        self._total = total_s
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()
        self._last: tuple[float, str] | None = None

    def update(self, elapsed_s: float, note: str) -> None:
        self._last = (elapsed_s, note)
        if not self.enabled:
            return
        done = min(1.0, elapsed_s / self._total) if self._total else 1.0
        bar = "#" * round(30 * done)
        self._stream.write(f"\r[{bar:<30}] {elapsed_s:5.1f}/{self._total:.0f} s  {note}   ")
        self._stream.flush()

    def above(self, line: str, out: Callable[[str], None]) -> None:
        """Print ``line`` with ``out`` where the bar is, and draw the bar again below it."""
        if self.enabled:
            self._stream.write("\r\033[K")
            self._stream.flush()
        out(line)
        if self._last is not None:
            self.update(*self._last)

    def close(self) -> None:
        if self.enabled:
            self._stream.write("\n")
            self._stream.flush()
