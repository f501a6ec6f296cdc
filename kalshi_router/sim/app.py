"""The simulator's aiohttp application: Kalshi's order surface under /trade-api/v2.

Per request, in order: fault draws (on faulted endpoints) and any fault that replaces
processing; authentication; the handler, which decodes its body, spends from the read or write
bucket, then acts on the engine; on a create, a WebSocket fault that may hold the answer until
its frames are out; any fault that follows processing; the stats. Control routes
for tests live under /_sim/ and need no auth.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from aiohttp import web

from kalshi_router.sim import (
    faults,
    routes_groups,
    routes_positions,
    routes_reads,
    routes_v1,
    routes_v2,
    ws,
)
from kalshi_router.sim.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, AuthError
from kalshi_router.sim.book import Exchange, OrderRejected
from kalshi_router.sim.buckets import DEFAULT_COST, ENDPOINT_COSTS
from kalshi_router.sim.config import FaultConfig, SimConfig
from kalshi_router.sim.render import (
    error_response,
    json_response,
    rate_limited_response,
    rejection_response,
)
from kalshi_router.sim.schema import (
    BucketLimit,
    EndpointTokenCost,
    ExchangeStatus,
    GetAccountApiLimitsResponse,
    GetAccountEndpointCostsResponse,
)
from kalshi_router.sim.state import BucketName, Call, Handler, RateLimited, SimState
from kalshi_router.sim.validate import SimError, decode

PREFIX = "/trade-api/v2"
SIM_STATE: web.AppKey[SimState] = web.AppKey("sim_state", SimState)

_COSTS = {(method, path): cost for method, path, cost in ENDPOINT_COSTS}
_fault_config = msgspec.json.Decoder(FaultConfig)
# The creates whose answer a WebSocket fault may hold until after the frames they caused.
_CREATES = frozenset(
    {
        "POST /portfolio/events/orders",
        "POST /portfolio/events/orders/batched",
        "POST /portfolio/orders",
        "POST /portfolio/orders/batched",
    }
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Kalshi route: where it is, whether it is signed, which bucket pays for it."""

    method: str
    path: str
    handler: Handler
    auth: bool = True
    bucket: BucketName = "read"

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def cost(self) -> int:
        """The listed cost (per request; batch handlers charge per item instead)."""
        return _COSTS.get((self.method, self.path), DEFAULT_COST)


async def exchange_status(call: Call) -> web.Response:
    """GET /exchange/status (no auth). Sim assumption: the sim's exchange never closes."""
    return json_response(
        ExchangeStatus(
            exchange_active=True,
            trading_active=True,
            intra_exchange_transfers_active=True,
            exchange_estimated_resume_time=None,
        )
    )


async def endpoint_costs(call: Call) -> web.Response:
    """GET /account/endpoint_costs (no auth): only the costs that differ from the default.

    Sim assumption: paths are route templates without /trade-api/v2, as SDK fixtures show.
    """
    return json_response(
        GetAccountEndpointCostsResponse(
            default_cost=DEFAULT_COST,
            endpoint_costs=[
                EndpointTokenCost(method=m, path=p, cost=c) for m, p, c in ENDPOINT_COSTS
            ],
        )
    )


async def account_limits(call: Call) -> web.Response:
    """GET /account/limits: the tier and both buckets' refill rate and capacity."""
    call.spend()
    tier = call.state.tier
    return json_response(
        GetAccountApiLimitsResponse(
            usage_tier=tier.name,
            read=BucketLimit(refill_rate=tier.read_refill, bucket_capacity=tier.read_capacity),
            write=BucketLimit(refill_rate=tier.write_refill, bucket_capacity=tier.write_capacity),
            grants=[],
        )
    )


async def _v1_gone(call: Call) -> web.Response:
    return routes_v1.gone()


