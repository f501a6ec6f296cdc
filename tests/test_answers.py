"""answers: what each answer, and each lookup round, means, as a plan: one table row per failure
class, without an event loop. Replies come from the real V2 dialect (or are shaped as
``ExchangeClient`` reports a transport failure), so each row is classified as in production."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.answers import IfAbsent, LookUp, Plan, answer, looked_up
from kalshi_router.errors import ExchangeError, WireError
from kalshi_router.outcome import Outcome, Rejected, outcome_name
from kalshi_router.pending import Kind, Pending, State
from kalshi_router.wire import reply as wire_reply
from kalshi_router.wire.models import Order
from kalshi_router.wire.reply import BatchReply
from kalshi_router.wire.single import decode_single
from kalshi_router.wire.v2 import V2Dialect
from tests.fakes import ERROR_BODIES, TICKER
from tests.pendings import walked

NOW = 10.0
DEADLINE = 20.0
V2 = V2Dialect()


def backoff(attempts: int) -> float:
    """Deterministic: half a second per attempt made."""
    return 0.5 * attempts


def never(attempts: int) -> float:
    raise AssertionError("backoff consulted: nothing was to be retried")


def intent(
    key: str,
    kind: Kind = "create",
    *,
    attempts: int = 1,
    placed: bool = False,
    deadline: float = DEADLINE,
    state: State = "sending",
) -> Pending:
    """An intent as the decisions get it: ``sending`` (its answer came), or ``looking_up``."""
    pending = Pending(
        kind=kind,
        key=key,
        ticker=TICKER,
        payload=None,
        # The decisions never touch the future (only the router settles it): no loop needed.
        future=cast("asyncio.Future[Any]", None),
        submitted=0.0,
        deadline=deadline,
        attempts=attempts,
    )
    return walked(pending, state, maybe_placed=placed)


# Answers, as the wire delivers them.


def _item(key: str, error: str | None = None, **fields: Any) -> dict[str, Any]:
    if error is not None:
        return {"client_order_id": key, "error": {"code": error, "message": error}}
    placed = {"order_id": f"ord-{key}", "fill_count": "0", "remaining_count": "1"}
    return {"client_order_id": key, **placed, **fields}


def created(
    keys: Sequence[str],
    errors: Mapping[str, str] | None = None,
    *,
    left_out: Sequence[str] = (),
    broken: Mapping[str, dict[str, Any]] | None = None,
) -> BatchReply:
    """A 201 to a create batch: per-item ``errors`` (key -> code), ``left_out`` keys missing,
    ``broken`` keys with fields that break the schema."""
    items = [
        _item(k, (errors or {}).get(k), **(broken or {}).get(k, {}))
        for k in keys
        if k not in left_out
    ]
    return V2.decode_create(201, json.dumps({"orders": items}).encode(), list(keys))


def cancelled(keys: Sequence[str], errors: Mapping[str, str] | None = None) -> BatchReply:
    items = [
        {"order_id": k, "error": {"code": code, "message": code}}
        if (code := (errors or {}).get(k))
        else {"order_id": k, "reduced_by": "1"}
        for k in keys
    ]
    return V2.decode_cancel(200, json.dumps({"orders": items}).encode(), list(keys))


def status(code: int, keys: Sequence[str], body: bytes | None = None) -> BatchReply:
    return V2.decode_create(code, ERROR_BODIES.get(code, b"") if body is None else body, list(keys))


def transport(keys: Sequence[str], *, sent: bool) -> BatchReply:
    """As ``ExchangeClient`` reports a TransportError: refused (not sent) or timed out / reset
    after sending."""
    problem = "read timeout" if sent else "connection refused"
    return BatchReply(
        "ambiguous" if sent else "retry", 0, unanswered=list(keys), anomalies=[problem]
    )


# Plans, summed up: each settled intent as "kind: detail", each list by key.


def said(outcome: Outcome) -> str:
    detail = outcome.code if isinstance(outcome, Rejected) else getattr(outcome, "reason", "")
    return f"{outcome_name(outcome)}: {detail}" if detail else outcome_name(outcome)


def keys(pendings: Sequence[Pending]) -> list[str]:
    return [p.key for p in pendings]


def _look(look: LookUp) -> tuple[object, ...]:
    refusals = {p.key: r.code for p, r in look.refusals.items()}
    return (look.if_absent, keys(look.pending), look.reason, refusals)


def summary(plan: Plan) -> dict[str, object]:
    out: dict[str, object] = {}
    if plan.settle:
        out["settle"] = [(p.key, said(o)) for p, o in plan.settle.items()]
    if plan.maybe_placed:
        out["marked"] = keys(plan.maybe_placed)
    if plan.drain:
        out["drain"] = True
    if plan.retry:
        out["retry"] = (keys(plan.retry), plan.retry_at)
    if plan.look_up:
        out["look_up"] = [_look(look) for look in plan.look_up]
    if plan.look_again is not None:
        again = plan.look_again
        out["look_again"] = (*_look(again), again.attempt, again.wait_s)
    return out


@dataclass(frozen=True)
class Row:
    kind: Kind
    batch: Callable[[], list[Pending]]
    reply: BatchReply
    expect: dict[str, object]


def fresh(*names: str, kind: Kind = "create") -> Callable[[], list[Pending]]:
    return lambda: [intent(name, kind) for name in names]


AB = ("a0", "a1")
ACCEPTED = [("a0", "accepted"), ("a1", "accepted")]
RESENT = "deadline passed while retrying ({}); an earlier attempt may have reached the exchange"
UNSAFE = "internal_server_error: an amend/decrease is not safe to resend"
CANCEL_REFUSED = (
    "the resend was refused (order_not_resting: order_not_resting), but an earlier attempt "
    "may have cancelled the order"
)

ANSWERS = {
    "all-accepted": Row("create", fresh(*AB), created(AB), {"settle": ACCEPTED}),
    # Definitive: settled with the error, never retried.
    "whole-batch-400": Row(
        "create",
        fresh(*AB),
        status(400, AB),
        {
            "settle": [
                ("a0", "rejected: invalid_parameters"),
                ("a1", "rejected: invalid_parameters"),
            ]
        },
    ),
    "401": Row(
        "create",
        fresh("a0"),
        status(401, ["a0"]),
        {"settle": [("a0", "rejected: authentication_error")]},
    ),
    "403-without-a-body": Row(
        "create", fresh("a0"), status(403, ["a0"]), {"settle": [("a0", "rejected: http_403")]}
    ),
    "per-item-error": Row(
        "create",
        fresh(*AB),
        created(AB, {"a1": "insufficient_balance"}),
        {"settle": [("a0", "accepted"), ("a1", "rejected: insufficient_balance")]},
    ),
    "duplicate-id-on-a-first-attempt": Row(
        "create",
        fresh("a0"),
        created(["a0"], {"a0": "duplicate_client_order_id"}),
        {"settle": [("a0", "rejected: duplicate_client_order_id")]},
    ),
    "per-item-cancel-error": Row(
        "cancel",
        fresh("o0", kind="cancel"),
        cancelled(["o0"], {"o0": "not_found"}),
        {"settle": [("o0", "rejected: not_found")]},
    ),
    # Not executed: the same ids again after one backoff for the batch.
    "connection-refused": Row(
        "create", fresh(*AB), transport(AB, sent=False), {"retry": (list(AB), 10.5)}
    ),
    "429-drains-our-bucket": Row(
        "create", fresh(*AB), status(429, AB), {"drain": True, "retry": (list(AB), 10.5)}
    ),
    "503": Row("create", fresh(*AB), status(503, AB), {"retry": (list(AB), 10.5)}),
    "408": Row("create", fresh(*AB), status(408, AB), {"retry": (list(AB), 10.5)}),
    "503-single": Row(
        "single", fresh("o0", kind="single"), status(503, ["o0"]), {"retry": (["o0"], 10.5)}
    ),
    "backoff-after-the-most-attempts": Row(
        "create",
        lambda: [intent("a0", attempts=3), intent("a1")],
        status(503, AB),
        {"retry": (list(AB), 11.5)},
    ),
    "deadline-passes-during-backoff": Row(
        "create",
        lambda: [intent("a0", deadline=10.4), intent("a1")],
        status(503, AB),
        {
            "settle": [("a0", "expired: deadline passed while retrying (service_unavailable)")],
            "retry": (["a1"], 10.5),
        },
    ),
    "deadline-passes-during-backoff-after-an-ambiguous-attempt": Row(
        "create",
        lambda: [intent("a0", placed=True, deadline=10.5)],
        status(429, ["a0"]),
        {"drain": True, "settle": [("a0", "unknown: " + RESENT.format("too_many_requests"))]},
    ),
    # Ambiguous: creates are looked up, cancels sent again, amends and decreases unknown.
    "read-timeout-or-reset-after-send": Row(
        "create",
        fresh(*AB),
        transport(AB, sent=True),
        {"marked": list(AB), "look_up": [("resend", list(AB), "no answer", {})]},
    ),
    "500": Row(
        "create",
        fresh(*AB),
        status(500, AB),
        {"marked": list(AB), "look_up": [("resend", list(AB), "internal_server_error", {})]},
    ),
    "502-html": Row(
        "create",
        fresh("a0"),
        status(502, ["a0"]),
        {"marked": ["a0"], "look_up": [("resend", ["a0"], "http_502", {})]},
    ),
    "504-gateway": Row(
        "create",
        fresh("a0"),
        status(504, ["a0"]),
        {"marked": ["a0"], "look_up": [("resend", ["a0"], "http_504", {})]},
    ),
    "unreadable-2xx": Row(
        "create",
        fresh(*AB),
        status(201, AB, b"<html>"),
        {"marked": list(AB), "look_up": [("resend", list(AB), "unusable answer", {})]},
    ),
    "item-breaks-the-schema": Row(
        "create",
        fresh(*AB),
        created(AB, broken={"a1": {"fill_count": {"not": "a number"}}}),
        {
            "settle": [("a0", "accepted")],
            "marked": ["a1"],
            "look_up": [("resend", ["a1"], "unusable answer", {})],
        },
    ),
    "item-left-out": Row(
        "create",
        fresh(*AB),
        created(AB, left_out=["a0"]),
        {
            "settle": [("a1", "accepted")],
            "marked": ["a0"],
            "look_up": [("resend", ["a0"], "unusable answer", {})],
        },
    ),
    "ambiguous-cancel-is-sent-again": Row(
        "cancel",
        fresh("o0", kind="cancel"),
        transport(["o0"], sent=True),
        {"marked": ["o0"], "retry": (["o0"], 10.5)},
    ),
    "ambiguous-cancel-deadline-passes-during-backoff": Row(
        "cancel",
        lambda: [intent("o0", "cancel", deadline=10.5)],
        transport(["o0"], sent=True),
        {"marked": ["o0"], "settle": [("o0", "unknown: " + RESENT.format("no answer"))]},
    ),
    "ambiguous-amend-or-decrease": Row(
        "single",
        fresh("o0", kind="single"),
        decode_single("o0", 500, ERROR_BODIES[500]),
        {"settle": [("o0", "unknown: " + UNSAFE)]},
    ),
    # A resend of what an earlier attempt may have placed: refusals are not taken at their word.
    "duplicate-id-on-a-resend-means-it-landed": Row(
        "create",
        lambda: [intent("a0", attempts=2, placed=True), intent("a1")],
        created(AB, {"a0": "duplicate_client_order_id"}),
        {"settle": [("a1", "accepted")], "look_up": [("landed", ["a0"], "", {})]},
    ),
    "another-refusal-of-a-resend-is-looked-up-first": Row(
        "create",
        lambda: [intent("a0", attempts=2, placed=True)],
        created(["a0"], {"a0": "insufficient_balance"}),
        {"look_up": [("believe", ["a0"], "", {"a0": "insufficient_balance"})]},
    ),
    "whole-batch-400-on-a-resend-is-looked-up-first": Row(
        "create",
        lambda: [intent("a0", attempts=2, placed=True)],
        status(400, ["a0"]),
        {"look_up": [("believe", ["a0"], "", {"a0": "invalid_parameters"})]},
    ),
    "refusal-of-a-cancel-resend-is-unknown": Row(
        "cancel",
        lambda: [intent("o0", "cancel", attempts=2, placed=True)],
        cancelled(["o0"], {"o0": "order_not_resting"}),
        {"settle": [("o0", "unknown: " + CANCEL_REFUSED)]},
    ),
}


class Backoff:
    """``backoff``, counting how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, attempts: int) -> float:
        self.calls += 1
        return backoff(attempts)


