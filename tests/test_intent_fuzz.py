"""Fuzzing the intents through the library: any value in any field either builds an intent that
every wire encoder can send, or raises ``IntentError`` naming a field; valid intents route.

Mirrors ``kalshi_router/intent.py``; the rule-by-rule cases are in ``test_intent.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import math
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.errors import DialectError, IntentError
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.outcome import Accepted, Amended, Cancelled, Expired, Rejected
from kalshi_router.router import OrderRouter
from kalshi_router.sim import SimConfig
from kalshi_router.wire.single import encode_single
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect
from tests.integration.conftest import running_router, running_sim

T = TypeVar("T")
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUTURE = int(time.time()) + 86_400
TICKER = "KXFUZZ-26DEC31-T50"

# Anything a caller might pass by mistake: every JSON-ish type, numbers at and beyond every
# limit, non-finite and signalling decimals, text with surrogates and control characters.
_numeric_text = st.from_regex(
    r"\s?-?[0-9]{0,4}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,12})?\s?", fullmatch=True
)
_special_numbers = ["nan", "-NaN", "sNaN", "Infinity", "-inf", "1e999999999", "1e-999999999", "-0"]
_special_text = st.sampled_from([*_special_numbers, "0,5", "", " 0.5 "])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    _numeric_text,
    _special_text,
    st.binary(max_size=8),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(_special_numbers).map(Decimal),
)
JUNK = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value the field takes, sometimes anything at all."""
    return st.one_of(valid, valid, JUNK)


_tickers = st.from_regex(r"[A-Z0-9][A-Z0-9.-]{0,20}", fullmatch=True)
_ids = st.from_regex(r"[A-Za-z0-9_+=:-]{1,64}", fullmatch=True)
_prices = st.one_of(
    st.integers(1, 9_999).map(lambda n: Decimal(n).scaleb(-4)),
    st.integers(1, 99),  # cents
    st.integers(1, 9_999).map(lambda n: f"0.{n:04d}"),
)
_counts = st.one_of(
    st.integers(1, 10**6).map(lambda n: Decimal(n).scaleb(-2)),
    st.integers(1, 10**4),
    st.integers(1, 10**4).map(str),
)
_ORDER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ticker": either(_tickers),
    "side": either(st.sampled_from(["bid", "ask"])),
    "price": either(_prices),
    "count": either(_counts),
}
_ORDER_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "time_in_force": either(
        st.sampled_from(["fill_or_kill", "good_till_canceled", "immediate_or_cancel"])
    ),
    "self_trade_prevention": either(st.sampled_from(["taker_at_cross", "maker"])),
    "client_order_id": either(_ids),
    "post_only": either(st.booleans()),
    "reduce_only": either(st.booleans()),
    "expiration_time": either(st.integers(FUTURE, FUTURE + 10**6) | st.integers(-5, 5)),
    "order_group_id": either(_ids),
    "subaccount": either(st.integers(-2, 70)),
    "cancel_order_on_pause": either(st.booleans()),
    "exchange_index": either(st.integers(-3, 3)),
    "buy_max_cost": either(st.integers(-2, 10**6)),
    "sell_position_floor": either(st.integers(-1, 1)),
}
_REF_FIELDS = {"order_id": either(_ids), "ticker": either(_tickers)}
_REF_OPTIONAL = {
    "subaccount": either(st.integers(-2, 70)),
    "exchange_index": either(st.integers(-3, 3)),
}
_AMEND_FIELDS = _REF_FIELDS | {
    "side": either(st.sampled_from(["bid", "ask"])),
    "price": either(_prices),
    "count": either(_counts),
}
_AMEND_OPTIONAL = _REF_OPTIONAL | {
    "client_order_id": either(_ids),
    "updated_client_order_id": either(_ids),
    "expiration_time": either(st.integers(FUTURE, FUTURE + 10**6) | st.integers(-5, 5)),
}
_DECREASE_OPTIONAL = _REF_OPTIONAL | {
    "reduce_by": either(_counts),
    "reduce_to": either(_counts | st.just(0)),
}
KINDS: dict[type[Any], st.SearchStrategy[dict[str, Any]]] = {
    OrderIntent: st.fixed_dictionaries(_ORDER_FIELDS, optional=_ORDER_OPTIONAL),
    CancelIntent: st.fixed_dictionaries(_REF_FIELDS, optional=_REF_OPTIONAL),
    AmendIntent: st.fixed_dictionaries(_AMEND_FIELDS, optional=_AMEND_OPTIONAL),
    DecreaseIntent: st.fixed_dictionaries(_REF_FIELDS, optional=_DECREASE_OPTIONAL),
}
_ORDER_REF = re.compile(r"[A-Za-z0-9_+=:-]{1,128}")


