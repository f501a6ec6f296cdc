"""The service's own intake protocol (not Kalshi's): bodies and stream messages.

Intents travel as the library's own Structs (``OrderIntent`` and friends) in JSON or msgpack;
each one is decoded on its own, so one bad intent in a request gets its own error naming the
field and the others go ahead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import msgspec

from kalshi_router.api import BudgetView
from kalshi_router.errors import IntentError
from kalshi_router.intent import MAX_SUBACCOUNT
from kalshi_router.orders.updates import OrderUpdate, Position
from kalshi_router.outcome import Outcome
from kalshi_router.risk.config import TradingState
from kalshi_router.stats import RouterStats

T = TypeVar("T")
MessageId: TypeAlias = int | str
# A deadline the router can keep: positive and finite (msgpack can carry NaN and infinity,
# which would mean "never expires"), and at most a day, so a stale quote is never sent late.
Deadline: TypeAlias = Annotated[float, msgspec.Meta(gt=0, le=86_400)]


class ItemError(msgspec.Struct, frozen=True):
    """Why one intent was refused before it reached the router."""

    field: str
    message: str


class ItemResult(msgspec.Struct, frozen=True, omit_defaults=True, kw_only=True):
    """One intent's answer, at its index in the request."""

    index: int
    key: str | None = None
    """client_order_id for orders, order_id for cancels, amends and decreases."""
    status: str = "settled"
    outcome: Outcome | None = None
    error: ItemError | None = None


class ResultsBody(msgspec.Struct, frozen=True):
    results: list[ItemResult]


class IntentsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/orders``, ``/v1/cancels``, ``/v1/amends``, ``/v1/decreases``."""

    items: list[msgspec.Raw]
    wait: bool = True
    """False: answer at once with each intent's key; ask ``GET /v1/orders/{key}`` later."""
    deadline_s: Deadline | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: str
    field: str | None = None


Action: TypeAlias = Literal["place", "amend", "decrease", "cancel"]


class OrderAction(msgspec.Struct, frozen=True, omit_defaults=True):
    """One action taken on an order: ``pending``, or ``settled`` with its outcome."""

    action: Action
    status: str
    outcome: Outcome | None = None


class OrderStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    """``GET /v1/orders/{key}``, by client_order_id or order id: the actions on the order, in
    the order the service took them (the newest 100; ``omitted`` counts any before those).
    ``status`` is ``pending`` while any of them is; ``outcome`` is the newest one's, once it
    has one."""

    key: str
    status: str
    outcome: Outcome | None = None
    client_order_id: str | None = None
    order_id: str | None = None
    actions: list[OrderAction] = []
    omitted: int = 0


# The stream (WebSocket): one message per frame, JSON text or msgpack binary.


Verb: TypeAlias = Literal["submit", "cancel", "amend", "decrease"]
# The error message of an intent the service refused because it is stopping: never taken.
SHUTTING_DOWN = "shutting down"


class StreamRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``item`` is the intent for ``type``: an OrderIntent to submit, a CancelIntent, ...;
    for ``view``, a :class:`ViewRequest`; for ``trading_state``, a :class:`TradingStateBody`."""

    type: Verb | Literal["view", "trading_state"]
    id: MessageId
    item: msgspec.Raw
    deadline_s: Deadline | None = None


class StreamRequestId(msgspec.Struct):
    """Just the id of a stream request that failed to decode, so its error can name it."""

    id: MessageId | None = None


class StreamAck(msgspec.Struct, frozen=True, tag_field="type", tag="ack"):
    id: MessageId
    key: str


class StreamOutcome(msgspec.Struct, frozen=True, tag_field="type", tag="outcome"):
    id: MessageId
    key: str
    outcome: Outcome


class StreamError(msgspec.Struct, frozen=True, tag_field="type", tag="error"):
    id: MessageId | None
    field: str
    message: str


class BudgetState(msgspec.Struct, frozen=True, kw_only=True):
    """The service's write budget as of a state frame: a client's ``budget``."""

    refill_rate: float
    capacity: float
    headroom: float
    costs: dict[str, int]
    spent: int
    available: float
    """Tokens the local bucket held when the frame was made."""

    def tokens(self) -> float:
        return self.available

    @classmethod
    def of(cls, budget: BudgetView) -> BudgetState:
        return cls(
            refill_rate=budget.refill_rate,
            capacity=budget.capacity,
            headroom=budget.headroom,
            costs=dict(budget.costs),
            spent=budget.spent,
            available=budget.tokens(),
        )


class StreamState(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="state"):
    """What a client reports as its router's state. Sent on a stream opened with ``?state=1``:
    first, then every 250 ms; and by ``GET /v1/state``."""

    seq: int
    """Counts the service's state reports: the highest is the latest."""
    run: str
    """Random for each start of the service: a client sees from it that the service restarted."""
    journal: bool
    """The service journals every intent it takes, so a key it does not know was never sent."""
    deadline_s: float
    """The deadline of an intent submitted without one."""
    stats: RouterStats
    budget: BudgetState
    batch_limits: dict[str, int]
    crashed: str | None = None
    """Why the router's dispatcher died, if it did."""
    orders: bool = False
    """The service follows orders after acceptance (``orders.track``): a stream opened with
    ``?orders=1`` carries the client's order updates, and ``view`` requests are answered."""


