"""Loopback ports for something that binds them itself: a service or a Redis server started
(or restarted) on a port the test chose, a port that must be taken, a token file named after it.

A port found by binding port 0 and letting go is in the kernel's ephemeral range, where the next
bind to port 0 or outgoing connection of any process (a parallel worker's, say) may take it
before the test's server binds it. These are found free below that range (it starts at 32768 on
Linux, 49152 elsewhere), where only a bind to that very port can take one.
"""

from __future__ import annotations

import random
import socket

BELOW_EPHEMERAL = range(20_000, 32_768)
_draw = random.Random()


def bindable_port(taken: frozenset[int] | set[int] = frozenset()) -> int:
    """A loopback port free now, below the ephemeral range, and not in ``taken``."""
    for port in _draw.sample(BELOW_EPHEMERAL, 200):
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {BELOW_EPHEMERAL}")
