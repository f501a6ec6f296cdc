"""Micro-benchmark of the wire layer: encode, decode and sign, per batch of 20 and per order.

    python benchmarks/bench_wire.py [--number N] [--seed S] [--json FILE]

encode  20 create orders into a V2 batch body, starting from the same ``OrderIntent`` objects:
        the router's V2 dialect (msgspec), stdlib ``json`` and ``orjson`` on plain dicts, and
        pydantic models shaped like the official SDK's (``_sdk_models``, ``model_dump_json``).
        All four give the same JSON body. The router's legacy V1 body is timed for reference.
decode  a realistic 20-item V2 answer (resting orders, a few filled with average price and
        fee, one refused per item): the router's decoder, which also matches every item to its
        order and builds the outcomes, against ``json.loads``, ``orjson.loads`` and pydantic's
        ``model_validate_json``.
sign    the three signature headers of one request, with RSA-2048 (Kalshi's usual key),
        RSA-4096 and Ed25519 keys; one signature per batch, so per order = / 20.

Fixed seed, best of five repeats of ``--number`` calls, all contenders in one process so the
ratios are comparable on a noisy shared machine. "x router" is a row's time over the router's
(over RSA-2048's for signing): above 1 is slower. A library that is not installed gets a
"skipped" row (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

from _data import BATCH, mixed_batch, stdlib_order
from _machine import describe_machine, format_machine
from _report import format_ratio, ratio, table

from kalshi_router.intent import OrderIntent
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect

REPEATS = 5
PATH = "/trade-api/v2/portfolio/events/orders/batched"
FILLED = frozenset({3, 11, 16})  # items of the answer that filled on arrival
REFUSED = 7  # the item of the answer refused per item
Encoder = Callable[[Sequence[OrderIntent]], bytes]
Decoder = Callable[[bytes], object]
Contenders = dict[str, Callable[[], object] | str]  # a timed call, or why it is skipped
# (section, title, reference contender)
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("encode", f"encode a batch of {BATCH} create orders", "router v2 (msgspec)"),
    ("decode", f"decode the answer to a batch of {BATCH}", "router v2 (decode + match)"),
    ("sign", "sign one request (per order: one batch's signature / 20)", "RSA-2048"),
)


def _answer_item(i: int, intent: OrderIntent) -> dict[str, Any]:
    if i == REFUSED:
        error = {"code": "invalid order", "message": "invalid order", "details": "post only cross"}
        return {"order_id": None, "client_order_id": intent.client_order_id, "error": error}
    item: dict[str, Any] = {
        "order_id": f"00000000-0000-4000-8000-{i:012d}",
        "client_order_id": intent.client_order_id,
        "fill_count": "0.00",
        "remaining_count": str(intent.count),
        "ts_ms": 1_790_000_000_000 + i,
    }
    if i in FILLED:
        item |= {
            "fill_count": str(intent.count),
            "remaining_count": "0.00",
            "average_fill_price": str(intent.price),
            "average_fee_paid": "0.0123",
        }
    return item


def make_answer(batch: Sequence[OrderIntent]) -> bytes:
    """Kalshi's 201 answer to ``batch``, as the V2 docs describe it."""
    items = [_answer_item(i, intent) for i, intent in enumerate(batch)]
    return json.dumps({"orders": items}).encode()


# -- contenders --------------------------------------------------------------------------------


def stdlib_encode(batch: Sequence[OrderIntent]) -> bytes:
    return json.dumps({"orders": [stdlib_order(i) for i in batch]}).encode()


def _orjson_encoder() -> Encoder | str:
    try:
        import orjson
    except ImportError:
        return "skipped: orjson not installed"

    def encode(batch: Sequence[OrderIntent]) -> bytes:
        body: bytes = orjson.dumps({"orders": [stdlib_order(i) for i in batch]})
        return body

    return encode


def _pydantic_encoder() -> Encoder | str:
    try:
        from _sdk_models import BatchCreateOrdersV2Request, CreateOrderV2Request
    except ImportError:
        return "skipped: pydantic not installed"

    def encode(batch: Sequence[OrderIntent]) -> bytes:
        orders = [
            CreateOrderV2Request(
                ticker=i.ticker,
                side=i.side,
                count=str(i.count),
                price=str(i.price),
                time_in_force=i.time_in_force,
                self_trade_prevention_type=i.self_trade_prevention,
                client_order_id=i.client_order_id,
            )
            for i in batch
        ]
        body: str = BatchCreateOrdersV2Request(orders=orders).model_dump_json(exclude_none=True)
        return body.encode()

    return encode


