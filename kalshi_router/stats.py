"""Counters and latency samples, and the immutable snapshot ``OrderRouter.stats()`` returns;
the service's figures per client."""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

import msgspec

from kalshi_router.outcome import Outcome, Rejected, outcome_name, type_name
from kalshi_router.pending import Pending
from kalshi_router.redis_budget.figures import SharedBudgetFigures
from kalshi_router.risk.gate import RiskFigures
from kalshi_router.wire.presign import SignatureFigures

# Enough for stable p99s; stats() sorts them, so more would make every snapshot slow.
SAMPLES = 4_096


class Percentiles(msgspec.Struct, frozen=True):
    """Seconds, over the most recent samples."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


class ClientFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One client's intents at the service (a named bot, ``other`` or ``unnamed``)."""

    submitted: int
    """Taken by the router."""
    outcomes: dict[str, int]
    """Settled, by outcome; ``failed``: no outcome (the router crashed)."""
    queued: int
    """Waiting to be sent now, retries in backoff included."""
    disconnect_cancels: int = 0
    """Cancels the service sent because the client went (``cancel_on_disconnect``)."""


class OrderFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the order tracker knows and has done (``[orders] track``)."""

    orders: int
    """Orders in memory (open, and the newest final ones)."""
    open: int
    fills: int
    """Fills counted (each trade_id once)."""
    frames: int
    """Order frames read from the WebSocket."""
    reconnects: int
    sweeps: int
    """REST reconciliations run."""
    sweep_errors: int
    found_by_rest: int
    """Updates only a REST sweep brought: frames the WebSocket lost, or late ones."""
    resolved: int
    """Creates settled unknown, resolved later."""
    unresolved: int


class RouterStats(msgspec.Struct, frozen=True, kw_only=True):
    outcomes: dict[str, int]
    rejected_codes: dict[str, int]
    batches_sent: int
    items_sent: int
    average_batch_fill: float
    max_batch_fill: int
    tokens_spent: int
    http_429: int
    retries: int
    reconciliations: int
    """Intents looked up after an ambiguous answer."""
    queue_depth: int
    in_flight: int
    queue_wait: Percentiles
    limiter_wait: Percentiles
    round_trip: Percentiles
    submit_to_outcome: Percentiles
    clients: dict[str, ClientFigures] = msgspec.field(default_factory=dict)
    """Per client of the service, by label (empty for an embedded router)."""
    orders: OrderFigures | None = None
    """The order tracker's figures; None when it is off."""
    risk: RiskFigures | None = None
    """The risk gate's trading state and refusals."""
    shared_budget: SharedBudgetFigures | None = None
    """The shared write budget's calls to Redis and the rest (None: the local bucket)."""
    signatures: SignatureFigures | None = None
    """Batch requests sent with a signature made ahead or signed inline; None when
    ``[exchange] presign`` is off (or the router has no HTTP transport of its own making)."""
    fast_path_sends: int = 0
    """Requests ``place()`` sent in its caller's own turn, the router being idle
    (``[router] idle_fast_path``); counted in ``batches_sent`` too."""


def percentiles(samples: deque[float]) -> Percentiles:
    if not samples:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
    ordered = sorted(samples)

    def at(q: float) -> float:
        # Nearest rank: the smallest sample with at least q of all samples at or below it
        # (rounded first: 0.9 * 70 is 63.00000000000001 in binary floating point).
        return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]

    return Percentiles(len(ordered), at(0.50), at(0.90), at(0.99), ordered[-1])


class RouterObserver(Protocol):
    """What the router reports as it works (the service's metrics are one observer). Called on
    the loop thread, inline: keep each call cheap and never let it raise."""

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        """A request of ``size`` intents of ``kind`` is about to go out."""

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        """An answer (or a transport failure) came back for it."""

    def rate_limited(self) -> None: ...

    def retried(self, count: int) -> None: ...

    def reconciling(self, count: int) -> None: ...

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        """An intent got its one outcome, ``seconds`` after it was submitted."""


class Observers:
    """Fans each report out to every observer."""

    def __init__(self, observers: Sequence[RouterObserver]) -> None:
        self._all = tuple(observers)

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        for observer in self._all:
            observer.sent(kind, size, queue_waits, limiter_wait)

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        for observer in self._all:
            observer.answered(kind, size, round_trip)

    def rate_limited(self) -> None:
        for observer in self._all:
            observer.rate_limited()

    def retried(self, count: int) -> None:
        for observer in self._all:
            observer.retried(count)

    def reconciling(self, count: int) -> None:
        for observer in self._all:
            observer.reconciling(count)

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        for observer in self._all:
            observer.settled(kind, outcome, seconds)

    def settled_all(self, outcomes: Mapping[Pending, Outcome], now: float) -> None:
        for observer in self._all:
            settled_all(observer, outcomes, now)


def settled_all(observer: RouterObserver, outcomes: Mapping[Pending, Outcome], now: float) -> None:
    """``observer.settled`` for each of ``outcomes``, settled at ``now``. Our own recorder and
    fan-out tally them at once (a call per intent cost the recorder more than its tally); any
    other observer is told of each intent, in order, as the protocol says."""
    if type(observer) is StatsRecorder or type(observer) is Observers:
        observer.settled_all(outcomes, now)
        return
    for pending, outcome in outcomes.items():
        observer.settled(pending.kind, outcome, now - pending.submitted)


