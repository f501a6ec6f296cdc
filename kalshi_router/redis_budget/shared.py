"""``RedisBudget``: the write budget of one router among several on one account.

Every spend books tokens in the shared bucket (``kalshi_router.redis_budget.script``) and
waits out the answer's delay on this process's monotonic clock. Waking later than
``max_late_ms`` past the booked time forfeits the booking (it is never sent late: a late
request could meet another router's on-time one at the exchange), gives it back, and books
again. Lateness is counted from when the booking was asked, the earliest the server can have
dated it, so an answer that takes longer than ``max_late_ms`` can never be used: Redis answers
too slowly, which blocks creates as if it did not answer at all.

When Redis does not answer (or too slowly), creates fail closed: ``spend`` waits, asking again
with a capped backoff, and the dispatcher settles the creates whose deadlines pass, naming
``blocked``. Cancels go on, on this router's credit (at once, once Redis is known not to
answer), set aside in the model beforehand and repaid to the bucket once Redis answers again;
the credit is whole again only when the bucket holds what was repaid.
Giving back, draining and repaying are told to Redis in tasks this budget owns and ``aclose``
awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig
from kalshi_router.redis_budget.figures import SharedBudgetFigures
from kalshi_router.redis_budget.script import LUA, STATE_TTL_MS, Answer, Model
from kalshi_router.stats import percentiles

log = logging.getLogger("kalshi_router.budget.redis")

Clock = Callable[[], float]
_RETRY_BASE_S = 0.01
_RETRY_CAP_S = 0.5
# Call durations kept for the figures' percentiles.
_SAMPLES = 4096
# Bookings remembered for refunds, which give back part of the latest ones.
_BOOKINGS = 8


def _where(url: str) -> str:
    """The server, without the user or password the URL may carry."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname}:{parts.port or 6379}"


