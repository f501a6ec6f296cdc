"""``open_router``: the embedded router or a client of the local service, from one config, so a
bot written against ``Router`` switches between them without code changes."""

from __future__ import annotations

from kalshi_router.api import Router
from kalshi_router.config import Config
from kalshi_router.errors import ConfigError
from kalshi_router.router import OrderRouter
from kalshi_router.service.client.desk_calls import service_at, token_source
from kalshi_router.service.client.router_client import RouterClient
from kalshi_router.wire.signer import Signer

__all__ = ["open_router"]


def open_router(config: Config, signer: Signer | None = None) -> Router:
    """The embedded router (``exchange.target = "url"``) or a client of the local service
    (``"service"``), from the same config, both used as ``async with``."""
    target = config.exchange.target
    if target == "service":
        settings = config.service
        at = service_at(settings)
        return RouterClient(
            at.url,
            token=None if at.unix_socket else token_source(settings),
            unix_socket=at.unix_socket,
            name=settings.client_name or None,
            cancel_on_disconnect=settings.client_cancel_on_disconnect_s or None,
        )
    if target == "url":
        if signer is None:
            credentials = config.credentials
            signer = Signer.from_env(
                credentials.key_id_env,
                credentials.private_key_env,
                credentials.private_key_path_env,
            )
        return OrderRouter.connect(config, signer)
    raise ConfigError(
        'exchange.target: "sim" runs the simulator in-process; use the demo or serve for it, '
        'or "url" / "service" here'
    )
