"""A token bucket that refuses instead of waiting: the risk gate's orders-per-second limit.

``aiolimiter.AsyncLimiter`` (the write budget's bucket) does not fit here: it reads the time
from the running event loop, so it cannot be driven by an injected clock nor used without a
loop, and its only way to take capacity is ``await acquire()``, which waits for room; the gate
must answer at once, synchronously, and take nothing when it refuses.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, holding at most ``capacity`` (full at the start)."""

    __slots__ = ("_last", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if not rate > 0 or not capacity >= 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._last = now

    def _refill(self, now: float) -> None:
        # A clock that steps back refills nothing (and never drains the bucket).
        if now > self._last:
            tokens = self._tokens + (now - self._last) * self.rate
            self._tokens = tokens if tokens < self.capacity else self.capacity
            self._last = now

    def ready(self, now: float) -> bool:
        """Whether a token is there to take at ``now``."""
        self._refill(now)
        return self._tokens >= 1

    def take(self, now: float) -> None:
        """Take one token (call after :meth:`ready` said there is one)."""
        self._refill(now)
        self._tokens -= 1

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 if one is)."""
        self._refill(now)
        return max(0.0, (1 - self._tokens) / self.rate)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.capacity
