"""Peer contenders, pykalshi and Kalshi's kalshi-python-async, each driven as its docs show.

    python benchmarks/_peers.py --contender pykalshi|kalshi-python-async
        --mode throughput|latency --loop uvloop|asyncio   < spec.json   > result.json

The benchmark scripts run this file in a child process (kalshi-python-async under the Python
3.13 venv of ``_peer_venv``, which has no kalshi_router: hence nothing here imports it, and of
the other modules here only ``_runner`` and ``_machine``, which do not either; the peers
themselves are imported lazily, so a missing one is a skip reason).
``measure`` and ``pipelined`` are the timing and concurrency shared with our own contenders.

The spec (JSON on stdin): ``url`` (API root), ``key_id``, ``private_pem``, ``orders`` (V2
create bodies as ``_data.stdlib_order`` makes them), ``warmup`` (how many of them are
untimed), ``in_flight`` and ``batch`` (throughput), ``seed`` and ``mean_ms`` (latency).

How each is set up (pykalshi 2.0.0, kalshi-python-async 3.34.0); both speak V2 only:

pykalshi             ``AsyncKalshiClient(api_base=URL, max_retries=0)`` on httpx; RSA-PSS only (it
                     reads the key from a file and refuses Ed25519). Batch: ``portfolio.
                     batch_place_orders`` -> POST /portfolio/events/orders/batched; its answer
                     keeps only the items with an order id, so a refused item is "unreported".
                     Single: ``portfolio.place_order`` -> POST /portfolio/events/orders.
kalshi-python-async  ``KalshiClient(Configuration(host=URL))`` with ``api_key_id`` and
                     ``private_key_pem`` set, on aiohttp; RSA or Ed25519. ``retries`` stays None
                     (no retry client; it never retries POST anyway). Batch:
                     ``batch_create_orders_v2`` (pydantic models both ways), same path; single:
                     ``create_order_v2``. It signs every request twice (``update_params_for_auth``
                     and ``call_api`` each compute the headers; the second set wins).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from _machine import installed_version
from _runner import LOOPS, loop_in_use, read_child_spec, run_on

T = TypeVar("T")
Order: TypeAlias = dict[str, str]
Send: TypeAlias = Callable[[Sequence[T]], Awaitable[list[str]]]

PYKALSHI = "pykalshi"
KPA = "kalshi-python-async"
PEER_NAMES = (PYKALSHI, KPA)
INSTALL_HINT = "pip install -e '.[bench]'"


# -- shared with our own contenders ----------------------------------------------------------


async def measure(
    sender: contextlib.AbstractAsyncContextManager[Send[T]],
    warm: Sequence[T],
    timed: Sequence[T],
    mark: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Send ``warm`` untimed, then ``timed``: wall time from first send to last answer, and this
    process's CPU over the same span, with the outcome labels of both. ``mark`` is called with
    "start" just before the span and "stop" just after it (bench_instructions counts the
    instructions between)."""
    async with sender as send:
        warm_labels = await send(warm)
        gc.collect()  # start the timed part with no garbage of the warm-up pending
        if mark is not None:
            mark("start")
        cpu0, t0 = time.process_time(), time.perf_counter()
        labels = await send(timed)
        t1, cpu1 = time.perf_counter(), time.process_time()
        if mark is not None:
            mark("stop")
    seconds, cpu = t1 - t0, cpu1 - cpu0
    return {
        "orders": len(timed),
        "seconds": seconds,
        "orders_per_s": len(timed) / seconds,
        "cpu_s": cpu,
        "cpu_us_per_order": cpu / len(timed) * 1e6,
        "outcomes": dict(Counter(labels)),
        "warmup_outcomes": dict(Counter(warm_labels)),
    }


async def pipelined(
    orders: Sequence[T],
    batch: int,
    workers: int,
    place: Callable[[Sequence[T]], Awaitable[list[str]]],
) -> list[str]:
    """``workers`` requests in flight: each worker takes the next chunk of ``batch`` orders as
    soon as its previous request is answered. Labels come back in completion order."""
    chunks = iter([orders[i : i + batch] for i in range(0, len(orders), batch)])
    labels: list[str] = []

    async def worker() -> None:
        for chunk in chunks:  # shared iterator: no chunk is taken twice
            labels.extend(await place(chunk))

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return labels


def error_label(exc: BaseException) -> str:
    return f"error:{type(exc).__name__}"


def failed_status(exc: BaseException) -> str:
    """A table cell for a child that failed: the last line of its error (its stderr's end)."""
    lines = str(exc).strip().splitlines()
    return f"failed: {lines[-1] if lines else type(exc).__name__}"


# -- whether a peer can run here ---------------------------------------------------------------


def pykalshi_skip_reason(key_kind: str) -> str | None:
    """Why pykalshi cannot run in this interpreter with this kind of key (None: it can)."""
    if importlib.util.find_spec("pykalshi") is None:
        return f"skipped: pykalshi not installed ({INSTALL_HINT})"
    if key_kind != "rsa":
        return "skipped: pykalshi signs with RSA keys only (its key loader refuses Ed25519)"
    return None


