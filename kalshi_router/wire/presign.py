"""Signatures made ahead, so that a batch request does not wait for its own.

Kalshi signs ``timestamp_ms + METHOD + path`` and not the body, so the signature of the next
batch create (or cancel) can be made before the batch exists. A thread keeps a few fresh
``(timestamp, headers)`` pairs for each such request; a request takes the freshest one (each
pair is used once, never again) and signs inline only when none is fresh. ``cryptography``
releases the GIL while it signs, so the thread's RSA signature (~250 µs) runs on another core
while the loop goes on.

Fresh: made at most ``max_age_ms`` ago, and not after now, by the signer's own clock, the one
inline signing reads (:meth:`Signer.now_ms`). So a pre-made timestamp is the one an inline
signature would have carried up to ``max_age_ms`` earlier: the age adds to the clock skew the
exchange sees, which is why the configuration keeps it to at most half of
``exchange.max_clock_skew_s``. A clock stepped back leaves pairs stamped "in the future": inline
signing would no longer send that time, so neither does the pool.

Idle cost: the thread sleeps until a pair is taken or the freshest one of a request is about
to go stale; idle, it makes one signature per request per ``0.9 x max_age_ms`` (two requests,
500 ms: 4.4 a second). A signature after a sleep runs on cold caches: measured on a busy
2-core VM, an idle router spends 2.5-3 ms of CPU a second this way with RSA-2048, ~1.2 ms with
Ed25519, against ~0.07 ms with presign off. After a request has taken one it tops that request
up to ``DEPTH``; the extra ones are left to go stale, not replaced.

Threads: a request's pairs are one ``collections.deque``; the loop only ``pop``s (the
freshest), the thread only ``append``s (a full deque drops its oldest) and copies it to read it,
each one atomic under the GIL, so neither waits for the other. The only lock is the wake-up
``threading.Event``'s, held for a moment by either side; the loop sets it from a callback of
its own, after the request that took a request's last pair has been written.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterable

import msgspec

from kalshi_router.wire.signer import Signer

__all__ = ["DEPTH", "MAX_AGE_MS", "SignatureFigures", "SignaturePool"]

log = logging.getLogger("kalshi_router.wire.presign")

# Two ready per request: the dispatcher may send two batches to one path back to back (a burst,
# more than one request in flight); more would mostly go stale at low load.
DEPTH = 2
# The default age limit: a tenth of the 5 s clock skew the router warns at.
MAX_AGE_MS = 500
THREAD_NAME = "kalshi-router-presign"


class SignatureFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Batch requests by where their signature came from (``[exchange] presign``)."""

    premade: int
    """A pair made ahead by the pool's thread."""
    inline: int
    """Signed as it went out: none was fresh (a burst, the thread behind, a clock step)."""


class _Request:
    """One pre-signed request: its fresh pairs, and how many the loop has taken."""

    __slots__ = ("method", "path", "ready", "seen", "taken")

    def __init__(self, method: str, path: str) -> None:
        self.method = method
        self.path = path
        self.ready: deque[tuple[int, dict[str, str]]] = deque(maxlen=DEPTH)
        self.taken = 0
        """Written by the loop only."""
        self.seen = 0
        """``taken`` as the thread last read it; written by the thread only."""


