"""A batch of outcomes is tallied as the same intents one by one would be: by our own recorder
at once, by any other observer intent by intent."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, cast

from kalshi_router.outcome import Accepted, Outcome, Rejected, Unknown
from kalshi_router.pending import Kind, Pending
from kalshi_router.stats import Observers, StatsRecorder, settled_all, settled_before
from tests.observers import OutcomeListener

NOW = 10.0


def _pending(kind: Kind, key: str, submitted: float) -> Pending:
    future = cast("asyncio.Future[Any]", None)
    return Pending(kind, key, "KX", None, future, submitted, submitted + 5.0)


def _outcomes() -> dict[Pending, Outcome]:
    return {
        _pending("create", "a", 9.0): Accepted("a", "o-a", Decimal(0), Decimal(1)),
        _pending("create", "b", 8.5): Rejected(code="no_funds", message="", client_order_id="b"),
        _pending("cancel", "o-9", 7.0): Rejected(code="not_resting", message="", order_id="o-9"),
        _pending("create", "c", 9.5): Unknown(reason="lost", client_order_id="c"),
    }


class Listener(OutcomeListener):
    """An observer of someone else's: told of each intent on its own."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Outcome, float]] = []

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        self.calls.append((kind, outcome, seconds))


def _one_by_one(outcomes: dict[Pending, Outcome]) -> StatsRecorder:
    recorder = StatsRecorder()
    for pending, outcome in outcomes.items():
        recorder.settled(pending.kind, outcome, NOW - pending.submitted)
    return recorder


def _figures(recorder: StatsRecorder) -> tuple[Any, ...]:
    snapshot = recorder.snapshot(tokens_spent=0, queue_depth=0, in_flight=0)
    return snapshot.outcomes, snapshot.rejected_codes, list(recorder.submit_to_outcome)


def test_the_recorder_tallies_a_batch_as_it_would_each_intent() -> None:
    outcomes = _outcomes()
    recorder = StatsRecorder()

    settled_all(recorder, outcomes, NOW)

    assert _figures(recorder) == _figures(_one_by_one(outcomes))
    assert _figures(recorder)[:2] == (
        {"accepted": 1, "rejected": 2, "unknown": 1},
        {
            "no_funds": 1,
            "not_resting": 1,
        },
    )


def test_other_observers_are_told_intent_by_intent_in_order() -> None:
    outcomes = _outcomes()
    recorder, listener, alone = StatsRecorder(), Listener(), Listener()

    settled_all(Observers([recorder, listener]), outcomes, NOW)
    settled_all(alone, outcomes, NOW)

    expected = [(p.kind, o, NOW - p.submitted) for p, o in outcomes.items()]
    assert listener.calls == expected
    assert alone.calls == expected
    assert _figures(recorder) == _figures(_one_by_one(outcomes))


def test_an_empty_batch_changes_nothing() -> None:
    recorder = StatsRecorder()
    settled_all(recorder, {}, NOW)
    assert _figures(recorder) == ({}, {}, [])


def test_a_settling_loop_that_failed_tells_of_those_it_settled() -> None:
    outcomes = _outcomes()
    third = list(outcomes)[2]
    before, through = StatsRecorder(), StatsRecorder()

    settled_before(before, outcomes, third, NOW)
    settled_before(through, outcomes, third, NOW, including=True)

    assert _figures(before) == _figures(_one_by_one(dict(list(outcomes.items())[:2])))
    assert _figures(through) == _figures(_one_by_one(dict(list(outcomes.items())[:3])))