def v2_encoders() -> dict[str, Encoder | str]:
    """The encoders of the same V2 body (equal once parsed), or why one is skipped."""
    return {
        "router v2 (msgspec)": V2Dialect().encode_create,
        "stdlib json": stdlib_encode,
        "orjson": _orjson_encoder(),
        "pydantic (SDK-style models)": _pydantic_encoder(),
    }


def decoders(keys: Sequence[str]) -> dict[str, Decoder | str]:
    v2 = V2Dialect()
    found: dict[str, Decoder | str] = {
        "router v2 (decode + match)": lambda raw: v2.decode_create(201, raw, keys),
        "stdlib json.loads": json.loads,
    }
    try:
        import orjson
    except ImportError:
        found["orjson.loads"] = "skipped: orjson not installed"
    else:
        found["orjson.loads"] = orjson.loads
    try:
        from _sdk_models import BatchCreateOrdersV2Response
    except ImportError:
        found["pydantic model_validate_json"] = "skipped: pydantic not installed"
    else:
        found["pydantic model_validate_json"] = BatchCreateOrdersV2Response.model_validate_json
    return found


def signers() -> dict[str, Signer]:
    keys: tuple[tuple[str, Literal["rsa", "ed25519"], int], ...] = (
        ("RSA-2048", "rsa", 2048),
        ("RSA-4096", "rsa", 4096),
        ("Ed25519", "ed25519", 2048),
    )
    out = {}
    for label, kind, bits in keys:
        private, _ = generate_key(kind, rsa_bits=bits)
        out[label] = Signer("bench", load_private_key(private))
    return out


def contenders(seed: int) -> dict[str, Contenders]:
    """Per section, each contender's call on the fixed data (or why it is skipped)."""
    batch = mixed_batch(seed)
    answer = make_answer(batch)
    keys = [i.client_order_id for i in batch]

    def bind(found: dict[str, Any], arg: object) -> Contenders:
        return {name: f if isinstance(f, str) else partial(f, arg) for name, f in found.items()}

    encode = bind(v2_encoders(), batch)
    encode["router v1 (msgspec, legacy body)"] = partial(V1Dialect().encode_create, batch)
    sign: Contenders = {name: partial(s.headers, "POST", PATH) for name, s in signers().items()}
    return {"encode": encode, "decode": bind(decoders(keys), answer), "sign": sign}


# -- measuring and output ----------------------------------------------------------------------


def best_us(func: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=REPEATS)) / number * 1e6


def rows_of(timings: dict[str, float | str], reference: str) -> list[dict[str, Any]]:
    """Result rows, fastest first, skipped last: µs per batch and per order, x the reference."""
    ref = timings.get(reference)
    ref_us = ref if isinstance(ref, float) else None
    rows: list[dict[str, Any]] = []
    for name, value in timings.items():
        if isinstance(value, str):
            rows.append({"contender": name, "skipped": value})
        else:
            per_order = value / BATCH
            rows.append(
                {
                    "contender": name,
                    "us_per_batch": value,
                    "us_per_order": per_order,
                    "vs_router": ratio(value, ref_us),
                }
            )
    return sorted(rows, key=lambda r: r.get("us_per_batch", float("inf")))


def run(number: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    results = {}
    for section, calls in contenders(seed).items():
        # A signature costs 10-100x an encode: fewer calls keep every section near equal time.
        n = max(number // 20, 20) if section == "sign" else number
        timings: dict[str, float | str] = {
            name: call if isinstance(call, str) else best_us(call, n)
            for name, call in calls.items()
        }
        reference = next(ref for s, _, ref in SECTIONS if s == section)
        results[section] = rows_of(timings, reference)
    return results


def render(results: dict[str, list[dict[str, Any]]]) -> str:
    parts = []
    for section, title, reference in SECTIONS:
        rows = [
            [r["contender"], "-", "-", "-", r["skipped"]]
            if "skipped" in r
            else [
                r["contender"],
                f"{r['us_per_batch']:.2f}",
                f"{r['us_per_order']:.2f}",
                format_ratio(r["vs_router"]),
                "",
            ]
            for r in results[section]
        ]
        columns = ["contender", "µs/batch", "µs/order", "x router", "note"]
        if not any(row[-1] for row in rows):
            columns, rows = columns[:-1], [row[:-1] for row in rows]
        parts.append(table(f"{title} (x router: time over {reference}'s)", columns, rows))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--number", type=int, default=2000, help="calls per timing repeat")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.number < 1:
        parser.error("need --number >= 1")
    machine = describe_machine()
    print(format_machine(machine), flush=True)
    results = run(args.number, args.seed)
    print("\n" + render(results))
    if args.json:
        settings = {"number": args.number, "seed": args.seed, "batch": BATCH}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "settings": settings, "results": results}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