# A bot's own orders after acceptance (when the service's router tracks them).


class StreamOrderUpdate(msgspec.Struct, frozen=True, tag_field="type", tag="order_update"):
    """One update of an order this client placed, on a stream opened with ``?orders=1``.
    ``seq`` counts this client's updates in this run of the service (1, 2, ...): a ``view``
    answered at ``seq`` N covers every update up to N, and the stream carries those after."""

    seq: int
    update: OrderUpdate


class ViewRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``item`` of a ``view`` request: what a client asks for when its stream opens.

    ``run`` and ``since``: the service run and the last ``seq`` the client holds; when the
    service still has every update after it, it sends those (``missed``) instead of a
    snapshot. ``keys``: orders (client_order_id or order id) whose latest update the client
    wants in a snapshot (those it holds open, and creates whose outcome it has not seen)."""

    keys: list[str] = []
    run: str | None = None
    since: int = 0


class StreamView(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="view"):
    """The answer to a ``view`` request, as of this client's update ``seq``.

    Either ``missed``, the updates after the request's ``since`` (a resume: the other fields
    are then empty), or a snapshot: ``open`` (this client's orders not in a final state),
    ``latest`` (the newest update of each key asked about that the service knows) and
    ``positions`` (from this client's fills counted in this run)."""

    id: MessageId
    run: str
    seq: int
    missed: list[StreamOrderUpdate] | None = None
    open: list[OrderUpdate] = []
    latest: list[OrderUpdate] = []
    positions: dict[str, Position] = {}


class OpenOrdersBody(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/open_orders``: the calling client's orders not in a final state."""

    run: str
    seq: int
    orders: list[OrderUpdate]


class PositionsBody(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/positions``: the calling client's positions, from its fills in this run."""

    run: str
    seq: int
    positions: dict[str, Position]


# The desk's controls (``service.desk_routes``).


class TradingStateBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PUT /v1/trading_state``, and the ``item`` of a stream's ``trading_state`` request.
    ``resume``: reconcile the orders the router follows first, as ``router.resume`` does (a
    change from ``halted`` to trading always does)."""

    state: TradingState
    resume: bool = False


class TradingStateReply(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``GET`` and ``PUT /v1/trading_state``: the state now (and, after a change, before)."""

    state: TradingState
    was: TradingState | None = None


KillReason: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Bounded like a kill of the embedded router should be: long enough for a slow exchange,
# short enough that a typo does not hold a request for a day.
KillTimeout: TypeAlias = Annotated[float, msgspec.Meta(gt=0, le=600)]
Subaccount: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=MAX_SUBACCOUNT)]


class KillRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /v1/kill``: every field optional (an empty body, or none, is ``{}``)."""

    reason: KillReason | None = None
    subaccount: Subaccount | None = None
    timeout_s: KillTimeout = 30.0


StreamReply: TypeAlias = StreamAck | StreamOutcome | StreamError
# What a stream opened with ``?state=1`` (and ``?orders=1``) carries.
StreamFrame: TypeAlias = StreamReply | StreamState | StreamOrderUpdate | StreamView

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")


def item_error(exc: msgspec.ValidationError | msgspec.DecodeError | IntentError) -> ItemError:
    """Turn a decode or validation failure into the field it concerns and a message."""
    cause = exc if isinstance(exc, IntentError) else exc.__cause__
    if isinstance(cause, IntentError):
        return ItemError(cause.field, cause.rule)
    text = str(exc)
    if found := _UNKNOWN.search(text):
        return ItemError(found["name"], "unknown field")
    if found := _MISSING.search(text):
        return ItemError(found["name"], "required field missing")
    if found := _AT.search(text):
        return ItemError(found["path"] or "body", text[: found.start()])
    return ItemError("body", text)


class Codec:
    """JSON or msgpack, chosen per connection; encoders and decoders made once."""

    def __init__(self, binary: bool) -> None:
        self.binary = binary
        self._encode = (msgspec.msgpack.Encoder() if binary else msgspec.json.Encoder()).encode

    def encode(self, value: Any) -> bytes:
        return self._encode(value)

    def decode(self, data: bytes | str | msgspec.Raw, kind: type[T]) -> T:
        """``data``: a whole body or frame, or one item of one (a ``Raw``, a buffer).

        Raises ``msgspec.DecodeError`` or ``ValidationError`` whatever is wrong with it."""
        try:
            if self.binary:
                # A text frame on a msgpack stream: its bytes are tried as msgpack all the same.
                return msgspec.msgpack.decode(
                    data.encode() if isinstance(data, str) else data, type=kind
                )
            return msgspec.json.decode(data, type=kind)
        # msgspec lets these two through: deeper nesting than its limit, and a string that is
        # not UTF-8 (JSON and msgpack both).
        except RecursionError:
            raise msgspec.DecodeError("nested too deeply") from None
        except UnicodeDecodeError:
            raise msgspec.DecodeError("a string is not valid UTF-8") from None