def _group_endpoints() -> list[Endpoint]:
    """The order-group routes: the two GETs on the read bucket, the rest on the write bucket
    (sim assumption, see ``routes_groups``); all at the default cost."""
    one = "/portfolio/order_groups/{order_group_id}"
    return [
        Endpoint("GET", "/portfolio/order_groups", routes_groups.list_groups),
        Endpoint(
            "POST", "/portfolio/order_groups/create", routes_groups.create_group, bucket="write"
        ),
        Endpoint("GET", one, routes_groups.get_group),
        Endpoint("DELETE", one, routes_groups.delete_group, bucket="write"),
        Endpoint("PUT", f"{one}/reset", routes_groups.reset_group, bucket="write"),
        Endpoint("PUT", f"{one}/trigger", routes_groups.trigger_group, bucket="write"),
        Endpoint("PUT", f"{one}/limit", routes_groups.update_limit, bucket="write"),
    ]


def endpoints(config: SimConfig) -> list[Endpoint]:
    """Every Kalshi route the sim answers; the V1 ones depend on ``v1_mode``."""
    serve_v1 = config.v1_mode == "serve"
    # Sim assumption: a gone endpoint answers 410 before any authentication or bucket.
    v1_auth = serve_v1
    return [
        Endpoint("GET", "/exchange/status", exchange_status, auth=False),
        Endpoint("GET", "/account/endpoint_costs", endpoint_costs, auth=False),
        Endpoint("GET", "/account/limits", account_limits),
        Endpoint("GET", "/portfolio/orders", routes_reads.get_orders),
        Endpoint("GET", "/portfolio/orders/{order_id}", routes_reads.get_order),
        Endpoint("GET", "/portfolio/fills", routes_reads.get_fills),
        Endpoint("GET", "/portfolio/positions", routes_positions.get_positions),
        Endpoint("POST", "/portfolio/events/orders", routes_v2.create, bucket="write"),
        Endpoint("DELETE", "/portfolio/events/orders", routes_v2.cancel_all, bucket="write"),
        Endpoint(
            "POST", "/portfolio/events/orders/batched", routes_v2.batch_create, bucket="write"
        ),
        Endpoint(
            "DELETE", "/portfolio/events/orders/batched", routes_v2.batch_cancel, bucket="write"
        ),
        Endpoint("DELETE", "/portfolio/events/orders/{order_id}", routes_v2.cancel, bucket="write"),
        Endpoint(
            "POST", "/portfolio/events/orders/{order_id}/amend", routes_v2.amend, bucket="write"
        ),
        Endpoint(
            "POST",
            "/portfolio/events/orders/{order_id}/decrease",
            routes_v2.decrease,
            bucket="write",
        ),
        *_group_endpoints(),
        Endpoint(
            "POST",
            "/portfolio/orders",
            routes_v1.create if serve_v1 else _v1_gone,
            auth=v1_auth,
            bucket="write",
        ),
        Endpoint(
            "POST",
            "/portfolio/orders/batched",
            routes_v1.batch_create if serve_v1 else _v1_gone,
            auth=v1_auth,
            bucket="write",
        ),
        Endpoint(
            "DELETE",
            "/portfolio/orders/batched",
            routes_v1.batch_cancel if serve_v1 else _v1_gone,
            auth=v1_auth,
            bucket="write",
        ),
    ]


async def _process(
    request: web.Request, state: SimState, endpoint: Endpoint, cost: int
) -> web.Response:
    """Authenticate and run the handler, turning every rejection into Kalshi's answer."""
    user_id = ""
    try:
        if endpoint.auth:
            headers = request.headers
            user_id = state.keys.verify(
                headers.get(HEADER_KEY),
                headers.get(HEADER_TIMESTAMP),
                headers.get(HEADER_SIGNATURE),
                request.method,
                request.rel_url.raw_path,
            )
        call = Call(request, state, user_id, endpoint.bucket, cost, endpoint.key)
        return await endpoint.handler(call)
    except AuthError as exc:
        return error_response(401, "authentication_error", "authentication_error", exc.details)
    except RateLimited:
        return rate_limited_response()
    except (SimError, OrderRejected) as exc:
        return rejection_response(exc)