def settled_before(
    observer: RouterObserver,
    outcomes: Mapping[Pending, Outcome],
    stop: Pending,
    now: float,
    *,
    including: bool = False,
) -> None:
    """``settled_all`` for the intents before ``stop`` (and ``stop`` too if ``including``): a
    settling loop that failed at ``stop`` tells of those it settled."""
    done: dict[Pending, Outcome] = {}
    for pending, outcome in outcomes.items():
        if pending is stop and not including:
            break
        done[pending] = outcome
        if pending is stop:
            break
    settled_all(observer, done, now)


class StatsRecorder:
    """The tallies behind ``OrderRouter.stats()``."""

    def __init__(self) -> None:
        # By type, named in ``snapshot``: naming each outcome as it settles cost a call apiece.
        self._outcomes: Counter[type] = Counter()
        self.rejected_codes: Counter[str] = Counter()
        self.batches = 0
        self.batched_items = 0
        self.max_fill = 0
        self.http_429 = 0
        self.retries = 0
        self.reconciliations = 0
        self.fast_path_sends = 0
        self.queue_wait: deque[float] = deque(maxlen=SAMPLES)
        self.limiter_wait: deque[float] = deque(maxlen=SAMPLES)
        self.round_trip: deque[float] = deque(maxlen=SAMPLES)
        self.submit_to_outcome: deque[float] = deque(maxlen=SAMPLES)

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        self.queue_wait.extend(queue_waits)
        self.limiter_wait.append(limiter_wait)

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        self.round_trip.append(round_trip)
        self.batches += 1
        self.batched_items += size
        self.max_fill = max(self.max_fill, size)

    def rate_limited(self) -> None:
        self.http_429 += 1

    def retried(self, count: int) -> None:
        self.retries += count

    def reconciling(self, count: int) -> None:
        self.reconciliations += count

    def settled_all(self, outcomes: Mapping[Pending, Outcome], now: float) -> None:
        """``settled`` for each, ``now`` being when they settled: a batch's answers at once."""
        if not outcomes:
            return
        counts = self._outcomes
        kinds = list(map(type, outcomes.values()))
        first = kinds[0]
        # Mostly one kind of outcome (a batch accepted): one count. (``Counter.update`` asks
        # whether its argument is a Mapping, an ABC check that costs more than this does.)
        if kinds.count(first) == len(kinds):
            counts[first] += len(kinds)
        else:
            for kind in kinds:
                counts[kind] += 1
        if Rejected in kinds:
            for outcome in outcomes.values():
                if type(outcome) is Rejected:
                    self.rejected_codes[outcome.code] += 1
        self.submit_to_outcome.extend([now - pending.submitted for pending in outcomes])

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        self._outcomes[type(outcome)] += 1
        # ``type() is``, not ``isinstance``: outcomes are msgspec Structs, whose metaclass sends
        # isinstance down Python's slow path (a thousand instructions when it does not match).
        if type(outcome) is Rejected:
            self.rejected_codes[outcome.code] += 1
        self.submit_to_outcome.append(seconds)

    def snapshot(
        self,
        *,
        tokens_spent: int,
        queue_depth: int,
        in_flight: int,
        orders: OrderFigures | None = None,
        risk: RiskFigures | None = None,
        shared_budget: SharedBudgetFigures | None = None,
        signatures: SignatureFigures | None = None,
    ) -> RouterStats:
        return RouterStats(
            outcomes={type_name(kind): n for kind, n in self._outcomes.items()},
            rejected_codes=dict(self.rejected_codes),
            batches_sent=self.batches,
            items_sent=self.batched_items,
            average_batch_fill=self.batched_items / self.batches if self.batches else 0.0,
            max_batch_fill=self.max_fill,
            tokens_spent=tokens_spent,
            http_429=self.http_429,
            retries=self.retries,
            reconciliations=self.reconciliations,
            queue_depth=queue_depth,
            in_flight=in_flight,
            queue_wait=percentiles(self.queue_wait),
            limiter_wait=percentiles(self.limiter_wait),
            round_trip=percentiles(self.round_trip),
            submit_to_outcome=percentiles(self.submit_to_outcome),
            orders=orders,
            risk=risk,
            shared_budget=shared_budget,
            signatures=signatures,
            fast_path_sends=self.fast_path_sends,
        )

    def sent_at_once(self) -> None:
        """``place()`` sent its request in its caller's own turn."""
        self.fast_path_sends += 1


class ClientTally:
    """What each client label submitted and how it settled, for the service's figures."""

    def __init__(self) -> None:
        self._submitted: Counter[str] = Counter()
        self._outcomes: dict[str, Counter[str]] = {}
        self._disconnect_cancels: Counter[str] = Counter()

    def track(self, label: str, future: asyncio.Future[Any]) -> None:
        """``future`` is an intent the router took from ``label``: count it, and its outcome."""
        self._submitted[label] += 1
        future.add_done_callback(partial(self._settled, label))

    def cancelled_on_disconnect(self, label: str, count: int) -> None:
        self._disconnect_cancels[label] += count

    def _settled(self, label: str, future: asyncio.Future[Any]) -> None:
        failed = future.cancelled() or future.exception() is not None
        name = "failed" if failed else outcome_name(future.result())
        self._outcomes.setdefault(label, Counter())[name] += 1

    def snapshot(
        self, queued: Mapping[str | None, int], label: Callable[[str | None], str]
    ) -> dict[str, ClientFigures]:
        """Every label seen so far; ``queued``: what each client key has waiting now, and
        ``label`` the label of each key."""
        waiting: Counter[str] = Counter()
        for key, count in queued.items():
            waiting[label(key)] += count
        return {
            name: ClientFigures(
                submitted=submitted,
                outcomes=dict(self._outcomes.get(name, {})),
                queued=waiting[name],
                disconnect_cancels=self._disconnect_cancels[name],
            )
            for name, submitted in sorted(self._submitted.items())
        }
