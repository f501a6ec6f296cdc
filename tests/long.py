"""The long suites' switches, and the hypothesis profile they imply.

``KALSHI_ROUTER_CHAOS_LONG=1`` and ``KALSHI_ROUTER_CRASH_LONG=1`` lengthen one suite each;
``KALSHI_ROUTER_LONG=1`` lengthens every one. Any long run also draws new hypothesis examples
(the ``explore`` profile) for every property test it runs, so new counterexamples are searched
for somewhere; the default suite draws the same ones every run. ``HYPOTHESIS_PROFILE`` wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SUITES = ("CHAOS", "CRASH")


def is_long(suite: str, environ: Mapping[str, str] = os.environ) -> bool:
    assert suite in SUITES, suite
    return "1" in (environ.get(f"KALSHI_ROUTER_{suite}_LONG"), environ.get("KALSHI_ROUTER_LONG"))


def hypothesis_profile(environ: Mapping[str, str] = os.environ) -> str:
    if "HYPOTHESIS_PROFILE" in environ:
        return environ["HYPOTHESIS_PROFILE"]
    return "explore" if any(is_long(suite, environ) for suite in SUITES) else "deterministic"
