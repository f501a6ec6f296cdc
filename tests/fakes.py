"""Test doubles for the router: a virtual clock for the event loop and a scripted exchange client.

The clock makes the running loop's ``time()`` virtual: whenever the loop would sleep (nothing
ready, a timer pending), time jumps straight to that timer. aiolimiter, ``asyncio.sleep`` and
``wait_for`` all read ``loop.time()``, so token waits, backoff and deadlines take no wall time
and a test's timings are exact, however slow or busy the machine is.

The client answers the router's calls from a script (one step per write call, default: accept
everything) and keeps a fake "exchange": the orders it holds, keyed by client_order_id, so that
reconciliation lookups can answer truthfully.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import selectors
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

import msgspec
import pytest

from kalshi_router.config import LimitsConfig, RouterConfig
from kalshi_router.errors import ExchangeError
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.router import OrderRouter
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.models import (
    BatchCancelOrdersV2Response,
    BatchCreateOrdersV2Response,
    BucketLimit,
    CancelOrderV2Result,
    CreateOrderV2Item,
    EndpointTokenCost,
    ErrorResponse,
    GetAccountApiLimitsResponse,
    GetAccountEndpointCostsResponse,
    GetOrdersResponse,
    Order,
    SingleOrderV2Response,
)
from kalshi_router.wire.reply import BatchReply
from kalshi_router.wire.single import decode_single
from kalshi_router.wire.v2 import V2Dialect

T = TypeVar("T")
TICKER = "KXTEST-26JAN01-T50"

# Virtual time.


class _SleeplessSelector:
    """Wraps the loop's selector: a wait for a timer becomes a jump of the virtual clock."""

    def __init__(self, inner: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._inner = inner
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if timeout == 0:
            # Real time always moves a little between iterations; without that, a timer set
            # "now + a rounding error" (aiolimiter does that) would fire again and again.
            self._clock.now = math.nextafter(self._clock.now, math.inf)
        if events or timeout == 0:
            return events
        if timeout is None:
            # Nothing scheduled: only another thread (the default executor) can wake us.
            return self._inner.select(None)
        self._clock.now += timeout
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class VirtualClock:
    """The loop's clock, moved only by the loop itself (to its next timer) or by ``advance``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.now = loop.time()
        self.start = self.now

    def time(self) -> float:
        return self.now

    def elapsed(self) -> float:
        return self.now - self.start

    async def sleep_until(self, elapsed: float) -> None:
        """Sleep until ``elapsed`` virtual seconds after install (a no-op if already past)."""
        await asyncio.sleep(max(0.0, self.start + elapsed - self.now))

    def install(self) -> None:
        state = vars(self._loop)
        assert isinstance(state.get("_selector"), selectors.BaseSelector), "needs a selector loop"
        self._saved_selector = state["_selector"]
        state["_selector"] = _SleeplessSelector(self._saved_selector, self)
        state["time"] = self.time

    def uninstall(self) -> None:
        state = vars(self._loop)
        state["_selector"] = self._saved_selector
        del state["time"]


@contextmanager
def virtual_clock() -> Iterator[VirtualClock]:
    """Virtual time on the running loop for the duration of the block."""
    clock = VirtualClock(asyncio.get_running_loop())
    clock.install()
    try:
        yield clock
    finally:
        clock.uninstall()


async def _clock() -> AsyncIterator[VirtualClock]:
    with virtual_clock() as clock:
        yield clock


# Import as ``from tests.fakes import clock_fixture as clock_fixture``: pytest finds fixtures
# among a module's attributes, and the redundant alias tells ruff the import is deliberate.
clock_fixture = pytest.fixture(name="clock")(_clock)


def run_virtual(main: Callable[[VirtualClock], Awaitable[T]]) -> T:
    """Run ``main`` on a fresh loop in virtual time (for sync tests, e.g. hypothesis ones)."""

    async def wrapped() -> T:
        with virtual_clock() as clock:
            return await main(clock)

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        return runner.run(wrapped())


# The scripted exchange client.

CallKind = Literal["create", "cancel", "single"]


@dataclass
class Call:
    """One write request as the router made it."""

    kind: CallKind
    payloads: list[Any]
    at: float
    """Virtual time the request went out."""

    @property
    def keys(self) -> list[str]:
        """The ids the answer is matched by: client_order_id for creates, else order_id."""
        if self.kind == "create":
            return [cast(OrderIntent, p).client_order_id for p in self.payloads]
        return [
            cast(CancelIntent | AmendIntent | DecreaseIntent, p).order_id for p in self.payloads
        ]


Step = Callable[["ScriptedClient", Call], Awaitable[BatchReply]]
Lookup = Callable[["ScriptedClient", str], Awaitable[list[Order]]]


class StubTransport:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


@dataclass
class Exchange:
    """What the fake exchange holds: one order per client_order_id, and every arrival."""

    orders: dict[str, Order] = field(default_factory=dict)
    arrivals: list[str] = field(default_factory=list)
    """Every client_order_id that reached the exchange, in order, duplicates included."""
    cancelled: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def place(self, intent: OrderIntent) -> Order | None:
        """The order, newly placed, or None when the id is taken (Kalshi refuses reuse)."""
        self.arrivals.append(intent.client_order_id)
        if intent.client_order_id in self.orders:
            return None
        order = Order(
            order_id=f"ord-{next(self._ids)}",
            client_order_id=intent.client_order_id,
            ticker=intent.ticker,
            status="resting",
            remaining_count_fp=intent.count,
            initial_count_fp=intent.count,
        )
        self.orders[intent.client_order_id] = order
        return order


_encoder = msgspec.json.Encoder(decimal_format="string")
_NONE: Mapping[str, str] = MappingProxyType({})
DUPLICATE = ErrorResponse("duplicate_client_order_id", "client order id already exists")


class ScriptedClient:
    """Duck-types :class:`ExchangeClient`. ``script`` holds one step per write call, consumed in
    order; when it is empty, ``default`` answers (accept everything). ``lookups`` does the same
    for ``get_orders`` pages (default: the truth, ``page_size`` orders a page)."""

    def __init__(
        self,
        *,
        limits: GetAccountApiLimitsResponse | Exception | None = None,
        costs: GetAccountEndpointCostsResponse | Exception | None = None,
    ) -> None:
        self.dialect = V2Dialect()
        self.transport = StubTransport()
        self.exchange = Exchange()
        self.script: deque[Step] = deque()
        self.default: Step = accept()
        self.lookups: deque[Lookup] = deque()
        self.default_lookup: Lookup = truthful()
        self.page_size = 1000
        self.limits: GetAccountApiLimitsResponse | Exception = limits or account_limits(1000, 2000)
        self.costs: GetAccountEndpointCostsResponse | Exception = costs or endpoint_costs()
        self.calls: list[Call] = []
        self.order_pages: list[tuple[str, str | None]] = []
        """(ticker, cursor) of every ``get_orders`` call."""
        self.active = 0
        self.max_active = 0

    def then(self, *steps: Step) -> ScriptedClient:
        self.script.extend(steps)
        return self

    def sent(self, kind: CallKind | None = None) -> list[list[str]]:
        """The keys of every request of ``kind`` (all kinds: None), in sending order."""
        return [call.keys for call in self.calls if kind is None or call.kind == kind]

    async def _write(self, kind: CallKind, payloads: Sequence[Any]) -> BatchReply:
        call = Call(kind, list(payloads), asyncio.get_running_loop().time())
        self.calls.append(call)
        step = self.script.popleft() if self.script else self.default
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return await step(self, call)
        finally:
            self.active -= 1

    async def create_batch(self, intents: Sequence[OrderIntent]) -> BatchReply:
        return await self._write("create", intents)

    async def cancel_batch(self, cancels: Sequence[CancelIntent]) -> BatchReply:
        return await self._write("cancel", cancels)

    async def single(self, intent: AmendIntent | DecreaseIntent) -> BatchReply:
        return await self._write("single", [intent])

    async def get_orders(
        self,
        *,
        ticker: str | None = None,
        min_ts: int | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> GetOrdersResponse:
        assert ticker is not None, "reconciliation must list by ticker"
        self.order_pages.append((ticker, cursor))
        lookup = self.lookups.popleft() if self.lookups else self.default_lookup
        orders = await lookup(self, ticker)
        start = int(cursor or 0)
        end = start + min(limit, self.page_size)
        return GetOrdersResponse(orders[start:end], str(end) if end < len(orders) else None)

    async def get_limits(self) -> GetAccountApiLimitsResponse:
        return _answer(self.limits)

    async def get_endpoint_costs(self) -> GetAccountEndpointCostsResponse:
        return _answer(self.costs)


def _answer(value: T | Exception) -> T:
    if isinstance(value, Exception):
        raise value
    return value


def account_limits(rate: int, capacity: int) -> GetAccountApiLimitsResponse:
    return GetAccountApiLimitsResponse(
        "test", read=BucketLimit(200, 200), write=BucketLimit(rate, capacity)
    )


def endpoint_costs(create: int = 10, cancel: int = 2) -> GetAccountEndpointCostsResponse:
    path = "/trade-api/v2/portfolio/events/orders/batched"
    return GetAccountEndpointCostsResponse(
        default_cost=10,
        endpoint_costs=[
            EndpointTokenCost("POST", path, create),
            EndpointTokenCost("DELETE", path, cancel),
        ],
    )


# Steps: what the exchange does with one write request and what it answers.


def _item_error(code: str) -> ErrorResponse:
    return ErrorResponse(code, f"{code} (scripted)", "")


def _answer_body(
    client: ScriptedClient,
    call: Call,
    *,
    reject: Mapping[str, str] = _NONE,
    omit: AbstractSet[str] = frozenset(),
    skip: AbstractSet[str] = frozenset(),
) -> tuple[int, bytes]:
    """Apply ``call`` to the exchange and write Kalshi's 2xx answer: ``reject`` keys get a
    per-item error (key -> code), ``skip`` keys never reach the exchange, ``omit`` keys are
    left out of the answer."""
    if call.kind == "create":
        created: list[CreateOrderV2Item] = []
        for intent in cast(list[OrderIntent], call.payloads):
            key = intent.client_order_id
            if key in skip:
                continue
            if key in reject:
                item = CreateOrderV2Item(client_order_id=key, error=_item_error(reject[key]))
            elif (placed := client.exchange.place(intent)) is None:
                item = CreateOrderV2Item(client_order_id=key, error=DUPLICATE)
            else:
                item = CreateOrderV2Item(
                    client_order_id=key,
                    order_id=placed.order_id,
                    fill_count=Decimal(0),
                    remaining_count=placed.remaining_count_fp,
                )
            if key not in omit:
                created.append(item)
        return 201, _encoder.encode(BatchCreateOrdersV2Response(created))
    if call.kind == "cancel":
        results: list[CancelOrderV2Result] = []
        for cancelled in cast(list[CancelIntent], call.payloads):
            key = cancelled.order_id
            if key in skip:
                continue
            if key in reject:
                result = CancelOrderV2Result(order_id=key, error=_item_error(reject[key]))
            else:
                client.exchange.cancelled.append(key)
                result = CancelOrderV2Result(order_id=key, reduced_by=Decimal(1))
            if key not in omit:
                results.append(result)
        return 200, _encoder.encode(BatchCancelOrdersV2Response(results))
    (single,) = call.payloads
    answer = SingleOrderV2Response(order_id=single.order_id, remaining_count=Decimal(1))
    return 200, _encoder.encode(answer)


def _decode(client: ScriptedClient, call: Call, status: int, body: bytes) -> BatchReply:
    """Classify an answer exactly as the real client does, through the real dialect."""
    if call.kind == "create":
        return client.dialect.decode_create(status, body, call.keys)
    if call.kind == "cancel":
        return client.dialect.decode_cancel(status, body, call.keys)
    return decode_single(call.keys[0], status, body)


def accept(
    *, reject: dict[str, str] | None = None, omit: Sequence[str] = (), apply_omitted: bool = True
) -> Step:
    """Process the request: per-item errors for ``reject`` (key -> code); ``omit`` keys are left
    out of the 2xx answer (processed anyway unless ``apply_omitted`` is false)."""

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        skip = frozenset() if apply_omitted else frozenset(omit)
        status, body = _answer_body(
            client, call, reject=reject or _NONE, omit=frozenset(omit), skip=skip
        )
        return _decode(client, call, status, body)

    return step


ERROR_BODIES = {
    400: b'{"error":{"code":"invalid_parameters","message":"bad request","details":"count"}}',
    401: b'{"error":{"code":"authentication_error","message":"authentication_error"}}',
    429: b'{"error":"too many requests"}',
    500: b'{"error":{"code":"internal_server_error","message":"internal error"}}',
    502: b"<html>bad gateway</html>",
    503: b'{"error":{"code":"service_unavailable","message":"try again"}}',
    504: b'{"message":"gateway timeout"}',
}


def http(status: int, *, processed: bool = False) -> Step:
    """Answer ``status`` with Kalshi's error body; ``processed``: the exchange acted first (a
    500 after the matching engine ran)."""

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        if processed:
            _answer_body(client, call)
        return _decode(client, call, status, ERROR_BODIES.get(status, b""))

    return step


def unreadable(*, processed: bool = True) -> Step:
    """A 2xx whose body cannot be decoded."""

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        if processed:
            _answer_body(client, call)
        return _decode(client, call, 201 if call.kind == "create" else 200, b'{"orders": [')

    return step


def lost(*, sent: bool, processed: bool = False) -> Step:
    """No answer read: a read timeout or reset (``sent``) or a refused connection (not sent),
    as :class:`ExchangeClient` reports a ``TransportError``."""
    assert sent or not processed

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        if processed:
            _answer_body(client, call)
        disposition: Literal["ambiguous", "retry"] = "ambiguous" if sent else "retry"
        return BatchReply(disposition, 0, unanswered=call.keys, anomalies=["scripted"])

    return step


def gated(gate: asyncio.Event, then: Step | None = None) -> Step:
    """Hold the request open until ``gate`` is set, then answer as ``then`` (accept)."""
    inner = then or accept()

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        await gate.wait()
        return await inner(client, call)

    return step


def delayed(seconds: float, then: Step | None = None) -> Step:
    """A round trip of ``seconds`` (virtual), then ``then`` (accept)."""
    inner = then or accept()

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        await asyncio.sleep(seconds)
        return await inner(client, call)

    return step


def explode(exc: BaseException) -> Step:
    """The client raises something it should never raise (a bug, not a network failure)."""

    async def step(client: ScriptedClient, call: Call) -> BatchReply:
        raise exc

    return step


def truthful(*, hide: Sequence[str] = ()) -> Lookup:
    """The exchange's orders on ``ticker``, except ``hide`` (a listing that lags)."""

    async def lookup(client: ScriptedClient, ticker: str) -> list[Order]:
        return [
            order
            for key, order in client.exchange.orders.items()
            if order.ticker == ticker and key not in hide
        ]

    return lookup