def states(batch: Sequence[Pending]) -> list[tuple[str, bool, int]]:
    return [(p.state, p.maybe_placed, p.attempts) for p in batch]


@pytest.mark.parametrize("row", list(ANSWERS.values()), ids=list(ANSWERS))
def test_answer(row: Row) -> None:
    batch = row.batch()
    before = states(batch)
    delay = Backoff()
    plan = answer(row.kind, batch, row.reply, NOW, delay)
    assert summary(plan) == row.expect
    # Deciding changes nothing: marking, settling and queueing are the dispatcher's to do.
    assert states(batch) == before
    # One jittered delay for what is retried together, none without a retry.
    retried = "retry" in row.expect or "retrying" in str(row.expect.get("settle"))
    assert delay.calls == retried


def test_an_all_accepted_answer_settles_with_the_answers_own_outcomes() -> None:
    batch = [intent(key) for key in AB]
    reply = created(AB)
    plan = answer("create", batch, reply, NOW, never)
    assert list(plan.settle.items()) == [
        (batch[0], reply.outcomes["a0"]),
        (batch[1], reply.outcomes["a1"]),
    ]


# Lookup rounds.


def order(key: str) -> Order:
    return Order(
        order_id=f"ord-{key}",
        client_order_id=key,
        ticker=TICKER,
        status="resting",
        remaining_count_fp=Decimal(1),
    )


