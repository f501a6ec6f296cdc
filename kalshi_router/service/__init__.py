"""``kalshi-router serve``: the router as a local service (HTTP, WebSocket, metrics)."""

from kalshi_router.service.app import build_service_app
from kalshi_router.service.metrics import Metrics
from kalshi_router.service.serve import serve

__all__ = ["Metrics", "build_service_app", "serve"]