def failing(status: int = 503) -> Lookup:
    async def lookup(client: ScriptedClient, ticker: str) -> list[Order]:
        raise ExchangeError(status, "service_unavailable", "scripted lookup failure")

    return lookup


# Intents, outcomes and routers.


def order(key: str, *, ticker: str = TICKER, **fields: Any) -> OrderIntent:
    return OrderIntent.bid(ticker, "0.50", 1, client_order_id=key, **fields)


def orders(prefix: str, n: int) -> list[OrderIntent]:
    return [order(f"{prefix}{i}") for i in range(n)]


def cancel(order_id: str, *, ticker: str = TICKER) -> CancelIntent:
    return CancelIntent(order_id=order_id, ticker=ticker)


def timeline(client: ScriptedClient, clock: VirtualClock) -> list[tuple[str, list[str], float]]:
    """Every write request as (kind, keys, virtual seconds since the clock was installed)."""
    return [(call.kind, call.keys, round(call.at - clock.start, 6)) for call in client.calls]


def kinds(futures: Sequence[asyncio.Future[Any]]) -> list[str]:
    """The outcome type of each settled future, by name (for compact assertions)."""
    return [type(future.result()).__name__ for future in futures]


TEST_LIMITS = LimitsConfig(headroom_s=0.05)


def make_router(
    client: ScriptedClient,
    router: RouterConfig | None = None,
    limits: LimitsConfig | None = None,
    *,
    seed: int = 0,
    owns_transport: bool = False,
) -> OrderRouter:
    """A router on the scripted client, with seeded jitter so that runs repeat exactly. The
    timings the tests expect are worked out for a 0.05 s headroom (5 tokens at Basic)."""
    return OrderRouter(
        cast(ExchangeClient, client),
        router or RouterConfig(),
        limits or TEST_LIMITS,
        rng=random.Random(seed),
        owns_transport=owns_transport,
    )