# -- pykalshi -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pykalshi_client(spec: dict[str, Any]) -> AsyncIterator[Any]:
    from pykalshi import AsyncKalshiClient

    # pykalshi only reads keys from a file: a private one, gone once the client has loaded it.
    folder = Path(tempfile.mkdtemp(prefix="bench-pykalshi-"))
    try:
        key_path = folder / "key.pem"
        key_path.touch(mode=0o600)
        key_path.write_text(spec["private_pem"], encoding="ascii")
        client = AsyncKalshiClient(
            api_key_id=spec["key_id"],
            private_key_path=str(key_path),
            api_base=spec["url"],
            max_retries=0,
            timeout=10.0,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        yield client
    finally:
        await client.aclose()


async def pykalshi_batch(client: Any, chunk: Sequence[Order]) -> list[str]:
    items = [
        {
            "ticker": o["ticker"],
            "book_side": o["side"],
            "price_dollars": o["price"],
            "count": o["count"],
            "client_order_id": o["client_order_id"],
            "time_in_force": o["time_in_force"],
            "self_trade_prevention_type": o["self_trade_prevention_type"],
        }
        for o in chunk
    ]
    try:
        placed = await client.portfolio.batch_place_orders(items)
    except Exception as exc:  # whatever the peer raises is that request's outcome
        return [error_label(exc)] * len(chunk)
    return ["accepted"] * len(placed) + ["unreported"] * (len(chunk) - len(placed))


async def pykalshi_single(client: Any, order: Order) -> str:
    from pykalshi import SelfTradePrevention, TimeInForce

    try:
        await client.portfolio.place_order(
            order["ticker"],
            book_side=order["side"],
            price_dollars=order["price"],
            count_fp=order["count"],
            client_order_id=order["client_order_id"],
            time_in_force=TimeInForce(order["time_in_force"]),
            self_trade_prevention=SelfTradePrevention(order["self_trade_prevention_type"]),
        )
    except Exception as exc:
        return error_label(exc)
    return "accepted"


# -- kalshi-python-async ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def kpa_client(spec: dict[str, Any]) -> AsyncIterator[Any]:
    from kalshi_python_async import Configuration, KalshiClient

    config = Configuration(host=spec["url"])
    config.api_key_id = spec["key_id"]
    config.private_key_pem = spec["private_pem"]
    config.retries = None
    client = KalshiClient(config)
    try:
        yield client
    finally:
        await client.close()


async def kpa_batch(client: Any, chunk: Sequence[Order]) -> list[str]:
    try:
        reply = await client.batch_create_orders_v2(orders=list(chunk))
    except Exception as exc:
        return [error_label(exc)] * len(chunk)
    return [f"rejected:{i.error.code}" if i.error else "accepted" for i in reply.orders]


async def kpa_single(client: Any, order: Order) -> str:
    try:
        await client.create_order_v2(**order)
    except Exception as exc:
        return error_label(exc)
    return "accepted"


Client = Callable[[dict[str, Any]], contextlib.AbstractAsyncContextManager[Any]]
PEERS: dict[
    str,
    tuple[
        Client,
        Callable[[Any, Sequence[Order]], Awaitable[list[str]]],
        Callable[[Any, Order], Awaitable[str]],
    ],
] = {
    PYKALSHI: (pykalshi_client, pykalshi_batch, pykalshi_single),
    KPA: (kpa_client, kpa_batch, kpa_single),
}


# -- the child ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def batch_sender(peer: str, spec: dict[str, Any]) -> AsyncIterator[Send[Order]]:
    client_of, place_batch, _ = PEERS[peer]
    async with client_of(spec) as client:
        place = partial(place_batch, client)

        async def send(orders: Sequence[Order]) -> list[str]:
            return await pipelined(orders, spec["batch"], spec["in_flight"], place)

        yield send


async def throughput(peer: str, spec: dict[str, Any]) -> dict[str, Any]:
    orders: list[Order] = spec["orders"]
    warm, timed = orders[: spec["warmup"]], orders[spec["warmup"] :]
    return await measure(batch_sender(peer, spec), warm, timed)


async def latency(peer: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Single placements at exponential random gaps: submit-to-answer seconds of the timed ones."""
    client_of, _, place_single = PEERS[peer]
    rng = random.Random(spec["seed"])
    samples: list[float] = []
    labels: Counter[str] = Counter()
    async with client_of(spec) as client:
        for i, order in enumerate(spec["orders"]):
            await asyncio.sleep(rng.expovariate(1000.0 / spec["mean_ms"]))
            started = time.perf_counter()
            label = await place_single(client, order)
            elapsed = time.perf_counter() - started
            if i >= spec["warmup"]:
                samples.append(elapsed)
                labels[label] += 1
    return {"samples_s": samples, "outcomes": dict(labels)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one peer contender, spec on stdin")
    parser.add_argument("--contender", choices=PEER_NAMES, required=True)
    parser.add_argument("--mode", choices=("throughput", "latency"), required=True)
    parser.add_argument("--loop", choices=LOOPS, default="uvloop")
    args = parser.parse_args(argv)
    spec = read_child_spec()
    job = throughput if args.mode == "throughput" else latency
    loop = loop_in_use(args.loop)
    result = run_on(job(args.contender, spec), loop)
    result |= {
        "loop": loop,
        "python": platform.python_version(),
        "version": installed_version(args.contender),
    }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
