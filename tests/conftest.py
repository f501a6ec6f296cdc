"""Hypothesis runs the same examples every time (the suite is deterministic, CI included);
``HYPOTHESIS_PROFILE=explore``, or any long suite (``tests/long.py``), draws new ones, to look
for counterexamples on purpose."""

from __future__ import annotations

from hypothesis import settings

from tests.long import hypothesis_profile

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, max_examples=1_000)
settings.load_profile(hypothesis_profile())

pytest_plugins = ["tests.redis_server"]
