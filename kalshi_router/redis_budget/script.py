"""The shared bucket: one Lua script on the Redis server's clock, and the numbers it models.

The state is one hash per account: ``tat``, the server time (µs) at which every token booked so
far will have been refilled (the bucket is full from then on), kept to the µs (Lua's own
``tostring`` would round the server's 16-digit µs to 14 digits); ``run``, the id of the server
run that wrote it; ``sig``, the model every router of the account agreed on; ``gen`` and
``given``, for refunds (below). A booking of ``n``
tokens with tolerance ``tol`` may be sent once ``tat + n/rate - tol/rate`` has passed: creates
tolerate the bucket less the cancels' reserve, cancels the whole bucket, so creates can never
book what a cancel needs now. A booking further ahead than the caller's horizon is not made:
the answer says when to ask again, and the caller sleeps that long on its own clock (the server's
clock is the only one that dates anything; callers measure durations only).

Unknown is empty, never full: a missing key (first use, expiry, a restart without persistence)
or a key written by another server run (a restart with persistence, a failover to a replica
whose copy may lag) starts the bucket as if it had just been emptied.

A refund gives back part of one booking, named by the receipt its answer carried: never more
than that booking still weighs in ``tat``. Tokens given back whole can be too many: had they
never been booked, the bucket could have been full in between (and its refill then lost), so
the later bookings would have been dated later. The booking weighs at most its own ``tat``
(``booked``) less what refunds gave back since (``given`` counts them all) less the time
elapsed, which is zero once the bucket could have been full. A 429 (``drain``) or an unknown
bucket starts a new generation (``gen``), whose state owes nothing to earlier bookings: their
refunds give nothing back.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig

# In the model's signature: routers running different scripts (refund rules, state fields) on
# one key are refused at start rather than mixed.
SCRIPT_VERSION = 2
# The state outlives every router by this much; after that it is forgotten (and starts empty),
# so that an account whose limits changed is not refused for ever by an old model.
STATE_TTL_MS = 600_000

# KEYS[1]: the account's hash. ARGV: op, now (µs; "" = the server's TIME, given only by tests),
# the model's signature, rate (tokens/s), capacity (tokens), then the op's own arguments.
# Redis turns Lua numbers into integers by truncation: the wait is rounded up before. The reply:
# granted, wait (µs; for a debit, until the bucket holds it again), available (tokens), fresh,
# the model Redis holds when it differs, and a booking's receipt (refund's second argument).
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
local state = redis.call('HMGET', key, 'tat', 'run', 'sig', 'gen', 'given')
if state[3] and state[3] ~= sig then
  return {-1, 0, 0, 0, state[3], ''}
end
local tat = tonumber(state[1])
local gen = tonumber(state[4])
local given = tonumber(state[5])
local fresh = 0
if tat == nil or gen == nil or given == nil or state[2] ~= run then
  tat = now + cap * per
  gen = math.max((gen or 0) + 1, now)
  given = 0
  fresh = 1
end
if tat < now then
  tat = now
end
local granted = 1
local wait = 0
local receipt = ''
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
    receipt = string.format('%.17g %.17g %.17g', gen, given, tat)
  else
    granted = 0
    wait = wait - horizon
  end
elseif op == 'refund' then
  local g, gv, booked = string.match(ARGV[7], '^(%S+) (%S+) (%S+)$')
  local back = 0
  if tonumber(g) == gen then
    back = math.min(tonumber(ARGV[6]) * per, tonumber(booked) - (given - tonumber(gv)) - now)
  end
  if back > 0 then
    tat = math.max(now, tat - back)
    given = given + back
  else
    granted = 0
  end
elseif op == 'debit' then
  tat = tat + tonumber(ARGV[6]) * per
  wait = math.max(0, tat - cap * per - now)
elseif op == 'drain' then
  tat = math.max(tat, now + cap * per)
  gen = gen + 1
elseif op ~= 'hello' then
  return redis.error_reply('unknown op ' .. op)
end
local function exact(x)
  return string.format('%.17g', x)
end
redis.call('HSET', key, 'tat', exact(tat), 'run', run, 'sig', sig, 'gen', exact(gen),
  'given', exact(given))
redis.call('PEXPIRE', key, tonumber(ARGV[#ARGV]))
local available = cap - (tat - now) / per
return {granted, math.ceil(wait), math.floor(available), fresh, '', receipt}
"""


class Answer(NamedTuple):
    """The script's reply: ``granted`` (1 booked, 0 ask again, -1 the model differs; for a
    refund, 0: nothing given back); ``wait_us`` until the booking may be sent, or until asking
    again; ``available`` tokens after the op; ``fresh``: the bucket was unknown and started
    empty; ``other``: the model Redis holds, when it differs; ``receipt``: a booking's, which
    its refund names."""

    granted: int
    wait_us: int
    available: int
    fresh: bool
    other: str
    receipt: str = ""

    @classmethod
    def of(cls, reply: list[object]) -> Answer:
        granted, wait, available, fresh, other, receipt = reply
        return cls(
            int(str(granted)),
            int(str(wait)),
            int(str(available)),
            fresh == 1,
            _text(other),
            _text(receipt),
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        if config.max_late_ms > headroom_s * 1000:
            # A booking used later than the model absorbs could meet another router's on-time
            # one at the exchange (Config checks this too; a router built in code may not).
            raise ConfigError("budget.max_late_ms: must be <= limits.headroom_s in milliseconds")
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
            f"script {SCRIPT_VERSION}; "
            f"exchange {self.exchange_rate:g}/s bucket {self.exchange_capacity:g}; "
            f"modelled {self.rate:g}/s bucket {self.capacity:g} reserve {self.reserve:g}"
        )

    def tolerance(self, kind: str) -> float:
        """How much of the bucket a booking of ``kind`` may take."""
        return self.capacity - self.reserve if kind == "create" else self.capacity
