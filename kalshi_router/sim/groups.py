"""Order groups in the engine: Kalshi's own fill limiter (OpenAPI 3.31.0, ``CreateOrderGroup``).

A group caps the contracts its orders match over a rolling 15-second window. "When the limit
is hit, all orders in the group are cancelled and no new orders can be placed until reset";
trigger does the same on request, reset clears the count and lets orders in again, delete
cancels the group's orders and removes it, and a new limit that the window already reaches
triggers the group at once.

``GroupLedger`` sits between the ledger and the exchange: it counts every fill of a grouped
order (``_fill``), and the exchange asks it to check a new order's group before anything
changes (``_check_group``) and to trip the groups that reached their limit once the step's
matching is over and its frames are out (``_trip_groups``), so that a plan is never cut short
halfway through its fills.

Sim assumptions (the spec is silent; ``spec/ORDER-GROUPS.md`` lists the questions):

- "matched" counts every fill of the group's orders, maker and taker alike, partial fills
  included; the group trips on *reaching* its limit (matched >= limit), since the limit is the
  most that may match, and an order's own match is not cut at the limit: the group trips after
  it (so one order can carry the count past the limit), cancelling what of it still rests;
- a fill counts for 15 s: one made at t counts while the clock is below t + 15 s;
- an order naming a group that does not exist (never did, was deleted, is another user's or
  another subaccount's) is refused 400 ``order_group_not_found``; one naming a triggered group
  400 ``order_group_triggered`` (the create endpoints declare no 404);
- ``is_auto_cancel_enabled`` is always true (every group cancels at its limit); nothing in
  the answers says whether a group is triggered, only the ``order_group_updates`` frames do;
- a group's ``orders`` are every order ever placed into it, oldest first, whatever its status;
- the group's frame comes before its orders' cancel frames; those cancels carry no
  ``last_update_reason`` (the spec's enum has no value for them), like a user's own cancel;
- triggering a triggered group triggers it again (another frame); cancel-all leaves groups
  as they are; a group lives on one subaccount and shard 0, and only orders of that
  subaccount may join it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kalshi_router.sim._ladder import Book, Entry
from kalshi_router.sim._ledger import Ledger
from kalshi_router.sim._model import NewOrder, OrderRejected, SimOrder
from kalshi_router.sim.events import GroupChanged, GroupEventType

WINDOW_MS = 15_000
# "Users can have up to 100,000 order groups at a time."
MAX_ORDER_GROUPS = 100_000


@dataclass(slots=True)
class OrderGroup:
    """One group; ``limit`` in 0.01 contract; ``matches`` the window's fills, oldest first."""

    group_id: str
    user_id: str
    subaccount: int
    exchange_index: int
    limit: int
    triggered: bool = False
    matches: deque[tuple[int, int]] = field(default_factory=deque)
    matched: int = 0

    def matched_at(self, now_ms: int) -> int:
        """Contracts (0.01) matched in the 15 s up to ``now_ms``."""
        horizon = now_ms - WINDOW_MS
        while self.matches and self.matches[0][0] <= horizon:
            self.matched -= self.matches.popleft()[1]
        return self.matched

    def count(self, ts_ms: int, qty: int) -> None:
        self.matches.append((ts_ms, qty))
        self.matched += qty

    def clear(self) -> None:
        self.matches.clear()
        self.matched = 0


def group_not_found(group_id: str) -> OrderRejected:
    """The group endpoints' 404."""
    return OrderRejected("not_found", "order group not found", group_id, 404)


def group_refused(new: NewOrder, group_id: str) -> OrderRejected:
    return OrderRejected(
        "order_group_not_found", "order group not found", f"{group_id} ({new.client_order_id})"
    )


def group_triggered(new: NewOrder, group_id: str) -> OrderRejected:
    return OrderRejected(
        "order_group_triggered",
        "order group is triggered; reset it to place orders",
        f"{group_id} ({new.client_order_id})",
    )


