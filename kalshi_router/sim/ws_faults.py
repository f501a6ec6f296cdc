"""WebSocket faults: dropped connections, stalls, held-back (so reordered) and dropped frames, and
create answers that come after their frames; with the counters a chaos run reports.

Each connection sends through an ``Outbox``. A frame is planned when it is queued, in the
engine's step: every data frame draws exactly five numbers from its connection's own
``random.Random`` (seeded from the run's seed and the connection's number), whatever the
config, so the same seed, connections and frames give the same faults, and one connection's
traffic never shifts another's draws or the REST faults'. Command answers draw nothing.

Sim assumptions (Kalshi's docs are silent on all of these): a dropped connection is a TCP abort
with no close frame, and what was queued behind it is lost; a stall freezes the connection
both ways (no frames, no heartbeat pings, no pongs, commands answered only afterwards) while
TCP stays open; frames carry no ``seq`` on the order channels, so a held-back frame is simply
overtaken by later ones, across orders and channels alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import msgspec
from aiohttp import web

from kalshi_router.sim.config import WsFaultConfig
from kalshi_router.sim.ws_schema import Fill, Frame, MarketPosition, OrderGroupUpdates, UserOrder

# Sleeps that return False were cut short by the server shutting down.
Pause = Callable[[float], Awaitable[bool]]
# A dropped order_group_updates frame leaves a gap in its subscription's seq.
DATA_FRAMES = (UserOrder, Fill, MarketPosition, OrderGroupUpdates)
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class WsStats:
    """What the WebSocket and its faults did over the run (``GET /_sim/stats`` under "ws")."""

    connections: int = 0
    connections_dropped: int = 0
    stalls: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    frames_delayed: int = 0
    frames_reordered: int = 0
    late_answers: int = 0

    def as_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FramePlan:
    """What one data frame will suffer."""

    drop_connection: bool = False
    drop_frame: bool = False
    stall: bool = False
    delay_s: float = 0.0


NO_FAULT = FramePlan()


def draw(config: WsFaultConfig, rng: random.Random) -> FramePlan:
    """One data frame's faults: always five draws, in a fixed order."""
    u_connection, u_frame, u_stall, u_delay, u_amount = (rng.random() for _ in range(5))
    if u_connection < config.drop_connection_rate:
        return FramePlan(drop_connection=True)
    if u_frame < config.drop_frame_rate:
        return FramePlan(drop_frame=True)
    delay_ms = 0.0
    if u_delay < config.delay_rate:
        delay_ms = config.delay_min_ms + u_amount * (config.delay_max_ms - config.delay_min_ms)
    stall = u_stall < config.stall_rate
    return (
        NO_FAULT if not stall and not delay_ms else FramePlan(stall=stall, delay_s=delay_ms / 1e3)
    )


def connection_rng(seed: int, number: int) -> random.Random:
    """The random stream of the run's ``number``-th connection (from 0)."""
    return random.Random(f"{seed}:ws:{number}")  # noqa: S311  # reproducible, not secret


@dataclass(frozen=True, slots=True)
class _Item:
    index: int
    frame: Frame
    plan: FramePlan


