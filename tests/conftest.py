"""Hypothesis runs the same examples every time (the suite is deterministic, CI included);
``HYPOTHESIS_PROFILE=explore`` draws new ones, to look for counterexamples on purpose."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, max_examples=1_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
