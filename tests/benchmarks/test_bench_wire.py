"""bench_wire's contenders do the same work: the same JSON body, the same answer read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _data import BATCH, mixed_batch
from bench_wire import FILLED, REFUSED, decoders, make_answer, rows_of, v2_encoders

from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.wire.reply import BatchReply


def test_every_encoder_writes_the_same_v2_body() -> None:
    batch = mixed_batch(7)
    bodies = {}
    for name, encode in v2_encoders().items():
        if isinstance(encode, str):
            assert encode.startswith("skipped: ")
            continue
        bodies[name] = json.loads(encode(batch))
    reference = bodies.pop("router v2 (msgspec)")
    assert len(reference["orders"]) == BATCH
    assert [o["client_order_id"] for o in reference["orders"]] == [i.client_order_id for i in batch]
    assert bodies, "no other encoder ran"
    for name, body in bodies.items():
        assert body == reference, name


def test_the_realistic_answer_reads_the_same_to_every_decoder() -> None:
    batch = mixed_batch()
    keys = [i.client_order_id for i in batch]
    answer = make_answer(batch)
    found = decoders(keys)
    reply = found["router v2 (decode + match)"]
    assert callable(reply)
    decoded = reply(answer)
    assert isinstance(decoded, BatchReply)
    assert isinstance(decoded.outcomes[keys[REFUSED]], Rejected)
    filled = [k for i, k in enumerate(keys) if i in FILLED]
    for key in keys:
        if key != keys[REFUSED]:
            outcome = decoded.outcomes[key]
            assert isinstance(outcome, Accepted)
            assert (outcome.remaining_count == 0) == (key in filled)
    plain = json.loads(answer)
    for name, decode in found.items():
        if name.startswith("pydantic") and callable(decode):
            model: Any = decode(answer)
            assert model.model_dump(exclude_none=True) == {
                "orders": [{k: v for k, v in o.items() if v is not None} for o in plain["orders"]]
            }
        elif name.endswith("loads") and callable(decode):
            assert decode(answer) == plain


def test_rows_are_fastest_first_with_ratios_to_the_router_and_skips_last() -> None:
    rows = rows_of({"slow": 30.0, "gone": "skipped: x not installed", "router": 10.0}, "router")
    assert [r["contender"] for r in rows] == ["router", "slow", "gone"]
    assert rows[1]["vs_router"] == pytest.approx(3.0)
    assert rows[1]["us_per_order"] == pytest.approx(30.0 / BATCH)
    assert rows[2] == {"contender": "gone", "skipped": "skipped: x not installed"}
