"""``kalshi-router demo``: the simulator and the router in one process, end to end.

It shows each kind of answer an order can get, then a burst that meets the rate limit, then
cancels what rests, and ends with the router's own figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import msgspec

from kalshi_router.config import Config
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, Cancelled, Outcome, Rejected
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimServer
from kalshi_router.stats import RouterStats
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

DEMO_KEY_ID = "demo-key-0000"
TICKER = "KXDEMO-26DEC31-T50"
QUOTE_TICKERS = tuple(f"KXDEMO-26DEC31-T{strike}" for strike in (40, 45, 55, 60))
Print = Callable[[str], None]


def showcase_intents() -> list[OrderIntent]:
    """One of each answer: resting quotes, a fill, two kinds of per-order rejection."""
    return [
        OrderIntent.bid(TICKER, "0.45", 10, post_only=True),
        OrderIntent.ask(TICKER, "0.62", 10, post_only=True),
        OrderIntent.bid(TICKER, 44, "2.5"),
        OrderIntent.legacy(ticker=TICKER, action="buy", side="no", price="0.38", count=5),
        # Crosses the simulator's resting asks, so it fills at once.
        OrderIntent.bid(TICKER, "0.60", 3, time_in_force="immediate_or_cancel"),
        # Post-only that would cross the book: Kalshi refuses it per order.
        OrderIntent.bid(TICKER, "0.70", 1, post_only=True),
        # Off the market's one-cent tick.
        OrderIntent.bid(TICKER, "0.3050", 1),
    ]


def quotes(count: int) -> list[OrderIntent]:
    """Two-sided quotes away from the touch, so they rest (a market maker's steady flow)."""
    out: list[OrderIntent] = []
    for n in range(count):
        ticker = QUOTE_TICKERS[n % len(QUOTE_TICKERS)]
        step = Decimal(n % 10) / 100
        if n % 2:
            out.append(OrderIntent.bid(ticker, Decimal("0.20") + step, 1 + n % 5))
        else:
            out.append(OrderIntent.ask(ticker, Decimal("0.70") + step, 1 + n % 5))
    return out


def describe(label: str, outcome: Outcome) -> str:
    if isinstance(outcome, Accepted):
        return (
            f"{label:<44} accepted  order {outcome.order_id[:8]} filled {outcome.fill_count} "
            f"resting {outcome.remaining_count}"
        )
    if isinstance(outcome, Cancelled):
        return f"{label:<44} cancelled reduced by {outcome.reduced_by}"
    if isinstance(outcome, Rejected):
        detail = f" ({outcome.details})" if outcome.details else ""
        return f"{label:<44} rejected  {outcome.code}: {outcome.message}{detail}"
    return f"{label:<44} {type(outcome).__name__.lower()}: {getattr(outcome, 'reason', '')}"


def _label(intent: OrderIntent) -> str:
    return f"{intent.side} {intent.count:>6} @ {intent.price} {intent.time_in_force}"


async def _settle_all(
    router: OrderRouter, intents: Sequence[OrderIntent], deadline_s: float | None = None
) -> list[Outcome]:
    return list(await asyncio.gather(*router.submit_many(intents, deadline_s=deadline_s)))


def summary(stats: RouterStats, *, seconds: float, available: float) -> list[str]:
    latency = stats.submit_to_outcome
    orders = sum(stats.outcomes.values())
    return [
        f"outcomes           {dict(sorted(stats.outcomes.items()))}",
        f"batches            {stats.batches_sent} (average fill {stats.average_batch_fill:.1f}, "
        f"largest {stats.max_batch_fill})",
        f"throughput         {orders} intents settled in {seconds:.2f} s "
        f"({orders / seconds:.1f}/s)",
        f"write budget used  {stats.tokens_spent} of {available:.0f} tokens available "
        f"({100 * stats.tokens_spent / available:.1f}%), 429s: {stats.http_429}",
        f"submit to outcome  p50 {1000 * latency.p50:.1f} ms, p99 {1000 * latency.p99:.1f} ms, "
        f"max {1000 * latency.max:.1f} ms",
    ]


async def run_demo(config: Config, *, orders: int = 60, out: Print = print) -> int:
    """Returns the process exit code: 0 when every intent got its expected kind of answer."""
    private_pem, public_pem = generate_key(config.credentials.key_type)
    sim_config = config.sim
    if config.exchange.dialect == "v1":
        # V1 orders cost 100 tokens each: a Basic bucket (100) could take one per batch.
        tier = "premier" if sim_config.tier == "basic" else sim_config.tier
        sim_config = msgspec.structs.replace(sim_config, v1_mode="serve", tier=tier)
    signer = Signer(DEMO_KEY_ID, load_private_key(private_pem))
    async with SimServer(sim_config) as sim:
        sim.register_key(DEMO_KEY_ID, public_pem)
        out(f"simulator at {sim.url}, tier {sim_config.tier}; dialect {config.exchange.dialect}")
        started = time.monotonic()
        async with OrderRouter.connect(config, signer, base_url=sim.url) as router:
            budget = router.budget
            out(
                f"write budget {budget.capacity} tokens, refill {budget.refill_rate}/s; "
                f"costs {budget.costs}; batch limits {router.batch_limits}"
            )
            out("\none of each answer:")
            shown = showcase_intents()
            results = await _settle_all(router, shown)
            for intent, outcome in zip(shown, results, strict=True):
                out("  " + describe(_label(intent), outcome))
            # Client order ids are single-use: a resend of an order that landed is refused by
            # the exchange rather than placed twice.
            again = await router.place(shown[0])
            out("  " + describe("resend of the first order, same id", again))

            out(f"\na burst of {orders} quotes on {len(QUOTE_TICKERS)} markets:")
            burst_start = time.monotonic()
            sent = quotes(orders)
            # More than the bucket holds: the rest wait for tokens, so give them the time the
            # budget needs rather than the default deadline (which would expire them unsent).
            patience = 5 + orders * budget.costs["create"] / budget.refill_rate
            burst = await _settle_all(router, sent, deadline_s=patience)
            burst_seconds = time.monotonic() - burst_start
            accepted = [o for o in burst if isinstance(o, Accepted)]
            out(f"  {len(accepted)} of {orders} accepted in {burst_seconds:.2f} s")

            tickers = {i.client_order_id: i.ticker for i in [*shown, *sent]}
            cancels = [
                CancelIntent(order_id=o.order_id, ticker=tickers[o.client_order_id])
                for o in [*results, *burst]
                if isinstance(o, Accepted) and o.remaining_count
            ]
            cancelled = await asyncio.gather(*router.cancel_many(cancels))
            done = sum(isinstance(c, Cancelled) for c in cancelled)
            out(f"  cancelled {done} of {len(cancels)} resting orders")
            await router.flush()
            stats = router.stats()
        seconds = time.monotonic() - started
    available = budget.capacity + budget.refill_rate * seconds
    out("\nrouter figures:")
    for line in summary(stats, seconds=seconds, available=available):
        out("  " + line)
    expected = len(accepted) == orders and done == len(cancels)
    return 0 if expected else 1
