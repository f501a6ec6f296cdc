"""Hypothesis runs the same examples every time (the suite is deterministic, CI included);
``HYPOTHESIS_PROFILE=explore``, or any long suite (``tests/long.py``), draws new ones, to look
for counterexamples on purpose. And loopback ports that a parallel run cannot take from under a
test."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from tests.long import hypothesis_profile
from tests.ports import bindable_port

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


@pytest.fixture
def unused_tcp_port() -> int:
    """A free loopback port below the ephemeral range (``tests.ports``): pytest-asyncio's
    binds port 0 and lets go, so a parallel worker's traffic may take it before the test's
    service binds it."""
    return bindable_port()


@pytest.fixture(scope="session")
def unused_tcp_port_factory() -> Callable[[], int]:
    """Free loopback ports below the ephemeral range, another at each call."""
    produced: set[int] = set()

    def factory() -> int:
        port = bindable_port(produced)
        produced.add(port)
        return port

    return factory
