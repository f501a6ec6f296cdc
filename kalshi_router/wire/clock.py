"""How far the exchange's clock is from ours, read from its ``Date`` headers.

Signatures carry our timestamp and the exchange refuses one outside its window, so a drifting
clock shows up as 401s on every request: this says why before it gets there.

A ``Date`` header has one-second resolution (the server's time, truncated), so one answer
places the exchange's clock in ``[date, date + 1)`` at some moment between sending and reading
the answer. One sample is ``date + 0.5`` minus the midpoint of that interval: off by at most
0.5 s plus half the round trip. The estimate is the median of the recent samples, which the
quantisation errors of answers spread over a second average out of.
"""

from __future__ import annotations

import logging
import statistics
from collections import deque
from email.utils import parsedate_to_datetime

log = logging.getLogger("kalshi_router.wire.clock")

WINDOW = 15


class ClockSkew:
    """``estimate_s``: the exchange's clock minus ours, in seconds (None before any answer).

    Logs a WARNING when the estimate's size exceeds ``threshold_s``, again each time it has
    grown by another ``threshold_s`` since the last warning, and once more (INFO) when it is
    back under half the threshold, after which a new excursion warns again.
    """

    def __init__(self, threshold_s: float) -> None:
        if not threshold_s > 0:
            raise ValueError("threshold_s must be > 0")
        self._threshold = threshold_s
        self._samples: deque[float] = deque(maxlen=WINDOW)
        self._estimate: float | None = None
        self._warned = 0.0
        # The header changes once a second: parse each value once.
        self._last_header = ""
        self._last_epoch = 0.0

    @property
    def estimate_s(self) -> float | None:
        return self._estimate

    @property
    def threshold_s(self) -> float:
        return self._threshold

    def observe(self, date: str | None, sent_s: float, received_s: float) -> None:
        """One answer's ``Date`` header, read between ``sent_s`` and ``received_s`` (our wall
        clock, seconds). Answers without a readable header are ignored, and so are those slower
        than half the threshold: their own delay could account for much of it."""
        if not date or received_s - sent_s > self._threshold / 2:
            return
        if date != self._last_header:
            try:
                epoch = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return
            self._last_header, self._last_epoch = date, epoch
        self._samples.append(self._last_epoch + 0.5 - (sent_s + received_s) / 2)
        self._estimate = statistics.median(self._samples)
        self._check(self._estimate)

    def _check(self, estimate: float) -> None:
        size = abs(estimate)
        if self._warned and size <= self._threshold / 2:
            log.info("clock skew back to %.1f s of the exchange's clock", estimate)
            self._warned = 0.0
        elif size > self._threshold and size >= self._warned + self._threshold:
            direction = "behind" if estimate > 0 else "ahead of"
            log.warning(
                "our clock is about %.1f s %s the exchange's (its Date header; more than "
                "exchange.max_clock_skew_s = %g): request signatures carry our time and are "
                "refused outside the exchange's window; synchronise the clock (NTP)",
                size,
                direction,
                self._threshold,
                extra={"clock_skew_s": estimate},
            )
            self._warned = size
