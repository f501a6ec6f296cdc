"""``service.client.controls.RemoteControls``: a state change asked on the stream shows at once
and until the service reports after answering it; one asked while the stream is down, or not
answered when it broke, goes on the next stream; refusals are raised (``resume``) or logged."""

from __future__ import annotations

import json
import logging
from typing import cast

import pytest

from kalshi_router.errors import ConfigError, RouterClosed, ServiceError
from kalshi_router.service.client.controls import RemoteControls
from kalshi_router.service.client.holding import Held
from kalshi_router.service.client.link import Link
from kalshi_router.service.protocol import BudgetState, StreamAck, StreamError, StreamState
from kalshi_router.stats import StatsRecorder


class RecordingLink:
    def __init__(self) -> None:
        self.frames: list[dict[str, object]] = []

    def send(self, held: Held | None, frame: str) -> None:
        assert held is None
        self.frames.append(json.loads(frame))


def link() -> tuple[RecordingLink, Link]:
    recording = RecordingLink()
    return recording, cast(Link, recording)


STATE = StreamState(
    seq=1,
    run="run-1",
    journal=False,
    deadline_s=5.0,
    stats=StatsRecorder().snapshot(tokens_spent=0, queue_depth=0, in_flight=0),
    budget=BudgetState(refill_rate=10, capacity=100, headroom=0, costs={}, spent=0, available=100),
    batch_limits={},
)


async def test_a_change_shows_until_the_service_reports_after_its_answer() -> None:
    controls = RemoteControls()
    recording, on = link()
    assert controls.ask(on, "halted", resume=False, wait=False) is None
    assert recording.frames == [
        {"type": "trading_state", "id": "state-1", "item": {"state": "halted", "resume": False}}
    ]
    assert controls.shown("active") == "halted"
    # A state frame made before the service took it: still shows the change.
    assert controls.on_reply(STATE) is False
    assert controls.shown("active") == "halted"
    assert controls.on_reply(StreamAck("state-1", "halted")) is True
    assert controls.shown("active") == "halted"
    assert controls.on_reply(STATE) is False  # the first report after the answer
    assert controls.shown("reducing") == "reducing"
    assert controls.on_reply(StreamAck(7, "key")) is False  # an intent's: not ours


async def test_what_was_not_answered_goes_on_the_next_stream_in_order() -> None:
    controls = RemoteControls()
    recording, on = link()
    controls.ask(None, "reducing", resume=False, wait=False)
    waiting = controls.ask(on, "active", resume=True, wait=True)
    assert waiting is not None
    assert [f["id"] for f in recording.frames] == ["state-2"]
    again, new = link()
    controls.up(new)
    assert [(f["id"], f["item"]) for f in again.frames] == [
        ("state-1", {"state": "reducing", "resume": False}),
        ("state-2", {"state": "active", "resume": True}),
    ]
    assert controls.on_reply(StreamAck("state-1", "reducing"))
    assert controls.on_reply(StreamAck("state-2", "active"))
    await waiting
    assert controls.on_reply(StreamAck("state-2", "active")) is False  # answered twice


async def test_refusals_are_raised_to_resume_and_logged_for_a_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    controls = RemoteControls()
    _, on = link()
    waiting = controls.ask(on, "active", resume=True, wait=True)
    assert waiting is not None
    controls.on_reply(StreamError("state-1", "service", "could not resume: HTTP 503"))
    with pytest.raises(ServiceError, match=r"^service: could not resume"):
        await waiting
    waiting = controls.ask(on, "active", resume=True, wait=True)
    assert waiting is not None
    controls.on_reply(StreamError("state-2", "state", "must be one of ..."))
    with pytest.raises(ConfigError, match=r"^state: must be one of"):
        await waiting
    with caplog.at_level(logging.ERROR, logger="kalshi_router.client"):
        controls.ask(on, "halted", resume=False, wait=False)
        controls.on_reply(StreamError("state-3", "service", "no"))
    assert "the service refused trading state halted: service: no" in caplog.messages
    assert controls.shown("active") == "active"  # the refused change no longer shows


async def test_closing_fails_a_resume_still_waiting() -> None:
    controls = RemoteControls()
    waiting = controls.ask(None, "active", resume=True, wait=True)
    assert waiting is not None
    controls.close()
    with pytest.raises(RouterClosed):
        await waiting
    assert controls.shown("halted") == "halted"
