"""_data: the seeded intents every scenario sends."""

from __future__ import annotations

from decimal import Decimal

from _data import make_intents, resting_intents, stdlib_order


def test_the_same_seed_gives_the_same_orders_and_the_tag_other_ids() -> None:
    first, again, other = (
        make_intents(50, 7, "a"),
        make_intents(50, 7, "a"),
        make_intents(50, 7, "b"),
    )
    assert first == again
    assert [i.client_order_id for i in first] == [f"a-7-{n}" for n in range(50)]
    assert [(i.ticker, i.side, i.price, i.count) for i in other] == [
        (i.ticker, i.side, i.price, i.count) for i in first
    ]
    assert make_intents(20, 7, "a") == first[:20]
    lazily = resting_intents(7, "a")
    assert [next(lazily) for _ in range(50)] == first


def test_the_orders_rest_apart_from_the_house_and_each_other() -> None:
    for intent in make_intents(2000, 42, "x"):
        if intent.side == "bid":
            assert Decimal("0.01") <= intent.price <= Decimal("0.30")
        else:
            assert Decimal("0.70") <= intent.price <= Decimal("0.99")
        assert 1 <= intent.count <= 10


def test_stdlib_order_is_the_v2_create_body() -> None:
    [intent] = make_intents(1, 1, "s")
    assert stdlib_order(intent) == {
        "ticker": intent.ticker,
        "side": intent.side,
        "count": str(intent.count),
        "price": str(intent.price),
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
        "client_order_id": "s-1-0",
    }