REFUSED = Rejected(code="insufficient_balance", message="no", client_order_id="a0")
FAILED = ExchangeError(503, "service_unavailable", "try again")
NOT_LISTED = "the exchange holds this client_order_id but did not list it in time"


@dataclass(frozen=True)
class Round:
    if_absent: IfAbsent
    batch: Callable[[], list[Pending]]
    found: Mapping[str, Order] | WireError
    expect: dict[str, object]
    attempt: int = 1


def placed(*names: str, deadline: float = DEADLINE) -> Callable[[], list[Pending]]:
    return lambda: [intent(n, placed=True, deadline=deadline, state="looking_up") for n in names]


ROUNDS = {
    "found-is-accepted": Round(
        "resend", placed("a0"), {"a0": order("a0")}, {"settle": [("a0", "accepted")]}
    ),
    "absent-after-an-ambiguous-attempt-is-resent": Round(
        "resend",
        placed(*AB),
        {"a0": order("a0")},
        {"settle": [("a0", "accepted")], "retry": (["a1"], 10.5)},
    ),
    "absent-but-no-time-to-resend": Round(
        "resend",
        placed("a0", deadline=10.5),
        {},
        {"settle": [("a0", "unknown: " + RESENT.format("not found after an ambiguous attempt"))]},
    ),
    "absent-after-a-refused-resend-is-the-refusal": Round(
        "believe", placed("a0"), {}, {"settle": [("a0", "rejected: insufficient_balance")]}
    ),
    "absent-after-a-duplicate-id-is-looked-for-again": Round(
        "landed", placed("a0"), {}, {"look_again": ("landed", ["a0"], "", {}, 3, 1.0)}, attempt=2
    ),
    "never-looked-for-past-the-deadline": Round(
        "landed",
        placed("a0", deadline=10.25),
        {},
        {"look_again": ("landed", ["a0"], "", {}, 3, 0.25)},
        attempt=2,
    ),
    "not-listed-by-the-deadline-is-unknown": Round(
        "landed", placed("a0", deadline=NOW), {}, {"settle": [("a0", "unknown: " + NOT_LISTED)]}
    ),
    "failed-lookup-is-repeated": Round(
        "resend", placed(*AB), FAILED, {"look_again": ("resend", list(AB), "", {}, 2, 0.5)}
    ),
    "failed-lookup-at-the-deadline-is-unknown": Round(
        "resend",
        placed("a0", deadline=NOW),
        FAILED,
        {
            "settle": [
                (
                    "a0",
                    "unknown: could not look the order up before its deadline: "
                    "HTTP 503 service_unavailable: try again",
                )
            ]
        },
    ),
}


