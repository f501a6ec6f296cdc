"""Option types the benchmark scripts share (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def comma_list(allowed: Sequence[str], none_ok: bool = False) -> Callable[[str], list[str]]:
    """A comma list of ``allowed`` names, in the order given, without repeats; "none" is the
    empty list where ``none_ok``."""

    def parse(text: str) -> list[str]:
        if none_ok and text.strip() == "none":
            return []
        values = list(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
        if not values or any(v not in allowed for v in values):
            choices = ", ".join(allowed) + (" or none" if none_ok else "")
            raise argparse.ArgumentTypeError(f"choose from {choices}: {text!r}")
        return values

    return parse


def positive_ints(text: str) -> list[int]:
    """A comma list of integers >= 1 ("1,4")."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need integers >= 1: {text!r}")
    return values
