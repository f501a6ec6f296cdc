"""The signature pool: pairs made ahead on a clock the test moves, each handed out once, never
stale, inline when none is fresh; its thread owned (started, woken by a take, stopped)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi_router.wire.presign import DEPTH, THREAD_NAME, SignaturePool
from kalshi_router.wire.signer import Signer

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
CREATE = ("POST", "/trade-api/v2/portfolio/events/orders/batched")
CANCEL = ("DELETE", "/trade-api/v2/portfolio/events/orders/batched")
MAX_AGE = 500


class Clock:
    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def pool_on(clock: Clock) -> SignaturePool:
    signer = Signer("key-id", KEY, clock_ms=clock)
    return SignaturePool(signer, [CREATE, CANCEL], max_age_ms=MAX_AGE)


def stamp(headers: dict[str, str]) -> int:
    return int(headers["KALSHI-ACCESS-TIMESTAMP"])


def verified(headers: dict[str, str], method: str, path: str) -> bool:
    text = (headers["KALSHI-ACCESS-TIMESTAMP"] + method + path).encode()
    KEY.public_key().verify(base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]), text)
    return True


def presign_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


async def test_a_pair_made_ahead_is_the_one_inline_signing_would_have_made_then() -> None:
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    made_at = clock.now
    clock.now += 120
    headers = pool.headers(*CREATE)
    # The signer's clock, as inline signing reads it: a skew correction there applies to both.
    assert stamp(headers) == made_at
    assert headers == Signer("key-id", KEY, clock_ms=lambda: made_at).headers(*CREATE)
    assert verified(headers, *CREATE)
    assert (pool.figures.premade, pool.figures.inline) == (1, 0)


async def test_each_pair_is_handed_out_once_then_inline() -> None:
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    first = pool.headers(*CREATE)
    # A take tops the request up to DEPTH at the next fill; idle, one pair was enough.
    clock.now += 1
    pool.fill()
    taken = [pool.headers(*CREATE) for _ in range(DEPTH)]
    clock.now += 1
    last = pool.headers(*CREATE)
    stamps = [stamp(h) for h in [first, *taken]]
    assert len({id(h) for h in [first, *taken, last]}) == DEPTH + 2
    # The freshest first: the pair made last at the second fill, then the one before it.
    assert stamps == sorted(stamps[:1]) + sorted(stamps[1:], reverse=True)
    assert stamp(last) == clock.now
    assert (pool.figures.premade, pool.figures.inline) == (DEPTH + 1, 1)


async def test_an_empty_pool_signs_inline() -> None:
    clock = Clock()
    pool = pool_on(clock)
    headers = pool.headers(*CANCEL)
    assert stamp(headers) == clock.now
    assert verified(headers, *CANCEL)
    assert (pool.figures.premade, pool.figures.inline) == (0, 1)


async def test_a_request_not_in_the_pool_is_signed_inline_and_not_counted() -> None:
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    headers = pool.headers("GET", "/trade-api/v2/account/limits")
    assert verified(headers, "GET", "/trade-api/v2/account/limits")
    assert (pool.figures.premade, pool.figures.inline) == (0, 0)


@pytest.mark.parametrize(("age", "premade"), [(MAX_AGE, True), (MAX_AGE + 1, False)])
async def test_a_pair_older_than_max_age_is_never_used(age: int, premade: bool) -> None:
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    made_at = clock.now
    clock.now += age
    headers = pool.headers(*CREATE)
    assert stamp(headers) == (made_at if premade else clock.now)
    assert pool.figures.premade == int(premade)


async def test_a_stale_freshest_pair_discards_the_older_ones_too() -> None:
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    pool.headers(*CREATE)
    pool.fill()  # DEPTH pairs now
    clock.now += MAX_AGE + 1
    assert [stamp(pool.headers(*CREATE)) for _ in range(DEPTH)] == [clock.now] * DEPTH
    assert pool.figures.inline == DEPTH


async def test_a_clock_stepped_back_makes_earlier_pairs_unusable() -> None:
    # Inline signing would no longer send a time "in the future": the pool does not either.
    clock = Clock()
    pool = pool_on(clock)
    pool.fill()
    clock.now -= 1_000
    assert stamp(pool.headers(*CREATE)) == clock.now
    assert (pool.figures.premade, pool.figures.inline) == (0, 1)
    # And the thread's step replaces them, at most DEPTH signatures a pass whatever the clock.
    pool.fill()
    assert stamp(pool.headers(*CANCEL)) == clock.now
    assert pool.figures.premade == 1


class CountingSigner(Signer):
    """Records what it signs ahead."""

    made: list[tuple[str, str]]

    def headers_at(self, timestamp_ms: int, method: str, path: str) -> dict[str, str]:
        self.made.append((method, path))
        return super().headers_at(timestamp_ms, method, path)


async def test_idle_the_pool_re_signs_one_pair_per_request_just_before_it_goes_stale() -> None:
    clock = Clock()
    signer = CountingSigner("key-id", KEY, clock_ms=clock)
    made = signer.made = []
    pool = SignaturePool(signer, [CREATE, CANCEL], max_age_ms=MAX_AGE)
    due = pool.fill()
    assert made == [CREATE, CANCEL]
    # Replaced a tenth of max_age before it would be refused, so one is ready at idle.
    assert due == pytest.approx((MAX_AGE - MAX_AGE // 10 + 1) / 1000)
    clock.now += 200
    assert pool.fill() == pytest.approx((MAX_AGE - MAX_AGE // 10 + 1 - 200) / 1000)
    assert len(made) == 2
    clock.now += MAX_AGE - MAX_AGE // 10 - 200 + 1
    pool.fill()
    assert made == [CREATE, CANCEL] * 2
    # Topped up to DEPTH after a take only; the extra one is then left to go stale.
    pool.headers(*CREATE)
    pool.fill()
    assert made[4:] == [CREATE] * DEPTH


async def test_the_thread_refills_after_a_take_and_stops_on_close() -> None:
    pool = SignaturePool(Signer("key-id", KEY), [CREATE, CANCEL], max_age_ms=MAX_AGE)
    pool.start()
    pool.start()  # no second thread
    try:
        assert len(presign_threads()) == 1
        seen: list[dict[str, str]] = []
        for _ in range(200):
            seen.append(pool.headers(*CREATE))
            # A take wakes the thread, which signs on its own while this one waits.
            await asyncio.sleep(0.001)
        assert pool.figures.premade >= 100, pool.figures
        assert pool.figures.premade + pool.figures.inline == 200
        assert len({id(h) for h in seen}) == 200
        now = time.time_ns() // 1_000_000
        assert all(0 <= now - stamp(h) <= MAX_AGE + 1_000 for h in seen)
    finally:
        pool.close()
    assert presign_threads() == []
    assert pool.headers(*CREATE) is not None  # closed: inline
    pool.close()  # idempotent
    pool.start()
    assert len(presign_threads()) == 1
    pool.close()
    assert presign_threads() == []


async def test_the_thread_is_woken_after_the_taking_request_once_per_loop_turn() -> None:
    pool = pool_on(Clock())
    pool.fill()
    pool.headers(*CREATE)
    pool.headers(*CANCEL)
    # Not while the request that took the pair is still being written.
    assert not pool._wake.is_set()
    await asyncio.sleep(0)
    assert pool._wake.is_set()
    pool._wake.clear()
    await asyncio.sleep(0)
    assert not pool._wake.is_set()
    pool.headers("GET", "/trade-api/v2/account/limits")
    await asyncio.sleep(0)
    assert not pool._wake.is_set()


def test_a_thread_that_fails_leaves_requests_signing_inline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    def failing_clock() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError("clock gone")
        return 1_700_000_000_000

    pool = SignaturePool(Signer("key-id", KEY, clock_ms=failing_clock), [CREATE], max_age_ms=500)
    pool.start()
    assert pool._thread is not None
    pool._thread.join(5)
    assert presign_threads() == []
    assert "pre-signing stopped" in caplog.text
    pool.close()


def test_max_age_must_leave_the_thread_room() -> None:
    with pytest.raises(ValueError, match="max_age_ms"):
        SignaturePool(Signer("key-id", KEY), [CREATE], max_age_ms=9)


async def test_the_thread_is_woken_only_once_a_request_has_no_pair_left() -> None:
    pool = pool_on(Clock())
    pool.fill()
    pool.headers(*CREATE)
    pool.fill()  # taken from: topped up to DEPTH
    assert DEPTH == 2
    await asyncio.sleep(0)
    pool._wake.clear()
    pool.headers(*CREATE)
    await asyncio.sleep(0)
    # One left: under load, a wake (two context switches) per DEPTH requests, not per request.
    assert not pool._wake.is_set()
    pool.headers(*CREATE)
    await asyncio.sleep(0)
    assert pool._wake.is_set()
    assert pool.figures.premade == 3