class Outbox:
    """One connection's frames on their way out: in the order queued unless a fault says
    otherwise. ``run`` is the connection's writer; ``gate`` is what its reader and pinger
    wait on, so a stall silences them too."""

    def __init__(
        self,
        owner: WsFaults,
        ws: web.WebSocketResponse,
        abort: Callable[[], None],
        rng: random.Random,
    ) -> None:
        self._owner = owner
        self._ws = ws
        self._abort = abort
        self._rng = rng
        self._ready: asyncio.Queue[_Item] = asyncio.Queue()
        self._queued = 0
        # Frames queued and neither sent nor lost yet; what a late answer waits for.
        self._pending: set[int] = set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._held: dict[int, asyncio.TimerHandle] = {}
        self._open = asyncio.Event()
        self._open.set()
        self._unstall: asyncio.TimerHandle | None = None
        self._stalled_until = -math.inf
        self._highest_sent = -1
        self._data_sent = 0
        self.closed = False

    def put(self, frame: Frame) -> None:
        """Queue ``frame`` (synchronously, in the step that made it), planning its faults."""
        if self.closed:
            return
        index, self._queued = self._queued, self._queued + 1
        stats = self._owner.stats
        plan = draw(self._owner.config(), self._rng) if isinstance(frame, DATA_FRAMES) else NO_FAULT
        if plan.drop_frame:
            stats.frames_dropped += 1
            return
        self._pending.add(index)
        item = _Item(index, frame, plan)
        if plan.delay_s:
            stats.frames_delayed += 1
            loop = asyncio.get_running_loop()
            self._held[index] = loop.call_later(plan.delay_s, self._release, item)
        else:
            self._ready.put_nowait(item)

    def _release(self, item: _Item) -> None:
        del self._held[item.index]
        self._ready.put_nowait(item)

    async def run(self) -> None:
        """Send frames as they become ready, until the connection is dropped or closed."""
        while not self.closed:
            item = await self._ready.get()
            if item.plan.drop_connection:
                self.drop()
                return
            if item.plan.stall:
                self.stall(self._owner.config().stall_s, extend=True)
            await self._open.wait()
            if self.closed:
                return
            with contextlib.suppress(ConnectionError):
                await self._ws.send_bytes(_encode(item.frame))
                self._sent(item)
            self._settle(item.index)
            every = self._owner.config().drop_connection_every_frames
            if every and self._data_sent >= every:
                self.drop()

    def _sent(self, item: _Item) -> None:
        stats = self._owner.stats
        stats.frames_sent += 1
        if item.index < self._highest_sent:
            stats.frames_reordered += 1
        self._highest_sent = max(self._highest_sent, item.index)
        if isinstance(item.frame, DATA_FRAMES):
            self._data_sent += 1

    def _settle(self, index: int) -> None:
        self._pending.discard(index)
        oldest = min(self._pending, default=self._queued)
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._waiters:
            if oldest >= target or self.closed:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still

    async def flushed(self) -> None:
        """Return once every frame queued so far has been sent or lost."""
        target = self._queued
        if self.closed or min(self._pending, default=target) >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    async def gate(self) -> None:
        """Return at once, or when the connection's stall ends."""
        await self._open.wait()

    def stall(self, seconds: float, *, extend: bool = False) -> None:
        """Go silent for ``seconds`` from now; ``extend``: never shorten a stall under way
        (a hook sets the end outright, so ``0`` ends a stall)."""
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if extend and until <= self._stalled_until:
            return
        if self._unstall is not None:
            self._unstall.cancel()
            self._unstall = None
        if seconds <= 0:
            self._end_stall()
            return
        # Never reopened in between: whatever waits at the gate would slip through.
        if self._open.is_set():
            self._owner.stats.stalls += 1
            self._open.clear()
        self._stalled_until = until
        self._unstall = loop.call_later(seconds, self._end_stall)

    def _end_stall(self) -> None:
        self._unstall = None
        self._stalled_until = -math.inf
        self._open.set()

    def drop(self) -> None:
        """Close the TCP connection abruptly, with no close frame; what is queued is lost."""
        if self.closed:
            return
        self._owner.stats.connections_dropped += 1
        self._abort()
        self.close()

    def close(self) -> None:
        """Forget everything still queued or held and wake whatever waits on this connection."""
        if self.closed:
            return
        self.closed = True
        self._owner.forget(self)
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        if self._unstall is not None:
            self._unstall.cancel()
        self._end_stall()
        self._pending.clear()
        self._settle(-1)


class WsFaults:
    """The run's WebSocket faults: one Outbox per open connection, the late create answers,
    and the test hooks (drop or stall every open connection now)."""

    def __init__(
        self, config: Callable[[], WsFaultConfig], seed: int, stats: WsStats, pause: Pause
    ) -> None:
        self.config = config
        self.stats = stats
        self._seed = seed
        self._pause = pause
        self._late = random.Random(f"{seed}:ws:late")  # noqa: S311  # reproducible, not secret
        self._outboxes: set[Outbox] = set()

    def open(self, ws: web.WebSocketResponse, abort: Callable[[], None]) -> Outbox:
        """The Outbox of a new connection, with its own random stream."""
        number = self.stats.connections
        self.stats.connections += 1
        outbox = Outbox(self, ws, abort, connection_rng(self._seed, number))
        self._outboxes.add(outbox)
        return outbox

    def forget(self, outbox: Outbox) -> None:
        self._outboxes.discard(outbox)

    def drop_connections(self) -> int:
        """Drop every open connection now; how many there were."""
        outboxes = list(self._outboxes)
        for outbox in outboxes:
            outbox.drop()
        return len(outboxes)

    def stall_connections(self, seconds: float) -> int:
        """Stall every open connection for ``seconds`` from now (0: end any stall)."""
        for outbox in self._outboxes:
            outbox.stall(seconds)
        return len(self._outboxes)

    async def flushed(self) -> None:
        """Return once every open connection has sent or lost the frames queued so far."""
        await asyncio.gather(*(outbox.flushed() for outbox in list(self._outboxes)))

    async def answer_late(self) -> None:
        """Maybe hold a create's answer until its frames are out, then a while longer."""
        config = self.config()
        # No draw while off, so turning the fault on never changes an earlier run's draws.
        if not config.late_create_answer_rate:
            return
        if self._late.random() >= config.late_create_answer_rate:
            return
        self.stats.late_answers += 1
        await self.flushed()
        await self._pause(config.late_create_answer_ms / 1000)