def _exact(value: object, places: int) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value.as_tuple().exponent == -places


def check_built(intent: Any) -> None:
    """What a built intent promises: exact money in Kalshi's forms, ids that fit a URL path,
    and bytes on the wire from every encoder that takes it."""
    assert re.fullmatch(r"[\x21-\x7e]{1,128}", intent.ticker)
    for name in ("subaccount", "exchange_index", "expiration_time"):
        value = getattr(intent, name, None)
        assert value is None or (type(value) is int and value >= -1), name
    if isinstance(intent, OrderIntent | AmendIntent):
        assert _exact(intent.price, 4)
        assert 0 < intent.price < 1
        assert _exact(intent.count, 2)
        assert intent.count > 0
    if isinstance(intent, OrderIntent):
        assert all(type(getattr(intent, f)) is bool for f in ("post_only", "reduce_only"))
        v1_only = intent.buy_max_cost is not None or intent.sell_position_floor is not None
        with pytest.raises(DialectError) if v1_only else contextlib.nullcontext():
            V2Dialect().encode_create([intent])
        V1Dialect().encode_create([intent])
        return
    assert _ORDER_REF.fullmatch(intent.order_id)
    if isinstance(intent, CancelIntent):
        V2Dialect().encode_cancel([intent])
        V1Dialect().encode_cancel([intent])
        return
    if isinstance(intent, DecreaseIntent):
        by, to = intent.reduce_by, intent.reduce_to
        assert (by is None) != (to is None)
        assert by is None or (_exact(by, 2) and by > 0)
        # Zero (cancel the rest) is the only non-positive size, and never "-0.00".
        assert to is None or (_exact(to, 2) and to >= 0 and not to.is_signed())
    verb = "amend" if isinstance(intent, AmendIntent) else "decrease"
    request = encode_single(intent)
    assert request.path == f"/portfolio/events/orders/{intent.order_id}/{verb}"
    msgspec.json.decode(request.body)


def attempt(make: Callable[[], T]) -> T | IntentError:
    """What ``make`` returns, or the IntentError it raised; any other exception propagates."""
    try:
        return make()
    except IntentError as exc:
        return exc


def build(kind: Callable[..., Any], fields: dict[str, Any]) -> Any:
    """The intent, or None when it was refused with an IntentError naming one of its fields."""
    intent = attempt(lambda: kind(**fields))
    if isinstance(intent, IntentError):
        assert intent.field in kind.__struct_fields__, intent  # type: ignore[attr-defined]
        assert intent.rule
        return None
    check_built(intent)
    return intent


@FUZZ
@given(data=st.data(), kind=st.sampled_from(list(KINDS)))
def test_any_fields_build_a_sendable_intent_or_raise_an_intent_error(
    data: st.DataObject, kind: type[Any]
) -> None:
    build(kind, data.draw(KINDS[kind]))


@FUZZ
@given(
    make=st.sampled_from([OrderIntent.bid, OrderIntent.ask]),
    ticker=either(_tickers),
    price=either(_prices),
    count=either(_counts),
)
def test_the_bid_and_ask_builders_raise_only_intent_errors(
    make: Callable[..., OrderIntent], ticker: Any, price: Any, count: Any
) -> None:
    intent = attempt(lambda: make(ticker, price, count))
    if isinstance(intent, IntentError):
        assert intent.field in ("ticker", "price", "count")
    else:
        check_built(intent)


