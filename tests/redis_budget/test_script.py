"""The Lua bucket, called straight through redis-py on an injected clock (ARGV[2]): its
arithmetic against a table of cases, and the promise it exists for, as a property: the tokens
it grants never exceed the modelled bucket, whatever the order of bookings, refunds and drains.

The model here: 100 tokens/s (10 ms a token), a bucket of 50, a reserve of 10 for cancels, so
creates tolerate 40 and cancels 50."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest
import redis
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig
from kalshi_router.redis_budget.script import LUA, STATE_TTL_MS, Answer, Model

RATE = 100.0
PER = 1e6 / RATE
CAP = 50
RESERVE = 10
CREATE = CAP - RESERVE
SIG = "test model"
T = 1_000_000_000  # µs: the injected "now" of most cases
_keys = itertools.count()
# Keys of this process's own: a parallel run's workers may share one server (REDIS_URL).
_RUN = uuid.uuid4().hex


class Bucket:
    """One account's hash, and the script called on it as RedisBudget calls it."""

    def __init__(
        self, client: redis.Redis, *, rate: float = RATE, cap: float = CAP, sig: str = SIG
    ) -> None:
        self.client = client
        self.key = f"test-script:{_RUN}:{next(_keys)}:write"
        self.script = client.register_script(LUA)
        self.rate, self.cap, self.sig = rate, cap, sig

    def __call__(self, op: str, now: float | None, *args: float | str) -> Answer:
        reply = self.script(
            keys=[self.key],
            args=[
                op,
                "" if now is None else repr(now),
                self.sig,
                self.rate,
                self.cap,
                *args,
                STATE_TTL_MS,
            ],
        )
        return Answer.of(reply)

    def reserve(self, now: float, n: int, tolerance: float, horizon: float) -> Answer:
        return self("reserve", now, n, tolerance, horizon)

    def put(self, tat: float, *, run: str | None = None, sig: str = SIG) -> None:
        """Write a state as if an earlier call had (``run``: another server run's)."""
        run = run or str(self.client.info("server")["run_id"])
        state = ["tat", repr(tat), "run", run, "sig", sig, "gen", "1", "given", "0"]
        self.client.hset(self.key, items=state)

    def tat(self) -> float:
        value = self.client.hget(self.key, "tat")
        assert isinstance(value, bytes)
        return float(value)


@pytest.fixture(scope="module")
def client(redis_url: str) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(redis_url)
    yield made
    made.close()


@pytest.fixture
def bucket(client: redis.Redis) -> Iterator[Bucket]:
    made = Bucket(client)
    yield made
    client.delete(made.key)


def used(tokens: float) -> float:
    """The state ``tat`` of a bucket that, at ``T``, lacks ``tokens`` (negative: full since)."""
    return T + tokens * PER


class Case(NamedTuple):
    state: float | None  # tokens lacking at T (None: no key)
    op: str
    args: tuple[float, ...]
    granted: int
    wait_us: int
    available: int
    tat: float  # tokens lacking at T after the op
    fresh: bool = False


