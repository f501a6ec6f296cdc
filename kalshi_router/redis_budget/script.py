"""The shared bucket: one Lua script on the Redis server's clock, and the numbers it models.

The state is one hash per account: ``tat``, the server time (µs) at which every token booked so
far will have been refilled (the bucket is full from then on); ``run``, the id of the server
run that wrote it; ``sig``, the model every router of the account agreed on. A booking of ``n``
tokens with tolerance ``tol`` may be sent once ``tat + n/rate - tol/rate`` has passed: creates
tolerate the bucket less the cancels' reserve, cancels the whole bucket, so creates can never
book what a cancel needs now. A booking further ahead than the caller's horizon is not made:
the answer says when to ask again, and the caller sleeps that long on its own clock (the server's
clock is the only one that dates anything; callers measure durations only).

Unknown is empty, never full: a missing key (first use, expiry, a restart without persistence)
or a key written by another server run (a restart with persistence, a failover to a replica
whose copy may lag) starts the bucket as if it had just been emptied.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig

# The state outlives every router by this much; after that it is forgotten (and starts empty),
# so that an account whose limits changed is not refused for ever by an old model.
STATE_TTL_MS = 600_000

# KEYS[1]: the account's hash. ARGV: op, now (µs; "" = the server's TIME, given only by tests),
# the model's signature, rate (tokens/s), capacity (tokens), then the op's own arguments.
# Redis turns Lua numbers into integers by truncation: the wait is rounded up before.
LUA = """
local key = KEYS[1]
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local sig = ARGV[3]
local per = 1000000 / tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local state = redis.call('HMGET', key, 'tat', 'run', 'sig')
if state[3] and state[3] ~= sig then
  return {-1, 0, 0, 0, state[3]}
end
local tat = tonumber(state[1])
local fresh = 0
if tat == nil or state[2] ~= run then
  tat = now + cap * per
  fresh = 1
end
if tat < now then
  tat = now
end
local granted = 1
local wait = 0
if op == 'reserve' then
  local n = tonumber(ARGV[6])
  local tol = tonumber(ARGV[7])
  local horizon = tonumber(ARGV[8])
  local booked = tat + n * per
  wait = booked - tol * per - now
  if wait <= horizon then
    tat = booked
    if wait < 0 then
      wait = 0
    end
  else
    granted = 0
    wait = wait - horizon
  end
elseif op == 'refund' then
  tat = math.max(now, tat - tonumber(ARGV[6]) * per)
elseif op == 'debit' then
  tat = tat + tonumber(ARGV[6]) * per
elseif op == 'drain' then
  tat = math.max(tat, now + cap * per)
elseif op ~= 'hello' then
  return redis.error_reply('unknown op ' .. op)
end
redis.call('HSET', key, 'tat', tostring(tat), 'run', run, 'sig', sig)
redis.call('PEXPIRE', key, tonumber(ARGV[#ARGV]))
local available = cap - (tat - now) / per
return {granted, math.ceil(wait), math.floor(available), fresh, ''}
"""


class Answer(NamedTuple):
    """The script's reply: ``granted`` (1 booked, 0 ask again, -1 the model differs);
    ``wait_us`` until the booking may be sent, or until asking again; ``available`` tokens
    after the op; ``fresh``: the bucket was unknown and started empty; ``other``: the model
    Redis holds, when it differs."""

    granted: int
    wait_us: int
    available: int
    fresh: bool
    other: str

    @classmethod
    def of(cls, reply: list[object]) -> Answer:
        granted, wait, available, fresh, other = reply
        text = other.decode() if isinstance(other, bytes) else str(other)
        return cls(int(str(granted)), int(str(wait)), int(str(available)), fresh == 1, text)


class Model(NamedTuple):
    """The shared bucket as modelled: what every router of the account must agree on."""

    exchange_rate: float
    exchange_capacity: float
    rate: float
    """The modelled refill: the exchange's times ``refill_margin``."""
    capacity: float
    """The exchange's bucket less the lateness absorbed and the routers' cancel credits."""
    reserve: float
    """What creates leave to cancels."""
    credit: float
    """Tokens each router may spend on cancels while Redis is unreachable."""

    @classmethod
    def of(
        cls,
        config: BudgetConfig,
        *,
        rate: float,
        capacity: float,
        headroom_s: float,
        create_cost: int,
        cancel_cost: int,
    ) -> Model:
        credit = config.cancel_credit or 5 * cancel_cost
        modelled_rate = rate * config.refill_margin
        reserve = config.cancel_reserve or math.ceil(
            modelled_rate * config.create_horizon_ms / 1000 + 5 * cancel_cost
        )
        model = cls(
            exchange_rate=rate,
            exchange_capacity=capacity,
            rate=modelled_rate,
            capacity=capacity - rate * headroom_s - config.routers * credit,
            reserve=reserve,
            credit=credit,
        )
        if model.capacity - model.reserve < create_cost:
            raise ConfigError(
                f"budget: a shared bucket of {capacity:g} tokens less {rate * headroom_s:g} "
                f"of headroom (limits.headroom_s), {config.routers} x {credit:g} of cancel "
                f"credit (budget.routers, budget.cancel_credit) and a reserve of {reserve:g} "
                f"for cancels (budget.cancel_reserve) cannot hold one create ({create_cost} "
                "tokens); lower one of them"
            )
        return model

    @property
    def signature(self) -> str:
        """The model in words, stored beside the bucket; another router's must be equal."""
        return (
            f"exchange {self.exchange_rate:g}/s bucket {self.exchange_capacity:g}; "
            f"modelled {self.rate:g}/s bucket {self.capacity:g} reserve {self.reserve:g}"
        )

    def tolerance(self, kind: str) -> float:
        """How much of the bucket a booking of ``kind`` may take."""
        return self.capacity - self.reserve if kind == "create" else self.capacity
