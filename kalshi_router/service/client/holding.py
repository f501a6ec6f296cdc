"""The intents a ``RouterClient`` holds, from submit to outcome, and where each one is.

Each is in exactly one place: waiting for a stream (``queued``, with a timer that settles it
expired at its deadline), sent on the current stream (``sent``), or sent on a stream that broke
before its answer came (``orphans``, to be looked up at the service once a stream is open).
Every outcome goes through ``settle`` or ``fail``, which take it out of all three: once.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from kalshi_router.errors import QueueFull
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import Expired, Outcome
from kalshi_router.service.protocol import Verb

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True, eq=False)
class Held:
    """One intent and its future."""

    id: int
    verb: Verb
    item: OrderIntent | CancelIntent | AmendIntent | DecreaseIntent
    key: str
    """client_order_id for orders, order_id for the others: what the service files it under."""
    expires: float
    """Loop time at which its deadline passes."""
    future: asyncio.Future[Any]
    run: str = ""
    """The service run it was last sent to (``StreamState.run``)."""
    timer: asyncio.TimerHandle | None = None

    def ids(self) -> dict[str, str]:
        return {"client_order_id" if self.verb == "submit" else "order_id": self.key}

    def frame(self, deadline_s: float | None) -> str:
        message: dict[str, Any] = {"type": self.verb, "id": self.id, "item": self.item}
        if deadline_s is not None:
            message["deadline_s"] = deadline_s
        return _encode(message).decode()


class Holding:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.queued: dict[int, Held] = {}
        self.sent: dict[int, Held] = {}
        self.orphans: dict[int, Held] = {}
        self._ids = itertools.count(1)

    def new(self, verb: Verb, item: Any, key: str, expires: float) -> Held:
        future = asyncio.get_running_loop().create_future()
        return Held(next(self._ids), verb, item, key, expires, future)

    def room_for(self, count: int) -> None:
        """``QueueFull`` unless ``count`` more can wait for a stream."""
        if len(self.queued) + count > self.queue_size:
            waiting = len(self.queued)
            raise QueueFull(f"no room for {count} more: {waiting} intents wait for the service")

    def hold(self, held: Held) -> None:
        """Wait for a stream, until the intent's deadline."""
        self.queued[held.id] = held
        held.timer = held.future.get_loop().call_at(held.expires, self.expire, held)

    def sent_on(self, held: Held, run: str) -> None:
        held.run = run
        self.sent[held.id] = held

    def waiting(self) -> list[Held]:
        """Take every intent that waits for a stream (a stream is open), oldest first."""
        waiting = list(self.queued.values())
        self.queued.clear()
        for held in waiting:
            if held.timer is not None:
                held.timer.cancel()
                held.timer = None
        return waiting

    def dropped(self, unwritten: Collection[int]) -> None:
        """The stream broke: what it never wrote waits for the next; the rest is orphaned."""
        sent, self.sent = self.sent, {}
        for held in sent.values():
            if held.id in unwritten:
                self.hold(held)
            else:
                self.orphans[held.id] = held

    def expire(self, held: Held) -> None:
        reason = "deadline passed while the service was unreachable; never sent"
        self.settle(held, Expired(reason=reason, **held.ids()))

    def settle(self, held: Held, outcome: Outcome) -> None:
        self._release(held)
        if not held.future.done():
            held.future.set_result(outcome)

    def fail(self, held: Held, error: Exception) -> None:
        self._release(held)
        if not held.future.done():
            held.future.set_exception(error)

    def _release(self, held: Held) -> None:
        self.queued.pop(held.id, None)
        self.sent.pop(held.id, None)
        self.orphans.pop(held.id, None)
        if held.timer is not None:
            held.timer.cancel()
            held.timer = None

    def all(self) -> list[Held]:
        return [*self.queued.values(), *self.sent.values(), *self.orphans.values()]

    def futures(self) -> list[asyncio.Future[Any]]:
        return [held.future for held in self.all()]
