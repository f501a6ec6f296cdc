"""``kalshi-router demo``: the simulator and the router in one process, end to end.

It shows each kind of answer an order can get, then runs a small market maker (quotes on both
sides of several markets, cancel and replace, refused and filled orders, a burst that meets the
rate limit) with a progress bar, while a house trader inside the simulator takes its quotes now
and then. The bot follows its orders (``[orders] track`` is turned on): it prints each fill as
it comes, stops quoting a side at its inventory limit, and ends with its inventory and P&L per
market (checked against the router's positions and the simulator's), the router's figures
and a latency histogram.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

import msgspec

from kalshi_router.config import Config
from kalshi_router.demo.house import HouseTaker
from kalshi_router.demo.market_maker import INVENTORY_LIMIT, LimitEvent, MarketMaker
from kalshi_router.demo.report import (
    PNL_DEFINITION,
    agreement,
    books_table,
    fill_line,
    fills_summary,
    limit_line,
)
from kalshi_router.demo.terminal import Progress, histogram
from kalshi_router.errors import ConfigError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.orders.updates import FillEvent
from kalshi_router.outcome import Accepted, Cancelled, Outcome, Rejected, outcome_name
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimServer
from kalshi_router.stats import RouterStats
from kalshi_router.wire.hosts import describe_exchange
from kalshi_router.wire.signer import Signer, generate_key, load_private_key

DEMO_KEY_ID = "demo-key-0000"
TICKER = "KXDEMO-26DEC31-T50"
QUOTE_TICKERS = tuple(f"KXDEMO-26DEC31-T{strike}" for strike in (40, 45, 55, 60))
BURST_TICKER = "KXDEMO-26DEC31-T70"
Print = Callable[[str], None]
HOUSE_GAP_S = 0.15
"""Mean seconds between the house trader's trades against the bot's quotes."""


def require_simulator(config: Config, source: str = "FILE") -> None:
    """Refuse a config that targets an exchange: the demo sends its orders to the embedded
    simulator only, whatever ``base_url`` says, and must not seem to have traded there."""
    target = config.exchange.target
    demo_only = (
        f'{source}: exchange.target is "{target}", but the demo runs only on the embedded simulator'
    )
    if target == "service":
        raise ConfigError(f"{demo_only}; this config is for a bot of a running kalshi-router serve")
    if target == "url":
        raise ConfigError(
            f"{demo_only}, not on {describe_exchange(config.exchange.base_url)}; for that "
            f"exchange use `kalshi-router check --config {source}` (the credentials, no orders), "
            f"`kalshi-router serve --config {source}`, or the library (OrderRouter.connect)"
        )


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
    return f"{label:<44} {outcome_name(outcome)}: {getattr(outcome, 'reason', '')}"


def _label(intent: OrderIntent) -> str:
    return f"{intent.side} {intent.count:>6} @ {intent.price} {intent.time_in_force}"


def summary(stats: RouterStats, *, seconds: float, available: float) -> list[str]:
    latency = stats.submit_to_outcome
    settled = sum(stats.outcomes.values())
    return [
        f"intents            {settled} settled, by outcome {dict(sorted(stats.outcomes.items()))}",
        f"rejection codes    {dict(sorted(stats.rejected_codes.items())) or '-'}",
        f"batches            {stats.batches_sent} (average fill {stats.average_batch_fill:.1f}, "
        f"largest {stats.max_batch_fill})",
        f"throughput         {stats.items_sent / seconds:.1f} orders and cancels/s sent over "
        f"{seconds:.1f} s",
        f"write budget used  {stats.tokens_spent} of {available:.0f} tokens available "
        f"({100 * stats.tokens_spent / available:.1f}%), 429s: {stats.http_429}",
        f"submit to outcome  p50 {1000 * latency.p50:.1f} ms, p90 {1000 * latency.p90:.1f} ms, "
        f"p99 {1000 * latency.p99:.1f} ms, max {1000 * latency.max:.1f} ms",
    ]


@dataclass
class MakerRun:
    """What the market making did, for the summary (and the tests)."""

    maker: MarketMaker
    house: HouseTaker
    agrees_with_router: bool
    """The inventory from the fills equals ``router.orders.positions()``."""
    agrees_with_exchange: dict[str, bool]
    """Per market: the inventory equals the simulator's position for the bot's user."""

    @property
    def agrees(self) -> bool:
        return self.agrees_with_router and all(self.agrees_with_exchange.values())

    def books(self) -> list[str]:
        maker = self.maker
        pauses = sum(e.paused for e in maker.limit_events)
        return [
            *books_table(maker.inventory, maker.tickers, maker.mid),
            f"{fills_summary(maker.inventory, maker.tickers)}; a side paused at the inventory "
            f"limit {pauses} time{'s' * (pauses != 1)}",
            *PNL_DEFINITION.splitlines(),
            agreement(self.agrees_with_router, self.agrees_with_exchange),
        ]


async def market_making(
    router: OrderRouter,
    sim: SimServer,
    user_id: str,
    *,
    seconds: float,
    burst: int,
    out: Print = print,
    progress: TextIO | None = None,
    limit: Decimal = INVENTORY_LIMIT,
    house_gap_s: float = HOUSE_GAP_S,
) -> MakerRun:
    """The market maker on ``QUOTE_TICKERS`` for ``seconds`` (a burst of ``burst`` orders
    halfway), with the house taking its quotes; ``user_id`` is the bot's at the simulator."""
    maker = MarketMaker(router, QUOTE_TICKERS, BURST_TICKER, limit=limit)
    house = HouseTaker(sim.state.exchange, user_id, QUOTE_TICKERS, mean_gap_s=house_gap_s)
    about = (
        f"market making for {seconds:g} s on {len(QUOTE_TICKERS)} markets (cancel and replace "
        f"every {maker.cycle_seconds():.2f} s), with a burst of {burst} orders halfway on another "
        f"market, while a house trader takes the bot's quotes now and then; inventory limit "
        f"{limit:f} contracts a market. Each fill as the bot learns it, with its market's "
        f"inventory and P&L after it:"
    )
    out("\n" + textwrap.fill(about, 96))
    bar = Progress(seconds, progress)
    tally = maker.tally

    def filled(fill: FillEvent) -> None:
        market = maker.inventory.market(fill.ticker)
        bar.above("  " + fill_line(fill, market, maker.mid(fill.ticker)), out)

    def limited(event: LimitEvent) -> None:
        bar.above("  " + limit_line(event, limit), out)

    def tick(elapsed: float) -> None:
        bar.update(elapsed, f"{tally.submitted} sent, {tally.settled} settled")

    maker.on_fill, maker.on_limit = filled, limited
    agrees = await maker.run(seconds, burst, tick, alongside=house.run)
    bar.close()
    exchange = sim.state.exchange
    held = {t: exchange.position(user_id, t) for t in QUOTE_TICKERS}
    return MakerRun(
        maker,
        house,
        agrees,
        {t: held[t] == maker.inventory.market(t).position * 100 for t in QUOTE_TICKERS},
    )


