"""One HTTP answer to a batch, decoded and classified, with an outcome per intent matched by key.

The three failure classes (design §2) are decided here, from Kalshi's statuses:
``rejected`` is definitive (never retry), ``retry`` means nothing was executed (resend the same
ids), ``ambiguous`` means the orders may exist (reconcile before any resend).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast

import msgspec

from kalshi_router.outcome import Accepted, Amended, ApiError, Cancelled, Rejected
from kalshi_router.wire.models import ErrorEnvelope, ErrorResponse

Disposition: TypeAlias = Literal["answered", "rejected", "retry", "ambiguous"]
Outcome: TypeAlias = Accepted | Cancelled | Amended | Rejected
T = TypeVar("T")

# 503 is Kalshi's "service unavailable" and 408 a request the server never finished reading:
# both refused before processing. 500/502/504 may come after the matching engine acted, so the
# orders may exist.
_NOT_EXECUTED = frozenset({408, 429, 503})
# Sim assumption shared with kalshi_router.sim: Kalshi documents 409 for a reused id but not its
# code; any of these refuses a create because its client_order_id is already taken.
_DUPLICATE_CODES = frozenset({"duplicate_client_order_id", "order_already_exists", "conflict"})
_MAX_TEXT = 200
_MAX_KEY_TEXT = 80
_error_decoder = msgspec.json.Decoder(ErrorEnvelope)


class BatchReply(msgspec.Struct):
    """``outcomes`` holds every key the answer settled; ``unanswered`` the keys it did not (all
    of them unless the disposition is ``answered`` or ``rejected``). (A Struct: one per request,
    built in C.)"""

    disposition: Disposition
    http_status: int
    outcomes: dict[str, Outcome] = msgspec.field(default_factory=dict)
    unanswered: list[str] = msgspec.field(default_factory=list)
    error: ApiError | None = None
    anomalies: list[str] = msgspec.field(default_factory=list)


def classify_status(status: int) -> Disposition:
    if 200 <= status < 300:
        return "answered"
    if status in _NOT_EXECUTED:
        return "retry"
    if status >= 500:
        return "ambiguous"
    return "rejected"


def decode_error(status: int, body: bytes) -> ApiError:
    """Kalshi's error in any of its three shapes; a body that is none of them is kept as text."""
    try:
        envelope = _error_decoder.decode(body)
    except msgspec.DecodeError:
        text = body[:_MAX_TEXT].decode("utf-8", "replace").strip()
        return ApiError(code=f"http_{status}", message=text or f"HTTP {status}")
    if isinstance(envelope.error, str) and envelope.error:
        return ApiError(code=envelope.error.replace(" ", "_"), message=envelope.error)
    if isinstance(envelope.error, ErrorResponse):
        found = envelope.error
    else:
        found = ErrorResponse(envelope.code, envelope.message, envelope.details)
    if found.code:
        return found.api_error()
    # No code (``{"error": {}}``, or a gateway's ``{"message": "..."}``): name the status, but
    # keep whatever text came with it.
    return ApiError(
        code=f"http_{status}",
        message=found.message or f"HTTP {status}",
        details=found.details or "",
    )


def is_duplicate_id(rejected: Rejected) -> bool:
    """``rejected`` refuses a create because its client_order_id is already at the exchange."""
    return rejected.code in _DUPLICATE_CODES


