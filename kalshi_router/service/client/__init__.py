"""The service's client: ``RouterClient`` speaks to ``kalshi-router serve`` with the embedded
router's API (both are a ``kalshi_router.Router``); ``open_router`` picks one from the config.

One job a module: ``router_client`` (the API), ``connection`` (the stream, kept open and opened
again), ``link`` (one WebSocket), ``holding`` (where each intent is), ``resume`` (what to do
with the intents in flight when the stream comes back), ``orders`` (the bot's own orders after
acceptance, ``RouterClient.orders``), ``controls`` (the trading state, changed over the stream),
``desk_calls`` (the kill switch and the trading state over HTTP; where a config's service
listens), ``opening`` (``open_router``)."""

from kalshi_router.service.client.opening import open_router
from kalshi_router.service.client.orders import RemoteOrders
from kalshi_router.service.client.router_client import RouterClient

__all__ = ["RemoteOrders", "RouterClient", "open_router"]