async def run_demo(
    config: Config,
    *,
    orders: int = 60,
    seconds: float = 10.0,
    out: Print = print,
    progress: TextIO | None = None,
) -> int:
    """Returns the exit code: 0 when every intent got exactly one outcome, no 429 came, and
    the bot's books agree with the router's and the simulator's."""
    require_simulator(config)
    # The bot follows its orders (fills, inventory): the demo turns tracking on.
    orders_config = msgspec.structs.replace(config.orders, track=True)
    config = msgspec.structs.replace(config, orders=orders_config)
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
            results = await asyncio.gather(*router.submit_many(shown))
            for intent, outcome in zip(shown, results, strict=True):
                out("  " + describe(_label(intent), outcome))
            # Client order ids are single-use: a resend of an order that landed is refused by
            # the exchange rather than placed twice.
            again = await router.place(shown[0])
            out("  " + describe("resend of the first order, same id", again))
            cancels = [
                CancelIntent(order_id=o.order_id, ticker=TICKER)
                for o in results
                if isinstance(o, Accepted) and o.remaining_count
            ]
            await asyncio.gather(*router.cancel_many(cancels))

            run = await market_making(
                router, sim, DEMO_KEY_ID, seconds=seconds, burst=orders, out=out, progress=progress
            )
            tally = run.maker.tally
            outcomes = dict(sorted(tally.outcomes.items()))
            out(f"  {tally.submitted} intents, {tally.settled} outcomes: {outcomes}")
            await router.flush()
            stats = router.stats()
        elapsed = time.monotonic() - started
    available = budget.capacity + budget.refill_rate * elapsed
    out("\nthe bot's books, from its fills:")
    for line in run.books():
        out("  " + line)
    out("\nrouter figures:")
    for line in summary(stats, seconds=elapsed, available=available):
        out("  " + line)
    out("\nsubmit-to-outcome latency of the market-making intents:")
    for line in histogram(tally.latencies):
        out("  " + line)
    complete = tally.settled == tally.submitted and not tally.crashed
    return 0 if complete and stats.http_429 == 0 and run.agrees else 1
