"""Hypothesis runs the same examples every time (the suite is deterministic, CI included);
``HYPOTHESIS_PROFILE=explore``, or any long suite (``tests/long.py``), draws new ones, to look
for counterexamples on purpose."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.long import hypothesis_profile

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, max_examples=1_000)
settings.load_profile(hypothesis_profile())

pytest_plugins = ["tests.redis_server"]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused: bound for the test and never listening,
    so that nothing else (another test's server, in a parallel run) can take it meanwhile, as
    it could a port found free and then let go."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])
