"""The closed loop: each order's life at the exchange after it was accepted (design.md §7)."""

from kalshi_router.orders.feed import CHANNELS, OrderFeed, OrderFrame, ws_url

__all__ = ["CHANNELS", "OrderFeed", "OrderFrame", "ws_url"]
