"""Our own contenders: the router, and the client a bot writes without one (the naive
contenders, and the latency floor). The peers are in ``_peers``.

    async with router_sender(spec, key) as send:     # bench_throughput's child
        labels = await send(intents)
    label = await via_floor(poster, single=False, intent=intent)   # bench_latency

Every answer becomes a label per order: "accepted", "rejected:CODE", "http:STATUS[:CODE]",
"error:Type", or an outcome's name ("expired", "closed", "unknown"), counted into the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Self

import _peers
import aiohttp
from _data import stdlib_order
from _keys import BenchKey
from _report import NAIVE_BATCH, NAIVE_SINGLE, ROUTER
from _runner import CHILD_TIMEOUT_S
from _sim import UNLIMITED_WRITES

from kalshi_router import Config, OrderIntent, OrderRouter
from kalshi_router.config import ExchangeConfig, LimitsConfig, RouterConfig
from kalshi_router.outcome import (
    Accepted,
    Amended,
    Cancelled,
    Closed,
    Expired,
    Outcome,
    Rejected,
    Unknown,
    outcome_name,
    type_name,
)
from kalshi_router.wire.signer import Signer

SINGLE_PATH = "/portfolio/events/orders"
BATCHED_PATH = "/portfolio/events/orders/batched"
Sender = Callable[[dict[str, Any], BenchKey], contextlib.AbstractAsyncContextManager[Any]]


# Every outcome's label but a rejection's, which names its code.
PLAIN_LABELS: dict[type, str] = {
    kind: type_name(kind) for kind in (Accepted, Cancelled, Amended, Expired, Closed, Unknown)
}


def outcome_label(outcome: Outcome) -> str:
    """Rejected as "rejected:CODE", any other outcome by its name ("accepted", ...). (``type()
    is``: ``isinstance`` on a msgspec Struct that does not match takes Python's slow path, a
    thousand instructions, which the naive contenders' labels do not pay.)"""
    return f"rejected:{outcome.code}" if type(outcome) is Rejected else outcome_name(outcome)


def future_label(future: asyncio.Future[Any]) -> str:
    """A settled future's outcome label, or "cancelled" or "error:Type"."""
    if future.cancelled():
        return "cancelled"
    if (exc := future.exception()) is not None:
        return _peers.error_label(exc)
    return outcome_label(future.result())


# -- the client a bot writes without a router ----------------------------------------------------


class SignedPoster:
    """One aiohttp session signing each POST with the bench key: the naive contenders and the
    latency floor. No retries, no queue: a request, its answer, stdlib ``json`` both ways."""

    def __init__(self, base_url: str, signer: Signer, *, connections: int = 1) -> None:
        self._base_url = base_url.rstrip("/")
        self._root = urllib.parse.urlsplit(self._base_url).path
        self._signer = signer
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON to ``path`` (below the API root); status and decoded body."""
        if self._session is None:
            raise RuntimeError("use 'async with SignedPoster(...)'")
        headers = self._signer.headers("POST", self._root + path)
        headers["Content-Type"] = "application/json"
        body = json.dumps(payload).encode()
        async with self._session.post(self._base_url + path, data=body, headers=headers) as resp:
            raw = await resp.read()
        return resp.status, (json.loads(raw) if raw else None)

    async def post_orders(self, intents: Sequence[OrderIntent], batched: bool) -> list[str]:
        """``intents`` in one request: a batch to the batched create, else the first alone to
        the single create; a label per order of the request."""
        if batched:
            status, answer = await self.post(
                BATCHED_PATH, {"orders": [stdlib_order(i) for i in intents]}
            )
        else:
            status, answer = await self.post(SINGLE_PATH, stdlib_order(intents[0]))
        return answer_labels(status, answer, batched)


def answer_labels(status: int, answer: Any, batched: bool) -> list[str]:
    """What a naive contender counts for one answer: per item for a batch, else one label."""
    if status != 201:
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
        return [f"http:{status}" + (f":{code}" if code else "")]
    items = answer["orders"] if batched else [answer]
    return [
        f"rejected:{item['error'].get('code')}" if item.get("error") else "accepted"
        for item in items
    ]


# -- throughput: a sender per contender, run in bench_throughput's child ---------------------------


@contextlib.asynccontextmanager
async def router_sender(
    spec: dict[str, Any], key: BenchKey
) -> AsyncIterator[_peers.Send[OrderIntent]]:
    count = spec["warmup"] + spec["orders"]
    config = Config(
        # Signatures made ahead by default; bench_instructions may turn it off (see there).
        exchange=ExchangeConfig(presign=spec.get("presign", True)),
        # The sim's bucket is unlimited; say so rather than rely on what it reports.
        limits=LimitsConfig(
            write_refill_rate=int(UNLIMITED_WRITES["write_refill"]),
            write_bucket_capacity=int(UNLIMITED_WRITES["write_capacity"]),
        ),
        router=RouterConfig(
            max_in_flight=spec["in_flight"],
            max_batch_size=spec["batch"],
            queue_size=max(RouterConfig().queue_size, count),
            # Every order is queued at once: none may expire while the slow configs drain.
            deadline_s=CHILD_TIMEOUT_S,
        ),
    )
    async with OrderRouter.connect(config, key.signer(), base_url=spec["url"]) as router:

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            # What a bot placing a book of quotes at once would write; labelled as cheaply as
            # the naive contenders label their answers (a lookup per order, no call).
            outcomes = await router.place_many(intents)
            return [PLAIN_LABELS.get(type(o)) or outcome_label(o) for o in outcomes]

        yield send


@contextlib.asynccontextmanager
async def naive_sender(
    spec: dict[str, Any], key: BenchKey
) -> AsyncIterator[_peers.Send[OrderIntent]]:
    """A batch of one goes to the single create, more to the batched path; ``in_flight``
    workers each wait for their answer before they send again."""
    batched = spec["batch"] > 1
    async with SignedPoster(spec["url"], key.signer(), connections=spec["in_flight"]) as poster:

        async def post(chunk: Sequence[OrderIntent]) -> list[str]:
            try:
                return await poster.post_orders(chunk, batched)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return [_peers.error_label(exc)] * len(chunk)

        async def send(intents: Sequence[OrderIntent]) -> list[str]:
            return await _peers.pipelined(intents, spec["batch"], spec["in_flight"], post)

        yield send


SENDERS: dict[str, Sender] = {
    ROUTER: router_sender,
    NAIVE_SINGLE: naive_sender,
    NAIVE_BATCH: naive_sender,
}


# -- latency: one order, submit to outcome ---------------------------------------------------------


async def via_router(router: OrderRouter, intent: OrderIntent) -> str:
    """``place``: on an idle router, its request goes out in this task (``idle_fast_path``)."""
    return outcome_label(await router.place(intent))


async def via_floor(poster: SignedPoster, single: bool, intent: OrderIntent) -> str:
    return (await poster.post_orders([intent], batched=not single))[0]