class SignaturePool:
    """Pairs made ahead for ``requests`` (method, full path from ``/trade-api/``); every other
    request is signed inline. :meth:`headers` is for the loop, :meth:`fill` is the thread's
    step (tests call it directly); :meth:`start` and :meth:`close` own the thread."""

    def __init__(
        self, signer: Signer, requests: Iterable[tuple[str, str]], *, max_age_ms: int
    ) -> None:
        if max_age_ms < 10:
            raise ValueError("max_age_ms must be >= 10")
        self._signer = signer
        self._max_age = max_age_ms
        # The thread replaces the freshest pair this long before it goes stale, so that a pair
        # is ready at idle even when the thread wakes a little late.
        self._fresh_for = max_age_ms - max_age_ms // 10
        self._requests = {(m.upper(), p): _Request(m.upper(), p) for m, p in requests}
        self._wake = threading.Event()
        self._wake_pending = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.premade = 0
        self.inline = 0

    @property
    def figures(self) -> SignatureFigures:
        return SignatureFigures(premade=self.premade, inline=self.inline)

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The auth headers for a request going out now: a fresh pair if one is ready."""
        request = self._requests.get((method, path))
        if request is None:
            return self._signer.headers(method, path)
        # Only the loop shortens a deque (the thread's appends keep its length or add to it),
        # so one that is not empty here still is at the pop.
        pair = request.ready.pop() if request.ready else None
        request.taken += 1
        if pair is not None and not 0 <= self._signer.now_ms() - pair[0] <= self._max_age:
            # The freshest is stale, so all of them are. A pair the thread added meanwhile
            # goes too: a signature wasted, never a stale one sent.
            request.ready.clear()
            pair = None
        if not request.ready and not self._wake_pending:
            # Woken only once a request has no pair left: under load one wake (two context
            # switches) per DEPTH requests, not one per request; the thread then tops it up
            # to DEPTH. Once this request is written: waking a thread is a syscall (~30 µs
            # measured on a busy 2-core VM), which need not delay it. Takes in one loop turn
            # share one wake.
            self._wake_pending = True
            asyncio.get_running_loop().call_soon(self._wake_thread)
        if pair is not None:
            self.premade += 1
            return pair[1]
        self.inline += 1
        return self._signer.headers(method, path)

    def _wake_thread(self) -> None:
        self._wake_pending = False
        self._wake.set()

    def fill(self) -> float:
        """Make what is missing: one fresh pair per request, ``DEPTH`` for a request taken from
        since the last fill. Returns the seconds until one will be missing at idle."""
        # Due when a pair made now would need replacing, at the latest: also when none is fresh
        # (a clock stepped back), so the thread never spins.
        due_ms = self._fresh_for + 1
        for request in self._requests.values():
            taken = request.taken
            want = DEPTH if taken != request.seen else 1
            request.seen = taken
            # At most DEPTH signatures a pass: a clock under which no pair is ever fresh (one
            # stepping back) must not keep the thread signing.
            for _ in range(DEPTH):
                if self._stopping or len(self._fresh(request)[1]) >= want:
                    break
                stamp = self._signer.now_ms()
                headers = self._signer.headers_at(stamp, request.method, request.path)
                request.ready.append((stamp, headers))
            now, fresh = self._fresh(request)
            if fresh:
                due_ms = min(due_ms, max(fresh) + self._fresh_for + 1 - now)
        return due_ms / 1000

    def _fresh(self, request: _Request) -> tuple[int, list[int]]:
        """Now, and the stamps of the request's pairs that the thread need not replace yet."""
        now = self._signer.now_ms()
        # A copy: iterating the deque itself fails when the loop pops meanwhile.
        return now, [s for s, _ in tuple(request.ready) if 0 <= now - s <= self._fresh_for]

    def start(self) -> None:
        """Start the thread (again after :meth:`close`); no-op while it runs."""
        if self._thread is not None:
            return
        self._stopping = False
        # A daemon: a transport nobody closed must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and wait for it: at most the end of the signature it is making
        (a fraction of a millisecond), so the loop may call this. Idempotent."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for request in self._requests.values():
            request.ready.clear()

    def _run(self) -> None:
        try:
            while not self._stopping:
                # Cleared before the fill reads the pairs: a take after this wakes the wait.
                self._wake.clear()
                delay = self.fill()
                if not self._stopping:
                    self._wake.wait(delay)
        except Exception:
            # Requests still go out, signed inline; the pool only saved them time.
            log.exception("pre-signing stopped; batch requests are signed inline from now on")