@FUZZ
@given(
    action=either(st.sampled_from(["buy", "sell"])),
    side=either(st.sampled_from(["yes", "no"])),
    price=either(_prices),
    count=either(_counts),
)
def test_the_legacy_builder_raises_only_intent_errors(
    action: Any, side: Any, price: Any, count: Any
) -> None:
    intent = attempt(
        lambda: OrderIntent.legacy(
            ticker=TICKER, action=action, side=side, price=price, count=count
        )
    )
    if isinstance(intent, IntentError):
        assert intent.field in ("action", "side", "price", "count")
    else:
        check_built(intent)


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        pytest.param(CancelIntent, {"order_id": "a/../b"}, "order_id", id="cancel-path"),
        pytest.param(AmendIntent, {"order_id": "x?y=1"}, "order_id", id="amend-query"),
        pytest.param(DecreaseIntent, {"order_id": ".."}, "order_id", id="decrease-dot-dot"),
        pytest.param(CancelIntent, {"order_id": "has space"}, "order_id", id="space"),
        pytest.param(OrderIntent, {"order_group_id": "\ud800"}, "order_group_id", id="surrogate"),
        pytest.param(OrderIntent, {"order_group_id": "grp\n1"}, "order_group_id", id="newline"),
    ],
)
def test_ids_that_would_break_the_request_are_refused(
    kind: type[Any], fields: dict[str, Any], field: str
) -> None:
    """Found by the fuzzing: an order id lands in the URL path of amend and decrease (where
    "/", "?" or ".." would address another endpoint, and a space breaks the signature), and a
    lone surrogate cannot be encoded at all (its batch, and so the dispatcher, would fail)."""
    bases: dict[type[Any], dict[str, Any]] = {
        OrderIntent: {"ticker": TICKER, "side": "bid", "price": "0.5", "count": 1},
        CancelIntent: {"ticker": TICKER},
        AmendIntent: {"ticker": TICKER, "side": "bid", "price": "0.5", "count": 1},
        DecreaseIntent: {"ticker": TICKER, "reduce_by": 1},
    }
    base = bases[kind]
    with pytest.raises(IntentError) as raised:
        kind(**(base | fields))
    assert raised.value.field == field


def test_reduce_to_minus_zero_is_zero() -> None:
    decrease = DecreaseIntent(order_id="o1", ticker=TICKER, reduce_to=Decimal("-0"))
    assert str(decrease.reduce_to) == "0.00"


# Through the router, to the simulator.

_counter = itertools.count()
_valid_orders = st.builds(
    lambda side, price, count: {"ticker": TICKER, "side": side, "price": price, "count": count},
    st.sampled_from(["bid", "ask"]),
    _prices,
    st.integers(1, 5),
)
_deadlines = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 30)
V1_ONLY = ("buy_max_cost", "sell_position_floor")
OUTCOMES = (Accepted, Rejected, Expired, Cancelled, Amended)


def route(router: OrderRouter, intent: Any, deadline: float | None) -> asyncio.Future[Any]:
    if isinstance(intent, OrderIntent):
        return router.submit(intent, deadline_s=deadline)
    if isinstance(intent, CancelIntent):
        return router.cancel(intent, deadline_s=deadline)
    if isinstance(intent, AmendIntent):
        return router.amend(intent, deadline_s=deadline)
    return router.decrease(intent, deadline_s=deadline)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    drawn=st.lists(
        st.tuples(
            st.sampled_from(list(KINDS)) | st.just("valid"),
            st.data(),
            _deadlines,
        ),
        min_size=1,
        max_size=12,
    ),
)
async def test_the_router_routes_what_builds_and_refuses_bad_deadlines_at_submit(
    drawn: list[tuple[Any, st.DataObject, float | None]],
) -> None:
    """Every intent that builds is handed to the router with a fuzzed deadline: it is refused
    at once with an IntentError naming the problem, or the exchange answers it; the router
    never crashes and keeps routing."""
    config = SimConfig(tier="premier", write_refill=100_000, write_capacity=100_000)
    async with running_sim(config) as sim, running_router(sim) as router:
        futures: list[asyncio.Future[Any]] = []
        for kind, data, deadline in drawn:
            valid = kind == "valid"
            if valid:
                kind, fields = OrderIntent, data.draw(_valid_orders)
            else:
                fields = data.draw(KINDS[kind])
            if kind is OrderIntent:
                fields |= {"client_order_id": f"fz-{next(_counter)}"}
            intent = build(kind, fields)
            assert intent is not None or not valid
            if intent is None:
                continue
            fine = deadline is None or (deadline >= 0 and math.isfinite(deadline))
            future = attempt(functools.partial(route, router, intent, deadline))
            if isinstance(future, IntentError):
                # deadline_s: NaN, infinite or negative; the V1-only fields on the V2 wire; a
                # second cancel of one order while the first is pending.
                assert (future.field == "deadline_s") != fine, future
                assert future.field in ("deadline_s", *V1_ONLY, "order_id")
                assert not (valid and fine)
            else:
                futures.append(future)
        outcomes = await asyncio.gather(*futures)
        assert all(isinstance(outcome, OUTCOMES) for outcome in outcomes), outcomes
        assert router.crashed is None
        after = await router.place(OrderIntent.bid(TICKER, "0.01", 1))
        assert isinstance(after, Accepted)
