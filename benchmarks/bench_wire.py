"""Micro-benchmark of the wire layer: encode, decode and sign, per batch of 20 orders.

    python benchmarks/bench_wire.py [--number N] [--json FILE]

Fixed seed, best of several repeats, all contenders in one run so the ratios are comparable on a
noisy shared machine. Stdlib ``json`` is the reference point for encode and decode.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Literal

import msgspec

from kalshi_router.intent import OrderIntent
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect

BATCH = 20
PATH = "/trade-api/v2/portfolio/events/orders/batched"


def make_batch(seed: int = 42) -> list[OrderIntent]:
    rng = random.Random(seed)
    return [
        OrderIntent(
            ticker=f"KXBENCH-26DEC31-T{rng.randint(10, 99)}",
            side=rng.choice(("bid", "ask")),
            price=Decimal(rng.randint(1, 99)) / 100,
            count=Decimal(rng.randint(1, 500)),
            client_order_id=f"bench-{seed}-{i}",
        )
        for i in range(BATCH)
    ]


def make_answer(batch: list[OrderIntent]) -> bytes:
    items = [
        {
            "order_id": f"00000000-0000-4000-8000-{i:012d}",
            "client_order_id": intent.client_order_id,
            "fill_count": "0.00",
            "remaining_count": str(intent.count),
            "ts_ms": 1_790_000_000_000 + i,
        }
        for i, intent in enumerate(batch)
    ]
    return json.dumps({"orders": items}).encode()


def stdlib_encode(batch: list[OrderIntent]) -> bytes:
    orders = [
        {
            "ticker": i.ticker,
            "side": i.side,
            "count": str(i.count),
            "price": str(i.price),
            "time_in_force": i.time_in_force,
            "self_trade_prevention_type": i.self_trade_prevention,
            "client_order_id": i.client_order_id,
        }
        for i in batch
    ]
    return json.dumps({"orders": orders}).encode()


def best_us(func: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e6


def run(number: int) -> dict[str, dict[str, float]]:
    batch = make_batch()
    keys = [i.client_order_id for i in batch]
    answer = make_answer(batch)
    v2, v1 = V2Dialect(), V1Dialect()
    results: dict[str, dict[str, float]] = {
        "encode batch of 20": {
            "router v2 (msgspec)": best_us(lambda: v2.encode_create(batch), number),
            "router v1 (msgspec)": best_us(lambda: v1.encode_create(batch), number),
            "stdlib json": best_us(lambda: stdlib_encode(batch), number),
        },
        "decode answer of 20": {
            "router v2 (msgspec, matched)": best_us(
                lambda: v2.decode_create(201, answer, keys), number
            ),
            "stdlib json.loads only": best_us(lambda: json.loads(answer), number),
        },
    }
    signing: dict[str, float] = {}
    keys_to_try: tuple[tuple[str, Literal["rsa", "ed25519"], int], ...] = (
        ("RSA-2048", "rsa", 2048),
        ("RSA-4096", "rsa", 4096),
        ("Ed25519", "ed25519", 2048),
    )
    for label, kind, bits in keys_to_try:
        private, _ = generate_key(kind, rsa_bits=bits)
        signer = Signer("bench", load_private_key(private))
        signing[label] = best_us(partial(signer.headers, "POST", PATH), max(number // 20, 20))
    results["sign one request"] = signing
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=2000, help="calls per timing repeat")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = run(args.number)
    print(
        f"python {platform.python_version()}, msgspec {msgspec.__version__}, {platform.machine()}"
    )
    for scenario, rows in results.items():
        best = min(rows.values())
        print(f"\n{scenario} (µs per call; per order = / {BATCH})")
        for name, value in sorted(rows.items(), key=lambda kv: kv[1]):
            print(f"  {name:<32} {value:9.2f} µs  {value / best:6.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": platform.platform(), "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