class RedisBudget:
    """The ``WriteBudget`` of one of several routers sharing an account's bucket on Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        where: str,
        model: Model,
        config: BudgetConfig,
        costs: dict[str, int],
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._redis = redis
        self._rng = rng or random.Random()  # noqa: S311 - spreading retries, not a secret
        self._script = redis.register_script(LUA)
        self._key = key
        self._where = where
        self._model = model
        self._config = config
        self.costs = costs
        self.refill_rate = model.exchange_rate
        self.capacity = model.exchange_capacity
        self.headroom = model.exchange_capacity - model.capacity
        self.spent = 0
        self._clock = clock
        self._horizon_us = {"create": config.create_horizon_ms * 1000}
        self._max_late_s = config.max_late_ms / 1000
        self._credit = model.credit
        self._owed = 0
        self._known = (0.0, 0.0)
        # The latest bookings: (receipt, tokens); "" for tokens spent on credit.
        self._bookings: deque[tuple[str, int]] = deque(maxlen=_BOOKINGS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._durations: deque[float] = deque(maxlen=_SAMPLES)
        self._calls = self._failures = self._forfeited = self._fresh = self._credit_spent = 0
        self.blocked: str | None = None
        """Why creates cannot be booked now (None: they can)."""

    @classmethod
    def connect(
        cls, config: BudgetConfig, model: Model, costs: dict[str, int], key_id: str
    ) -> RedisBudget:
        timeout = config.redis_timeout_ms / 1000
        redis = Redis.from_url(
            config.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # Retries are ours (with the credit for cancels meanwhile): none hidden in redis-py.
            retry=Retry(NoBackoff(), 0),
        )
        namespace = config.namespace or f"kalshi-router:{key_id}"
        return cls(
            redis,
            key=f"{namespace}:write",
            where=_where(config.redis_url),
            model=model,
            config=config,
            costs=costs,
        )

    async def start(self) -> None:
        """Check this router's model against the one Redis holds; ``ConfigError`` if they
        differ. Redis unreachable: start anyway, creates blocked until it answers."""
        with contextlib.suppress(RedisError):
            await self._call("hello")
        if self.blocked and self.blocked.startswith("budget:"):
            raise ConfigError(self.blocked)

    async def aclose(self) -> None:
        # A told call that gets through may start another (repaying the credit): await those too.
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()

    # The WriteBudget protocol.

    def batch_limit(self, kind: str, configured_max: int) -> int:
        if kind == "single":
            return 1
        room = int(self._model.tolerance(kind)) // self.costs[kind]
        return max(1, min(configured_max, room))

    def tokens(self) -> float:
        available, at = self._known
        refilled = available + (self._clock() - at) * self._model.rate
        return max(0.0, min(self._model.capacity, refilled))

    async def spend_now(self, kind: str, amount: int) -> bool:
        if self.blocked is not None and self._on_credit(kind, amount):
            return True
        asked = self._clock()
        try:
            answer = await self._reserve(amount, self._model.tolerance(kind), 0)
        except RedisError:
            return self._on_credit(kind, amount)
        if answer.granted != 1:
            return False
        if not self._in_time(asked, 0.0, amount, answer.receipt):
            return self._on_credit(kind, amount)
        self._took(answer.receipt, amount)
        return True

    async def spend(self, kind: str, amount: int) -> None:
        tolerance = self._model.tolerance(kind)
        # Cancels book as far ahead as one bucket of time: they are never told to come back.
        horizon = self._horizon_us.get(kind, self._model.capacity / self._model.rate * 1e6)
        failures = 0
        while True:
            if self.blocked is not None and self._on_credit(kind, amount):
                return
            asked = self._clock()
            try:
                answer: Answer | None = await self._reserve(amount, tolerance, horizon)
            except RedisError:
                answer = None
            if answer is not None:
                wait = answer.wait_us / 1e6
                if answer.granted != 1:
                    failures = 0
                    # Every router refused now is told the same moment, and the first to ask
                    # again wins: without a spread the same one could win every round (seen:
                    # one of 8 Basic routers got no create in 5 s). Coming back up to a
                    # horizon late costs nothing: the booking may be made that far ahead.
                    spread = self._horizon_us.get(kind, 0.0) / 1e6
                    await asyncio.sleep(wait + self._rng.uniform(0, spread))
                    continue
                await self._wait_out(wait, amount, answer.receipt)
                if self._in_time(asked, wait, amount, answer.receipt):
                    self._took(answer.receipt, amount)
                    return
                if self.blocked is None:
                    continue  # woken late (a busy loop), not by a slow answer: book again
            # No answer, or too slow to be used: creates wait, cancels go on credit.
            if self._on_credit(kind, amount):
                return
            failures += 1
            await asyncio.sleep(min(_RETRY_CAP_S, _RETRY_BASE_S * 2**failures))

    def refund(self, kind: str, amount: int) -> None:
        self.spent -= amount
        # What is given back was taken last: by the dispatcher, the tokens of the batch it just
        # cut smaller; by order groups, those of the call that just failed. So the newest
        # bookings pay first, each refund naming its own (the script gives back no more than
        # that booking still weighs in the bucket).
        while amount > 0 and self._bookings:
            receipt, tokens = self._bookings.pop()
            back = min(amount, tokens)
            if tokens > back:
                self._bookings.append((receipt, tokens - back))
            amount -= back
            if receipt:
                self._inform(self._call("refund", back, receipt))
            else:
                # Spent on credit and not repaid yet: the credit is whole again by that much.
                back = min(back, self._owed)
                self._owed -= back
                self._credit += back

    def rate_limited(self) -> None:
        self._inform(self._call("drain"))

    def figures(self) -> SharedBudgetFigures:
        durations = percentiles(self._durations)
        return SharedBudgetFigures(
            calls=self._calls,
            failures=self._failures,
            call_p50_us=durations.p50 * 1e6,
            call_p99_us=durations.p99 * 1e6,
            forfeited=self._forfeited,
            fresh_starts=self._fresh,
            credit_spent=self._credit_spent,
            credit_left=self._credit,
            blocked=self.blocked,
        )

    # The parts.

    async def _wait_out(self, wait: float, amount: int, receipt: str) -> None:
        """Sleep out ``wait`` from the answer (never early: the server dated the booking at or
        before then)."""
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            # Not sent: the tokens go back to the bucket.
            self._inform(self._call("refund", amount, receipt))
            raise

    async def _reserve(self, amount: int, tolerance: float, horizon: float) -> Answer:
        """Book ``amount``. Cancelled while Redis answers, it gives back what Redis booked: the
        script runs whether or not we wait for its answer (the dispatcher cancels a create
        batch's spend whenever a cancel arrives)."""
        call = asyncio.ensure_future(self._call("reserve", amount, tolerance, horizon))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            self._inform(self._give_back(call, amount))
            raise

    async def _give_back(self, call: asyncio.Future[Answer], amount: int) -> None:
        answer = await call
        if answer.granted == 1:
            await self._call("refund", amount, answer.receipt)

    def _in_time(self, asked: float, wait: float, amount: int, receipt: str) -> bool:
        """Whether a booking is used now within ``max_late_ms`` of its time, counted from
        ``asked`` (the earliest the server's "now" can have been); if not, it is forfeited and
        given back."""
        if self._clock() - (asked + wait) <= self._max_late_s:
            return True
        self._forfeited += 1
        self._inform(self._call("refund", amount, receipt))
        return False

    def _took(self, receipt: str, amount: int) -> None:
        self._bookings.append((receipt, amount))
        self.spent += amount

    def _on_credit(self, kind: str, amount: int) -> bool:
        """Spend ``amount`` of the credit, which only cancels (and single-order calls) may."""
        if kind == "create" or self._credit < amount:
            return False
        self._credit -= amount
        self._owed += amount
        self._credit_spent += amount
        self._took("", amount)
        return True

    async def _call(self, op: str, *args: float | str) -> Answer:
        started = self._clock()
        self._calls += 1
        try:
            reply = await self._script(
                keys=[self._key],
                args=[
                    op,
                    "",
                    self._model.signature,
                    self._model.rate,
                    self._model.capacity,
                    *args,
                    STATE_TTL_MS,
                ],
            )
        except ResponseError as exc:
            self._failures += 1
            self._block(f"the shared write budget at {self._where} failed: {exc}")
            raise
        except RedisError as exc:
            self._failures += 1
            self._block(
                f"the shared write budget is unreachable (Redis at {self._where}: "
                f"{type(exc).__name__})",
                exc,
            )
            raise
        finished = self._clock()
        self._durations.append(finished - started)
        answer = Answer.of(reply)
        if answer.granted == -1:
            self.blocked = (
                f"budget: the routers sharing {self._key} disagree: this one models "
                f"{self._model.signature!r}, Redis holds {answer.other!r}; give every router "
                "the same limits and [budget] settings (or wait for the key to expire)"
            )
            raise ResponseError(self.blocked)
        if finished - started > self._max_late_s:
            self._block(
                f"the shared write budget at {self._where} answers too slowly "
                f"({(finished - started) * 1000:.0f} ms; budget.max_late_ms is "
                f"{self._config.max_late_ms:g})"
            )
        elif self.blocked is not None:
            log.warning("shared write budget at %s answers again", self._where)
            self.blocked = None
        if answer.fresh:
            self._fresh += 1
        self._known = (float(answer.available), finished)
        if self._owed and op != "debit":
            owed, self._owed = self._owed, 0
            self._inform(self._repay(owed))
        return answer

    def _block(self, why: str, exc: Exception | None = None) -> None:
        if self.blocked is None:
            # The reason names the host and port only; redis-py's messages do too.
            log.warning("shared write budget: %s%s", why, f": {exc}" if exc else "")
        self.blocked = why

    async def _repay(self, owed: int) -> None:
        """Book what cancels spent on credit; the credit is whole again once the bucket holds
        it (before, an outage could spend the same tokens twice)."""
        try:
            answer = await self._call("debit", owed)
        except RedisError:
            self._owed += owed
            return
        await asyncio.sleep(answer.wait_us / 1e6)
        self._credit += owed

    def _inform(self, call: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(self._quietly(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, call: Coroutine[Any, Any, object]) -> None:
        # Redis errors are counted and named in ``blocked`` by ``_call`` already.
        with contextlib.suppress(RedisError):
            await call
