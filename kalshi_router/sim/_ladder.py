"""One side of one order book (price levels, FIFO queues) and the exchange's money arithmetic.

Units: prices in $0.0001, counts in hundredths of a contract, money in micro-dollars, so
``price * count`` is already micro-dollars.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kalshi_router.sim.book import SimOrder

# $1 in price units; also the micro-dollars one hundredth of a contract pays out.
PRICE_ONE = 10_000
# Dead entries are skipped lazily; once they outnumber the live ones a queue is rebuilt, so heavy
# cancelling at a price that never trades cannot grow it without bound.
_COMPACT_AFTER = 32


def taker_fee(price: int, count: int) -> int:
    """Kalshi's taker fee ceil(0.07 * C * P * (1 - P)) rounded up to the cent, in micro-dollars."""
    # 0.07 * (count / 100) * (price / 1e4) * (1 - price / 1e4) dollars, counted in cents.
    cents = -(-7 * count * price * (PRICE_ONE - price) // 10**10)
    return cents * 10_000


def unit_cost(side: Literal["bid", "ask"], price: int) -> int:
    """Micro-dollars one hundredth of a contract costs: YES at ``price``, or NO at 1 - price."""
    return price if side == "bid" else PRICE_ONE - price


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

    def __init__(self, side: Literal["bid", "ask"]) -> None:
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
