"""The exchange's clock, read from its ``Date`` headers: a robust estimate, a warning when it is
too far from ours (once, again when it grows), and none when it is not."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate

import pytest
from aiohttp import web

from kalshi_router.sim import SimConfig
from kalshi_router.wire.clock import ClockSkew
from kalshi_router.wire.http import HttpTransport
from tests.integration.conftest import make_signer, running_sim

LOGGER = "kalshi_router.wire.clock"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a whole second


def date(epoch: float) -> str:
    """An HTTP Date header: the time truncated to the second, as servers write it."""
    return formatdate(int(epoch), usegmt=True)


def feed(skew: ClockSkew, offset_s: float, count: int, *, start: float = T0) -> None:
    """``count`` answers from an exchange ``offset_s`` ahead of us, spread over time, each with
    a 20 ms round trip."""
    for i in range(count):
        sent = start + i * 0.37
        received = sent + 0.02
        skew.observe(date((sent + received) / 2 + offset_s), sent, received)


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.mark.parametrize("offset", [-30.0, -7.25, -0.6, 0.0, 0.4, 3.0, 12.8])
def test_estimate_is_within_the_resolution_of_the_header(offset: float) -> None:
    skew = ClockSkew(5.0)
    assert skew.estimate_s is None
    feed(skew, offset, 15)
    assert skew.estimate_s is not None
    # Half a second of quantisation, and the spread of 15 samples brings it closer still.
    assert abs(skew.estimate_s - offset) <= 0.5


def test_one_wild_answer_does_not_move_the_median() -> None:
    skew = ClockSkew(5.0)
    feed(skew, 0.0, 10)
    skew.observe(date(T0 + 100 + 60), T0 + 100, T0 + 100.01)
    assert skew.estimate_s is not None
    assert abs(skew.estimate_s) <= 0.5


@pytest.mark.parametrize(
    ("header", "sent", "received"),
    [
        pytest.param(None, T0, T0 + 0.01, id="no-header"),
        pytest.param("", T0, T0 + 0.01, id="empty"),
        pytest.param("yesterday", T0, T0 + 0.01, id="unreadable"),
        pytest.param("Mon, 99 Foo 2026 99:99:99 GMT", T0, T0 + 0.01, id="nonsense-date"),
        pytest.param(date(T0 + 60), T0, T0 + 2.6, id="slower-than-half-the-threshold"),
    ],
)
def test_answers_that_cannot_tell_are_ignored(
    header: str | None, sent: float, received: float, caplog: pytest.LogCaptureFixture
) -> None:
    skew = ClockSkew(5.0)
    skew.observe(header, sent, received)
    assert skew.estimate_s is None
    assert warnings(caplog) == []


@pytest.mark.parametrize("offset", [0.0, 2.0, -4.0])
def test_no_warning_within_the_threshold(offset: float, caplog: pytest.LogCaptureFixture) -> None:
    skew = ClockSkew(5.0)
    feed(skew, offset, 50)
    assert warnings(caplog) == []


@pytest.mark.parametrize(("offset", "words"), [(8.0, "behind"), (-8.0, "ahead of")])
def test_warns_once_when_beyond_the_threshold(
    offset: float, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    skew = ClockSkew(5.0)
    feed(skew, offset, 50)
    [record] = warnings(caplog)
    message = record.getMessage()
    found = re.search(rf"about (\d+\.\d) s {words} the exchange's", message)
    assert found is not None, message
    assert abs(float(found[1]) - abs(offset)) <= 0.5
    assert "exchange.max_clock_skew_s = 5" in message


def test_warns_again_as_it_grows_and_after_it_came_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    skew = ClockSkew(5.0)
    feed(skew, 6.0, 20)
    feed(skew, 9.0, 20, start=T0 + 100)  # grew, but by less than another threshold
    assert len(warnings(caplog)) == 1
    feed(skew, 12.0, 20, start=T0 + 200)
    assert len(warnings(caplog)) == 2
    feed(skew, 0.0, 20, start=T0 + 300)  # fixed (NTP stepped the clock): said once, at INFO
    back = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert len(back) == 1
    feed(skew, -7.0, 20, start=T0 + 400)
    assert len(warnings(caplog)) == 3


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold_s"):
        ClockSkew(0.0)


# --- through the transport -------------------------------------------------------------------


@asynccontextmanager
async def exchange_ahead_by(offset_s: float) -> AsyncIterator[str]:
    """A loopback server whose Date header runs ``offset_s`` ahead of the real clock."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"orders": []}, headers={"Date": date(time.time() + offset_s)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/trade-api/v2"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("offset", "warned"), [(0.0, False), (2.0, False), (-9.0, True)])
async def test_transport_measures_the_date_header(
    offset: float, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        exchange_ahead_by(offset) as url,
        HttpTransport(url, make_signer(), max_clock_skew_s=5.0) as transport,
    ):
        assert transport.clock_skew_s is None
        for _ in range(5):
            await transport.request("GET", "/portfolio/orders")
        estimate = transport.clock_skew_s
    # Within one header's resolution (0.5 s) and half a loopback round trip.
    assert estimate is not None
    assert abs(estimate - offset) <= 0.75
    assert len(warnings(caplog)) == (1 if warned else 0)


async def test_the_simulator_sends_a_date_header() -> None:
    async with (
        running_sim(SimConfig()) as sim,
        HttpTransport(sim.url, make_signer()) as transport,
    ):
        response = await transport.request("GET", "/account/limits")
    assert response.date is not None
    assert transport.clock_skew_s is not None
    assert abs(transport.clock_skew_s) <= 0.75
