"""One journaled intent as read back from the journal (``SqliteJournal``'s reads), and an
earlier settlement of one."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

from kalshi_router.outcome import Outcome

State: TypeAlias = Literal["taken", "sending", "settled"]

_outcome = msgspec.json.Decoder(Outcome)


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One journaled intent as read back."""

    id: int
    kind: str
    key: str
    ticker: str
    payload: bytes
    """The intent, msgspec JSON."""
    submitted: float
    """Wall time (Unix seconds) it was taken."""
    state: State
    attempts: int
    last_sent: float | None
    """Wall time its last attempt was written, if any."""
    result: str | None
    outcome: Outcome | None
    settled_at: float | None

    def ids(self) -> dict[str, str]:
        return {"client_order_id" if self.kind == "create" else "order_id": self.key}

    @property
    def unresolved(self) -> bool:
        """Nobody knows yet whether it is at the exchange."""
        return self.state != "settled" or self.result == "unknown"


def entry_from_row(row: tuple[Any, ...]) -> Entry:
    outcome = None if row[10] is None else _outcome.decode(row[10])
    return Entry(
        id=row[0],
        kind=row[1],
        key=row[2],
        ticker=row[3],
        payload=row[4],
        submitted=row[5],
        state=row[6],
        attempts=row[7],
        last_sent=row[8],
        result=row[9],
        outcome=outcome,
        settled_at=row[11],
    )


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """An outcome an intent was settled with, and when (Unix seconds)."""

    result: str
    outcome: Outcome
    settled_at: float


def settlement_from_row(row: tuple[Any, ...]) -> Settlement:
    return Settlement(result=row[0], outcome=_outcome.decode(row[1]), settled_at=row[2])