class GroupLedger(Ledger):
    """The ledger plus every user's order groups; see the module docstring."""

    def __init__(
        self,
        books: dict[str, Book],
        starting_balance: int,
        clock_ms: Callable[[], int],
        new_id: Callable[[], str],
        max_order_groups: int = MAX_ORDER_GROUPS,
    ) -> None:
        super().__init__(books, starting_balance)
        self._clock_ms = clock_ms
        self._new_id = new_id
        self._groups: dict[str, OrderGroup] = {}
        self._group_counts: Counter[str] = Counter()
        self._max_groups = max_order_groups
        # Groups that reached their limit in this step, in the order they did (a dict: ordered).
        self._reached: dict[str, None] = {}

    # -- the group endpoints ----------------------------------------------------------------

    def create_group(
        self, user_id: str, limit: int, subaccount: int = 0, exchange_index: int = 0
    ) -> OrderGroup:
        if limit < 1:
            raise OrderRejected("invalid_parameters", "invalid parameters", "limit must be > 0")
        if self._group_counts[user_id] >= self._max_groups:
            # Sim assumption: Kalshi names no code; CreateOrderGroup declares 400.
            raise OrderRejected(
                "too_many_order_groups",
                "too many order groups",
                f"at most {self._max_groups} order groups at a time",
            )
        group = OrderGroup(self._new_id(), user_id, subaccount, exchange_index, limit)
        self._groups[group.group_id] = group
        self._group_counts[user_id] += 1
        self._group_event(group, "created", self._clock_ms(), group.limit)
        return group

    def order_group(self, user_id: str, group_id: str, subaccount: int | None) -> OrderGroup:
        """The user's group (in ``subaccount`` if given), else 404."""
        group = self._groups.get(group_id)
        if group is None or group.user_id != user_id:
            raise group_not_found(group_id)
        if subaccount is not None and group.subaccount != subaccount:
            raise group_not_found(group_id)
        return group

    def order_groups(self, user_id: str, subaccount: int | None = None) -> list[OrderGroup]:
        """The user's groups, oldest first (of one subaccount if given)."""
        return [
            g
            for g in self._groups.values()
            if g.user_id == user_id and (subaccount is None or g.subaccount == subaccount)
        ]

    def group_orders(self, group: OrderGroup) -> list[str]:
        """The ids of every order placed into ``group``, oldest first."""
        acct = self._accounts.get(group.user_id)
        orders = acct.orders if acct is not None else []
        return [o.order_id for o in orders if o.order_group_id == group.group_id]

    def trigger_group(self, user_id: str, group_id: str, subaccount: int) -> None:
        group = self.order_group(user_id, group_id, subaccount)
        now = self._clock_ms()
        self._expire(now)
        self._trigger(group, now)

    def reset_group(self, user_id: str, group_id: str, subaccount: int) -> None:
        """Zero the window's count and let orders in again."""
        group = self.order_group(user_id, group_id, subaccount)
        group.clear()
        group.triggered = False
        self._reached.pop(group_id, None)
        self._group_event(group, "reset", self._clock_ms())

    def update_group_limit(self, user_id: str, group_id: str, subaccount: int, limit: int) -> None:
        """A new limit; one the window has already reached triggers the group at once."""
        group = self.order_group(user_id, group_id, subaccount)
        now = self._clock_ms()
        self._expire(now)
        group.limit = limit
        self._group_event(group, "limit_updated", now, limit)
        if not group.triggered and group.matched_at(now) >= limit:
            self._trigger(group, now)

    def delete_group(self, user_id: str, group_id: str, subaccount: int) -> None:
        """Cancel the group's resting orders and remove it for good."""
        group = self.order_group(user_id, group_id, subaccount)
        now = self._clock_ms()
        self._expire(now)
        del self._groups[group_id]
        self._group_counts[user_id] -= 1
        self._reached.pop(group_id, None)
        self._group_event(group, "deleted", now)
        self._cancel_group_orders(group, now)

    # -- the engine's hooks -------------------------------------------------------------------

    def _check_group(self, new: NewOrder) -> None:
        """Refuse an order into a group it cannot join (checked before anything changes)."""
        group_id = new.order_group_id
        if group_id is None:
            return
        group = self._groups.get(group_id)
        if (
            group is None
            or group.user_id != new.user_id
            or group.subaccount != new.subaccount
            or group.exchange_index != new.exchange_index
        ):
            raise group_refused(new, group_id)
        if group.triggered:
            raise group_triggered(new, group_id)

    def _fill(self, book: Book, taker: SimOrder, entry: Entry, qty: int, now: int) -> None:
        maker = entry.order
        super()._fill(book, taker, entry, qty, now)
        for order in (maker, taker):
            group = self._groups.get(order.order_group_id) if order.order_group_id else None
            if group is None:
                continue
            group.count(now, qty)
            if not group.triggered and group.matched_at(now) >= group.limit:
                self._reached[group.group_id] = None

    def _trip_groups(self, now: int) -> None:
        """Trigger the groups whose fills reached their limit in this step."""
        while self._reached:
            group_id = next(iter(self._reached))
            del self._reached[group_id]
            group = self._groups.get(group_id)
            if group is not None and not group.triggered:
                self._trigger(group, now)

    def _trigger(self, group: OrderGroup, now: int) -> None:
        group.triggered = True
        self._group_event(group, "triggered", now)
        self._cancel_group_orders(group, now)

    def _cancel_group_orders(self, group: OrderGroup, now: int) -> None:
        acct = self._accounts.get(group.user_id)
        if acct is None:
            return
        doomed = [o for o in acct.resting.values() if o.order_group_id == group.group_id]
        for order in doomed:
            self._cancel_resting(order, now)

    def _group_event(
        self, group: OrderGroup, kind: GroupEventType, now: int, limit: int | None = None
    ) -> None:
        if self._observers:
            self._emit(GroupChanged(group.user_id, group.group_id, kind, limit, now))