HORIZON = 20_000.0  # µs: creates' booking horizon (budget.create_horizon_ms = 20)
AHEAD = CAP * PER  # µs: how far cancels book ahead (one bucket of time)
CASES = {
    # Unknown is empty: a missing key starts empty, and every op starts from there.
    "missing key: empty": Case(None, "hello", (), 1, 0, 0, CAP, fresh=True),
    "missing key: a create waits for the reserve and itself": Case(
        None, "reserve", (10, CREATE, 1e9), 1, 200_000, -10, CAP + 10, fresh=True
    ),
    "missing key: a debit books on the empty bucket": Case(
        None, "debit", (10,), 1, 100_000, -10, CAP + 10, fresh=True
    ),
    "full since long ago: holds the bucket, no more": Case(-500, "hello", (), 1, 0, CAP, 0),
    "half full": Case(25, "hello", (), 1, 0, 25, 25),
    # Creates book within their tolerance, which leaves the reserve to cancels.
    "a create with room goes now": Case(20, "reserve", (10, CREATE, 0), 1, 0, 20, 30),
    "a create that fills the tolerance goes now": Case(
        30, "reserve", (10, CREATE, 0), 1, 0, 10, 40
    ),
    "creates leave the reserve: refused, asked back when it would go": Case(
        40, "reserve", (10, CREATE, 0), 0, 100_000, 10, 40
    ),
    "a refusal's hint leaves the horizon out": Case(
        40, "reserve", (10, CREATE, HORIZON), 0, 100_000 - 20_000, 10, 40
    ),
    "a create within its horizon books ahead": Case(
        39, "reserve", (2, CREATE, HORIZON), 1, 10_000, 9, 41
    ),
    "a wait exactly at the horizon is booked": Case(
        40, "reserve", (2, CREATE, HORIZON), 1, 20_000, 8, 42
    ),
    # Cancels tolerate the whole bucket: right after creates filled theirs, a cancel that fits
    # in the reserve goes at once; a larger one waits only for what the reserve lacks.
    "a cancel after creates filled their tolerance goes now": Case(
        40, "reserve", (10, CAP, AHEAD), 1, 0, 0, 50
    ),
    "a cancel beyond the reserve waits for the rest": Case(
        40, "reserve", (15, CAP, AHEAD), 1, 50_000, -5, 55
    ),
    "a cancel on an empty bucket waits for itself": Case(
        50, "reserve", (3, CAP, AHEAD), 1, 30_000, -3, 53
    ),
    "debit": Case(10, "debit", (5,), 1, 0, 35, 15),
    "debit on a full bucket": Case(-500, "debit", (5,), 1, 0, 45, 5),
    # A 429 anywhere: the exchange's bucket is empty, whatever this one says.
    "drain a full bucket": Case(-500, "drain", (), 1, 0, 0, CAP),
    "drain keeps what cancels booked beyond empty": Case(70, "drain", (), 1, 0, -20, 70),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_arithmetic(bucket: Bucket, case: Case) -> None:
    if case.state is not None:
        bucket.put(used(case.state))
    answer = bucket(case.op, T, *case.args)
    assert answer[:5] == (case.granted, case.wait_us, case.available, case.fresh, "")
    assert bool(answer.receipt) == (case.op == "reserve" and case.granted == 1)
    assert bucket.tat() == pytest.approx(used(case.tat))


def test_the_bucket_refills_on_the_servers_clock(bucket: Bucket) -> None:
    bucket.put(used(CAP))  # empty at T
    assert bucket("hello", T + 250_000).available == 25
    assert bucket("hello", T + 10_000_000).available == CAP


def test_waits_are_rounded_up_never_early(bucket: Bucket) -> None:
    # 3 tokens/s: a token every 333333.3 µs; Redis would truncate the reply's 0.3 µs away.
    bucket.rate, bucket.cap = 3.0, 5
    answer = bucket.reserve(T, 1, 5, 1e9)
    assert answer.fresh
    assert answer.wait_us == 333_334


def test_another_server_runs_state_is_unknown_so_empty(bucket: Bucket) -> None:
    # A restart with persistence, or a failover to a replica whose copy may lag: full there
    # says nothing about now.
    bucket.put(used(-500), run="0" * 40)
    assert bucket("hello", T) == Answer(1, 0, 0, True, "", "")
    # ... and from then on the state is this run's.
    assert bucket("hello", T + 100_000) == Answer(1, 0, 10, False, "", "")


def test_a_different_model_is_refused_and_named_and_the_state_kept(bucket: Bucket) -> None:
    theirs = "exchange 200/s bucket 200; modelled 199/s bucket 150 reserve 20"
    bucket.put(used(10), sig=theirs)
    for op, args in (("hello", ()), ("reserve", (10, CAP, AHEAD)), ("refund", (5, "1 0 0"))):
        assert bucket(op, T, *args) == Answer(-1, 0, 0, False, theirs, "")
    assert bucket.tat() == used(10)
    assert bucket.client.hget(bucket.key, "sig") == theirs.encode()


def test_an_unknown_op_is_an_error(bucket: Bucket) -> None:
    with pytest.raises(redis.ResponseError, match="unknown op"):
        bucket("steal", T)


def test_the_state_outlives_routers_by_its_ttl(bucket: Bucket) -> None:
    bucket("hello", T)
    ttl = bucket.client.pttl(bucket.key)
    assert STATE_TTL_MS - 5_000 < ttl <= STATE_TTL_MS


def test_without_an_injected_clock_the_servers_time_dates_it(bucket: Bucket) -> None:
    seconds, micros = bucket.client.time()
    before = seconds * 1_000_000 + micros
    assert bucket("hello", None).fresh
    seconds, micros = bucket.client.time()
    after = seconds * 1_000_000 + micros
    # Empty at the server's now: refilled one bucket of time later.
    assert before + AHEAD <= bucket.tat() <= after + AHEAD


@pytest.mark.parametrize("now", [1_733_600_000_123_449, 1_733_600_000_123_451])
def test_the_state_keeps_every_microsecond_of_the_servers_clock(bucket: Bucket, now: int) -> None:
    # The server's clock in µs has 16 digits; the state must not round them to fewer (either
    # way: down would hand out tokens the exchange has not refilled).
    bucket.put(now - 1e9)  # full
    bucket.reserve(now, 1, CAP, AHEAD)
    assert bucket.tat() == now + PER
    assert bucket.reserve(now, 50, CAP, AHEAD).wait_us == PER


# --- refunds ----------------------------------------------------------------------------------


def test_a_refund_right_after_its_booking_gives_it_back_whole(bucket: Bucket) -> None:
    bucket.put(used(20))
    booking = bucket.reserve(T, 10, CREATE, 0)
    assert booking.available == 20
    assert bucket("refund", T + 1, 10, booking.receipt).granted == 1
    assert bucket.tat() == used(20)


def test_a_refund_never_fills_the_bucket_beyond_full(bucket: Bucket) -> None:
    bucket.put(used(-500))
    booking = bucket.reserve(T, 10, CAP, AHEAD)
    # 50 ms later, 5 of the 10 tokens are back already: the other 5 are all a refund can add.
    assert bucket("refund", T + 50_000, 10, booking.receipt).available == CAP
    assert bucket.tat() == T + 50_000


def test_a_refund_gives_back_no_more_than_the_booking_still_weighs(bucket: Bucket) -> None:
    # A's 10 tokens would have been refilled at T + 100 ms. B books 90 ms after A, so without A
    # the bucket would have been full then and B's tokens counted from T + 90 ms: a refund of A
    # after that can give back 10 ms of A's tokens, not 100.
    bucket.put(used(-500))
    a = bucket.reserve(T, 10, CAP, AHEAD)
    bucket.reserve(T + 90_000, 10, CAP, AHEAD)
    bucket("refund", T + 90_000, 10, a.receipt)
    assert bucket.tat() == T + 190_000  # B's 10 tokens from T + 90 ms


def test_refunds_in_between_count_against_a_later_one(bucket: Bucket) -> None:
    # Z and A booked on a full bucket; Z given back (tat falls under A's own), then C booked
    # when the bucket is nearly full again: A's tokens now weigh only what Z's refund left.
    bucket.put(used(-500))
    z = bucket.reserve(T, 10, CAP, AHEAD)
    a = bucket.reserve(T + 10_000, 10, CAP, AHEAD)
    bucket("refund", T + 20_000, 10, z.receipt)  # 8 of Z's tokens still weigh: 80 ms back
    bucket.reserve(T + 115_000, 10, CAP, AHEAD)
    bucket("refund", T + 120_000, 10, a.receipt)
    # Without Z and A, C's 10 tokens count from T + 115 ms.
    assert bucket.tat() >= T + 215_000


@pytest.mark.parametrize("cut", ["drain", "another run"])
def test_nothing_comes_back_from_before_the_bucket_was_known_empty(
    bucket: Bucket, cut: str
) -> None:
    bucket.put(used(-500))
    booking = bucket.reserve(T, 10, CAP, AHEAD)
    if cut == "drain":
        bucket("drain", T + 1)
    else:
        bucket.put(used(10), run="0" * 40)
        assert bucket("hello", T + 1).fresh
    before = bucket.tat()
    assert bucket("refund", T + 2, 10, booking.receipt).granted == 0
    assert bucket.tat() == before


# --- the property -----------------------------------------------------------------------------


class Grant:
    """Tokens booked to be sent at ``send`` (µs), less what was given back since."""

    def __init__(self, send: float, tokens: int, receipt: str) -> None:
        self.send = send
        self.tokens = tokens
        self.receipt = receipt


Op = tuple[str, int, int, int]  # (what, µs since the previous op, how many, which grant)
ops = st.lists(
    st.tuples(
        st.sampled_from(["create", "create", "cancel", "cancel", "refund", "drain", "debit"]),
        st.one_of(st.integers(0, 20_000), st.integers(0, 600_000)),
        st.integers(1, 15),
        st.integers(0, 1_000),
    ),
    max_size=40,
)


def overdrawn(grants: list[Grant]) -> str | None:
    """A window [a, b] whose grants exceed the bucket plus its refill over b - a, if any."""
    sends = sorted({grant.send for grant in grants})
    for i, a in enumerate(sends):
        for b in sends[i:]:
            tokens = sum(g.tokens for g in grants if a <= g.send <= b)
            allowed = CAP + RATE * (b - a) / 1e6
            if tokens > allowed + 1e-9:
                return f"{tokens} tokens sent in [{a}, {b}] µs; the bucket allows {allowed:g}"
    return None


@settings(deadline=None, max_examples=60)
@given(st.booleans(), ops)
# Found by the explore profile: giving back the first token lets the cancel go 1 µs too early,
# because the bucket was full at the second create had that token never been booked.
@example(
    full=True,
    script=[("create", 0, 1, 0), ("create", 1, 15, 0)]
    + [("create", 0, 1, 0)] * 12
    + [("create", 0, 13, 0), ("refund", 0, 1, 0), ("cancel", 0, 11, 0)],
)
# The same, larger: 15 tokens given back 140 ms after their booking, once the bucket had been
# full again but for them, would be 14 tokens too many.
@example(
    full=True,
    script=[("cancel", 0, 15, 0), ("cancel", 140_000, 15, 0), ("refund", 0, 15, 0)]
    + [("cancel", 0, 15, 0)] * 3,
)
def test_granted_tokens_never_exceed_the_bucket(
    client: redis.Redis, full: bool, script: list[Op]
) -> None:
    bucket = Bucket(client)
    try:
        if full:
            bucket.put(used(-500))
        grants: list[Grant] = []
        now = float(T)
        for what, dt, n, which in script:
            now += dt
            if what in ("create", "cancel"):
                horizon = HORIZON if what == "create" else AHEAD
                answer = bucket.reserve(now, n, CREATE if what == "create" else CAP, horizon)
                if answer.granted == 1:
                    grants.append(Grant(now + answer.wait_us, n, answer.receipt))
            elif what == "refund":
                if not grants:
                    continue
                grant = grants[which % len(grants)]
                back = min(n, grant.tokens)
                bucket("refund", now, back, grant.receipt)
                grant.tokens -= back
            else:
                bucket(what, now, *((n,) if what == "debit" else ()))
        assert overdrawn(grants) is None
    finally:
        client.delete(bucket.key)


def test_a_lateness_beyond_the_headroom_is_refused_even_without_the_config_file() -> None:
    with pytest.raises(ConfigError, match=r"budget\.max_late_ms"):
        Model.of(
            BudgetConfig(backend="redis", max_late_ms=300),
            rate=1000,
            capacity=2000,
            headroom_s=0.25,
            create_cost=10,
            cancel_cost=2,
        )
