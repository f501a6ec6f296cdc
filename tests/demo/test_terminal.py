"""The demo's text histogram and progress bar."""

from __future__ import annotations

import io

from kalshi_router.demo.terminal import Progress, histogram


def test_histogram_bins_by_edge_and_scales_bars_to_the_peak() -> None:
    lines = histogram([0.0005, 0.0015, 0.0016, 0.003, 12.0], width=10)
    assert lines[0] == "   < 1 ms │█████      1"
    assert lines[1] == "   < 2 ms │██████████ 2"
    assert lines[2] == "   < 5 ms │█████      1"
    assert lines[-1] == "   ≥ 10 s │█████      1"
    # Empty buckets between the first and last are shown, with no bar.
    assert "  < 10 ms │           0" in lines


def test_histogram_of_nothing_says_so() -> None:
    assert histogram([]) == ["(no samples)"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    bar = Progress(10, quiet)
    bar.update(5, "x")
    bar.close()
    assert quiet.getvalue() == ""
    tty = Tty()
    bar = Progress(10, tty)
    bar.update(5, "12 sent")
    bar.close()
    assert tty.getvalue().startswith("\r[" + "#" * 15 + " " * 15 + "]   5.0/10 s  12 sent")
    assert tty.getvalue().endswith("\n")
