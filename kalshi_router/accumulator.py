"""Lanes of waiting intents and the batch cut: synchronous decisions, no awaiting.

Three lanes in priority order: cancels (risk off first), single-order requests (amend,
decrease), creates. Within a lane, clients (the bots sharing one service) take turns, one intent
each, so that one bot's backlog cannot starve another's; each client's intents go first in first
out. An intent sent back for a retry waits in a delay heap until its backoff ends, then rejoins
the *front* of its client's queue: it is older than everything behind it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator, Sequence

import msgspec

from kalshi_router.pending import Client, Kind, Pending

KINDS: tuple[Kind, ...] = ("cancel", "single", "create")
_WAITING = frozenset({"queued", "waiting_retry"})


class _Lane:
    """One lane: a first-in-first-out queue per client, and those clients in the order of their
    turns (a client joins at the back, after every client already waiting). Entries taken out by
    ``discard`` stay in their queue, dead, until a cut or ``oldest`` reaches them. A queue the
    cut empties goes, with its client's turn, unless it is the only one (a lone client's next
    intent then allocates nothing)."""

    __slots__ = ("queues", "turns")

    def __init__(self) -> None:
        self.queues: dict[Client, deque[Pending]] = {}
        self.turns: deque[Client] = deque()

    def queue(self, client: Client) -> deque[Pending]:
        queue = self.queues.get(client)
        if queue is None:
            queue = self.queues[client] = deque()
            self.turns.append(client)
        return queue


class Cut(msgspec.Struct):
    """One batch cut (a Struct: one per request, built in C)."""

    batch: list[Pending] = msgspec.field(default_factory=list)
    expired: list[Pending] = msgspec.field(default_factory=list)
    dropped: list[Pending] = msgspec.field(default_factory=list)
    """Cancelled by their callers before being sent."""


class Accumulator:
    """Holds what is waiting to be sent. ``capacity`` bounds new submissions only: a retry always
    gets back in, so nothing once accepted is ever turned away.

    ``discard`` takes an intent out in O(1): its entry stays in its queue or heap, dead by the
    intent's state (an entry in a lane lives while its intent is ``queued``, one in the retry
    heap while it is ``waiting_retry``), and is dropped when it reaches the front. The counts
    are exact at all times, so batch sizes and token spends are never computed from dead
    entries.

    Deadlines are tracked the same way, for one expiry timer instead of one per intent (a
    timer each cost more than the rest of an intent's queueing): a deque in deadline order,
    since intents mostly arrive with the router's one default deadline, and a heap for the
    rest (shorter deadlines, retries).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lanes: dict[Kind, _Lane] = {kind: _Lane() for kind in KINDS}
        self._counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self._delayed: list[tuple[float, int, Pending]] = []
        self._retrying = 0
        self._size = 0
        self._order = itertools.count()
        self._deadlines: deque[Pending] = deque()
        self._late: list[tuple[float, int, Pending]] = []

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self.capacity

    def push(self, pending: Pending) -> None:
        self.push_all([pending])

    def push_all(self, batch: Sequence[Pending], deadline: float | None = None) -> None:
        """``push`` each of ``batch``, in order: intents of one kind from one client (a
        ``submit_many``), so their lane, queue and deadline order are looked up once.
        ``deadline``: every one of them is due then."""
        if not batch:
            return
        first = batch[0]
        for pending in batch:
            if pending.state != "new":
                pending.move("queued")  # raises IllegalTransition
            pending.state = "queued"
        self._size += len(batch)
        self._counts[first.kind] += len(batch)
        lane = self._lanes[first.kind]
        queue = lane.queues.get(first.client)
        if queue is None:
            queue = lane.queue(first.client)
        queue.extend(batch)
        deadlines = self._deadlines
        if deadline is not None and (not deadlines or deadlines[-1].deadline <= deadline):
            deadlines.extend(batch)  # all due at once, after everything there: in order
            return
        for pending in batch:
            if not deadlines or deadlines[-1].deadline <= pending.deadline:
                deadlines.append(pending)
            else:
                heapq.heappush(self._late, (pending.deadline, next(self._order), pending))

    def push_retry(self, pending: Pending, not_before: float) -> None:
        pending.move("waiting_retry")
        pending.not_before = not_before
        self._size += 1
        self._retrying += 1
        heapq.heappush(self._delayed, (not_before, next(self._order), pending))
        # Its entry in the deadline deque may have been dropped when it was sent.
        heapq.heappush(self._late, (pending.deadline, next(self._order), pending))

    def discard(self, pending: Pending) -> bool:
        """Take ``pending`` out if it is waiting here, leaving for the caller to give it its
        outcome; False if it is not (sent, say)."""
        state = pending.state
        if state == "queued":
            self._counts[pending.kind] -= 1
        elif state == "waiting_retry":
            self._retrying -= 1
        else:
            return False
        pending.move("leaving")
        self._size -= 1
        return True

    def promote(self, now: float) -> None:
        """Move retries whose backoff has ended to the front of their clients' queues, oldest
        first."""
        due: list[Pending] = []
        while self._delayed and self._delayed[0][0] <= now:
            pending = heapq.heappop(self._delayed)[2]
            if pending.state == "waiting_retry":
                due.append(pending)
        # A stable ascending sort, then pushed to the front last-first, so that ties in
        # ``submitted`` (one clock tick, a batch retried together) keep their order. (Sorting
        # with reverse=True instead would reverse the ties.)
        due.sort(key=lambda p: p.submitted)
        for pending in reversed(due):
            self._retrying -= 1
            self._counts[pending.kind] += 1
            pending.move("queued")
            self._lanes[pending.kind].queue(pending.client).appendleft(pending)

    def next_due(self) -> float | None:
        while self._delayed and self._delayed[0][2].state != "waiting_retry":
            heapq.heappop(self._delayed)
        return self._delayed[0][0] if self._delayed else None

    def next_deadline(self) -> float | None:
        """The earliest deadline of an intent still waiting here."""
        deadlines, late = self._deadlines, self._late
        while deadlines and deadlines[0].state not in _WAITING:
            deadlines.popleft()
        while late and late[0][2].state not in _WAITING:
            heapq.heappop(late)
        if deadlines and late:
            return min(deadlines[0].deadline, late[0][0])
        if deadlines:
            return deadlines[0].deadline
        return late[0][0] if late else None

    def expire(self, upto: float) -> list[Pending]:
        """Take out every waiting intent whose deadline is at or before ``upto``."""
        expired: list[Pending] = []
        deadlines, late = self._deadlines, self._late
        while deadlines and deadlines[0].deadline <= upto:
            pending = deadlines.popleft()
            if self.discard(pending):
                expired.append(pending)
        while late and late[0][0] <= upto:
            pending = heapq.heappop(late)[2]
            if self.discard(pending):
                expired.append(pending)
        return expired

    def next_kind(self) -> Kind | None:
        for kind in KINDS:
            if self._counts[kind]:
                return kind
        return None

    def count(self, kind: Kind) -> int:
        return self._counts[kind]

    def oldest(self, kind: Kind) -> Pending | None:
        """The longest-waiting intent of ``kind``, whoever's turn is next."""
        oldest = None
        for queue in self._lanes[kind].queues.values():
            while queue and queue[0].state != "queued":
                queue.popleft()
            if queue and (oldest is None or queue[0].queued_at < oldest.queued_at):
                oldest = queue[0]
        return oldest

    def cut(self, kind: Kind, limit: int, now: float) -> Cut:
        """Take up to ``limit`` sendable intents from ``kind``'s lane, one per client in turn,
        ``sending`` them; settle-bound ones (expired, cancelled by the caller) come out too,
        ``leaving``, but not into the batch and without using up a turn."""
        lane = self._lanes[kind]
        turns, queues = lane.turns, lane.queues
        cut = Cut()
        batch = cut.batch
        while turns and len(batch) < limit:
            client = turns[0]
            queue = queues[client]
            # No one to take turns with: first in first out, up to the limit.
            alone = len(turns) == 1
            room = limit - len(batch) if alone else 1
            while queue and room:
                pending = queue.popleft()
                if pending.state != "queued":
                    continue
                if pending.future.cancelled():
                    pending.move("leaving")
                    cut.dropped.append(pending)
                elif now >= pending.deadline:
                    pending.move("leaving")
                    cut.expired.append(pending)
                else:
                    # queued -> sending, legal (TABLE) and just checked: set, not ``move``d,
                    # which would look it up again, a call per intent sent.
                    pending.state = "sending"
                    batch.append(pending)
                    room -= 1
            if alone:
                break
            if queue:
                turns.rotate(-1)
            else:
                turns.popleft()
                del queues[client]
        # Every intent taken went into one of the three.
        taken = len(batch) + len(cut.expired) + len(cut.dropped)
        self._counts[kind] -= taken
        self._size -= taken
        # Keeps the deadline deque about as long as the queue (each client's queue is FIFO, so
        # what was just cut is mostly at its front).
        deadlines = self._deadlines
        while deadlines and deadlines[0].state not in _WAITING:
            deadlines.popleft()
        return cut

    def queued(self) -> dict[Client, int]:
        """How many intents each client has waiting, retries in backoff included. Linear in
        the queue's length: for stats, not for every intent."""
        counts: dict[Client, int] = {}
        for lane in self._lanes.values():
            for client, queue in lane.queues.items():
                waiting = sum(1 for pending in queue if pending.state == "queued")
                if waiting:
                    counts[client] = counts.get(client, 0) + waiting
        for _, _, pending in self._delayed:
            if pending.state == "waiting_retry":
                counts[pending.client] = counts.get(pending.client, 0) + 1
        return counts

    def drain(self) -> Iterator[Pending]:
        """Everything still waiting, for shutdown."""
        for lane in self._lanes.values():
            for queue in lane.queues.values():
                while queue:
                    pending = queue.popleft()
                    if self.discard(pending):
                        yield pending
            lane.queues.clear()
            lane.turns.clear()
        while self._delayed:
            pending = heapq.heappop(self._delayed)[2]
            if self.discard(pending):
                yield pending
        self._deadlines.clear()
        self._late.clear()
