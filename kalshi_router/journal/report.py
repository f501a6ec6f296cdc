"""``kalshi-router journal``: a journal's intents by state and outcome, and the unresolved ones."""

from __future__ import annotations

import datetime
from collections import Counter

from kalshi_router.journal.entry import Entry
from kalshi_router.journal.store import SqliteJournal


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _line(entry: Entry) -> str:
    reason = getattr(entry.outcome, "reason", "")
    outcome = f"  {entry.result}: {reason}" if entry.result else ""
    return (
        f"  {entry.kind:<6} {entry.key}  {entry.ticker}  {entry.state}  "
        f"attempts={entry.attempts}  submitted={_when(entry.submitted)}  "
        f"last_sent={_when(entry.last_sent)}{outcome}"
    )


def summary(journal: SqliteJournal, *, list_unresolved: bool) -> str:
    """Counts by state and by outcome; with ``list_unresolved``, one line per unresolved intent
    (not settled, or settled unknown: look those up at the exchange)."""
    counts = journal.counts()
    states: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for (state, result), n in counts.items():
        states[state] += n
        if result is not None:
            outcomes[result] += n
    unresolved = journal.unresolved()
    lines = [
        f"journal {journal.path}: {sum(states.values())} intents",
        "by state:   " + _counts(states, ("taken", "sending", "settled")),
        "by outcome: " + _counts(outcomes, sorted(outcomes)),
        f"unresolved: {len(unresolved)}",
        f"resolved later: {journal.resolved_later()} (settled unknown, then found out)",
    ]
    if list_unresolved:
        lines += [_line(entry) for entry in unresolved]
    return "\n".join(lines)


def _counts(counts: Counter[str], order: tuple[str, ...] | list[str]) -> str:
    return "  ".join(f"{name} {counts[name]}" for name in order) or "-"
