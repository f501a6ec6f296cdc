"""Order books (sorted price levels of FIFO queues), matching plans, and Kalshi's taker fee.

Units: prices in $0.0001, counts in hundredths of a contract, money in micro-dollars, so
``price * count`` is already micro-dollars.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from kalshi_router.sim._model import PRICE_ONE, Market, Side, SimOrder, Stp, unit_cost

# Dead entries are skipped lazily; once they outnumber the live ones a queue is rebuilt, so heavy
# cancelling at a price that never trades cannot grow it without bound.
_COMPACT_AFTER = 32


def taker_fee(price: int, count: int) -> int:
    """Kalshi's taker fee ceil(0.07 * C * P * (1 - P)) rounded up to the cent, in micro-dollars."""
    # 0.07 * (count / 100) * (price / 1e4) * (1 - price / 1e4) dollars, counted in cents.
    cents = -(-7 * count * price * (PRICE_ONE - price) // 10**10)
    return cents * 10_000


class Entry:
    """A resting order's place in a queue; ``live`` goes False when it leaves the book."""

    __slots__ = ("level", "live", "order")

    def __init__(self, order: SimOrder, level: Level) -> None:
        self.order = order
        self.level = level
        self.live = True


class Level:
    """All resting orders at one price, oldest first; ``qty`` sums the live remaining counts."""

    __slots__ = ("dead", "price", "qty", "queue")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[Entry] = deque()
        self.qty = 0
        self.dead = 0


class Ladder:
    """The bid or ask side of one book. Level keys are kept sorted so the best level is last."""

    __slots__ = ("_keys", "_levels", "_sign")

    def __init__(self, side: Side) -> None:
        # Keying asks by -price makes "best" the largest key on both sides.
        self._sign = 1 if side == "bid" else -1
        self._keys: list[int] = []
        self._levels: dict[int, Level] = {}

    def add(self, order: SimOrder) -> Entry:
        """Queue ``order`` at the back of its price level."""
        key = self._sign * order.price
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = Level(order.price)
            insort(self._keys, key)
        entry = Entry(order, level)
        level.queue.append(entry)
        level.qty += order.remaining_count
        return entry

    def reduce(self, entry: Entry, qty: int) -> None:
        """Take ``qty`` off a live entry that keeps resting (a partial fill or a decrease)."""
        entry.level.qty -= qty

    def remove(self, entry: Entry, qty: int) -> None:
        """Take the entry off the book; ``qty`` is what it still had resting."""
        level = entry.level
        level.qty -= qty
        entry.live = False
        level.dead += 1
        if level.qty == 0:
            key = self._sign * level.price
            del self._levels[key]
            del self._keys[bisect_left(self._keys, key)]
            return
        queue = level.queue
        while not queue[0].live:
            queue.popleft()
            level.dead -= 1
        if level.dead > _COMPACT_AFTER and level.dead * 2 > len(queue):
            level.queue = deque(e for e in queue if e.live)
            level.dead = 0

    def crosses(self, limit: int) -> bool:
        """Whether an opposite order at ``limit`` would trade with this side."""
        return bool(self._keys) and self._keys[-1] >= self._sign * limit

    def crossing(self, limit: int) -> Iterator[Entry]:
        """Live entries an opposite order at ``limit`` meets, in price-time priority."""
        return self._walk(self._sign * limit)

    def entries(self) -> Iterator[Entry]:
        """Every live entry, best level first."""
        return self._walk(None)

    def _walk(self, floor: int | None) -> Iterator[Entry]:
        for i in range(len(self._keys) - 1, -1, -1):
            key = self._keys[i]
            if floor is not None and key < floor:
                return
            for entry in self._levels[key].queue:
                if entry.live:
                    yield entry


@dataclass(slots=True)
class Book:
    """One market: its structure and both sides of its book."""

    market: Market
    bids: Ladder = field(default_factory=lambda: Ladder("bid"))
    asks: Ladder = field(default_factory=lambda: Ladder("ask"))

    def side(self, side: Side) -> Ladder:
        return self.bids if side == "bid" else self.asks

    def opposite(self, side: Side) -> Ladder:
        return self.asks if side == "bid" else self.bids


@dataclass(slots=True)
class Plan:
    """The fills an incoming order would make, worked out before anything changes."""

    fills: list[tuple[Entry, int]] = field(default_factory=list)
    self_trades: list[Entry] = field(default_factory=list)  # own makers that "maker" STP cancels
    stopped: bool = False  # "taker_at_cross" STP ended matching
    qty: int = 0
    notional: int = 0  # sum of price * count: the fill cost Kalshi reports
    cost: int = 0  # what the taker pays: YES at price, or NO at 1 - price
    fees: int = 0

    @property
    def self_crossed(self) -> bool:
        return self.stopped or bool(self.self_trades)

    def averages(self) -> tuple[int | None, int | None]:
        if not self.qty:
            return None, None
        return self.notional * 100 // self.qty, self.fees * 100 // self.qty


def plan_match(opposite: Ladder, user_id: str, side: Side, price: int, qty: int, stp: Stp) -> Plan:
    """What an order for ``qty`` at ``price`` would do against the ``opposite`` side."""
    plan = Plan()
    left = qty
    for entry in opposite.crossing(price):
        if not left:
            break
        maker = entry.order
        if maker.user_id == user_id:
            if stp == "taker_at_cross":
                plan.stopped = True
                break
            plan.self_trades.append(entry)
            continue
        fill = min(left, maker.remaining_count)
        left -= fill
        plan.fills.append((entry, fill))
        plan.qty += fill
        plan.notional += maker.price * fill
        plan.cost += unit_cost(side, maker.price) * fill
        plan.fees += taker_fee(maker.price, fill)
    return plan
