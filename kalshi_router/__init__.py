"""kalshi-router: an asyncio batched order router for Kalshi's Trade API v2."""

from kalshi_router.api import BudgetView, Router
from kalshi_router.config import Config, load_config
from kalshi_router.errors import (
    BodyRefused,
    ConfigError,
    CredentialsRefused,
    DialectError,
    ExchangeError,
    IllegalTransition,
    IntentError,
    JournalError,
    KalshiRouterError,
    KeyLoadError,
    OptionError,
    QueueFull,
    RouterClosed,
    RouterCrashed,
    ServiceError,
    TransportError,
    UpdatesOverflow,
    WireError,
)
from kalshi_router.intent import AmendIntent, CancelIntent, DecreaseIntent, OrderIntent
from kalshi_router.loop import run
from kalshi_router.orders.updates import FillEvent, OrderHandle, Orders, OrderUpdate, Position
from kalshi_router.outcome import (
    Accepted,
    Amended,
    ApiError,
    Cancelled,
    Closed,
    Expired,
    Rejected,
    Unknown,
)
from kalshi_router.risk.config import TradingState
from kalshi_router.risk.kill import KillReport
from kalshi_router.router import OrderRouter
from kalshi_router.stats import RouterStats
from kalshi_router.wire.signer import Signer

__all__ = [
    "Accepted",
    "AmendIntent",
    "Amended",
    "ApiError",
    "BodyRefused",
    "BudgetView",
    "CancelIntent",
    "Cancelled",
    "Closed",
    "Config",
    "ConfigError",
    "CredentialsRefused",
    "DecreaseIntent",
    "DialectError",
    "ExchangeError",
    "Expired",
    "FillEvent",
    "IllegalTransition",
    "IntentError",
    "JournalError",
    "KalshiRouterError",
    "KeyLoadError",
    "KillReport",
    "OptionError",
    "OrderHandle",
    "OrderIntent",
    "OrderRouter",
    "OrderUpdate",
    "Orders",
    "Position",
    "QueueFull",
    "Rejected",
    "Router",
    "RouterClosed",
    "RouterCrashed",
    "RouterStats",
    "ServiceError",
    "Signer",
    "TradingState",
    "TransportError",
    "Unknown",
    "UpdatesOverflow",
    "WireError",
    "load_config",
    "run",
]
