"""What an answer means: a pure, synchronous decision the dispatcher carries out.

``answer`` turns one classified reply (``wire.reply``) to a batch into a :class:`Plan`, and
``looked_up`` does the same for one round of looking intents up. Per intent (design §2):

- definitive (a whole-batch 4xx such as 400, 401 or 403; a per-item error): settled with the
  error, never retried;
- not executed (connection refused, 408, 429, 503): queued again with the same ids after one
  backoff for the whole batch (a 429 also drains our own bucket), or given up if that backoff
  would end past the intent's deadline;
- ambiguous (read timeout, reset after send, 500/502/504, an item left out, answered twice or
  unreadable): a create is looked up and resent with the same id only if absent; a cancel is
  simply sent again (twice cannot hurt); an amend or decrease is unknown (resending may apply
  it twice).

An intent an earlier attempt may have placed is not taken at its word when a resend is refused:
a duplicate-id refusal means it landed (looked up until listed), another refusal of a create is
believed only once a lookup finds it absent, and a cancel's refusal is unknown.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypeAlias

import msgspec

from kalshi_router.errors import WireError
from kalshi_router.outcome import Closed, Expired, Outcome, Rejected, Unknown
from kalshi_router.pending import Kind, Pending
from kalshi_router.wire.models import Order
from kalshi_router.wire.orders import accepted_from
from kalshi_router.wire.reply import BatchReply, is_duplicate_id

Delay: TypeAlias = Callable[[int], float]
"""The backoff after ``n`` attempts, in seconds."""
IfAbsent: TypeAlias = Literal["resend", "believe", "landed"]
"""What an intent a lookup does not find means: ``resend`` (an ambiguous attempt did not land:
send the same id again), ``believe`` (the refusal of a resend stands), ``landed`` (a resend was
refused as a duplicate, so the order is there: look again until its deadline)."""


class Backoff:
    """Exponential backoff with full jitter (no Retry-After exists to honour)."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng

    def delay(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.cap, self.base * 2 ** max(0, attempt - 1)))


class LookUp(msgspec.Struct):
    """Look ``pending`` up by client_order_id after ``wait_s``; ``if_absent`` says what not
    finding one means (``refusals``: each one's refusal, to ``believe``). ``attempt`` counts the
    rounds, ``reason`` why it is looked up (the failure, for the log)."""

    pending: list[Pending]
    if_absent: IfAbsent
    reason: str = ""
    refusals: Mapping[Pending, Rejected] = msgspec.field(default_factory=dict)
    attempt: int = 1
    wait_s: float = 0.0


class Plan(msgspec.Struct):
    """What to do, in this order: mark ``maybe_placed`` (an attempt may have reached the
    exchange); ``drain`` our write bucket (a 429); settle each of ``settle``; queue ``retry``
    again, due at ``retry_at``; start each of ``look_up``; continue a lookup with
    ``look_again``. (A Struct: one per answer, built in C.)"""

    settle: dict[Pending, Outcome]
    maybe_placed: Sequence[Pending] = ()
    drain: bool = False
    retry: Sequence[Pending] = ()
    retry_at: float = 0.0
    look_up: Sequence[LookUp] = ()
    look_again: LookUp | None = None


def given_up(pending: Pending, reason: str, outcome: type[Expired | Closed]) -> Outcome:
    """``outcome`` for an intent we stop trying to send, unless an earlier attempt may have
    reached the exchange: a negative lookup does not prove a request still on its way will not
    land, and only a resend (answered "duplicate" if it did) could, so it is unknown."""
    return _given_up(pending, reason, outcome, pending.maybe_placed)


def never_sent(pending: Pending, *, expired: bool, blocked: str | None = None) -> Outcome:
    """The outcome of an intent taken out before it was sent (again): its deadline passed
    (``expired``; ``blocked``: why the write budget could not pay for it), or its caller
    cancelled it."""
    if expired:
        why = "deadline passed before sending"
        return given_up(pending, f"{why}: {blocked}" if blocked else why, Expired)
    return given_up(pending, "cancelled by the caller before sending", Closed)


def _given_up(
    pending: Pending, reason: str, outcome: type[Expired | Closed], maybe_placed: bool
) -> Outcome:
    if maybe_placed:
        why = f"{reason}; an earlier attempt may have reached the exchange"
        return Unknown(reason=why, **pending.ids())
    return outcome(reason=reason, **pending.ids())


