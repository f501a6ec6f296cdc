"""A strict, in-process simulator of Kalshi's order API (Trade API v2, spec 3.31.0).

It never imports the router: it is an independent implementation of the exchange, so that
testing the router against it means something.
"""

from kalshi_router.sim.app import SIM_STATE, build_app
from kalshi_router.sim.config import (
    ApiKeyConfig,
    FaultConfig,
    LatencyConfig,
    MarketConfig,
    SimConfig,
    WsFaultConfig,
)
from kalshi_router.sim.server import SimServer, serve_forever
from kalshi_router.sim.state import SimState

__all__ = [
    "SIM_STATE",
    "ApiKeyConfig",
    "FaultConfig",
    "LatencyConfig",
    "MarketConfig",
    "SimConfig",
    "SimServer",
    "SimState",
    "WsFaultConfig",
    "build_app",
    "serve_forever",
]
