"""``/metrics`` on a listener of its own (``service.metrics_port``), for Prometheus.

Exporters conventionally serve ``/metrics`` without authentication on a port of their own bound
to loopback, and this listener does so by default (``service.metrics_host = "127.0.0.1"``): the
intake's token changes with every run when it is generated, so a scraper could not keep it.
Beyond loopback the listener asks for the bearer token configured in ``$KALSHI_ROUTER_TOKEN``
(``serve.check_bind`` refuses to start it there without one); Prometheus sends it from
``authorization.credentials_file``. ``/metrics`` on the intake stays behind the intake's token.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from kalshi_router.service.metrics import CONTENT_TYPE, Metrics
from kalshi_router.service.protocol import ErrorBody
from kalshi_router.service.token import authorized

_UNAUTHORIZED = msgspec.json.encode(ErrorBody("unauthorized"))


def scrape(metrics: Metrics) -> web.Response:
    """The exposition text, as both listeners serve it."""
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def build_metrics_app(metrics: Metrics, token: str | None) -> web.Application:
    """Just ``GET /metrics``; ``token``: the bearer token a scrape must carry, if any."""

    async def metrics_only(request: web.Request) -> web.Response:
        if token is not None and not authorized(request.headers.get("Authorization", ""), token):
            return web.Response(
                status=401,
                body=_UNAUTHORIZED,
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return scrape(metrics)

    app = web.Application()
    app.router.add_get("/metrics", metrics_only)
    return app
