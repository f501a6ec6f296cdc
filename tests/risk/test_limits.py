"""Which limits apply: every fitting rule, each limit the strictest, named by its rule."""

from __future__ import annotations

from decimal import Decimal

from kalshi_router.risk.config import ClientLimits, RiskConfig, TickerLimits
from kalshi_router.risk.limits import NONE, Bound, Rate, applicable

D = Decimal

CONFIG = RiskConfig(
    max_contracts=D(100),
    price_min=D("0.02"),
    price_max=D("0.98"),
    max_orders_per_s=50.0,
    tickers=[
        TickerLimits(match="KX*", max_contracts=D(80), price_max=D("0.99")),
        TickerLimits(match="KXHIGHNY-*", max_contracts=D(40), price_min=D("0.05")),
        TickerLimits(match="KXHIGHNY-26DEC31-T60", max_open_orders=4, max_orders_per_s=2.0),
    ],
    clients=[
        ClientLimits(name="bot-a", max_contracts=D(10), max_orders_per_s=1.0),
        ClientLimits(name="bot-b", max_daily_notional=D("500")),
    ],
)


def test_only_global_limits_for_a_ticker_no_rule_fits() -> None:
    found = applicable(CONFIG, "FED-23DEC", None)
    assert found.max_contracts == Bound(D(100), "every ticker")
    assert found.price_min == Bound(D("0.02"), "every ticker")
    assert found.price_max == Bound(D("0.98"), "every ticker")
    assert found.max_open_orders is None
    assert found.rates == (Rate(0, 50.0, "every ticker"),)


def test_each_limit_is_the_strictest_of_the_fitting_rules() -> None:
    found = applicable(CONFIG, "KXHIGHNY-26DEC31-T60", None)
    assert found.max_contracts == Bound(D(40), "KXHIGHNY-*")
    assert found.price_min == Bound(D("0.05"), "KXHIGHNY-*")  # the highest floor
    assert found.price_max == Bound(D("0.98"), "every ticker")  # the lowest ceiling
    assert found.max_open_orders == Bound(D(4), "KXHIGHNY-26DEC31-T60")
    assert found.rates == (
        Rate(0, 50.0, "every ticker"),
        Rate(3, 2.0, "KXHIGHNY-26DEC31-T60"),
    )


def test_the_client_rule_applies_to_its_client_only() -> None:
    found = applicable(CONFIG, "KXFOO", "bot-a")
    assert found.max_contracts == Bound(D(10), "client bot-a")
    assert found.rates[-1] == Rate(-1, 1.0, "client bot-a")
    assert applicable(CONFIG, "KXFOO", "bot-c").max_contracts == Bound(D(80), "KX*")
    found = applicable(CONFIG, "KXFOO", "bot-b")
    assert found.max_daily_notional == Bound(D(500), "client bot-b")


def test_nothing_applies_without_limits() -> None:
    assert applicable(RiskConfig(), "KXFOO", "a") == NONE
    assert applicable(CONFIG, "KXFOO", None) != NONE
