"""Hypothesis runs the same examples every time (the suite is deterministic, CI included);
``HYPOTHESIS_PROFILE=explore``, or any long suite (``tests/long.py``), draws new ones, to look
for counterexamples on purpose. And loopback ports that a parallel run cannot take from under a
test."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator

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


# Ports a test hands to something that binds them itself: a service restarted on the same
# port, a port that must be taken, a token file named after it. pytest-asyncio's fixtures of
# these names bind port 0 and let go, so the port is in the kernel's ephemeral range, where the
# next bind to port 0 or outgoing connection of any process (a parallel worker's, say) may take
# it before the test's service binds it. These override them with free ports below that range
# (it starts at 32768 on Linux, 49152 elsewhere), which only a bind to that very port can take.
_BELOW_EPHEMERAL = range(20_000, 32_768)
_ports = random.Random()


def _bindable_port(taken: set[int]) -> int:
    for port in _ports.sample(_BELOW_EPHEMERAL, 200):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {_BELOW_EPHEMERAL}")


@pytest.fixture
def unused_tcp_port() -> int:
    """A free loopback port below the ephemeral range."""
    return _bindable_port(set())


@pytest.fixture(scope="session")
def unused_tcp_port_factory() -> Callable[[], int]:
    """Free loopback ports below the ephemeral range, another at each call."""
    produced: set[int] = set()

    def factory() -> int:
        port = _bindable_port(produced)
        produced.add(port)
        return port

    return factory
