"""The embedded dead-man's switch, on the virtual clock: it fires once when the beats stop for
its timeout, exactly then, and again only after a beat; a failing or slow ``cancel_open`` does
not stop it; its one task ends with ``aclose``."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi_router.errors import ConfigError, RouterClosed
from kalshi_router.risk.watchdog import Watchdog
from tests.fakes import VirtualClock, run_virtual
from tests.fakes import clock_fixture as clock_fixture

TIMEOUT = 2.0


class Cancels:
    """``cancel_open``: records the virtual time of each call, sends ``sent`` cancels."""

    def __init__(self, clock: VirtualClock, sent: int = 3) -> None:
        self.clock = clock
        self.sent = sent
        self.at: list[float] = []
        self.fail = False
        self.takes = 0.0

    async def __call__(self) -> int:
        self.at.append(self.clock.elapsed())
        if self.takes:
            await asyncio.sleep(self.takes)
        if self.fail:
            raise RuntimeError("the exchange is down")
        return self.sent


async def test_not_armed_until_the_first_beat(clock: VirtualClock) -> None:
    cancels = Cancels(clock)
    dog = Watchdog(cancels, TIMEOUT)
    dog.start()
    await asyncio.sleep(10 * TIMEOUT)
    assert (cancels.at, dog.fired, dog.armed) == ([], 0, False)
    await dog.aclose()


async def test_fires_once_timeout_after_the_last_beat_and_again_after_the_next(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cancels = Cancels(clock)
    dog = Watchdog(cancels, TIMEOUT)
    caplog.set_level(logging.WARNING, "kalshi_router.watchdog")
    for _ in range(5):  # beats closer together than the timeout keep it quiet
        dog.beat()
        await asyncio.sleep(TIMEOUT * 0.9)
    assert cancels.at == []
    last = clock.elapsed() - TIMEOUT * 0.9
    await asyncio.sleep(10 * TIMEOUT)
    assert cancels.at == [pytest.approx(last + TIMEOUT)]
    assert (dog.fired, dog.cancels_sent, dog.armed) == (1, 3, False)
    assert "no heartbeat for 2.000 s (timeout 2 s): 3 cancels sent" in caplog.text
    dog.beat()
    again = clock.elapsed()
    await asyncio.sleep(10 * TIMEOUT)
    assert cancels.at[1:] == [pytest.approx(again + TIMEOUT)]
    assert (dog.fired, dog.cancels_sent) == (2, 6)
    await dog.aclose()


async def test_a_failing_cancel_is_logged_and_the_watchdog_carries_on(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cancels = Cancels(clock)
    cancels.fail = True
    dog = Watchdog(cancels, TIMEOUT)
    dog.beat()
    await asyncio.sleep(2 * TIMEOUT)
    assert (dog.fired, dog.failures, dog.cancels_sent) == (1, 1, 0)
    assert "cancelling the open orders failed" in caplog.text
    assert "the exchange is down" in caplog.text
    cancels.fail = False
    dog.beat()
    await asyncio.sleep(2 * TIMEOUT)
    assert (dog.fired, dog.failures, dog.cancels_sent) == (2, 1, 3)
    await dog.aclose()


async def test_a_beat_while_cancelling_arms_it_again_from_that_beat(clock: VirtualClock) -> None:
    cancels = Cancels(clock)
    cancels.takes = 1.0
    dog = Watchdog(cancels, TIMEOUT)
    dog.beat()
    await asyncio.sleep(TIMEOUT + 0.5)  # mid-cancel
    assert dog.fired == 1
    dog.beat()
    beat_at = clock.elapsed()
    await asyncio.sleep(10 * TIMEOUT)
    assert cancels.at == [pytest.approx(TIMEOUT), pytest.approx(beat_at + TIMEOUT)]
    await dog.aclose()


async def test_aclose_cancels_the_task_and_a_cancel_in_progress(clock: VirtualClock) -> None:
    cancels = Cancels(clock)
    cancels.takes = 100.0
    dog = Watchdog(cancels, TIMEOUT)
    dog.beat()
    await asyncio.sleep(TIMEOUT + 1)
    task = dog._task
    assert task is not None
    assert not task.done()
    await dog.aclose()
    assert task.cancelled()
    assert dog.cancels_sent == 0
    with pytest.raises(RouterClosed):
        dog.beat()
    with pytest.raises(RouterClosed):
        dog.start()
    await dog.aclose()  # twice is fine


async def test_aclose_before_any_beat_starts_nothing() -> None:
    async def cancel_open() -> int:
        raise AssertionError("never called")

    dog = Watchdog(cancel_open, TIMEOUT)
    await dog.aclose()
    assert dog._task is None


async def test_a_clock_of_its_own(clock: VirtualClock) -> None:
    # Another monotonic source that moves with the loop's time (its origin is its own).
    cancels = Cancels(clock)
    dog = Watchdog(cancels, TIMEOUT, clock=lambda: clock.now + 1_000.0)
    dog.beat()
    await asyncio.sleep(TIMEOUT / 2)
    dog.beat()
    await asyncio.sleep(10 * TIMEOUT)
    assert cancels.at == [pytest.approx(1.5 * TIMEOUT)]
    await dog.aclose()


@pytest.mark.parametrize("timeout", [0.0, -1.0, math.nan, math.inf])
def test_a_timeout_that_is_no_timeout_is_refused(timeout: float) -> None:
    async def cancel_open() -> int:
        return 0

    with pytest.raises(ConfigError, match="timeout_s: must be a finite number of seconds > 0"):
        Watchdog(cancel_open, timeout)


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.sampled_from([0.5, 1.0, 1.9, 2.1, 3.0, 7.5]), min_size=1, max_size=12))
def test_it_fires_once_for_each_silence_longer_than_the_timeout_at_its_end(
    gaps: list[float],
) -> None:
    """Beats separated by ``gaps``, then silence: one call for each gap over the timeout (and
    one for the final silence), each exactly ``TIMEOUT`` after the beat that began it."""

    async def main(clock: VirtualClock) -> list[float]:
        cancels = Cancels(clock)
        dog = Watchdog(cancels, TIMEOUT)
        for gap in gaps:
            dog.beat()
            await asyncio.sleep(gap)
        dog.beat()
        await asyncio.sleep(3 * TIMEOUT)
        await dog.aclose()
        return cancels.at

    beats = [sum(gaps[:i]) for i in range(len(gaps) + 1)]
    expected = [
        beat + TIMEOUT for beat, gap in zip(beats, [*gaps, math.inf], strict=True) if gap > TIMEOUT
    ]
    assert run_virtual(main) == pytest.approx(expected)