@pytest.mark.parametrize("row", list(ROUNDS.values()), ids=list(ROUNDS))
def test_looked_up(row: Round) -> None:
    batch = row.batch()
    refusals = dict.fromkeys(batch, REFUSED) if row.if_absent == "believe" else {}
    look = LookUp(batch, row.if_absent, refusals=refusals, attempt=row.attempt)
    assert summary(looked_up(look, row.found, NOW, backoff)) == row.expect


# Invariants: every intent still open ends up in exactly one place in the plan.


def _places(plan: Plan) -> list[Pending]:
    looks = [*plan.look_up, *([plan.look_again] if plan.look_again else [])]
    return [
        *plan.settle,
        *plan.retry,
        *(p for look in looks for p in look.pending),
    ]


def _check_places(batch: Sequence[Pending], plan: Plan, delay: Backoff) -> None:
    places = _places(plan)
    for pending in batch:
        assert places.count(pending) == 1, pending.key
    # What the plan marks "may have been placed", it also settles, retries or looks up.
    assert all(p in places for p in plan.maybe_placed)
    assert all(plan.retry_at < p.deadline for p in plan.retry)
    assert delay.calls <= 1 + (plan.look_again is not None)


_STATE = st.tuples(st.booleans(), st.integers(1, 3), st.floats(NOW, NOW + 2))
_ANSWER = st.sampled_from(["ok", "duplicate", "refused", "left out"])


