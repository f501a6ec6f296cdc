"""kalshi-router: an asyncio batched order router for Kalshi's Trade API v2."""

from kalshi_router.errors import (
    ConfigError,
    DialectError,
    IntentError,
    KalshiRouterError,
    KeyLoadError,
    WireError,
)
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.outcome import Accepted, ApiError, Cancelled, Rejected

__all__ = [
    "Accepted",
    "ApiError",
    "CancelIntent",
    "Cancelled",
    "ConfigError",
    "DialectError",
    "IntentError",
    "KalshiRouterError",
    "KeyLoadError",
    "OrderIntent",
    "Rejected",
    "WireError",
]
