"""The demo's text histogram and progress bar."""

from __future__ import annotations

import io

from kalshi_router.demo.terminal import Progress, histogram, table


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


def test_a_table_aligns_the_first_column_left_and_the_others_right() -> None:
    lines = table(["market", "n"], [["KX-A", "1"], ["KX-LONGER", "-12"], ["total", ""]])
    assert lines == ["market       n", "KX-A         1", "KX-LONGER  -12", "total"]


def test_a_line_printed_above_the_bar_moves_the_bar_below_it() -> None:
    tty = Tty()
    out: list[str] = []
    bar = Progress(10, tty)
    bar.update(5, "note")
    drawn = tty.getvalue()
    bar.above("a fill", out.append)
    assert out == ["a fill"]
    # The bar's line was cleared, then the same bar drawn again.
    assert tty.getvalue() == drawn + "\r\033[K" + drawn
    quiet = io.StringIO()
    Progress(10, quiet).above("plain", out.append)
    assert (out[-1], quiet.getvalue()) == ("plain", "")