def _outcome(kind: Kind, key: str, said: str) -> wire_reply.Outcome:
    if said == "ok":
        reply = created([key]) if kind == "create" else cancelled([key])
        return reply.outcomes[key]
    code = "duplicate_client_order_id" if said == "duplicate" else "insufficient_balance"
    return Rejected(code=code, message=code, client_order_id=key)


@given(
    kind=st.sampled_from(["create", "cancel", "single"]),
    specs=st.lists(st.tuples(_STATE, _ANSWER), min_size=1, max_size=4),
    disposition=st.sampled_from(["answered", "rejected", "retry", "ambiguous"]),
)
def test_answer_gives_every_open_intent_exactly_one_place(
    kind: Kind, specs: list[tuple[tuple[bool, int, float], str]], disposition: str
) -> None:
    if kind == "single":
        specs = specs[:1]
    batch = [
        intent(f"k{i}", kind, placed=pl, attempts=n, deadline=dl)
        for i, ((pl, n, dl), _) in enumerate(specs)
    ]
    names = keys(batch)
    if disposition == "answered":
        outcomes = {
            p.key: _outcome(kind, p.key, said)
            for p, (_, said) in zip(batch, specs, strict=True)
            if said != "left out"
        }
        missing = [k for k in names if k not in outcomes]
        reply = BatchReply(
            "answered", 201, outcomes, missing, anomalies=["left out"] * bool(missing)
        )
    elif disposition == "rejected":
        reply = status(400, names)
    else:
        reply = transport(names, sent=disposition == "ambiguous")
    delay = Backoff()
    plan = answer(kind, batch, reply, NOW, delay)
    _check_places(batch, plan, delay)
    assert delay.calls <= 1


@given(
    if_absent=st.sampled_from(["resend", "believe", "landed"]),
    specs=st.lists(st.tuples(_STATE, st.booleans()), min_size=1, max_size=4),
    failed=st.booleans(),
    attempt=st.integers(1, 5),
)
def test_a_lookup_round_gives_every_open_intent_exactly_one_place(
    if_absent: IfAbsent,
    specs: list[tuple[tuple[bool, int, float], bool]],
    failed: bool,
    attempt: int,
) -> None:
    batch = [
        intent(f"k{i}", placed=True, attempts=n, deadline=dl, state="looking_up")
        for i, ((_, n, dl), _) in enumerate(specs)
    ]
    found = {p.key: order(p.key) for p, (_, there) in zip(batch, specs, strict=True) if there}
    refusals = dict.fromkeys(batch, REFUSED) if if_absent == "believe" else {}
    look = LookUp(batch, if_absent, refusals=refusals, attempt=attempt)
    delay = Backoff()
    plan = looked_up(look, FAILED if failed else found, NOW, delay)
    _check_places(batch, plan, delay)
    if plan.look_again is not None:
        # Never waits past the earliest deadline still open: the last round is at it.
        again = plan.look_again
        assert again.attempt == attempt + 1
        assert 0 <= again.wait_s <= min(p.deadline for p in again.pending) - NOW
