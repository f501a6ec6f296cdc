"""Pre-trade risk: limits, the trading state, and the worst-case exposure they are checked on.

- :mod:`~kalshi_router.risk.config`: ``[risk]``, its rules per ticker and per client;
- :mod:`~kalshi_router.risk.exposure`: position, open orders and pending creates per ticker;
- :mod:`~kalshi_router.risk.gate`: :class:`RiskGate`, pass or a refusal naming the rule;
- :mod:`~kalshi_router.risk.limits`: which limits apply to an intent (the strictest);
- :mod:`~kalshi_router.risk.bucket`: the orders-per-second bucket, which refuses, never waits.

All synchronous and free of I/O: the time comes from an injected clock. Beside them, the async
controls: :mod:`~kalshi_router.risk.kill` (the kill switch's rounds) and
:mod:`~kalshi_router.risk.watchdog` (the embedded dead man's switch).
"""

from kalshi_router.risk.config import (
    ClientLimits,
    RiskConfig,
    RiskLimits,
    TickerLimits,
    TradingState,
)
from kalshi_router.risk.exposure import Exposure
from kalshi_router.risk.gate import RiskFigures, RiskGate

__all__ = [
    "ClientLimits",
    "Exposure",
    "RiskConfig",
    "RiskFigures",
    "RiskGate",
    "RiskLimits",
    "TickerLimits",
    "TradingState",
]
