"""``RouterClient.set_trading_state`` and ``resume``: the trading state, changed over the stream.

A change is a ``trading_state`` request on the stream, so the service takes it before anything
the bot sends after it (it reads nothing more of the stream until the change is made), as the
embedded router's ``set_trading_state`` comes before the next ``submit``. ``trading_state``
shows the change from the moment it is asked until the service reports the state again after
answering it (a state frame follows each answer). A request not answered when the stream breaks
is sent again on the next one (a change is idempotent: asked twice, it is made once); one the
service refuses is logged (``set_trading_state``) or raised (``resume``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging

import msgspec

from kalshi_router.errors import ConfigError, RouterClosed, ServiceError
from kalshi_router.risk.config import TradingState
from kalshi_router.service.client.link import Link
from kalshi_router.service.protocol import (
    StreamAck,
    StreamError,
    StreamFrame,
    StreamState,
    TradingStateBody,
)

__all__ = ["RemoteControls"]

log = logging.getLogger("kalshi_router.client")
_encode = msgspec.json.Encoder().encode


class RemoteControls:
    """The client's trading-state requests; see the module docstring. The connection feeds
    it every reply first, and hands it every new stream."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._asked: dict[str, tuple[TradingStateBody, asyncio.Future[None] | None]] = {}
        self._showing: TradingState | None = None
        """The latest state asked, until the service reports after answering it."""
        self._latest: str | None = None
        self._answered = False

    def ask(
        self, link: Link | None, state: TradingState, *, resume: bool, wait: bool
    ) -> asyncio.Future[None] | None:
        """Ask for ``state`` on ``link`` (None: on the next stream); with ``wait``, a future
        that settles with the service's answer."""
        request_id = f"state-{next(self._ids)}"
        body = TradingStateBody(state=state, resume=resume)
        future = asyncio.get_running_loop().create_future() if wait else None
        self._asked[request_id] = (body, future)
        self._showing, self._latest, self._answered = state, request_id, False
        if link is not None:
            _send(link, request_id, body)
        return future

    def shown(self, reported: TradingState) -> TradingState:
        return reported if self._showing is None else self._showing

    def up(self, link: Link) -> None:
        """A new stream: every request not answered yet goes on it, in the order asked."""
        for request_id, (body, _) in self._asked.items():
            _send(link, request_id, body)

    def on_reply(self, reply: StreamFrame) -> bool:
        """Take ``reply`` if it answers one of these requests."""
        if isinstance(reply, StreamState):
            if self._answered:  # made after the latest change was: it shows the change
                self._showing, self._answered = None, False
            return False
        if not isinstance(reply, StreamAck | StreamError) or not isinstance(reply.id, str):
            return False
        asked = self._asked.pop(reply.id, None)
        if asked is None:
            return False
        body, future = asked
        latest = reply.id == self._latest
        if isinstance(reply, StreamAck):
            if future is not None and not future.done():
                future.set_result(None)
            self._answered = self._answered or latest
            return True
        error = ConfigError if reply.field == "state" else ServiceError
        problem = f"{reply.field}: {reply.message}"
        if future is not None:
            if not future.done():
                future.set_exception(error(problem))
        else:
            log.error("the service refused trading state %s: %s", body.state, problem)
        if latest:
            self._showing = None
        return True

    def close(self) -> None:
        """The client closed: a ``resume`` still waiting fails."""
        for _, future in self._asked.values():
            if future is not None and not future.done():
                future.set_exception(RouterClosed("the client closed before the service answered"))
        self._asked.clear()
        self._showing = None


def _send(link: Link, request_id: str, body: TradingStateBody) -> None:
    frame = {"type": "trading_state", "id": request_id, "item": body}
    link.send(None, _encode(frame).decode())
