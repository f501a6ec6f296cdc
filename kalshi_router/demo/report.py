"""What the demo prints of the market maker's books: a line per fill as it happens, a line when
a side stops or starts again being quoted at the inventory limit, and the table per market."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from kalshi_router.demo.inventory import Inventory, Market
from kalshi_router.demo.market_maker import LimitEvent
from kalshi_router.demo.terminal import table
from kalshi_router.orders.updates import FillEvent

CENT = Decimal("0.01")
PNL_DEFINITION = (
    "P&L = realized + unrealized - fees. Realized: what closing trades made over the average\n"
    "cost of what they closed; unrealized: inventory x (mid - average cost), at the mid the bot\n"
    "quotes around."
)


def contracts(count: Decimal) -> str:
    """A count without trailing zeros, signed when asked by the caller's format."""
    text = f"{count:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def dollars(amount: Decimal) -> str:
    """Signed, to the cent; what rounds to nothing shows as +0.00, never -0.00."""
    cents = amount.quantize(CENT)
    return f"{abs(cents) if cents == 0 else cents:+.2f}"


def fill_line(fill: FillEvent, market: Market, mid: Decimal) -> str:
    """One fill, as the bot learns it, with the market's inventory and P&L after it."""
    verb = "bought" if fill.book_side == "bid" else "sold"
    role = "taker" if fill.is_taker else "maker"
    return (
        f"fill   {fill.ticker}  {verb:<6} {contracts(fill.count):>3} @ {fill.yes_price:.2f} "
        f"{role}   inventory {contracts(market.position):>3}   P&L {dollars(market.pnl(mid))}"
    )


def limit_line(event: LimitEvent, limit: Decimal) -> str:
    """A side of a market paused at the inventory limit, or quoted again."""
    sides = "bids" if event.side == "bid" else "asks"
    way = "long" if event.side == "bid" else "short"
    now = f"{way} {contracts(event.held)} + {contracts(event.on_order)} on order"
    if event.paused:
        return f"limit  {event.ticker}  {sides} paused: {now}, at the limit of {contracts(limit)}"
    return f"limit  {event.ticker}  {sides} quoted again: {now}, inside {contracts(limit)}"


def books_table(
    inventory: Inventory, tickers: Sequence[str], mid: Callable[[str], Decimal]
) -> list[str]:
    """Inventory and P&L per market the bot quotes, and their total."""
    rows: list[list[str]] = []
    total = Decimal(0)
    for ticker in tickers:
        market = inventory.markets.get(ticker) or Market(ticker)
        price = mid(ticker)
        pnl = market.pnl(price)
        total += pnl
        rows.append(
            [
                ticker,
                contracts(market.position),
                contracts(market.bought),
                contracts(market.sold),
                f"{price:.2f}",
                dollars(market.realized),
                dollars(market.unrealized(price)),
                f"{market.fees:.2f}",
                dollars(pnl),
            ]
        )
    rows.append(["total", *[""] * 7, dollars(total)])
    columns = ["market", "inventory", "bought", "sold", "mid", "realized", "unrealized"]
    return table([*columns, "fees", "P&L"], rows)


def fills_summary(inventory: Inventory, tickers: Sequence[str]) -> str:
    markets = [inventory.markets[t] for t in tickers if t in inventory.markets]
    fills = sum(m.fills for m in markets)
    makers = sum(m.maker_fills for m in markets)
    return f"{fills} fills ({makers} as maker, {fills - makers} as taker)"


def agreement(bot: bool, exchange: Mapping[str, bool]) -> str:
    """Whether the books shown equal the router's positions and the simulator's."""
    differ = [ticker for ticker, same in exchange.items() if not same]
    router = "router.orders.positions()" + ("" if bot else " (DIFFERS)")
    sim = "the simulator's positions" + (f" (DIFFER on {', '.join(differ)})" if differ else "")
    verdict = "agree" if bot and not differ else "DISAGREE"
    return f"books {verdict} with {router} and {sim}"