def rejection(key_field: str, key: str, error: ApiError, status: int) -> Rejected:
    if key_field == "order_id":
        return Rejected(
            code=error.code,
            message=error.message,
            details=error.details,
            http_status=status,
            order_id=key,
        )
    return Rejected(
        code=error.code,
        message=error.message,
        details=error.details,
        http_status=status,
        client_order_id=key,
    )


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An answer item that does not fit the schema, with the key it names if one can be read."""

    key: str | None
    problem: str


SettledItem: TypeAlias = tuple[str | None, Outcome | None]
"""An answer item's key and outcome, as a dialect's ``settle`` gives them."""


class Settled(list[SettledItem]):
    """An answer's items read at once and settled as they were read, ``(key, outcome)`` each
    (a dialect's fast path, saving a call per item). ``build_reply`` takes them as they are;
    the dialect's ``settle`` returns such an item unchanged. ``flawed``: some item has no key
    or no outcome (set by whoever appends one)."""

    flawed = False


class PartlyRead(list[Any]):
    """The items of an answer read one by one, some of them :class:`Unreadable`. Only
    :class:`BatchItems` makes these, and only it makes an ``Unreadable``: so a decoder's plain
    ``list`` holds items that all fit the schema (``build_reply``'s fast path)."""


class _RawOrders(msgspec.Struct):
    orders: list[msgspec.Raw]


_raw_orders = msgspec.json.Decoder(_RawOrders)
_any_json = msgspec.json.Decoder()


class BatchItems(Generic[T]):
    """Reads the ``orders`` of a batch answer: all at once (the usual, fast case), and item by
    item when that fails on one item's fields, so a bad item costs only its own order.

    ``key`` picks the answer's key out of an item decoded as plain JSON (a dict).
    """

    def __init__(
        self,
        whole: Callable[[bytes], Sequence[T]],
        item: type[T],
        key: Callable[[dict[str, Any]], object],
    ) -> None:
        self._whole = whole
        self._item = msgspec.json.Decoder(item)
        self._key = key

    def __call__(self, body: bytes) -> Sequence[T | Unreadable]:
        try:
            return self._whole(body)
        except msgspec.ValidationError:
            # Valid JSON of the wrong shape somewhere: if the envelope is right, read each item.
            # Anything else (not JSON, no list of orders) raises for the caller.
            raw = _raw_orders.decode(body)
        return PartlyRead(self._one(item) for item in raw.orders)

    def _one(self, raw: msgspec.Raw) -> T | Unreadable:
        try:
            return self._item.decode(raw)
        except msgspec.ValidationError as exc:
            found = _any_json.decode(raw)
            key = self._key(found) if isinstance(found, dict) else None
            return Unreadable(key if isinstance(key, str) else None, str(exc))


def _shown(key: str | None) -> str:
    """A key from the answer as quoted in an anomaly: the exchange chose it, so bound it."""
    text = repr(key)
    return text if len(text) <= _MAX_KEY_TEXT else text[: _MAX_KEY_TEXT - 3] + "..."


def build_reply(
    status: int,
    body: bytes,
    keys: Sequence[str],
    decode: Callable[[bytes], Iterable[T | Unreadable]],
    settle: Callable[[T], tuple[str | None, Outcome | None]],
    key_field: str,
) -> BatchReply:
    """Decode ``body`` and give each key its own outcome, matched by key, never by position.

    Nothing in a 2xx answer is taken on trust: a key answered twice, answered by an item that
    breaks the schema or lacks what an outcome needs, or left out, stays unanswered (its order
    may exist: the caller looks it up); items for keys we did not send are ignored. Every such
    departure from the schema is named in ``anomalies``.
    """
    disposition = classify_status(status)
    if disposition != "answered":
        error = decode_error(status, body)
        if disposition == "rejected":
            return BatchReply(
                disposition,
                status,
                outcomes={key: rejection(key_field, key, error, status) for key in keys},
                error=error,
            )
        return BatchReply(disposition, status, unanswered=list(keys), error=error)
    try:
        found = decode(body)
    except msgspec.DecodeError as exc:
        # A 2xx we cannot read at all (empty, not JSON, the wrong shape): the exchange acted,
        # we do not know how.
        return BatchReply("ambiguous", status, unanswered=list(keys), anomalies=[str(exc)])
    wanted = set(keys)
    if (
        isinstance(found, list)
        and type(found) is not PartlyRead
        and len(found) == len(wanted) == len(keys)
    ):
        # Every item read (a plain list or ``Settled``: see ``PartlyRead``) and as many as the
        # keys: the usual answer. Settled in one pass (in C, or as it was read); it stands if
        # it names each key once, with an outcome each. Anything else is looked at item by
        # item below.
        settled: dict[str | None, Outcome | None]
        if type(found) is Settled:
            settled, whole = dict(found), not found.flawed
        else:
            settled = dict(map(settle, cast("list[T]", found)))
            whole = None not in settled.values()
        if whole and settled.keys() == wanted:
            return BatchReply("answered", status, cast("dict[str, Outcome]", settled))
    items = list(found)
    reply = BatchReply("answered", status)
    # Keys answered by an item that cannot be trusted, or by more than one item: looked up.
    twice: set[str] = set()
    for item in items:
        if isinstance(item, Unreadable):
            key, outcome, flaw = item.key, None, f"does not fit the schema ({item.problem})"
        else:
            key, outcome = settle(item)
            flaw = ""
        if key is None or key not in wanted:
            suffix = f" that {flaw}" if flaw else ""
            reply.anomalies.append(f"answer item for unknown {key_field} {_shown(key)}{suffix}")
            continue
        if outcome is None:
            flaw = flaw or "lacks required fields or has impossible values"
            reply.anomalies.append(f"answer item for {key_field} {key!r} {flaw}")
            twice.add(key)
        elif key in reply.outcomes:
            twice.add(key)
        else:
            reply.outcomes[key] = outcome
    for key in twice:
        # Two answers for one order, or an unreadable one: trust neither, reconcile instead.
        if reply.outcomes.pop(key, None) is not None:
            reply.anomalies.append(f"{key_field} {key!r} answered twice")
    if len(reply.outcomes) < len(wanted):
        reply.unanswered = [key for key in keys if key not in reply.outcomes]
        # Every key an item named is settled or distrusted; the rest no item named.
        if left_out := len(wanted) - len(reply.outcomes) - len(twice):
            reply.anomalies.append(f"answer left out {left_out} of {len(wanted)} {key_field}s")
    return reply
