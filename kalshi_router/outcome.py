"""What became of each intent: exactly one of these settles its future.

Creates are keyed by ``client_order_id``, cancels by ``order_id``. Money fields are ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeAlias

import msgspec


class ApiError(msgspec.Struct, frozen=True):
    """Kalshi's error triple, whichever of its three envelope shapes carried it."""

    code: str = ""
    message: str = ""
    details: str = ""


class Accepted(msgspec.Struct, frozen=True, tag="accepted"):
    """The exchange took the order. ``remaining_count`` is what rests after placement.

    Positional as well as by keyword: the dialects build one per order placed, and a keyword
    costs msgspec a search each."""

    client_order_id: str
    order_id: str
    fill_count: Decimal
    remaining_count: Decimal
    average_fill_price: Decimal | None = None
    average_fee_paid: Decimal | None = None
    ts_ms: int | None = None

    ok = True


class Cancelled(msgspec.Struct, frozen=True, kw_only=True, tag="cancelled"):
    """The exchange took the cancel; ``reduced_by`` contracts were taken off the book."""

    order_id: str
    reduced_by: Decimal
    client_order_id: str | None = None
    ts_ms: int | None = None

    ok = True


class Amended(msgspec.Struct, frozen=True, kw_only=True, tag="amended"):
    """An amend or decrease took effect. Counts are absent when Kalshi leaves them out (an
    amend that changed neither fills nor resting size)."""

    order_id: str
    client_order_id: str | None = None
    remaining_count: Decimal | None = None
    fill_count: Decimal | None = None
    ts_ms: int | None = None

    ok = True


class Rejected(msgspec.Struct, frozen=True, kw_only=True, tag="rejected"):
    """The exchange (or the router, before sending) refused this intent, definitively.

    ``http_status`` is the status of the answer that carried the error (201 for a per-item error
    inside a batch answer, 0 when the router refused it itself).
    """

    code: str
    message: str
    details: str = ""
    http_status: int = 0
    client_order_id: str | None = None
    order_id: str | None = None

    ok = False


class Expired(msgspec.Struct, frozen=True, kw_only=True, tag="expired"):
    """The intent's deadline passed and it was never placed: a stale quote is not sent late."""

    reason: str
    client_order_id: str | None = None
    order_id: str | None = None

    ok = False


class Closed(msgspec.Struct, frozen=True, kw_only=True, tag="closed"):
    """The router shut down (or the caller gave up) before the intent was sent."""

    reason: str
    client_order_id: str | None = None
    order_id: str | None = None

    ok = False


class Unknown(msgspec.Struct, frozen=True, kw_only=True, tag="unknown"):
    """The intent may or may not have reached the exchange, and looking it up did not finish
    in time. Check ``client_order_id`` (or ``order_id``) at the exchange."""

    reason: str
    client_order_id: str | None = None
    order_id: str | None = None

    ok = False


OrderOutcome: TypeAlias = Accepted | Rejected | Expired | Closed | Unknown
CancelOutcome: TypeAlias = Cancelled | Rejected | Expired | Closed | Unknown
AmendOutcome: TypeAlias = Amended | Rejected | Expired | Closed | Unknown
Outcome: TypeAlias = Accepted | Cancelled | Amended | Rejected | Expired | Closed | Unknown


# Each outcome's tag (its type in lower case): counters, metrics, logs and the journal name
# outcomes by it, once per settled intent.
_NAMES: dict[type, str] = {
    kind: kind.__name__.lower()
    for kind in (Accepted, Cancelled, Amended, Rejected, Expired, Closed, Unknown)
}


def outcome_name(outcome: Outcome) -> str:
    """``accepted``, ``rejected``, ...: the outcome's kind, as in its ``type`` tag."""
    return _NAMES[type(outcome)]


def type_name(kind: type) -> str:
    """``outcome_name`` of every outcome of type ``kind``."""
    return _NAMES[kind]