def _route(
    state: SimState, endpoint: Endpoint
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler for one endpoint: faults around processing, then the stats."""
    key, path, cost = endpoint.key, endpoint.path, endpoint.cost
    create = key in _CREATES

    async def handle(request: web.Request) -> web.StreamResponse:
        async def process() -> web.Response:
            response = await _process(request, state, endpoint, cost)
            if create and response.status < 300:
                await state.ws_faults.answer_late()
            return response

        injector = state.faults
        plan = injector.plan() if injector.applies(key, path) else None
        if plan is None:
            response: web.StreamResponse = await process()
            outcome = str(response.status)
        else:
            response, outcome = await faults.apply(
                plan, request, process, state.pause, injector.config
            )
        state.stats.record(key, outcome)
        return response

    return handle


# --- control routes (not Kalshi's) -----------------------------------------------------------


async def _sim_orders(request: web.Request) -> web.StreamResponse:
    """Every order of every user (the house's too), newest first, in the sim's integer units:
    price in $0.0001, counts in 0.01 contract."""
    state = request.app[SIM_STATE]
    return json_response(
        [
            {
                "order_id": o.order_id,
                "client_order_id": o.client_order_id or None,
                "user_id": o.user_id,
                "ticker": o.ticker,
                "side": o.side,
                "price": o.price,
                "status": o.status,
                "subaccount": o.subaccount,
                "initial_count": o.initial_count,
                "fill_count": o.fill_count,
                "remaining_count": o.remaining_count,
            }
            for o in state.exchange.orders()
        ]
    )


async def _get_faults(request: web.Request) -> web.StreamResponse:
    return json_response(request.app[SIM_STATE].faults.config)


async def _put_faults(request: web.Request) -> web.StreamResponse:
    """Replace the FaultConfig; the body is a whole FaultConfig (omitted fields: defaults)."""
    try:
        config = decode(_fault_config, await request.read())
    except SimError as exc:
        return rejection_response(exc)
    request.app[SIM_STATE].faults.configure(config)
    return json_response(config)


async def _stats(request: web.Request) -> web.StreamResponse:
    # With the buckets' clock: tokens spent over a window need its ends on that clock.
    state = request.app[SIM_STATE]
    return json_response({**state.stats.as_json(), "clock_s": state.clock_s()})


async def _wake_pauses(app: web.Application) -> None:
    app[SIM_STATE].close()


def build_app(
    config: SimConfig,
    *,
    clock_ms: Callable[[], int] | None = None,
    exchange: Exchange | None = None,
    state: SimState | None = None,
) -> web.Application:
    """The simulator as an aiohttp Application; its SimState is ``app[SIM_STATE]``.

    ``clock_ms`` (epoch milliseconds) drives auth skew, the engine and the buckets, so tests
    can step time; ``exchange`` replaces the engine the config would build; ``state`` (an
    existing simulator's, to serve it again after a restart) replaces all three.
    """
    state = state or SimState(config, clock_ms=clock_ms, exchange=exchange)
    app = web.Application()
    app[SIM_STATE] = state
    # Shutdown waits for handlers; waking pending hangs and latencies keeps that short.
    app.on_shutdown.append(_wake_pauses)
    for endpoint in endpoints(config):
        app.router.add_route(endpoint.method, PREFIX + endpoint.path, _route(state, endpoint))
    ws.install(app, state)
    # Sim assumption: unknown paths and methods get aiohttp's plain-text 404/405.
    app.router.add_get("/_sim/orders", _sim_orders)
    app.router.add_get("/_sim/faults", _get_faults)
    app.router.add_put("/_sim/faults", _put_faults)
    app.router.add_get("/_sim/stats", _stats)
    return app