def answer(
    kind: Kind, batch: Sequence[Pending], reply: BatchReply, now: float, backoff: Delay
) -> Plan:
    """The plan for ``reply``, the answer to ``batch`` (of ``kind``) received at ``now``.
    ``backoff`` is asked once, and only if something is to be queued again."""
    # A dict, not a list of pairs: no object per intent on the hot path (a tuple each would
    # also be one more for the garbage collector to track).
    settle: dict[Pending, Outcome] = {}
    plan = Plan(settle)
    if reply.disposition == "retry":
        plan.drain = reply.http_status == 429
        reason = reply.error.code if reply.error else "not executed"
        _retry(plan, batch, reason, now, backoff)
        return plan
    outcomes = reply.outcomes
    unsure: list[Pending] = []
    landed: list[Pending] = []
    refused: dict[Pending, Rejected] = {}
    for pending in batch:
        outcome = outcomes.get(pending.key)
        if outcome is None:
            unsure.append(pending)
        elif not (pending.maybe_placed and isinstance(outcome, Rejected)):
            settle[pending] = outcome
        elif kind == "create" and is_duplicate_id(outcome):
            landed.append(pending)
        elif kind == "create":
            # The first attempt may have landed after our lookup (and, say, taken the
            # balance the resend then lacked): look again before believing the refusal.
            refused[pending] = outcome
        elif kind == "cancel":
            # Refusing the resend ("not resting", say) is what the exchange would answer had
            # the first attempt cancelled the order: that cannot be told apart.
            why = (
                f"the resend was refused ({outcome.code}: {outcome.message}), but an "
                "earlier attempt may have cancelled the order"
            )
            settle[pending] = Unknown(reason=why, **pending.ids())
        else:
            settle[pending] = outcome
    if not (unsure or landed or refused):
        return plan
    looks: list[LookUp] = []
    if landed:
        looks.append(LookUp(landed, "landed"))
    if refused:
        looks.append(LookUp(list(refused), "believe", refusals=refused))
    if unsure:
        _ambiguous(plan, kind, unsure, reply, now, backoff, looks)
    plan.look_up = looks
    return plan


def _ambiguous(
    plan: Plan,
    kind: Kind,
    unsure: list[Pending],
    reply: BatchReply,
    now: float,
    backoff: Delay,
    looks: list[LookUp],
) -> None:
    if reply.error:
        reason = reply.error.code
    else:
        reason = "unusable answer" if reply.anomalies and reply.http_status else "no answer"
    if kind == "single":
        why = f"{reason}: an amend/decrease is not safe to resend"
        plan.settle.update((pending, Unknown(reason=why, **pending.ids())) for pending in unsure)
        return
    plan.maybe_placed = unsure
    if kind == "cancel":
        # Cancelling twice cannot hurt, and the second answer says where the order stands.
        _retry(plan, unsure, reason, now, backoff, marked=True)
    else:
        looks.append(LookUp(unsure, "resend", reason=reason))


def looked_up(
    look: LookUp, found: Mapping[str, Order] | WireError, now: float, backoff: Delay
) -> Plan:
    """The plan after one round of ``look``: ``found`` is the exchange's order for each
    client_order_id it listed, or the error the lookup failed with, at ``now``. An intent found
    is accepted; one absent is as ``look.if_absent`` says; one still unsure is unknown at its
    deadline, and looked up again until then (never later: the last round is at it)."""
    plan = Plan({})
    waiting: list[Pending] = look.pending
    if isinstance(found, WireError):
        why = f"could not look the order up before its deadline: {found}"
    else:
        why = "the exchange holds this client_order_id but did not list it in time"
        waiting, absent = [], []
        for pending in look.pending:
            order = found.get(pending.key)
            if order is not None:
                plan.settle[pending] = accepted_from(order)
            elif look.if_absent == "landed":
                waiting.append(pending)
            else:
                absent.append(pending)
        if absent and look.if_absent == "resend":
            # Not there: resending the same id is safe, the exchange refuses a second.
            _retry(plan, absent, "not found after an ambiguous attempt", now, backoff)
        elif absent:
            plan.settle.update((pending, look.refusals[pending]) for pending in absent)
    late = [pending for pending in waiting if now >= pending.deadline]
    plan.settle.update((pending, Unknown(reason=why, **pending.ids())) for pending in late)
    still = [pending for pending in waiting if now < pending.deadline]
    if still:
        wait = min(backoff(look.attempt), min(p.deadline for p in still) - now)
        plan.look_again = LookUp(
            still, look.if_absent, look.reason, look.refusals, look.attempt + 1, wait
        )
    return plan


def _retry(
    plan: Plan,
    batch: Sequence[Pending],
    reason: str,
    now: float,
    backoff: Delay,
    *,
    marked: bool = False,
) -> None:
    """Queue ``batch`` again after one backoff: what failed together is retried together (one
    jittered delay each would split a batch into as many requests). ``marked``: this plan marks
    them ``maybe_placed``."""
    at = now + backoff(max(pending.attempts for pending in batch))
    retry: list[Pending] = []
    for pending in batch:
        if at >= pending.deadline:
            why = f"deadline passed while retrying ({reason})"
            placed = pending.maybe_placed or marked
            plan.settle[pending] = _given_up(pending, why, Expired, placed)
        else:
            retry.append(pending)
    plan.retry, plan.retry_at = retry, at
