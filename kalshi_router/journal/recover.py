"""Start-up reconciliation: every intent a dead process left open gets its one outcome, from the
exchange's books, before the new router sends anything.

- taken, never sent: closed. It was certainly never on the wire, and it is not sent late (its
  deadline has passed, or its bot is gone).
- a create that was sending: looked up by client_order_id. Found: accepted, with the
  exchange's order. Absent: closed, but only once ``landing_grace_s`` has passed since its last
  attempt was written (a request that left before the crash can still land until then; the
  lookup is repeated at that time rather than trusting an early "absent").
- a cancel that was sending: its order looked up by id. Canceled: cancelled. Still resting after
  the grace: closed (the cancel did not take effect; send it again). Executed or not found:
  closed, nothing left to cancel.
- an amend or decrease that was sending: unknown, whatever the order shows (its state is put in
  the reason): the order alone cannot tell whether it applied.

A lookup that keeps failing for ``lookup_timeout_s`` settles the intent unknown, naming the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from kalshi_router.config import JournalConfig
from kalshi_router.errors import WireError
from kalshi_router.journal.entry import Entry
from kalshi_router.journal.store import SqliteJournal
from kalshi_router.outcome import Closed, Outcome, Unknown, outcome_name
from kalshi_router.reconcile import READ_COST, Reconciler, Sought
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import Order
from kalshi_router.wire.orders import accepted_from, cancelled_from

log = logging.getLogger("kalshi_router.journal")
NEVER_SENT = "router restarted before this intent was sent"
LOST = "not at the exchange after restart: the request was lost with the previous process"
# Recovery runs before the router has read the account's limits: ten pages a second is within
# every tier's read budget.
_READS_PER_S = 10
_RETRY_S = 0.5
Lookup = Callable[[list[Entry]], Awaitable[dict[str, Order | None]]]
Decide = Callable[[Entry, Order | None, bool], Outcome | None]
"""The outcome for an entry given its order (None: absent) and whether the grace has passed;
None to look again once it has."""


@dataclass
class Recovery:
    """What recovery found: outcome kind counts, and each settled intent."""

    outcomes: list[tuple[Entry, Outcome]] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(outcome_name(outcome) for _, outcome in self.outcomes)


async def recover(
    journal: SqliteJournal,
    client: ExchangeClient,
    settings: JournalConfig,
    *,
    clock: Callable[[], float] = time.time,
) -> Recovery:
    """Settle every open intent in ``journal`` (see the module docstring); one transaction."""
    entries = journal.open_entries()
    recovery = Recovery()
    if not entries:
        return recovery
    sending = [e for e in entries if e.state == "sending"]
    creates = [e for e in sending if e.kind == "create"]
    others = [e for e in sending if e.kind != "create"]
    recovery.outcomes += [
        (e, Closed(reason=NEVER_SENT, **e.ids())) for e in entries if e.state == "taken"
    ]
    log.info(
        "journal: %d open intents from the last run (%d sent): reconciling",
        len(entries),
        len(sending),
        extra={"client_order_ids": [e.key for e in creates]},
    )
    reads = AsyncLimiter(READ_COST * _READS_PER_S, 1.0)
    looked_up = await asyncio.gather(
        _settle(creates, _by_client_order_id(client, reads), _decide_create, settings, clock),
        _settle(others, _by_order_id(client, reads), _decide_other, settings, clock),
    )
    for found in looked_up:
        recovery.outcomes += found
    journal.resolve([(entry.id, outcome) for entry, outcome in recovery.outcomes])
    for entry, outcome in recovery.outcomes:
        # One line per intent that was on the wire; the never-sent ones only at debug level.
        level = logging.INFO if entry.state == "sending" else logging.DEBUG
        if isinstance(outcome, Unknown):
            level = logging.WARNING
        log.log(
            level,
            "journal: %s %s: %s",
            entry.kind,
            entry.key,
            _describe(outcome),
            extra=entry.ids(),
        )
    return recovery


def _describe(outcome: Outcome) -> str:
    kind = outcome_name(outcome)
    reason = getattr(outcome, "reason", None)
    return f"{kind} ({reason})" if reason else kind


async def _settle(
    entries: Sequence[Entry],
    lookup: Lookup,
    decide: Decide,
    settings: JournalConfig,
    clock: Callable[[], float],
) -> list[tuple[Entry, Outcome]]:
    """Look ``entries`` up until each is decided, or until lookups have failed for
    ``lookup_timeout_s`` (then unknown)."""
    settled: list[tuple[Entry, Outcome]] = []
    waiting = list(entries)
    give_up = clock() + settings.lookup_timeout_s
    while waiting:
        try:
            found = await lookup(waiting)
        except WireError as exc:
            if clock() >= give_up:
                why = f"could not look it up at the exchange after restart: {exc}"
                settled += [(e, Unknown(reason=why, **e.ids())) for e in waiting]
                return settled
            log.warning("journal: lookup failed, retrying: %s", exc)
            await asyncio.sleep(_RETRY_S)
            continue
        now = clock()
        still: list[Entry] = []
        for entry in waiting:
            sent = entry.last_sent if entry.last_sent is not None else entry.submitted
            outcome = decide(entry, found.get(entry.key), now - sent >= settings.landing_grace_s)
            if outcome is None:
                still.append(entry)
            else:
                settled.append((entry, outcome))
        waiting = still
        if waiting:
            due = min((e.last_sent or e.submitted) + settings.landing_grace_s for e in waiting)
            await asyncio.sleep(max(0.0, due - clock()))
    return settled


def _by_client_order_id(client: ExchangeClient, reads: AsyncLimiter) -> Lookup:
    reconciler = Reconciler(client, reads)

    async def lookup(entries: list[Entry]) -> dict[str, Order | None]:
        probes = [Sought(e.ticker, e.key, e.submitted) for e in entries]
        return dict(await reconciler.find(probes))

    return lookup


def _by_order_id(client: ExchangeClient, reads: AsyncLimiter) -> Lookup:
    async def lookup(entries: list[Entry]) -> dict[str, Order | None]:
        found: dict[str, Order | None] = {}
        for key in {e.key for e in entries}:
            await reads.acquire(READ_COST)
            found[key] = await client.get_order(key)
        return found

    return lookup


def _decide_create(entry: Entry, order: Order | None, grace_passed: bool) -> Outcome | None:
    if order is not None:
        return accepted_from(order)
    return Closed(reason=LOST, **entry.ids()) if grace_passed else None


def _decide_other(entry: Entry, order: Order | None, grace_passed: bool) -> Outcome | None:
    ids = entry.ids()
    if entry.kind != "cancel":
        state = "not found" if order is None else _state(order)
        why = (
            "the router restarted while this request was in flight; the order alone cannot "
            f"tell whether it applied: the order is {state}"
        )
        return Unknown(reason=why, **ids)
    if order is None:
        return Closed(reason="no such order at the exchange after restart", **ids)
    if (cancelled := cancelled_from(order)) is not None:
        return cancelled
    if order.status == "resting":
        why = f"not applied: after restart the order is still {_state(order)}; cancel it again"
        return Closed(reason=why, **ids) if grace_passed else None
    return Closed(reason=f"nothing left to cancel: the order is {_state(order)}", **ids)


def _state(order: Order) -> str:
    price = "" if order.yes_price_dollars is None else f" at ${order.yes_price_dollars}"
    return (
        f"{order.status}, {order.remaining_count_fp} resting{price}, {order.fill_count_fp} filled"
    )
