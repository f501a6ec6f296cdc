"""The interface both wire dialects share: encode a batch, decode its answer per intent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar

from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.wire.models import GetAccountEndpointCostsResponse
from kalshi_router.wire.reply import BatchReply, Outcome, Unreadable, build_reply

C = TypeVar("C")
X = TypeVar("X")

DialectName: TypeAlias = Literal["v2", "v1"]


class Dialect(Protocol):
    """A Kalshi batch format. Paths are relative to the API root (``.../trade-api/v2``).

    ``check`` raises :class:`~kalshi_router.errors.DialectError` for an intent the dialect cannot
    express; the router calls it at submit so such an intent is refused before it is queued.
    """

    name: ClassVar[DialectName]
    create_path: ClassVar[str]
    cancel_path: ClassVar[str]

    def check(self, intent: OrderIntent) -> None: ...

    def costs(self, table: GetAccountEndpointCostsResponse | None) -> dict[str, int]:
        """Write tokens per created order, per cancelled order and per single-order request,
        from the exchange's cost table (None: it could not be read)."""
        ...

    def encode_create(self, intents: Sequence[OrderIntent]) -> bytes: ...

    def decode_create(self, status: int, body: bytes, keys: Sequence[str]) -> BatchReply: ...

    def encode_cancel(self, cancels: Sequence[CancelIntent]) -> bytes: ...

    def decode_cancel(self, status: int, body: bytes, keys: Sequence[str]) -> BatchReply: ...


class AnswerDecoder(Generic[C, X]):
    """The half every dialect shares: read an answer's items and match them to the keys."""

    def __init__(
        self,
        create_items: Callable[[bytes], Iterable[C | Unreadable]],
        settle_create: Callable[[C], tuple[str | None, Outcome | None]],
        cancel_items: Callable[[bytes], Iterable[X | Unreadable]],
        settle_cancel: Callable[[X], tuple[str | None, Outcome | None]],
    ) -> None:
        self._create_items = create_items
        self._settle_create = settle_create
        self._cancel_items = cancel_items
        self._settle_cancel = settle_cancel

    def decode_create(self, status: int, body: bytes, keys: Sequence[str]) -> BatchReply:
        return build_reply(
            status, body, keys, self._create_items, self._settle_create, "client_order_id"
        )

    def decode_cancel(self, status: int, body: bytes, keys: Sequence[str]) -> BatchReply:
        return build_reply(status, body, keys, self._cancel_items, self._settle_cancel, "order_id")


DEFAULT_COST = 10
# "2 tokens per order in the batch" (rate-limits page); the same as a single cancel's cost.
CANCEL_COST = 2
SINGLE_CANCEL = ("DELETE", "/portfolio/events/orders/{order_id}")


def cost_of(
    table: GetAccountEndpointCostsResponse | None, method: str, path: str, default: int
) -> int:
    """The table's cost for ``method path``, else ``default``."""
    if table is not None:
        for entry in table.endpoint_costs:
            if entry.method == method and entry.path.removeprefix("/trade-api/v2") == path:
                return entry.cost
    return default


def v2_costs(table: GetAccountEndpointCostsResponse | None) -> dict[str, int]:
    default = table.default_cost if table is not None else DEFAULT_COST
    # Batches are billed per item at the single endpoint's price; the table lists the single
    # cancel (2) but not the batch, whose per-item cost the docs give as the same 2.
    cancel = cost_of(table, *SINGLE_CANCEL, CANCEL_COST)
    return {
        "create": cost_of(table, "POST", "/portfolio/events/orders/batched", default),
        "cancel": cost_of(table, "DELETE", "/portfolio/events/orders/batched", cancel),
        "single": default,
    }
